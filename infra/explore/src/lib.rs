//! The explorer: a seeded simulation of many clients driven through the
//! real handlers of `push-core`, interleaved at every port call, with
//! invariants checked over the whole store and SNS at every quiescent point.
//!
//! - **memory**: the memory ports, on a current-thread runtime with paused
//!   (virtual) time; every port call goes through the scheduler
//!   ([`sched`]), which decides from the seed how the clients interleave.
//!   The same seed replays the same run (its trace hash says so).
//! - **emulator**: the real DynamoDB and SNS adapters against the AWS
//!   emulator (conflict model on, random latency per call), reset first.
//!   Real concurrency: it cannot replay, it prints its trace.
//!
//! A run is a series of epochs: the clients share an epoch's budget of
//! operations, then everything quiesces (the push service's pending events
//! delivered), a deletion cut short is finished by a login, and the
//! invariants ([`check`]) are checked. The first violation ends the run.

pub mod check;
pub mod driver;
pub mod emulator;
pub mod sched;
pub mod trace;
pub mod world;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use push_core::model::{AccountRecord, ApiKeyRecord, Platform};
use push_core::ports::{Clock, CreateAccountError, PortError};
use push_core::testing::{MemoryPush, MemoryStore};
use push_core::{entropy, secrets, Deps, Limit, Settings, SourceLimits};

