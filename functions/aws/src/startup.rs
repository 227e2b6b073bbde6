//! Wall-clock marks of a start-up's phases (`STARTUP_TIMINGS=1`, as `make
//! bench` sets it): one line on stderr, `startup-timings to_main=<µs>
//! config=<µs> …`, each phase's own length in microseconds. Off, each mark
//! is one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static ON: AtomicBool = AtomicBool::new(false);
static MARKS: Mutex<Vec<(&str, SystemTime)>> = Mutex::new(Vec::new());

/// Starts marking if `STARTUP_TIMINGS` is `1`. `BENCH_SPAWNED_AT_UNIX_NS`
/// (the bench's clock as it spawned the process) makes the first phase,
/// `to_main`: exec, the loader and the async runtime's start.
/// Idempotent: the first call counts.
pub fn begin() {
    if !std::env::var("STARTUP_TIMINGS").is_ok_and(|v| v == "1") || ON.load(Ordering::Relaxed) {
        return;
    }
    ON.store(true, Ordering::Relaxed);
    let mut marks = MARKS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(ns) = std::env::var("BENCH_SPAWNED_AT_UNIX_NS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        marks.push(("spawned", UNIX_EPOCH + Duration::from_nanos(ns)));
    }
    marks.push(("to_main", SystemTime::now()));
}

/// The phase `phase` ends now.
pub fn mark(phase: &'static str) {
    if ON.load(Ordering::Relaxed) {
        MARKS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((phase, SystemTime::now()));
    }
}

/// Writes the line (once).
pub fn report() {
    if !ON.swap(false, Ordering::Relaxed) {
        return;
    }
    let marks = std::mem::take(&mut *MARKS.lock().unwrap_or_else(PoisonError::into_inner));
    let mut line = String::from("startup-timings");
    for pair in marks.windows(2) {
        let us = pair[1]
            .1
            .duration_since(pair[0].1)
            .map_or(0, |d| d.as_micros());
        line.push_str(&format!(" {}={us}", pair[1].0));
    }
    eprintln!("{line}");
}
