//! CPU per knock in a unit that does not swing with the machine's load:
//! instructions, counted by Valgrind's callgrind (this machine exposes no
//! hardware counters). The bench runs itself under callgrind in
//! `BENCH_KNOCKS=N` mode (set-up, then N in-process knocks against the
//! emulator, which runs in its own process and is not counted) for two values
//! of N; the difference divided by the extra knocks is one knock's
//! instructions, set-up and exit cancelling out — and the same difference
//! per crate is where they go.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::profile::{self, ByCrate};

/// Knocks of the two runs.
const FEW: usize = 20;
const MANY: usize = 220;

/// Runs `command` under callgrind, its profile written to `out`; returns the
/// instructions collected.
pub fn callgrind(command: &mut Command, out: &Path) -> Result<u64, String> {
    let program = command.get_program().to_os_string();
    let args: Vec<_> = command.get_args().map(|a| a.to_os_string()).collect();
    let envs: Vec<_> = command
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_os_string(), v?.to_os_string())))
        .collect();
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(program)
        .args(args)
        .envs(envs)
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    let err = String::from_utf8_lossy(&output.stderr);
    err.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no instruction count from callgrind: {err}"))
}

fn profile_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bench-{}-{name}.callgrind", std::process::id()))
}

/// A run of `knocks` knocks: instructions, and their profile by crate.
fn collected(knocks: usize) -> Result<(u64, ByCrate), String> {
    let bench = std::env::current_exe().map_err(|e| e.to_string())?;
    let file = profile_file(&format!("knocks-{knocks}"));
    let total = callgrind(
        Command::new(&bench).env("BENCH_KNOCKS", knocks.to_string()),
        &file,
    )?;
    let by_crate = profile::instructions_by_crate(&file);
    std::fs::remove_file(&file).ok();
    Ok((total, by_crate?))
}

/// Instructions per knock, and where they go: per-crate instructions per
/// knock, largest first.
pub type PerKnock = Result<(f64, Vec<(String, f64)>), String>;

/// Instructions per knock (one device, the knock handler and its SDK calls),
/// and where they go.
pub fn per_knock() -> PerKnock {
    let (few, few_profile) = collected(FEW)?;
    let (many, many_profile) = collected(MANY)?;
    let extra = (MANY - FEW) as f64;
    Ok((
        (many as f64 - few as f64) / extra,
        profile::difference(&many_profile, &few_profile, extra, 12),
    ))
}
