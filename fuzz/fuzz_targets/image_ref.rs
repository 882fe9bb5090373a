//! The webhook parses every image reference of every admitted pod: no input may panic, and
//! what parses must print back to a reference that parses to the same thing.
#![no_main]

use ecr_operator_core::image::ImageRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ImageRef::parse(s) {
        let _ = r.ecr();
        let mut again = r.name();
        if let Some(t) = r.tag() {
            again.push(':');
            again.push_str(t);
        }
        if let Some(d) = r.digest() {
            again.push('@');
            again.push_str(d);
        }
        let reparsed = ImageRef::parse(&again)
            .unwrap_or_else(|e| panic!("{s:?} parsed, its canonical form {again:?} did not: {e}"));
        assert_eq!(reparsed.name(), r.name(), "{s:?}");
        assert_eq!(reparsed.tag(), r.tag(), "{s:?}");
        assert_eq!(reparsed.digest(), r.digest(), "{s:?}");
    }
});