use crate::check::{check_deleted, check_knocks, check_state, History, Violation};
use crate::driver::{answer, request, AccountK, AppK, Client, Driver, PASSWORD};
use crate::sched::{Knobs, Sched};
use crate::trace::{interleaving, Op, OpKind, Trace, TraceHash};
use crate::world::{AppSetup, Backend, MemoryApp, VirtualClock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Memory,
    Emulator,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Mode::Memory),
            "emulator" => Ok(Mode::Emulator),
            other => Err(format!("MODE must be memory or emulator, not {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Operations in all (client requests and push-service events).
    pub steps: u64,
    pub mode: Mode,
    pub clients: usize,
    /// Operations between two quiescent points.
    pub epoch: u64,
    /// Accounts made directly per app before the run (argon2 is slow).
    pub accounts_per_app: usize,
    pub apns_tokens: usize,
    pub gcm_tokens: usize,
    /// Inject AWS failures (throttling, conflicts, lost answers).
    pub faults: bool,
    /// Where the whole trace of a failing epoch is written.
    pub trace_dir: Option<PathBuf>,
    /// Go on after a violation (to see which invariants break, and how
    /// often): the report counts them by invariant.
    pub keep_going: bool,
}

impl Config {
    pub fn new(seed: u64, steps: u64, mode: Mode) -> Self {
        Config {
            seed,
            steps,
            mode,
            clients: 12,
            epoch: match mode {
                Mode::Memory => 1_000,
                Mode::Emulator => 250,
            },
            accounts_per_app: 8,
            apns_tokens: 10,
            gcm_tokens: 8,
            faults: true,
            trace_dir: None,
            keep_going: false,
        }
    }

    fn knobs(&self, emulator_latency: bool) -> Knobs {
        let (fault_permille, lost_permille) = if self.faults { (4, 2) } else { (0, 0) };
        match self.mode {
            Mode::Memory => Knobs {
                max_yields: 6,
                sleep_permille: 30,
                max_sleep_us: 20_000,
                fault_permille,
                lost_permille,
            },
            // Real concurrency: yields do little; client-side pauses make
            // requests overlap when the emulator cannot add latency itself.
            Mode::Emulator => Knobs {
                max_yields: 1,
                sleep_permille: if emulator_latency { 100 } else { 400 },
                max_sleep_us: if emulator_latency { 5_000 } else { 20_000 },
                fault_permille,
                lost_permille,
            },
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub mode: Mode,
    pub ops: u64,
    pub epochs: u64,
    pub elapsed: Duration,
    /// SHA-256 of the whole trace (UUIDs canonicalised).
    pub hash: String,
    /// How many answers of each status (0: a panic).
    pub statuses: BTreeMap<u16, u64>,
    pub violations: Vec<Violation>,
    /// The epoch a violation was found in, and the operations concerned,
    /// interleaved as they ran.
    pub failing_epoch: Option<u64>,
    pub focused_trace: String,
    pub trace_file: Option<PathBuf>,
    pub notes: Vec<String>,
    /// With `keep_going`: each invariant broken, the epoch it first broke
    /// in, its first detail, and in how many epochs it broke.
    pub broken: BTreeMap<&'static str, (u64, String, u64)>,
}

impl Report {
    pub fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as printed: numbers, then any violation with its trace.
    pub fn render(&self) -> String {
        let mut s = format!(
            "explore: mode {:?} seed {} — {} operations in {} epochs, {:.1} s, {:.0} ops/s; trace hash {}\n  statuses: {:?}\n",
            self.mode,
            self.seed,
            self.ops,
            self.epochs,
            self.elapsed.as_secs_f64(),
            self.ops_per_second(),
            &self.hash[..16],
            self.statuses
        );
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        for (invariant, (epoch, detail, epochs)) in &self.broken {
            s.push_str(&format!(
                "  broken in {epochs} epochs (first in epoch {epoch}): [{invariant}] {detail}\n"
            ));
        }
        if self.violations.is_empty() {
            s.push_str("  no violation\n");
            return s;
        }
        s.push_str(&format!(
            "VIOLATION (seed {}, epoch {}): {} found\n",
            self.seed,
            self.failing_epoch.unwrap_or(0),
            self.violations.len()
        ));
        for v in &self.violations {
            s.push_str(&format!("  [{}] {}\n", v.invariant, v.detail));
        }
        s.push_str("-- the operations concerned, as they interleaved (@seq = global order):\n");
        s.push_str(&self.focused_trace);
        s.push('\n');
        if let Some(f) = &self.trace_file {
            s.push_str(&format!("-- the epoch's whole trace: {}\n", f.display()));
        }
        s
    }
}

/// Creates a set-up account, again while the emulator's faults (if on)
/// refuse it; an attempt applied with its answer lost shows as the username
/// taken by this very account.
async fn create_retrying(
    deps: &Deps,
    account: &AccountRecord,
    key: &ApiKeyRecord,
) -> Result<(), CreateAccountError> {
    let mut tries = 0;
    loop {
        match deps.store.create_account(account, key).await {
            Err(CreateAccountError::Port(PortError::Unavailable(_) | PortError::Conflict(_)))
                if tries < 20 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
            }
            Err(CreateAccountError::UsernameTaken) if tries > 0 => {
                let mut reads = 0;
                let stored = loop {
                    match deps.store.get_account(&account.username).await {
                        Err(PortError::Unavailable(_)) if reads < 20 => {
                            reads += 1;
                            tokio::time::sleep(Duration::from_millis(20 * reads)).await;
                        }
                        other => break other?,
                    }
                };
                return match stored {
                    Some(a) if a.id == account.id => Ok(()),
                    _ => Err(CreateAccountError::UsernameTaken),
                };
            }
            other => return other,
        }
    }
}

/// The settings the clients run under: limits low enough to be met, high
/// enough not to answer most requests `429`.
pub fn explorer_settings() -> Settings {
    let minute = Duration::from_secs(60);
    Settings {
        token_lifetime: Duration::from_secs(120),
        knock_limit: Limit {
            max: 30,
            window: Duration::from_secs(10),
        },
        token_limit: Limit {
            max: 100_000,
            window: minute,
        },
        signup_limit: Limit {
            max: 100_000,
            window: minute,
        },
        signup_source_limits: SourceLimits::all(100_000, minute),
        device_registration_limit: Limit {
            max: 100_000,
            window: minute,
        },
        device_limit: 8,
        live_token_limit: 40,
        api_key_limit: 6,
        ..Settings::default()
    }
}

/// Runs the explorer as configured.
pub fn run(cfg: &Config) -> Result<Report, String> {
    let runtime = match cfg.mode {
        Mode::Memory => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build(),
        Mode::Emulator => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .map_err(|e| format!("runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, run_on_this_thread(cfg));
    entropy::unseed_thread();
    report
}

/// APNs push tokens (64 hex digits), each belonging to one environment;
/// FCM tokens.
fn token_pools(cfg: &Config) -> (Vec<String>, Vec<String>, BTreeMap<String, Platform>) {
    // Distinct from their first characters on, as traces show them.
    let apns: Vec<String> = (0..cfg.apns_tokens)
        .map(|i| secrets::sha256_hex(&format!("apns-{i}")))
        .collect();
    let gcm: Vec<String> = (0..cfg.gcm_tokens)
        .map(|i| format!("fcm{i}:explore-token-APA91b"))
        .collect();
    let env = apns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = if i % 2 == 0 {
                Platform::Apns
            } else {
                Platform::ApnsSandbox
            };
            (t.clone(), p)
        })
        .collect();
    (apns, gcm, env)
}

async fn run_on_this_thread(cfg: &Config) -> Result<Report, String> {
    entropy::seed_thread(cfg.seed);
    let started = Instant::now();
    let settings = explorer_settings();
    let mut notes = Vec::new();
    let (backend, apps, emulator_latency) = match cfg.mode {
        Mode::Memory => {
            let clock: Arc<dyn Clock> = Arc::new(VirtualClock::new(1_767_225_600_000_000));
            let mut backends = Vec::new();
            let mut apps = Vec::new();
            for (name, platforms, both) in [
                (
                    "chatsecure",
                    &[Platform::ApnsSandbox, Platform::Gcm][..],
                    false,
                ),
                (
                    "zom",
                    &[Platform::Apns, Platform::ApnsSandbox, Platform::Gcm][..],
                    true,
                ),
            ] {
                let store = Arc::new(MemoryStore::default());
                let push = Arc::new(MemoryPush::with_platforms(platforms));
                apps.push(AppSetup {
                    name: name.into(),
                    raw: Deps {
                        store: store.clone(),
                        push: push.clone(),
                        clock: clock.clone(),
                        source_keys: store.clone(),
                        settings: settings.clone(),
                    },
                    both_environments: both,
                });
                backends.push(MemoryApp { store, push });
            }
            notes.push(
                "memory: each app is a store and gateway of its own (the memory store has no key namespaces)".into(),
            );
            (Backend::Memory(backends), apps, false)
        }
        Mode::Emulator => {
            let p = emulator::prepare(settings.clone()).await?;
            notes.push(if p.emulator_latency {
                "emulator: its per-call latency switch is on (0+20 ms)".into()
            } else {
                "emulator: no /fidelity/settings switch; latency comes from the scheduler's client-side pauses".into()
            });
            (p.backend, p.apps, p.emulator_latency)
        }
    };
    let (apns_tokens, gcm_tokens, true_env) = token_pools(cfg);
    let sched = Arc::new(Sched::new(
        cfg.seed,
        cfg.knobs(emulator_latency),
        apps.len(),
        true_env,
    ));

    // Accounts made directly (one argon2 hash for all: the password is
    // the same), each with one API key.
    let password_hash = secrets::hash_password(PASSWORD).map_err(|e| format!("argon2: {e}"))?;
    let mut know = Vec::new();
    for setup in &apps {
        let mut k = AppK::default();
        for i in 0..cfg.accounts_per_app {
            let username = format!("u{i}");
            let key = secrets::new_api_key();
            let account = AccountRecord {
                id: entropy::uuid_v4().to_string(),
                username: username.clone(),
                email: String::new(),
                password_hash: password_hash.clone(),
                created_us: setup.raw.clock.now_us(),
                failed_logins: vec![],
                deleting: false,
            };
            let record = ApiKeyRecord {
                key_hash: secrets::sha256_hex(&key),
                account_id: account.id.clone(),
                username: username.clone(),
                email: String::new(),
            };
            create_retrying(&setup.raw, &account, &record)
                .await
                .map_err(|e| format!("creating {username}: {e}"))?;
            k.accounts.push(AccountK {
                username,
                id: Some(account.id),
                keys: vec![key],
                ..AccountK::default()
            });
        }
        // Usernames free at the start: sign-ups.
        for i in 0..cfg.accounts_per_app / 2 {
            k.accounts.push(AccountK {
                username: format!("s{i}"),
                ..AccountK::default()
            });
        }
        know.push(k);
    }

    let clients = (0..cfg.clients)
        .map(|_| {
            let current = Arc::new(AtomicU64::new(0));
            Client {
                deps: driver::client_deps(&sched, &apps, &current),
                current,
            }
        })
        .collect();
    let driver = Rc::new(Driver {
        sched: sched.clone(),
        apps,
        backend,
        clients,
        know: RefCell::new(know),
        apns_tokens,
        gcm_tokens,
        knocks: RefCell::new(BTreeMap::new()),
        budget: Cell::new(0),
        think_us: match cfg.mode {
            Mode::Memory => 20_000,
            Mode::Emulator => 5_000,
        },
        failures: RefCell::new(Vec::new()),
        statuses: RefCell::new(BTreeMap::new()),
        deleted: RefCell::new(Vec::new()),
    });

    let mut history = History::default();
    let mut broken = BTreeMap::new();
    let mut knock_expectations = 0u64;
    let mut first_failure: Option<(u64, Vec<Violation>, String, Option<PathBuf>)> = None;
    let mut hash = TraceHash::default();
    let (mut done, mut epoch) = (0u64, 0u64);
    while done < cfg.steps {
        let n = cfg.epoch.min(cfg.steps - done);
        driver.budget.set(n);
        let tasks: Vec<_> = (0..cfg.clients)
            .map(|c| {
                let d = driver.clone();
                tokio::task::spawn_local(async move { d.client(c).await })
            })
            .collect();
        for t in tasks {
            if let Err(e) = t.await {
                driver
                    .failures
                    .borrow_mut()
                    .push((0, format!("a client task ended: {e}")));
            }
        }
        done += n;
        epoch += 1;

        // Quiescent: every client done, every push-service event handled.
        let mut violations = repair_deletions(&driver, cfg.clients).await?;
        let trace = sched.take_trace();
        history.learn(&trace);
        let new_deleted: Vec<_> = driver.deleted.borrow_mut().drain(..).collect();
        history.deleted.extend(new_deleted.iter().cloned());
        let snap = driver.backend.snapshot(&sched).await?;
        let now = driver.apps[0].raw.clock.now_us();
        violations.extend(check_state(&snap, &history, now));
        for d in &history.deleted {
            violations.extend(check_deleted(&snap, d));
        }
        for d in &new_deleted {
            violations.extend(check_keys_refused(&driver, d).await);
        }
        violations.extend(check_knocks(
            &trace,
            &driver.knocks.borrow(),
            &mut knock_expectations,
        ));
        for (op, what) in driver.failures.borrow_mut().drain(..) {
            violations.push(Violation {
                invariant: "no 500 and no panic",
                detail: format!("op {op}: {what}"),
                focus: vec![format!("op {op} client")],
                app: None,
            });
        }
        driver.knocks.borrow_mut().clear();
        hash.add(&trace);
        if cfg.keep_going {
            let mut seen = BTreeSet::new();
            for v in &violations {
                let entry = broken
                    .entry(v.invariant)
                    .or_insert_with(|| (epoch, v.detail.clone(), 0));
                if seen.insert(v.invariant) {
                    entry.2 += 1;
                }
            }
            if !violations.is_empty() && first_failure.is_none() {
                let focused = focus(&trace, &violations);
                let file = write_trace(cfg, epoch, &trace);
                first_failure = Some((epoch, violations, focused, file));
            }
            continue;
        }
        if !violations.is_empty() {
            let focused = focus(&trace, &violations);
            let trace_file = write_trace(cfg, epoch, &trace);
            notes.push(format!(
                "{knock_expectations} (knock, live endpoint) deliveries checked"
            ));
            return Ok(Report {
                seed: cfg.seed,
                mode: cfg.mode,
                ops: done,
                epochs: epoch,
                elapsed: started.elapsed(),
                hash: hash.hex(),
                statuses: driver.statuses.borrow().clone(),
                violations,
                failing_epoch: Some(epoch),
                focused_trace: focused,
                trace_file,
                notes,
                broken,
            });
        }
    }
    notes.push(format!(
        "{knock_expectations} (knock, live endpoint) deliveries checked"
    ));
    let statuses = driver.statuses.borrow().clone();
    let (failing_epoch, violations, focused_trace, trace_file) = match first_failure {
        Some((epoch, v, focused, file)) => (Some(epoch), v, focused, file),
        None => (None, vec![], String::new(), None),
    };
    Ok(Report {
        seed: cfg.seed,
        mode: cfg.mode,
        ops: done,
        epochs: epoch,
        elapsed: started.elapsed(),
        hash: hash.hex(),
        statuses,
        violations,
        failing_epoch,
        focused_trace,
        trace_file,
        notes,
        broken,
    })
}

/// At a quiescent point no deletion is running: an account still marked
/// deleting is one cut short, which the next login of its username must
/// finish (docs/ARCHITECTURE.md, "Concurrency"). The checker logs in.
async fn repair_deletions(driver: &Driver, checker: usize) -> Result<Vec<Violation>, String> {
    let snap = driver.backend.snapshot(&driver.sched).await?;
    let mut out = Vec::new();
    for (app, a) in snap.apps.iter().enumerate() {
        for acct in a.accounts.iter().filter(|x| x.deleting) {
            let id = driver.sched.begin_op(
                checker,
                app,
                OpKind::Check,
                format!(
                    "checker: POST accounts/ login {} (deletion of {} cut short)",
                    acct.username, acct.id
                ),
            );
            let body = serde_json::json!({"username": acct.username, "password": PASSWORD});
            let req = request("POST", "accounts/", None, Some(&body), checker);
            let deps = &driver.apps[app].raw;
            let (status, body) = answer(push_core::accounts::create_or_login(deps, &req).await);
            driver.sched.end_op(id, status, body.to_string());
            let mut know = driver.know.borrow_mut();
            let k = know[app]
                .accounts
                .iter_mut()
                .find(|k| k.username == acct.username);
            match (status, k) {
                (200 | 201, Some(k)) => {
                    let text = |n: &str| body.get(n).and_then(|v| v.as_str()).map(str::to_string);
                    k.id = text("id");
                    k.keys = text("token").into_iter().collect();
                    k.devices.clear();
                    k.tokens.clear();
                    driver.deleted.borrow_mut().push(check::Deleted {
                        app,
                        id: acct.id.clone(),
                        username: acct.username.clone(),
                        keys: vec![],
                        op: id,
                    });
                }
                (200 | 201, None) => {}
                _ => out.push(Violation {
                    invariant: "a deletion cut short is finished by the next login",
                    detail: format!(
                        "app {app}: account {} ({}) is marked deleting; its login answered {status} {body}",
                        acct.username, acct.id
                    ),
                    focus: vec![acct.id.clone(), acct.username.clone()],
                    app: Some(app),
                }),
            }
        }
    }
    Ok(out)
}

/// A deleted account's API keys answer `401`.
async fn check_keys_refused(driver: &Driver, d: &check::Deleted) -> Vec<Violation> {
    let mut out = Vec::new();
    for key in &d.keys {
        let req = request("GET", "accounts/", Some(key), None, 0);
        let (status, body) =
            answer(push_core::accounts::get_own(&driver.apps[d.app].raw, &req).await);
        if status != 401 {
            out.push(Violation {
                invariant: "a deleted account's API keys answer 401",
                detail: format!(
                    "app {}: account {} ({}) deleted by op {}; its key answers {status} {body}",
                    d.app, d.username, d.id, d.op
                ),
                focus: vec![d.id.clone()],
                app: Some(d.app),
            });
        }
    }
    out
}

/// The operations that mention what the violations concern (at most the
/// last 120), interleaved.
fn focus(trace: &Trace, violations: &[Violation]) -> String {
    let ops: Vec<&Op> = trace
        .ops
        .values()
        .filter(|op| {
            let text = op.render();
            violations.iter().any(|v| {
                v.app.is_none_or(|app| app == op.app)
                    && v.focus.iter().any(|n| {
                        // Calls show push tokens by their first 8 characters.
                        let n = if n.len() >= 40 { &n[..8] } else { n.as_str() };
                        !n.is_empty() && text.contains(n)
                    })
            })
        })
        .collect();
    let skip = ops.len().saturating_sub(120);
    let mut s = String::new();
    if skip > 0 {
        s.push_str(&format!("({skip} earlier operations left out)\n"));
    }
    s.push_str(&interleaving(&ops[skip..]));
    s
}

fn write_trace(cfg: &Config, epoch: u64, trace: &Trace) -> Option<PathBuf> {
    let dir = cfg.trace_dir.clone()?;
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!(
        "explore-{:?}-seed{}-epoch{epoch}.trace",
        cfg.mode, cfg.seed
    ));
    let ops: Vec<&Op> = trace.ops.values().collect();
    std::fs::write(&path, interleaving(&ops)).ok()?;
    Some(path)
}
