//! How the abuse limits live in DynamoDB. Each counted hit is exactly one
//! conditional `UpdateItem`, whatever came before it (no read, no reset, no
//! retry):
//!
//! - **Sliding log** (knocks per token, failed logins per username): the item
//!   the path touches anyway carries the times of the last `max` admitted
//!   hits in attributes `h0` (newest) … `h{max-1}` (oldest). A hit shifts
//!   every slot one down and writes `h0`, on condition that `h{max-1}` is
//!   missing or at least a window old. Nothing ever needs resetting, so the
//!   first hit and the hundredth cost the same single call, and `Retry-After`
//!   comes from the refused call's own `ALL_OLD` copy of the item.
//! - **Counter item per fixed window** (token creations per account, sign-ups
//!   service-wide), whose maxima are too large for a log: `ADD hits :one` on
//!   the window's own item, created by that same call, on condition that
//!   `hits < max`; DynamoDB's TTL removes the item after its window.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use push_core::time::Micros;
use push_core::{Limit, MAX_LOGGED_HITS};

/// The attribute of a fixed-window counter item that holds the count.
pub const COUNT: &str = "hits";

fn slot(i: u32) -> String {
    format!("h{i}")
}

/// The update expression that logs a hit at `:now` in a log of `max` slots
/// (`max >= 1`): each slot takes the next newer one's value (`:never` where
/// that is missing) and `h0` takes `:now`. The actions go from the oldest
/// slot to the newest, so the result is the same whether they are evaluated
/// against the item as it was (as DynamoDB does) or one after another.
pub fn log_push(max: u32) -> String {
    let mut actions: Vec<String> = (1..max)
        .rev()
        .map(|i| format!("{} = if_not_exists({}, :never)", slot(i), slot(i - 1)))
        .collect();
    actions.push(format!("{} = :now", slot(0)));
    format!("SET {}", actions.join(", "))
}

/// The condition under which the item exists and its log of `max` slots
/// (`max >= 1`) has room for a hit: the oldest slot is empty or at or before
/// `:cutoff` ([`Limit::log_cutoff`]).
pub fn log_has_room(max: u32) -> String {
    let oldest = slot(max - 1);
    format!("attribute_exists(pk) AND (attribute_not_exists({oldest}) OR {oldest} <= :cutoff)")
}

/// The update expression that empties a log of `max` slots (`max >= 1`).
pub fn log_clear(max: u32) -> String {
    let slots: Vec<String> = (0..max).map(slot).collect();
    format!("REMOVE {}", slots.join(", "))
}

/// The values `log_push` and `log_has_room` refer to — and no other:
/// DynamoDB refuses a request with an unused value (`:never` is used only
/// by a log of two slots or more).
pub fn log_values(limit: Limit, now_us: Micros) -> Vec<(&'static str, AttributeValue)> {
    let mut values = vec![
        (":now", AttributeValue::N(now_us.to_string())),
        (
            ":cutoff",
            AttributeValue::N(limit.log_cutoff(now_us).to_string()),
        ),
    ];
    if limit.max > 1 {
        values.push((":never", AttributeValue::N("0".into())));
    }
    values
}

/// The logged hits of an item, newest first.
pub fn read_log(item: &HashMap<String, AttributeValue>) -> Vec<Micros> {
    (0..MAX_LOGGED_HITS)
        .map_while(|i| {
            item.get(&slot(i))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

/// When a fixed window's counter item may go: the end of the window, in epoch
/// seconds (the table's TTL attribute).
pub fn window_expiry(limit: Limit, window: i64) -> i64 {
    window
        .saturating_add(1)
        .saturating_mul(limit.window_us())
        .div_euclid(1_000_000)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_log_update_shifts_from_the_oldest_slot_and_writes_the_newest() {
        assert_eq!(
            log_push(3),
            "SET h2 = if_not_exists(h1, :never), h1 = if_not_exists(h0, :never), h0 = :now"
        );
        assert_eq!(log_push(1), "SET h0 = :now");
        assert_eq!(
            log_has_room(3),
            "attribute_exists(pk) AND (attribute_not_exists(h2) OR h2 <= :cutoff)"
        );
        assert_eq!(log_clear(2), "REMOVE h0, h1");
    }

    #[test]
    fn every_value_given_is_used_and_every_value_used_is_given() {
        for max in [1, 2, 10, MAX_LOGGED_HITS] {
            let limit = Limit {
                max,
                window: Duration::from_secs(60),
            };
            let expressions = format!("{} {}", log_push(max), log_has_room(max));
            let given: Vec<&str> = log_values(limit, 1).iter().map(|(k, _)| *k).collect();
            for name in &given {
                assert!(expressions.contains(name), "{name} unused at max {max}");
            }
            for used in [":now", ":never", ":cutoff"] {
                if expressions.contains(used) {
                    assert!(given.contains(&used), "{used} missing at max {max}");
                }
            }
        }
    }

    #[test]
    fn the_largest_log_fits_dynamodbs_expression_limits() {
        // DynamoDB: expressions up to 4 KB, at most 300 operators and
        // functions in an update expression.
        let update = log_push(MAX_LOGGED_HITS);
        assert!(update.len() < 4096, "{} bytes", update.len());
        assert!(update.matches("if_not_exists").count() < 300);
        assert!(log_clear(MAX_LOGGED_HITS).len() < 4096);
    }

    #[test]
    fn a_log_is_read_newest_first_and_stops_at_the_first_gap() {
        let item: HashMap<String, AttributeValue> = [
            ("h0", "30"),
            ("h1", "20"),
            ("h2", "10"),
            ("h4", "5"),
            ("hits", "7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), AttributeValue::N(v.into())))
        .collect();
        assert_eq!(read_log(&item), vec![30, 20, 10]);
        assert!(read_log(&HashMap::new()).is_empty());
    }

    #[test]
    fn a_window_counter_expires_when_its_window_ends() {
        let minute = Limit {
            max: 5,
            window: Duration::from_secs(60),
        };
        // Window 2 is [120 s, 180 s).
        assert_eq!(window_expiry(minute, 2), 181);
    }
}
