//! The request's time budget: when the operation under way must have
//! answered, as a deadline local to the task that serves it.
//!
//! The glue sets it around each operation ([`within`]: the Lambda glue from
//! the invocation's deadline, the local router and the feedback function
//! alike), and the AWS adapter bounds every SDK call by it: each call's
//! operation and attempt timeouts are [`OPERATION_TIMEOUT`] and
//! [`ATTEMPT_TIMEOUT`], or what is left before the deadline less
//! [`ANSWER_MARGIN`] if that is less ([`call_bounds`]); with less than
//! [`MIN_CALL`] left a call is not sent at all and fails as unavailable. So a
//! slow AWS makes an operation fail with `503` and `Retry-After` in time to
//! say so, never run into the function's own timeout (after which API
//! Gateway answers with its own `5xx`). A task-local rather than a parameter:
//! every port call of every operation is bounded without threading a
//! deadline through each port method, and a call made outside any budget (the
//! router's set-up, tests) keeps the constant timeouts.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::time::Micros;

/// The budget of a request that carries no deadline of its own (the local
/// router, the feedback function invoked through it): the deployed
/// functions' timeout (template.yaml, `Globals.Function.Timeout`).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// The longest one SDK call may take, retries included, budget permitting.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one attempt of an SDK call may take, budget permitting.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Time kept after the last AWS call to answer: render the `503`, hand it to
/// the Lambda runtime, and the CPU work between calls of a short operation.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Less than this left for a call, and it is not sent: it could not be
/// answered in time, and a write whose answer we cannot wait for is only a
/// write that may or may not have landed.
pub const MIN_CALL: Duration = Duration::from_millis(50);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `operation` with the deadline `deadline_us` (wall-clock
/// microseconds, as Lambda gives it), or [`DEFAULT_BUDGET`] from now.
pub async fn within<F: Future>(deadline_us: Option<Micros>, operation: F) -> F::Output {
    let deadline = match deadline_us {
        Some(us) => instant_of(us),
        None => Instant::now() + DEFAULT_BUDGET,
    };
    DEADLINE.scope(deadline, operation).await
}

/// The monotonic instant of a wall-clock deadline.
fn instant_of(deadline_us: Micros) -> Instant {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let left = u64::try_from(deadline_us.saturating_sub(now_us)).unwrap_or(0);
    Instant::now() + Duration::from_micros(left)
}

/// The time left before the deadline of the operation under way; `None`
/// outside any budget.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// Whether a pause of `pause` still leaves room for one more call (and the
/// answer) before the deadline: a retry loop that cannot afford its pause
/// gives up now, answering in time, rather than after the deadline.
pub fn affords_pause(pause: Duration) -> bool {
    bounds_for(remaining().map(|left| left.saturating_sub(pause))).is_some()
}

/// The bounds of one AWS call starting now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallBounds {
    /// For the whole call, the SDK's retries included.
    pub operation: Duration,
    /// For each attempt.
    pub attempt: Duration,
}

/// The bounds of an AWS call starting now: the constants, or what is left
/// before the deadline less [`ANSWER_MARGIN`] if that is less; `None` when
/// less than [`MIN_CALL`] is left (the call must not be sent).
pub fn call_bounds() -> Option<CallBounds> {
    bounds_for(remaining())
}

fn bounds_for(remaining: Option<Duration>) -> Option<CallBounds> {
    let Some(remaining) = remaining else {
        return Some(CallBounds {
            operation: OPERATION_TIMEOUT,
            attempt: ATTEMPT_TIMEOUT,
        });
    };
    let left = remaining.saturating_sub(ANSWER_MARGIN);
    (left >= MIN_CALL).then(|| CallBounds {
        operation: OPERATION_TIMEOUT.min(left),
        attempt: ATTEMPT_TIMEOUT.min(left),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_bounded_by_the_constants_or_what_is_left_less_the_margin() {
        let ms = Duration::from_millis;
        // Outside any budget, and with plenty left: the constants.
        let constants = Some(CallBounds {
            operation: OPERATION_TIMEOUT,
            attempt: ATTEMPT_TIMEOUT,
        });
        assert_eq!(bounds_for(None), constants);
        assert_eq!(bounds_for(Some(ms(9_000))), constants);
        // Less left than an operation may take: the operation is cut.
        assert_eq!(
            bounds_for(Some(ms(3_000))),
            Some(CallBounds {
                operation: ms(2_500),
                attempt: ATTEMPT_TIMEOUT
            })
        );
        // Less than an attempt: both.
        assert_eq!(
            bounds_for(Some(ms(1_000))),
            Some(CallBounds {
                operation: ms(500),
                attempt: ms(500)
            })
        );
        // Nothing worth a call: not sent.
        assert_eq!(bounds_for(Some(ANSWER_MARGIN + ms(49))), None);
        assert_eq!(bounds_for(Some(Duration::ZERO)), None);
    }

    #[tokio::test]
    async fn a_pause_is_afforded_only_with_a_call_and_the_answer_left_after_it() {
        assert!(affords_pause(Duration::from_secs(60)), "outside any budget");
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as Micros;
        let (short, long) = within(Some(now_us + 1_000_000), async {
            (
                affords_pause(Duration::from_millis(100)),
                affords_pause(Duration::from_millis(800)),
            )
        })
        .await;
        assert!(short, "1 s left: 100 ms of pause leaves a call's worth");
        assert!(
            !long,
            "1 s left: 800 ms of pause leaves less than the margin and a call"
        );
    }

    #[tokio::test]
    async fn the_deadline_holds_inside_the_operation_only() {
        assert_eq!(remaining(), None);
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as Micros;
        let left = within(Some(now_us + 3_000_000), async { remaining() }).await;
        let left = left.expect("inside the budget");
        assert!(left <= Duration::from_secs(3) && left > Duration::from_millis(2_900));
        let default = within(None, async { remaining() }).await.unwrap();
        assert!(default > Duration::from_millis(9_900));
        // A deadline already past leaves nothing.
        let past = within(Some(now_us - 1), async { call_bounds() }).await;
        assert_eq!(past, None);
        assert_eq!(remaining(), None);
    }
}
