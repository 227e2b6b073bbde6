//! The explorer's memory mode at a size CI affords: a few seeds of ~2,000
//! operations each (seconds in a debug build), and replay from the seed.

use explore::{Config, Mode};

fn run(seed: u64, steps: u64) -> explore::Report {
    let mut cfg = Config::new(seed, steps, Mode::Memory);
    cfg.trace_dir = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/explore").into());
    explore::run(&cfg).expect("the explorer runs")
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let first = run(11, 1_500);
    let again = run(11, 1_500);
    assert_eq!(first.hash, again.hash, "the trace hash of seed 11 changed");
    assert_eq!(first.ops, again.ops);
    assert_eq!(first.statuses, again.statuses);
    assert_eq!(first.violations.len(), again.violations.len());
    let other = run(12, 1_500);
    assert_ne!(first.hash, other.hash, "another seed, another run");
}

#[test]
fn every_invariant_holds_under_seeded_interleavings() {
    for seed in 1..=3 {
        let report = run(seed, 2_000);
        println!("{}", report.render());
        assert!(report.violations.is_empty(), "{}", report.render());
    }
}
