//! The response an operation gives: status, extra headers, a JSON body.

use http::StatusCode;
use serde_json::Value;

/// A response: status, extra headers, and a JSON body (absent for `204`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl ApiResponse {
    pub fn json(status: StatusCode, body: Value) -> Self {
        ApiResponse {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn no_content() -> Self {
        ApiResponse {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: None,
        }
    }

    /// The body as bytes (empty for `204`).
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Some(v) => serde_json::to_vec(v).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}
