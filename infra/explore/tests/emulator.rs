//! The explorer through the real DynamoDB and SNS adapters, against an
//! emulator with its conflict model and random per-call latency on.
//!
//! Runs on an emulator of its own when `EMULATOR_PYTHON` is set (`make test`
//! sets it; the explorer resets the emulator it uses, which must not be the
//! suite's shared one); else against `AWS_ENDPOINT_URL` if set (that emulator
//! is reset); else it is skipped, and says so.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use explore::{Config, Mode};
use push_core::testing::interleavings::{self, Disable, Rig};

struct Private(Child);

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn private_emulator(python: &str) -> (Private, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../local/emulator.py");
    let child = Command::new(python)
        .args([script, "127.0.0.1", &port.to_string()])
        .env("EMULATOR_CONFLICTS", "1")
        .env("EMULATOR_DYNAMODB_LATENCY_MS", "0+20")
        .env("EMULATOR_SNS_LATENCY_MS", "0+20")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emulator starts");
    let guard = Private(child);
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (guard, url);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the emulator did not start on port {port}");
}

/// The tests of this binary set the process's `AWS_ENDPOINT_URL` to their
/// own emulator: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An emulator of this test's own (or the one `AWS_ENDPOINT_URL` names,
/// which is reset), made the process's AWS endpoint; `None`: skipped, and
/// said so.
fn emulator() -> Option<(Option<Private>, String)> {
    let (guard, url) = match (
        std::env::var("EMULATOR_PYTHON"),
        std::env::var("AWS_ENDPOINT_URL"),
    ) {
        (Ok(python), _) => {
            let (guard, url) = private_emulator(&python);
            (Some(guard), url)
        }
        (Err(_), Ok(url)) => (None, url),
        _ => {
            eprintln!(
                "SKIPPED: the explorer's emulator mode needs EMULATOR_PYTHON (a private emulator) or AWS_ENDPOINT_URL (reset!)"
            );
            return None;
        }
    };
    std::env::set_var("AWS_ENDPOINT_URL", &url);
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        if std::env::var(k).is_err() {
            std::env::set_var(k, v);
        }
    }
    Some((guard, url))
}

/// The targeted interleavings of `push_core::testing::interleavings` (the
/// memory ports pass them in push-core's unit tests) on the real DynamoDB
/// and SNS adapters, for the explorer's app with both APNs environments.
#[test]
fn the_targeted_interleavings_hold_through_the_real_adapters() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((_guard, _)) = emulator() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let failures = runtime.block_on(async {
        let prepared = explore::emulator::prepare(push_core::Settings::default())
            .await
            .expect("the emulator is set up");
        let raw = prepared
            .apps
            .iter()
            .find(|a| a.both_environments)
            .expect("an app with both APNs environments")
            .raw
            .clone();
        let sns = aws_sdk_sns::Client::new(&push_aws::load_sdk_config().await);
        let disable: Disable = std::sync::Arc::new(move |arn: String| {
            let sns = sns.clone();
            Box::pin(async move {
                sns.set_endpoint_attributes()
                    .endpoint_arn(arn)
                    .attributes("Enabled", "false")
                    .send()
                    .await
                    .expect("the endpoint is disabled");
            })
        });
        interleavings::run(|| Rig::around(&raw, disable.clone())).await
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_invariant_holds_through_the_real_adapters() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((_guard, _)) = emulator() else {
        return;
    };
    let steps = std::env::var("EXPLORE_EMULATOR_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut cfg = Config::new(1, steps, Mode::Emulator);
    cfg.trace_dir = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/explore").into());
    let report = explore::run(&cfg).expect("the explorer runs against the emulator");
    println!("{}", report.render());
    assert!(report.violations.is_empty(), "{}", report.render());
}
