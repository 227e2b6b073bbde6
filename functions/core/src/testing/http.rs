//! Requests as a client sends them, straight to the operations, and the
//! answers as a client sees them.

use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;
use crate::request::ApiRequest;
use crate::response::ApiResponse;

/// A JSON request to `/api/v1/<path>`, with the API key if given.
pub fn request(method: &str, path: &str, key: Option<&str>, body: Value) -> ApiRequest {
    let path = format!("/api/v1/{path}");
    ApiRequest {
        method: method.parse().expect("an HTTP method"),
        segments: ApiRequest::segments_of(&path).expect("an API path"),
        query: vec![],
        content_type: Some("application/json".into()),
        authorization: key.map(|k| format!("Token {k}")),
        origin: "https://push.example".into(),
        path,
        body: Bytes::from(body.to_string()),
        deadline_us: None,
        source_ip: Some("192.0.2.1".into()),
    }
}

/// The status a client would see, and the body.
pub fn answer(result: Result<ApiResponse, ApiError>) -> (u16, Value) {
    let response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    (
        response.status.as_u16(),
        response.body.unwrap_or(Value::Null),
    )
}
