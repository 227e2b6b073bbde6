//! `make bench`: measures the release build and prints one table, also
//! written to `docs/BENCHMARKS.md`. Numbers only: nothing here passes or fails.
//! One module per measurement; this file runs them in order.
//!
//! Environment (set by `infra/local/stack.sh bench`): `PUSH_API_URL` (a release
//! router), `AWS_ENDPOINT_URL` (the emulator), `ROUTER_PID`, `RELEASE_DIR`.

mod calls;
mod common;
mod in_process;
mod instructions;
mod latency;
mod memory;
mod profile;
mod report;
mod runtime;
mod stub;

use std::fmt::Write as _;

use common::{env, Client};
use in_process::{
    cpu_per_knock, deletion_at_caps, in_process_deps, in_process_knocks, on_lambda_runtime,
    owner_with_devices, simulated_fan_out, SIMULATED_PUBLISH_MS, SIMULATED_STORE_MS,
};

/// One line on stderr as each section starts; the report goes to stdout.
fn progress(section: &str) {
    eprintln!("make bench: {section} ...");
}

#[tokio::main]
async fn main() {
    // The in-process handlers' metric lines (thousands) stay off the terminal.
    push_core::metrics::silence();
    // `BENCH_KNOCKS=N`: only the in-process knock loop, N times, for a
    // profiler (`perf record`) to watch; needs just the emulator.
    if let Ok(n) = std::env::var("BENCH_KNOCKS") {
        let n: usize = n.parse().expect("BENCH_KNOCKS: a number");
        let ms = on_lambda_runtime(move || async move {
            let deps = in_process_deps().await;
            let token = owner_with_devices(&deps, 1).await;
            cpu_per_knock(&deps, &token, n).await
        });
        println!("{ms:.3} ms CPU per knock");
        return;
    }
    let release = env("RELEASE_DIR");
    // `BENCH_COLD=1`: only the cold-start table (needs no stack).
    if std::env::var("BENCH_COLD").is_ok_and(|v| v == "1") {
        let mut out = String::new();
        progress("cold starts against the floor");
        runtime::cold_starts(&mut out, &release).await;
        progress("where init goes, by wall clock");
        runtime::init_phases(&mut out, &release).await;
        println!("{out}");
        return;
    }
    let router_pid = env("ROUTER_PID");
    let c = Client {
        base: env("PUSH_API_URL"),
        http: reqwest::Client::new(),
    };
    let mut out = String::new();
    let machine = report::machine_description();
    writeln!(out, "# Benchmarks\n\nMeasured by `make bench` on {machine}.\nTimings use the `perf` profile (release code generation without whole-program LTO), x86_64. Local stack: the optimised router in front of the moto emulator on loopback, so latencies include the emulator's own cost (a few ms per AWS call), not AWS's.\n").ok();

    progress("footprint (the arm64 zips of make package)");
    let worst_zip = report::footprint(&mut out);
    progress("cold starts against the floor");
    let cold = runtime::cold_starts(&mut out, &release).await;
    progress("where init goes, by wall clock");
    runtime::init_phases(&mut out, &release).await;
    progress("latency through the local stack");
    let fixture = latency::latency(&mut out, &c).await;
    progress("memory of each function under load");
    let worst_rss = memory::functions(&mut out, &release, &fixture).await;
    progress("AWS calls per operation");
    let knock1 = calls::calls_per_operation(&mut out, &c, &fixture).await;
    calls::calls_of_apps_and_environments(&mut out, &c).await;
    progress("knock fan-out, in-process");

    // Fan-out and handler CPU, in-process (see `in_process_knocks`).
    writeln!(out, "\n## Knock fan-out (in-process, publishes answered after {SIMULATED_PUBLISH_MS} ms, 50 knocks each)\n\nThe knock handler with the real DynamoDB store on a current-thread Tokio runtime, as the Lambda binaries run it.\n\n| devices | p50 | p99 | p50 relative to 1 device |\n| ---: | ---: | ---: | ---: |").ok();
    let in_process = on_lambda_runtime(in_process_knocks);
    out.push_str(&in_process.rows);
    let cap = push_core::Settings::default().device_limit as usize;
    writeln!(out, "\n## Knock fan-out with store and push simulated (in-process, 50 knocks each)\n\nThe same handler with every store call answered after {SIMULATED_STORE_MS} ms and every publish after {SIMULATED_PUBLISH_MS} ms (`push_core::testing`): what grows with the device count is the code's own work, not the emulator's. Publishes go out {} at a time (`PUBLISH_CONCURRENCY`, by default the device cap, {cap}).\n\n| devices | p50 | p99 | p50 relative to 1 device |\n| ---: | ---: | ---: | ---: |", push_core::Settings::default().publish_concurrency).ok();
    let simulated = on_lambda_runtime(simulated_fan_out);
    out.push_str(&simulated.rows);
    let fan_cap = simulated.ratio(cap);
    progress("account deletion at every cap");
    let (deletion_ms, deleted) = on_lambda_runtime(deletion_at_caps);
    writeln!(out, "\n## Account deletion at every cap\n\n{deleted}, deleted by one `DELETE accounts/<name>/` in-process against the emulator (each call slower than DynamoDB's): {deletion_ms:.0} ms, against a budget of 10 s (the functions' timeout) less 2.5 s kept in hand.").ok();
    let fan10 = in_process.fan10;
    let base_p50 = in_process.base_p50;
    let cpu_ms = in_process.cpu_ms;
    progress("CPU, memory and instruction profiles");
    let router_rss = memory::router(&c, &fixture, &router_pid).await;
    writeln!(
        out,
        "\n## CPU and memory\n\n| measure | value |\n| --- | ---: |"
    )
    .ok();
    writeln!(out, "| handler CPU per knock (1 device; parsing, rules, payloads, SDK client; in-process) | {cpu_ms:.3} ms |").ok();
    writeln!(out, "| peak RSS of the router (all four handlers, one process) after 200 concurrent knocks | {router_rss:.1} MB |").ok();
    let instructions = instructions::per_knock();
    match &instructions {
        Ok((n, _)) => writeln!(out, "| instructions per knock (1 device; callgrind, the difference of two in-process runs, so set-up cancels out) | {:.0} k |", n / 1000.0).ok(),
        Err(e) => writeln!(out, "| instructions per knock | not measured: {e} |").ok(),
    };
    let profiles = where_it_goes(&mut out, &release, &instructions).await;
    let knock_instructions = instructions.as_ref().ok().map(|(n, _)| *n);

    report::password_hashing(&mut out);
    report::cost(&mut out, base_p50, &knock1);

    // Targets, judged by the numbers above; a missed one says what stands
    // between it and its target, from the profiles above.
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    writeln!(
        out,
        "\n## Targets\n\n| target | measured | verdict | what stands between (\"Where it goes\" above) |\n| --- | ---: | --- | --- |"
    )
    .ok();
    for (target, measured, met, profile) in [
        (
            "init ≤ 1.5 × the lambda_http floor's (worst HTTP function)".to_string(),
            format!("{:.2}×", cold.init_ratio),
            cold.init_ratio <= 1.5,
            &profiles.init,
        ),
        (
            "first response ≤ 1.5 × the lambda_http floor's (worst HTTP function)".to_string(),
            format!("{:.2}×", cold.first_ratio),
            cold.first_ratio <= 1.5,
            &profiles.init,
        ),
        (
            "feedback's init ≤ 1.5 × the lambda_runtime floor's".to_string(),
            format!("{:.2}×", cold.feedback_init_ratio),
            cold.feedback_init_ratio <= 1.5,
            &profiles.feedback_init,
        ),
        (
            "feedback's first response ≤ 1.5 × the lambda_runtime floor's".to_string(),
            format!("{:.2}×", cold.feedback_ratio),
            cold.feedback_ratio <= 1.5,
            &profiles.feedback_init,
        ),
        (
            format!("{cap} devices (the cap) ≤ 1.2 × one device, store and push simulated"),
            format!("{fan_cap:.2}×"),
            fan_cap <= 1.2,
            &String::new(),
        ),
        (
            "≤ 4 MB zipped (largest function)".to_string(),
            worst_zip.map_or("not measured (run `make package`)".into(), |z| format!("{z:.2} MB")),
            worst_zip.is_some_and(|z| z <= 4.0),
            &profiles.size,
        ),
        (
            "peak RSS ≤ 32 MB under load (worst function)".to_string(),
            format!("{worst_rss:.1} MB"),
            worst_rss <= 32.0,
            &String::new(),
        ),
        (
            "10 devices ≤ 1.5 × one device (through the emulator's store)".to_string(),
            format!("{fan10:.2}×"),
            fan10 <= 1.5,
            &String::new(),
        ),
        (
            "handler CPU ≤ 1 ms per knock".to_string(),
            format!("{cpu_ms:.2} ms"),
            cpu_ms <= 1.0,
            &profiles.knock,
        ),
        (
            format!("instructions per knock ≤ half the first measurement ({BASELINE_KNOCK_INSTRUCTIONS} k → {} k)", BASELINE_KNOCK_INSTRUCTIONS / 2),
            knock_instructions.map_or_else(|| "not measured".into(), |n| format!("{:.0} k", n / 1e3)),
            knock_instructions.is_some_and(|n| n <= BASELINE_KNOCK_INSTRUCTIONS as f64 * 500.0),
            &profiles.knock,
        ),
    ] {
        let between = if met { "" } else { profile.as_str() };
        writeln!(
            out,
            "| {target} | {measured} | {} | {between} |",
            verdict(met)
        )
        .ok();
    }

    println!("{out}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/BENCHMARKS.md");
    std::fs::write(path, out).expect("write docs/BENCHMARKS.md");
    eprintln!("written to docs/BENCHMARKS.md");
}

