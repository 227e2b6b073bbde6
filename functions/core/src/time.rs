//! Timestamps as the SDKs parse them: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

use chrono::{DateTime, Utc};

/// Microseconds since the Unix epoch, the unit every stored time uses.
pub type Micros = i64;

/// Formats a stored time exactly as both SDKs parse it.
pub fn format_timestamp(us: Micros) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default();
    dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The UTC day (days since the epoch) a stored time falls on.
pub fn day_of(us: Micros) -> i64 {
    us.div_euclid(86_400_000_000)
}

/// A UTC day (days since the epoch) as `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    format_timestamp(day.saturating_mul(86_400_000_000))[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_fraction_digits_and_literal_z() {
        assert_eq!(
            format_timestamp(1_526_154_499_888_451),
            "2018-05-12T19:48:19.888451Z"
        );
        assert_eq!(
            format_timestamp(1_526_154_499_000_000),
            "2018-05-12T19:48:19.000000Z"
        );
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_of(1_526_154_499_888_451), 17_663);
        assert_eq!(format_day(17_663), "2018-05-12");
        assert_eq!(format_day(day_of(-1)), "1969-12-31");
    }
}
