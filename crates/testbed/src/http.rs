//! A minimal JSON-over-HTTP client for moto's control endpoints.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{Error, Result};

pub(crate) async fn json(
    method: hyper::Method,
    url: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    json_with(method, url, &[("content-type", "application/json")], body).await
}

/// [`json`] with the request's headers given (an AWS JSON-protocol call needs `x-amz-target`).
pub(crate) async fn json_with(
    method: hyper::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let err = |message: String| Error::Http {
        url: url.to_string(),
        message,
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let payload = match body {
        Some(b) => Bytes::from(serde_json::to_vec(b).map_err(|e| err(e.to_string()))?),
        None => Bytes::new(),
    };
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(payload))
        .map_err(|e| err(e.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| err(e.to_string()))?
        .to_bytes();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    };
    Ok((status, value))
}