/// Instructions per knock, in thousands, when first measured (callgrind,
/// this machine, `make bench` of 2026-11-28): the baseline to halve.
const BASELINE_KNOCK_INSTRUCTIONS: u64 = 1214;

/// The profiles' one-line summaries, for the targets' rows.
struct Profiles {
    init: String,
    feedback_init: String,
    size: String,
    knock: String,
}

/// "Where it goes": per-crate profiles of a knock's instructions, of the
/// init beyond the floors' (callgrind), and of the code beyond the floor's
/// (symbol sizes).
async fn where_it_goes(
    out: &mut String,
    release: &str,
    knock: &instructions::PerKnock,
) -> Profiles {
    writeln!(out, "\n## Where it goes (profiles by crate)\n\nSelf cost of each function, summed by the crate it belongs to (the first segment of its demangled name; the C library and the loader by their object). Instructions are callgrind's; bytes are symbol sizes in the x86_64 `perf` binaries (the arm64 release artifacts are smaller but made of the same crates).").ok();
    let sha_ni = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" sha_ni"));
    if sha_ni {
        writeln!(out, "\nCallgrind runs the code on Valgrind's virtual CPU, which has no SHA extensions: `sha2`'s instructions are those of its portable code (SigV4 signing hashes every request), while natively this machine's CPU hashes with SHA-NI, in far fewer.").ok();
    }
    let mut profiles = Profiles {
        init: String::new(),
        feedback_init: String::new(),
        size: String::new(),
        knock: String::new(),
    };
    let table = |out: &mut String, title: &str, unit: &str, scale: f64, rows: &[(String, f64)]| {
        writeln!(
            out,
            "\n{title}\n\n| crate | {unit} | share |\n| --- | ---: | ---: |"
        )
        .ok();
        let total: f64 = rows.iter().map(|(_, v)| v).sum();
        for (name, v) in rows {
            writeln!(
                out,
                "| {name} | {:.1} | {:.0} % |",
                v / scale,
                100.0 * v / total.max(1.0)
            )
            .ok();
        }
        writeln!(out, "| **total** | {:.1} | |", total / scale).ok();
    };
    match knock {
        Ok((_, rows)) => {
            table(out, "**One knock** (1 device, in-process against the emulator): instructions per knock.", "k instructions", 1e3, rows);
            profiles.knock = format!("per knock: {}", profile::summary(rows, "k instr.", 1e3, 4));
        }
        Err(e) => {
            writeln!(out, "\nOne knock: not profiled: {e}").ok();
        }
    }
    for (function, floor, slot) in [
        ("knock", "floor-http", &mut profiles.init),
        ("feedback", "floor-runtime", &mut profiles.feedback_init),
    ] {
        // As the cold-start table starts them.
        let own = runtime::profile_init(&format!("{release}/{function}"), function, &[]).await;
        let base = runtime::profile_init(&format!("{release}/{floor}"), floor, &[]).await;
        match (own, base) {
            (Ok(own), Ok(base)) => {
                let rows = profile::difference(&own, &base, 1.0, 12);
                table(out, &format!("**`{function}`'s init beyond `{floor}`'s** (process start to the first poll for an event): instructions."), "M instructions", 1e6, &rows);
                *slot = format!(
                    "init beyond the floor's: {}",
                    profile::summary(&rows, "M instr.", 1e6, 4)
                );
            }
            (Err(e), _) | (_, Err(e)) => {
                writeln!(out, "\n`{function}`'s init: not profiled: {e}").ok();
            }
        }
    }
    let own = profile::bytes_by_crate(std::path::Path::new(&format!("{release}/register")));
    let base = profile::bytes_by_crate(std::path::Path::new(&format!("{release}/floor-http")));
    match (own, base) {
        (Ok(own), Ok(base)) => {
            let rows = profile::difference(&own, &base, 1.0, 12);
            table(out, "**`register`'s code beyond `floor-http`'s** (the largest function): bytes of symbols.", "KB", 1e3, &rows);
            profiles.size = format!(
                "code beyond the floor's: {}",
                profile::summary(&rows, "KB", 1e3, 4)
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            writeln!(out, "\nCode size: not profiled: {e}").ok();
        }
    }
    profiles
}
