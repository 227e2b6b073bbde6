//! One error type with meaning, and the one place it becomes an HTTP response.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{json, Value};

use crate::metrics;
use crate::ports::{Admission, LimitName, PortError, WriteConflict};
use crate::response::ApiResponse;

/// Field name → messages, rendered as `{"<field>": ["<message>"]}`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Seconds a client should wait before retrying after a `503`.
pub const RETRY_AFTER_SECONDS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Field validation failed: `400 {"field": ["message"]}`.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// The body could not be read at all: `400 {"detail": ...}`.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Account login with the wrong password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Sign-up with an email another account uses.
    #[error("email taken")]
    EmailTaken,
    /// Missing or invalid API key where one is required.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    #[error("not found")]
    NotFound,
    /// `405` with the methods the resource does allow (`Allow`, RFC 9110).
    #[error("method not allowed")]
    MethodNotAllowed {
        method: String,
        allowed: &'static str,
    },
    #[error("payload too large")]
    PayloadTooLarge,
    /// Over a rate limit: `429` with `Retry-After`.
    #[error("rate limited")]
    RateLimited {
        limit: LimitName,
        retry_after_seconds: u64,
    },
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// Another request was changing the same item at the same moment: the
    /// operation may be run again from its reads ([`crate::retry`]); `503`
    /// when it is not.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A dependency (DynamoDB, SNS) is unreachable or throttling.
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// `429` for a request the abuse limit `limit` refuses (counted in the
    /// `LimitHits` metric by [`respond`]).
    pub fn rate_limited(limit: LimitName, retry_after_seconds: u64) -> ApiError {
        ApiError::RateLimited {
            limit,
            retry_after_seconds,
        }
    }

    pub fn method_not_allowed(method: &str, allowed: &'static str) -> Self {
        ApiError::MethodNotAllowed {
            method: method.to_string(),
            allowed,
        }
    }

    /// A single field error.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(name.to_string(), vec![message.into()]);
        ApiError::Validation(errors)
    }

    /// An error that concerns several fields.
    pub fn non_field(message: impl Into<String>) -> Self {
        Self::field("non_field_errors", message)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) | ApiError::EmailTaken => {
                StatusCode::BAD_REQUEST
            }
            ApiError::InvalidCredentials | ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::Conflict(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response a client sees. Internal detail is logged, never sent.
    pub fn into_response(self) -> ApiResponse {
        let status = self.status();
        let body: Value = match &self {
            ApiError::Validation(errors) => json!(errors),
            ApiError::BadRequest(detail) => json!({ "detail": detail }),
            ApiError::InvalidCredentials => json!({ "error": "Invalid credentials" }),
            ApiError::EmailTaken => {
                json!({ "error": "An account with that email address already exists." })
            }
            ApiError::Unauthenticated(detail) => json!({ "detail": detail }),
            ApiError::NotFound => json!({ "detail": "Not found." }),
            ApiError::MethodNotAllowed { method, .. } => {
                json!({ "detail": format!("Method \"{method}\" not allowed.") })
            }
            ApiError::PayloadTooLarge => json!({
                "detail": format!("Request body is larger than {} bytes.", crate::request::MAX_BODY_BYTES)
            }),
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => json!({
                "detail": format!("Request was throttled. Expected available in {retry_after_seconds} seconds.")
            }),
            ApiError::UnsupportedMediaType(ct) => {
                json!({ "detail": format!("Unsupported media type \"{ct}\" in request.") })
            }
            ApiError::Unavailable(_) | ApiError::Conflict(_) => {
                json!({ "detail": "Service temporarily unavailable, try again later." })
            }
            ApiError::Internal(_) => json!({ "detail": "Internal server error." }),
        };
        match &self {
            ApiError::Unavailable(source) | ApiError::Conflict(source) => {
                tracing::warn!(error = %source, "dependency unavailable")
            }
            ApiError::Internal(source) => tracing::error!(error = %source, "internal error"),
            _ => {}
        }
        let mut response = ApiResponse::json(status, body);
        match self {
            ApiError::MethodNotAllowed { allowed, .. } => {
                response.headers.push(("Allow".into(), allowed.into()));
            }
            ApiError::Unauthenticated(_) => {
                response
                    .headers
                    .push(("WWW-Authenticate".into(), "Token".into()));
            }
            ApiError::Unavailable(_) | ApiError::Conflict(_) => {
                response
                    .headers
                    .push(("Retry-After".into(), RETRY_AFTER_SECONDS.to_string()));
            }
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => {
                response
                    .headers
                    .push(("Retry-After".into(), retry_after_seconds.max(1).to_string()));
            }
            _ => {}
        }
        response
    }
}

impl From<WriteConflict> for ApiError {
    fn from(err: WriteConflict) -> Self {
        match err {
            WriteConflict::Conflict => ApiError::Conflict("a conditional write lost a race".into()),
            // The key's account is being deleted: the key is about to go too.
            WriteConflict::AccountGone => ApiError::Unauthenticated("Invalid token."),
            WriteConflict::DeviceLimit => ApiError::field(
                "registration_id",
                "This account has as many devices as it may have: delete one first.",
            ),
            WriteConflict::Limited {
                limit,
                retry_after_seconds,
            } => ApiError::rate_limited(limit, retry_after_seconds),
            WriteConflict::Port(e) => e.into(),
        }
    }
}

impl From<PortError> for ApiError {
    fn from(err: PortError) -> Self {
        match err {
            PortError::Unavailable(source) => ApiError::Unavailable(source),
            PortError::Conflict(source) => ApiError::Conflict(source),
            // Only push tokens reach a dependency as sent by the client.
            PortError::Refused(_) => ApiError::field(
                "registration_id",
                "The push service refused this registration token.",
            ),
            PortError::Internal(source) => ApiError::Internal(source),
        }
    }
}

/// `429` if the hit was refused by the limit `limit`; a missing item (deleted
/// meanwhile) is the caller's business, so it passes.
pub fn refuse_if_limited(admission: Admission, limit: LimitName) -> Result<(), ApiError> {
    match admission {
        Admission::Limited {
            retry_after_seconds,
        } => Err(ApiError::rate_limited(limit, retry_after_seconds)),
        Admission::Admitted | Admission::Missing => Ok(()),
    }
}

/// The response to an operation's outcome, made once per request by the
/// function that answers it (`function`: its name, the metrics' `Function`
/// dimension). A refusal by an abuse limit is counted here, in the
/// `LimitHits` metric with the limit's name (no identifiers).
pub fn respond(function: &str, result: Result<ApiResponse, ApiError>) -> ApiResponse {
    match result {
        Ok(response) => response,
        Err(error) => {
            if let ApiError::RateLimited { limit, .. } = &error {
                metrics::emit(
                    function,
                    &[("LimitHits", 1.0, "Count")],
                    &[("Limit", limit.as_str())],
                );
            }
            error.into_response()
        }
    }
}
