//! The parts of the report that measure no request: artifact sizes,
//! password hashing, the cost per million knocks, the targets, the machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use crate::common::{percentile, FUNCTIONS};

/// The footprint table; returns the largest zipped artifact in MB.
/// The arm64 release zips `make package` made (`sam build`: .aws-sam/build/
/// <Name>Function/bootstrap); the largest, in MB, or `None` when they are
/// not there (no other binary stands in for them).
pub fn footprint(out: &mut String) -> Option<f64> {
    let build = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.aws-sam/build");
    writeln!(out, "## Footprint\n\nThe arm64 `bootstrap` each function deploys, as `make package` (`sam build` → cargo-lambda, `[profile.release]`: opt-level 3, fat LTO, one codegen unit, stripped) built it, and zipped as Lambda stores it.\n\n| function | bootstrap | zipped |\n| --- | ---: | ---: |").ok();
    let mut worst_zip: Option<f64> = None;
    for f in FUNCTIONS {
        let mut name = f.to_string();
        name[..1].make_ascii_uppercase();
        let path = format!("{build}/{name}Function/bootstrap");
        let Ok(meta) = std::fs::metadata(&path) else {
            writeln!(out, "| {f} | not measured (run `make package`) | |").ok();
            continue;
        };
        let zipped = Command::new("python3")
            .args(["-c", "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))", &path])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let mb = zipped as f64 / 1e6;
        worst_zip = Some(worst_zip.map_or(mb, |w| w.max(mb)));
        writeln!(
            out,
            "| {f} | {:.1} MB | {mb:.2} MB |",
            meta.len() as f64 / 1e6,
        )
        .ok();
    }
    worst_zip
}

pub fn password_hashing(out: &mut String) {
    // Password hashing.
    let mut hash_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = push_core::secrets::hash_password("bench-password");
        hash_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let hash = percentile(&mut hash_ms, 0.5);
    writeln!(out, "\n## Password hashing\n\nargon2id, m = 19 MiB, t = 2, p = 1 (OWASP's baseline): **{hash:.1} ms** per hash on one core of this machine (median of 20). Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so a hash costs about {hash:.0} ms × 1769 / memory:\n\n| Lambda memory | est. hash time |\n| ---: | ---: |").ok();
    for mem in [128.0, 256.0, 512.0, 1024.0] {
        writeln!(out, "| {mem:.0} MB | {:.0} ms |", hash * 1769.0 / mem).ok();
    }
}

/// The cost table, from the knock's latency and its counted calls.
pub fn cost(out: &mut String, knock_ms: f64, knock1: &(String, BTreeMap<String, usize>)) {
    let gb_s = 0.25 * (knock_ms.max(1.0) / 1000.0);
    let lambda = 0.20 + gb_s * 1e6 * 0.0000133334;
    let api = 1.00;
    let counted = |name: &str| knock1.1.get(name).copied().unwrap_or(0) as f64;
    // On-demand: a write request unit is $0.625 per million, a read request
    // unit (strongly consistent, < 4 KB) $0.125 per million.
    let dynamo = counted("UpdateItem") * 0.625 + (counted("Query") + counted("GetItem")) * 0.125; // strongly consistent GetItem + Query of < 4 KB: 1 RRU each
    let sns = counted("Publish") * 0.50;
    writeln!(out, "\n## Cost per million knocks (us-east-1 list prices, owner with one device)\n\n| item | basis | USD |\n| --- | --- | ---: |").ok();
    writeln!(
        out,
        "| API Gateway HTTP API | $1.00 per million requests | {api:.2} |"
    )
    .ok();
    writeln!(out, "| Lambda (arm64, 256 MB) | $0.20 per million requests + $0.0000133334 per GB-s × {knock_ms:.1} ms (the in-process knock p50 above, 20 ms publish) | {lambda:.2} |").ok();
    writeln!(out, "| DynamoDB on demand | the counted calls of a knock above: {} UpdateItem × $0.625 (write unit) + {} Query × $0.125 (read unit) per million | {dynamo:.2} |", counted("UpdateItem"), counted("Query")).ok();
    writeln!(out, "| SNS mobile push | {} publish × $0.50 per million (first million a month free) | {sns:.2} |", counted("Publish")).ok();
    writeln!(
        out,
        "| **total** | each further device adds one publish ($0.50 per million) | **{:.2}** |",
        api + lambda + dynamo + sns
    )
    .ok();
    writeln!(out, "\nIdle cost: $0 in requests (on-demand table, Lambda, HTTP API bill per use); storage $0.25 per GB-month plus $0.20 per GB-month for point-in-time recovery — an account with two devices and a pool of tokens is well under 2 KB, so 100,000 accounts cost about $0.10 a month at rest.").ok();
}

pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores of {cpu}, {mem} RAM")
}
