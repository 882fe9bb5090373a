//! Any body the API server (or anyone reaching the port) sends to the webhook: decoding never
//! panics, and whatever decodes yields an answer that serializes.
#![no_main]

use ecr_operator_core::review;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match review::parse(data) {
        Ok(req) => {
            let _ = review::subject(&req);
            let _ = review::object_name(&req);
            if let Some(obj) = &req.object
                && let Some(kind) = review::WorkloadKind::of(&req.kind.group, &req.kind.kind)
            {
                let _ = review::images_of(kind, obj);
            }
            let body = review::to_body(review::allow(&req, vec![]));
            assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        }
        Err(e) => {
            let body = review::to_body(review::invalid(review::salvage_uid(data), &e.to_string()));
            assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        }
    }
});
