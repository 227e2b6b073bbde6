//! Turning SDK errors into [`PortError`]s by meaning.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use push_core::ports::PortError;

/// Error codes that mean "try again later" across DynamoDB and SNS.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "Throttled",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "KMSThrottling",
    "KMSThrottlingException",
    "TransactionInProgressException",
    // The table (or topic) is not there: a broken deployment or an emulator
    // restarted empty. Not the client's fault, and not a code path's bug.
    "ResourceNotFoundException",
];

/// The cancellation reasons with which DynamoDB reports a throttled
/// transaction (not as `ThrottlingException`: /work/shared facts, and
/// DynamoDB's `TransactWriteItems` reference).
const THROTTLING_REASONS: &[&str] = &["ThrottlingError", "ProvisionedThroughputExceeded"];

/// Whether a transaction's cancellation reason code means throttling.
pub fn is_throttling_reason(code: &str) -> bool {
    THROTTLING_REASONS.contains(&code)
}

/// Whether an SDK error means the service is unreachable, slow or throttling.
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => TRANSIENT_CODES.contains(&code),
            // A server error the SDK could read no code from (a load
            // balancer's 503, a body cut short): AWS's 5xx are retryable
            // (`make test-faults` met one on CreatePlatformEndpoint).
            None => service.raw().status().is_server_error(),
        },
        _ => false,
    }
}

/// Whether an SDK error is DynamoDB's answer to two requests meeting on one
/// item: a single write refused while a transaction holds the item, or a
/// transaction cancelled for a conflict (and for no failed condition, which
/// the caller decodes itself).
pub fn is_conflict<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err.code() {
        Some("TransactionConflictException") => true,
        Some("TransactionCanceledException") => err.message().is_some_and(|m| {
            m.contains("TransactionConflict") && !m.contains("ConditionalCheckFailed")
        }),
        _ => false,
    }
}

/// Classifies an SDK error; the text kept is the operation and the error's
/// code — never AWS's message, which can carry endpoint ARNs and tokens.
pub fn port_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if budget_spent(&err) {
        return PortError::Unavailable(format!(
            "{operation}: not sent, the request's time budget is spent"
        ));
    }
    let detail = format!(
        "{operation}: {}",
        err.code().unwrap_or(match &err {
            SdkError::TimeoutError(_) => "timeout",
            SdkError::DispatchFailure(_) => "dispatch failure (service unreachable)",
            SdkError::ResponseError(_) => "unreadable response",
            _ => "no error code",
        }),
    );
    if is_conflict(&err) {
        PortError::Conflict(detail)
    } else if is_transient(&err) {
        PortError::Unavailable(detail)
    } else {
        PortError::Internal(detail)
    }
}

/// Whether the call was refused before it was sent because the request's
/// budget was spent ([`crate::config::RequestBudget`]).
fn budget_spent<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if e.is::<crate::config::BudgetSpent>() {
            return true;
        }
        source = e.source();
    }
    false
}
