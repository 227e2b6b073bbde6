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
//!   comes from the refused call's own `ALL_OLD` copy of the item. Each
//!   entry is the hit's time in microseconds with a random fraction
//!   ([`log_entry`]), unique to the hit, and the update's condition also
//!   requires that entry to be absent from the log: when the SDK retries an
//!   update that was applied but whose answer was lost, the retry fails its
//!   condition instead of logging the hit twice, and finds its entry in the
//!   `ALL_OLD` copy: the hit was logged (a read-back at no extra call).
//! - **Counter item per fixed window** (token creations per account, sign-ups
//!   service-wide), whose maxima are too large for a log: `ADD hits :one` on
//!   the window's own item, created by that same call, on condition that
//!   `hits < max`; DynamoDB's TTL removes the item after its window. The
//!   call also adds a random id of its own to the item's set `rids`, on
//!   condition that the set lacks it: a retry of a call that was applied
//!   fails that condition and finds its id in the `ALL_OLD` copy (counted
//!   once, admitted). A counter counted inside a transaction needs no id:
//!   the transaction's `ClientRequestToken` makes its retries one write.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use push_core::time::Micros;
use push_core::{Limit, MAX_LOGGED_HITS};

/// The attribute of a fixed-window counter item that holds the count.
pub const COUNT: &str = "hits";

/// The attribute of a fixed-window counter item that holds the ids of the
/// single calls that counted a hit (a string set).
pub const COUNTED_BY: &str = "rids";

/// The most hits a counter counted by single calls may allow per window:
/// its set of call ids (17 bytes each) must stay well inside DynamoDB's
/// 400 KB item.
pub const MAX_COUNTED_CALLS: u32 = 20_000;

/// The id of one counting call: random, 64 bits.
pub fn counting_call_id() -> String {
    push_core::secrets::random_hex(8)
}

/// A counter item's set of counting calls holds `id`.
pub fn counted_by(item: &HashMap<String, AttributeValue>, id: &str) -> bool {
    matches!(item.get(COUNTED_BY), Some(AttributeValue::Ss(ids)) if ids.iter().any(|i| i == id))
}

/// A log entry for a hit at `now_us`: the time, with a random fraction of a
/// microsecond that makes it the hit's own (as DynamoDB writes numbers: no
/// trailing zero). Compared as a number it is the hit's time.
pub fn log_entry(now_us: Micros) -> String {
    let mut bytes = [0u8; 4];
    push_core::entropy::fill_bytes(&mut bytes);
    let fraction = u32::from_le_bytes(bytes) % 999_999 + 1;
    let digits = format!("{fraction:06}");
    format!("{now_us}.{}", digits.trim_end_matches('0'))
}

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

/// The condition under which the log of `max` slots does not hold the
/// entry `:now` yet: false for the retry of an update that was applied.
pub fn log_lacks_entry(max: u32) -> String {
    let slots: Vec<String> = (0..max).map(slot).collect();
    format!("NOT (:now IN ({}))", slots.join(", "))
}

/// Whether an item's log holds `entry` (a hit logged by an earlier attempt
/// of the same call).
pub fn log_holds(item: &HashMap<String, AttributeValue>, entry: &str) -> bool {
    (0..MAX_LOGGED_HITS).any(|i| {
        item.get(&slot(i))
            .and_then(|v| v.as_n().ok())
            .is_some_and(|n| n == entry)
    })
}

/// The update expression that empties a log of `max` slots (`max >= 1`).
pub fn log_clear(max: u32) -> String {
    let slots: Vec<String> = (0..max).map(slot).collect();
    format!("REMOVE {}", slots.join(", "))
}

/// The values `log_push`, `log_has_room` and `log_lacks_entry` refer to —
/// and no other: DynamoDB refuses a request with an unused value (`:never`
/// is used only by a log of two slots or more). `entry` is the hit's
/// [`log_entry`] for `now_us`.
/// `:cutoff` for the log's conditions: the cutoff's whole microseconds
/// with the largest fraction an entry may carry, so an entry compares as
/// its hit's time: `t.ffffff <= cutoff.999999` exactly when `t <= cutoff`.
pub fn cutoff_value(limit: Limit, now_us: Micros) -> AttributeValue {
    AttributeValue::N(format!("{}.999999", limit.log_cutoff(now_us)))
}

pub fn log_values(
    limit: Limit,
    now_us: Micros,
    entry: &str,
) -> Vec<(&'static str, AttributeValue)> {
    let mut values = vec![
        (":now", AttributeValue::N(entry.to_string())),
        (":cutoff", cutoff_value(limit, now_us)),
    ];
    if limit.max > 1 {
        values.push((":never", AttributeValue::N("0".into())));
    }
    values
}

/// The logged hits of an item, newest first (their times: the whole
/// microseconds of each entry).
pub fn read_log(item: &HashMap<String, AttributeValue>) -> Vec<Micros> {
    (0..MAX_LOGGED_HITS)
        .map_while(|i| {
            item.get(&slot(i))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.split('.').next()?.parse().ok())
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
            let expressions = format!(
                "{} {} {}",
                log_push(max),
                log_has_room(max),
                log_lacks_entry(max)
            );
            let given: Vec<&str> = log_values(limit, 1, "1.5")
                .iter()
                .map(|(k, _)| *k)
                .collect();
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
        // The condition: the room check, the entry's absence (an IN list of
        // at most 100 operands) and the knock's liveness.
        let condition = format!(
            "{} AND {} AND expires_us > :now",
            log_has_room(MAX_LOGGED_HITS),
            log_lacks_entry(MAX_LOGGED_HITS)
        );
        assert!(condition.len() < 4096, "{} bytes", condition.len());
        const { assert!(MAX_LOGGED_HITS <= 100) };
    }

    #[test]
    fn a_log_entry_is_its_hits_time_and_its_own() {
        let entries: Vec<String> = (0..50).map(|_| log_entry(1_000_000)).collect();
        for entry in &entries {
            let (whole, fraction) = entry.split_once('.').expect("a fraction");
            assert_eq!(whole, "1000000");
            assert!(!fraction.is_empty() && !fraction.ends_with('0'), "{entry}");
            assert!(fraction.len() <= 6);
        }
        let mut unique = entries.clone();
        unique.sort();
        unique.dedup();
        assert!(unique.len() > 45, "entries collide: {entries:?}");
        let item: HashMap<String, AttributeValue> = [
            ("h0".to_string(), AttributeValue::N(entries[0].clone())),
            ("h1".to_string(), AttributeValue::N("999".into())),
        ]
        .into();
        assert_eq!(read_log(&item), vec![1_000_000, 999]);
        assert!(log_holds(&item, &entries[0]));
        assert!(!log_holds(&item, "1000000.5") || entries[0] == "1000000.5");
        assert_eq!(log_lacks_entry(2), "NOT (:now IN (h0, h1))");
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
