//! CPU per knock in a unit that does not swing with the machine's load:
//! instructions, counted by Valgrind's callgrind (this machine exposes no
//! hardware counters). The bench runs itself under callgrind in
//! `BENCH_KNOCKS=N` mode (set-up, then N in-process knocks against the
//! emulator, which runs in its own process and is not counted) for two values
//! of N; the difference divided by the extra knocks is one knock's
//! instructions, set-up and exit cancelling out.

use std::process::Command;

/// Knocks of the two runs.
const FEW: usize = 20;
const MANY: usize = 220;

/// Instructions callgrind collected over a run of `knocks` knocks.
fn collected(knocks: usize) -> Result<u64, String> {
    let bench = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(&bench)
        .env("BENCH_KNOCKS", knocks.to_string())
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no instruction count from callgrind: {err}"))
}

/// Instructions per knock (one device, the knock handler and its SDK calls).
pub fn per_knock() -> Result<f64, String> {
    let few = collected(FEW)?;
    let many = collected(MANY)?;
    Ok((many as f64 - few as f64) / (MANY - FEW) as f64)
}
