//! `explore`: runs the explorer and prints what it found.
//!
//! ```text
//! explore [--seed N] [--steps N] [--mode memory|emulator] [--seeds K]
//!         [--clients N] [--epoch N] [--no-faults] [--keep-going]
//!         [--trace-dir DIR]
//! ```
//! Defaults from `SEED` (1), `STEPS` (10000), `MODE` (memory). `--seeds K`
//! runs seeds N..N+K one after another. The emulator mode needs
//! `AWS_ENDPOINT_URL` (`make explore MODE=emulator` starts an emulator).
//! Exits 1 on the first violation, after printing its seed and trace
//! (`--keep-going`: at the end, with every invariant broken counted).

use explore::{Config, Mode};

fn main() {
    let mut args = std::env::args().skip(1);
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut seed: u64 = env("SEED", "1").parse().expect("SEED: a number");
    let mut steps: u64 = env("STEPS", "10000").parse().expect("STEPS: a number");
    let mut mode: Mode = env("MODE", "memory").parse().expect("MODE");
    let mut seeds: u64 = 1;
    let (mut clients, mut epoch, mut faults, mut keep_going) = (None, None, true, false);
    let mut trace_dir = Some(std::path::PathBuf::from(env(
        "EXPLORE_TRACE_DIR",
        "target/explore",
    )));
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--seed" => seed = value().parse().expect("--seed: a number"),
            "--steps" => steps = value().parse().expect("--steps: a number"),
            "--mode" => mode = value().parse().expect("--mode"),
            "--seeds" => seeds = value().parse().expect("--seeds: a number"),
            "--clients" => clients = Some(value().parse().expect("--clients: a number")),
            "--epoch" => epoch = Some(value().parse().expect("--epoch: a number")),
            "--trace-dir" => trace_dir = Some(value().into()),
            "--no-faults" => faults = false,
            "--keep-going" => keep_going = true,
            other => {
                panic!("unknown argument {other:?} (see the top of infra/explore/src/main.rs)")
            }
        }
    }
    let mut total_ops = 0;
    let mut total_time = 0.0;
    for s in seed..seed + seeds {
        let mut cfg = Config::new(s, steps, mode);
        if let Some(c) = clients {
            cfg.clients = c;
        }
        if let Some(e) = epoch {
            cfg.epoch = e;
        }
        cfg.faults = faults;
        cfg.keep_going = keep_going;
        cfg.trace_dir = trace_dir.clone();
        let report = match explore::run(&cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("explore: seed {s}: could not run: {e}");
                std::process::exit(2);
            }
        };
        print!("{}", report.render());
        total_ops += report.ops;
        total_time += report.elapsed.as_secs_f64();
        if !report.violations.is_empty() {
            println!(
                "replay: make explore SEED={s} STEPS={steps} MODE={}",
                if mode == Mode::Memory {
                    "memory"
                } else {
                    "emulator"
                }
            );
            std::process::exit(1);
        }
    }
    if seeds > 1 {
        println!(
            "explore: {seeds} seeds, {total_ops} operations, {:.0} ops/s, no violation",
            total_ops as f64 / total_time.max(1e-9)
        );
    }
}
