//! Retrying an operation that met a concurrent writer, within the request's
//! time budget.
//!
//! DynamoDB cancels a transaction that touches an item another request is
//! changing (`TransactionConflict`), refuses a single write to an item inside
//! a running transaction (`TransactionConflictException`), and a conditional
//! write fails when someone changed the facts it was decided on. Neither is
//! retried by the SDK. An operation that meets one of them
//! ([`ApiError::Conflict`]) is run again from its reads — re-read, re-decide,
//! re-write — after a jittered, growing pause, for as long as the request's
//! budget allows; then the client gets `503` with `Retry-After`, never `500`.

use std::future::Future;
use std::time::Duration;

use crate::error::ApiError;
use crate::ports::Clock;
use crate::request::ApiRequest;
use crate::time::Micros;
use crate::Deps;

pub use crate::budget::DEFAULT_BUDGET;

/// Time kept in hand when deciding whether another attempt fits: one attempt
/// may wait for an SDK call's attempt timeout and must still answer. (Every
/// AWS call is cut to the budget anyway ([`crate::budget`]): an attempt
/// started with less would only end sooner in the same `503`.)
pub const RESERVE: Duration =
    crate::budget::ATTEMPT_TIMEOUT.saturating_add(crate::budget::ANSWER_MARGIN);

/// First pause, and the cap of the growing pauses, before a new attempt.
/// Two writers meeting settle within the first few (5, 10, 20 ms); the
/// cap matters only when many meet on one item (fifty logins of one
/// username at once): retrying each every 100 ms on average would keep them
/// all in flight and conflicting, spread over up to a second they get
/// through.
const FIRST_PAUSE_MS: u64 = 5;
const MAX_PAUSE_MS: u64 = 1_000;

/// When the request must have answered, as wall-clock microseconds: the
/// budget the glue set ([`crate::budget::within`]), else the request's own
/// deadline, else [`DEFAULT_BUDGET`] from now.
pub fn deadline_of(deps: &Deps, req: &ApiRequest) -> Micros {
    if let Some(left) = crate::budget::remaining() {
        let left = i64::try_from(left.as_micros()).unwrap_or(i64::MAX);
        return deps.clock.now_us().saturating_add(left);
    }
    req.deadline_us.unwrap_or_else(|| {
        deps.clock
            .now_us()
            .saturating_add(DEFAULT_BUDGET.as_micros() as Micros)
    })
}

/// The pauses between the attempts of one operation.
pub struct Backoff<'a> {
    clock: &'a dyn Clock,
    deadline_us: Micros,
    ceiling_ms: u64,
    attempts: u32,
}

impl<'a> Backoff<'a> {
    pub fn new(clock: &'a dyn Clock, deadline_us: Micros) -> Self {
        Backoff {
            clock,
            deadline_us,
            ceiling_ms: FIRST_PAUSE_MS,
            attempts: 1,
        }
    }

    /// For the request `req` of an operation using `deps`.
    pub fn for_request(deps: &'a Deps, req: &ApiRequest) -> Self {
        Self::new(&*deps.clock, deadline_of(deps, req))
    }

    /// After an attempt met a conflict: waits a jittered, growing pause if
    /// another attempt still fits before the deadline (less [`RESERVE`]);
    /// else gives up with `503`.
    pub async fn after_conflict(&mut self, what: String) -> Result<(), ApiError> {
        let pause_ms = crate::entropy::jitter_ms(1..=self.ceiling_ms);
        let next_start = self
            .clock
            .now_us()
            .saturating_add((pause_ms * 1_000) as Micros)
            .saturating_add(RESERVE.as_micros() as Micros);
        if next_start > self.deadline_us {
            tracing::warn!(attempts = self.attempts, conflict = %what, "gave up on a conflicting write");
            return Err(ApiError::Unavailable(format!(
                "still conflicting after {} attempts: {what}",
                self.attempts
            )));
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        self.ceiling_ms = (self.ceiling_ms * 2).min(MAX_PAUSE_MS);
        self.attempts += 1;
        Ok(())
    }
}

/// Runs `attempt` until it ends in anything but [`ApiError::Conflict`],
/// pausing as [`Backoff`] says; a conflict left over becomes `503`.
pub async fn retry_conflicts<T, F, Fut>(
    clock: &dyn Clock,
    deadline_us: Micros,
    mut attempt: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut backoff = Backoff::new(clock, deadline_us);
    loop {
        match attempt().await {
            Err(ApiError::Conflict(what)) => backoff.after_conflict(what).await?,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::ports::SystemClock;

    fn now() -> Micros {
        SystemClock.now_us()
    }

    #[tokio::test]
    async fn conflicts_are_retried_until_the_attempt_settles() {
        let calls = AtomicU32::new(0);
        let out = retry_conflicts(&SystemClock, now() + 10_000_000, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(ApiError::Conflict("busy".into()))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried_and_an_exhausted_budget_is_503() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry_conflicts(&SystemClock, now() + 10_000_000, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::NotFound)
        })
        .await;
        assert!(matches!(out, Err(ApiError::NotFound)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // No time left for a second attempt: the conflict becomes 503.
        let out: Result<(), _> = retry_conflicts(&SystemClock, now(), || async {
            Err(ApiError::Conflict("busy".into()))
        })
        .await;
        let err = out.expect_err("gave up");
        assert_eq!(err.status(), 503);
        assert!(err
            .into_response()
            .headers
            .iter()
            .any(|(k, _)| k == "Retry-After"));
    }
}
