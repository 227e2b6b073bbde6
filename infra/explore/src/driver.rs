//! The simulated clients: each picks a random operation from what it knows
//! (accounts and their keys, devices, whitelist tokens, endpoints), sends it
//! through the real handler of `push-core` with its own scheduled ports, and
//! learns from the answer. Push tokens come from a small pool shared by every
//! account and both apps, so they collide. The push service acts too: it
//! refuses tokens pushed through the wrong APNs environment and kills others
//! (SNS disables the endpoint), and SNS reports endpoints to the feedback
//! function, late and sometimes twice.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use push_core::feedback::EventType;
use push_core::model::{DeviceKind, DeviceRecord, Platform};
use push_core::{ApiError, ApiRequest, ApiResponse, Deps};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::check::Deleted;
use crate::sched::{PushEvent, PushEventKind, Sched, SchedPush, SchedStore, Tap};
use crate::trace::{OpId, OpKind};
use crate::world::{AppSetup, Backend, EndpointState};

/// The password of every account the explorer makes (a login is a real
/// argon2 check); wrong logins send another.
pub const PASSWORD: &str = "explore-password";
const WRONG_PASSWORD: &str = "not-the-password";

/// What the clients know of one account (possibly stale: answers tell).
#[derive(Debug, Clone, Default)]
pub struct AccountK {
    pub username: String,
    /// The account's id, while it exists as far as we know.
    pub id: Option<String>,
    pub keys: Vec<String>,
    /// (kind, id, push token).
    pub devices: Vec<(DeviceKind, String, String)>,
    /// (whitelist token, device id).
    pub tokens: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct AppK {
    pub accounts: Vec<AccountK>,
    /// Whitelist token → its owner's account id.
    pub token_owner: BTreeMap<String, String>,
    /// The latest tokens made (most knocks use one: older ones mostly went
    /// with their device, whose push token moved on).
    pub recent: std::collections::VecDeque<String>,
}

/// A device and its endpoints, as read outside the scheduler.
pub type Observed = Vec<(DeviceRecord, Vec<(String, Option<EndpointState>)>)>;

/// What a knock's owner had just before and just after the knock.
pub struct KnockObs {
    pub owner: String,
    pub before: Observed,
    pub after: Observed,
}

/// One client: its ports (one set per app) and its current operation.
pub struct Client {
    pub current: Arc<AtomicU64>,
    pub deps: Vec<Deps>,
}

/// An HTTP operation, chosen.
enum Http {
    SignUp {
        username: String,
        email: Option<String>,
    },
    Login {
        username: String,
        password: &'static str,
    },
    DeleteAccount {
        username: String,
    },
    GetAccount,
    Register {
        kind: DeviceKind,
        body: Value,
    },
    Update {
        kind: DeviceKind,
        id: String,
        partial: bool,
        body: Value,
    },
    DeleteDevice {
        kind: DeviceKind,
        id: String,
    },
    ListDevices {
        kind: DeviceKind,
    },
    RetrieveDevice {
        kind: DeviceKind,
        id: String,
    },
    CreateToken {
        body: Value,
    },
    RenameToken {
        token: String,
        partial: bool,
        body: Value,
    },
    RevokeToken {
        token: String,
    },
    ListTokens,
    Knock {
        body: Value,
    },
}

struct Planned {
    app: usize,
    account: Option<usize>,
    key: Option<String>,
    kind: OpKind,
    desc: String,
    http: Http,
}

/// The state of one run shared by its clients (one thread: `Rc`).
pub struct Driver {
    pub sched: Arc<Sched>,
    pub apps: Vec<AppSetup>,
    pub backend: Backend,
    pub clients: Vec<Client>,
    pub know: RefCell<Vec<AppK>>,
    pub apns_tokens: Vec<String>,
    pub gcm_tokens: Vec<String>,
    pub knocks: RefCell<BTreeMap<OpId, KnockObs>>,
    /// Operations left in this epoch.
    pub budget: Cell<u64>,
    /// Longest think time between two operations of a client (µs).
    pub think_us: u64,
    /// Failures found while running (500s, panics).
    pub failures: RefCell<Vec<(OpId, String)>>,
    pub statuses: RefCell<BTreeMap<u16, u64>>,
    /// Accounts whose deletion answered `204`, not yet checked.
    pub deleted: RefCell<Vec<Deleted>>,
}

/// A JSON request to `/api/v1/<path>`, as the router builds it.
pub fn request(
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
    client: usize,
) -> ApiRequest {
    let path = format!("/api/v1/{path}");
    ApiRequest {
        method: method.parse().expect("a method"),
        segments: ApiRequest::segments_of(&path).expect("an API path"),
        content_type: body.map(|_| "application/json".into()),
        authorization: key.map(|k| format!("Token {k}")),
        origin: "https://explore.invalid".into(),
        body: Bytes::from(body.map(Value::to_string).unwrap_or_default()),
        source_ip: Some(format!("192.0.2.{}", client % 250 + 1)),
        path,
        ..ApiRequest::default()
    }
}

/// The status and body a client would see.
pub fn answer(result: Result<ApiResponse, ApiError>) -> (u16, Value) {
    let response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    (
        response.status.as_u16(),
        response.body.unwrap_or(Value::Null),
    )
}

/// The ports of client `c` on every app, under the scheduler.
pub fn client_deps(sched: &Arc<Sched>, apps: &[AppSetup], current: &Arc<AtomicU64>) -> Vec<Deps> {
    apps.iter()
        .enumerate()
        .map(|(app, setup)| {
            let tap = Tap {
                sched: sched.clone(),
                current: current.clone(),
                app,
            };
            Deps {
                store: Arc::new(SchedStore {
                    inner: setup.raw.store.clone(),
                    tap: tap.clone(),
                }),
                push: Arc::new(SchedPush {
                    inner: setup.raw.push.clone(),
                    tap,
                }),
                clock: setup.raw.clock.clone(),
                source_keys: setup.raw.source_keys.clone(),
                settings: setup.raw.settings.clone(),
            }
        })
        .collect()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        Some(&items[rng.gen_range(0..items.len())])
    }
}

fn short(s: &str) -> &str {
    s.get(..8).unwrap_or(s)
}

/// The cleaned form of a push token as a client may send it.
fn cleaned(kind: DeviceKind, token: &str) -> String {
    push_core::devices::clean_registration_id(kind, token).unwrap_or_else(|_| token.to_string())
}

impl Driver {
    fn rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        self.sched.with_rng(f)
    }

    /// One client's share of an epoch: operations until the budget is
    /// spent, then whatever the push service still has to do.
    pub async fn client(&self, c: usize) {
        loop {
            let left = self.budget.get();
            if left == 0 {
                break;
            }
            self.budget.set(left - 1);
            let think = self.rng(|r| r.gen_range(0..=self.think_us));
            tokio::time::sleep(Duration::from_micros(think)).await;
            let event = self
                .rng(|r| r.gen_bool(0.5))
                .then(|| self.next_event())
                .flatten();
            match event {
                Some(e) => self.push_event(c, e).await,
                None => self.step(c).await,
            }
        }
        while let Some(e) = self.next_event() {
            self.push_event(c, e).await;
        }
    }

    fn next_event(&self) -> Option<PushEvent> {
        self.sched.state().events.pop_front()
    }

    fn tally(&self, status: u16) {
        *self.statuses.borrow_mut().entry(status).or_default() += 1;
    }

    /// Runs what the push service does: a refusal (SNS disables the
    /// endpoint and queues its report) or a report for the feedback function.
    async fn push_event(&self, c: usize, e: PushEvent) {
        match e.what {
            PushEventKind::Reject => self.kill(c, e.app, e.arn, e.token).await,
            PushEventKind::Feedback(event) => self.feedback(c, e, event).await,
        }
    }

    async fn kill(&self, c: usize, app: usize, arn: String, token: String) {
        let id = self.sched.begin_op(
            c,
            app,
            OpKind::Kill { arn: arn.clone() },
            format!("push service kills {} on {arn}", short(&token)),
        );
        let result = self.backend.disable(app, &arn, &token).await;
        let (status, body) = match &result {
            Ok(true) => (200, "disabled".to_string()),
            Ok(false) => (204, "endpoint gone or moved to another token".to_string()),
            Err(e) => (503, e.clone()),
        };
        self.sched.end_op(id, status, body);
        if result == Ok(true) {
            let event = if self.rng(|r| r.gen_bool(0.7)) {
                EventType::DeliveryFailure
            } else {
                EventType::EndpointUpdated
            };
            self.sched.state().events.push_back(PushEvent {
                app,
                arn,
                token,
                what: PushEventKind::Feedback(event),
                attempts: 0,
            });
        }
    }

    async fn feedback(&self, c: usize, mut e: PushEvent, event: EventType) {
        let message = match event {
            EventType::DeliveryFailure => json!({"DeliveryAttempts": 1, "EndpointArn": e.arn,
                "EventType": "DeliveryFailure", "FailureMessage": "Endpoint is disabled",
                "FailureType": "InvalidPlatformToken", "Service": "SNS"}),
            EventType::EndpointUpdated => {
                json!({"EndpointArn": e.arn, "EventType": "EndpointUpdated",
                "Enabled": "false", "Service": "SNS"})
            }
            other => json!({"EndpointArn": e.arn, "EventType": other.as_str(), "Service": "SNS"}),
        }
        .to_string();
        let id = self.sched.begin_op(
            c,
            e.app,
            OpKind::Feedback { arn: e.arn.clone() },
            format!("feedback {} {}", event.as_str(), e.arn),
        );
        self.clients[c].current.store(id, Ordering::SeqCst);
        // The feedback function finds devices by endpoint whatever their
        // app: against the emulator it runs with the default app's ports
        // (as deployed); in memory each app is a world of its own.
        let deps = match self.backend {
            Backend::Memory(_) => &self.clients[c].deps[e.app],
            Backend::Emulator(_) => &self.clients[c].deps[0],
        };
        let run = std::panic::AssertUnwindSafe(push_core::feedback::handle_messages(
            deps,
            &[message.as_str()],
        ))
        .catch_unwind()
        .await;
        let (status, body) = match run {
            Ok(Ok(outcomes)) => (200, format!("{outcomes:?}")),
            Ok(Err(err)) => (503, format!("Err({err})")),
            Err(panic) => (0, format!("PANIC {}", panic_text(&panic))),
        };
        self.sched.end_op(id, status, body.clone());
        self.tally(status);
        if status == 0 {
            self.failures.borrow_mut().push((id, body));
        } else if status == 503 && e.attempts < 3 {
            // Lambda retries a failed asynchronous invocation.
            e.attempts += 1;
            self.sched.state().events.push_back(e);
        }
    }

    /// Chooses one operation from what is known and runs it.
    async fn step(&self, c: usize) {
        let mut roll = self.rng(|r| r.gen_range(0..1000u32));
        if roll < 30 {
            if let Some((app, arn, token)) = self.pick_endpoint() {
                return self.kill(c, app, arn, token).await;
            }
        } else if roll < 60 {
            if let Some((app, arn, token)) = self.pick_endpoint() {
                let event = self.rng(|r| match r.gen_range(0..3) {
                    0 => EventType::DeliveryFailure,
                    1 => EventType::EndpointUpdated,
                    _ => EventType::EndpointDeleted,
                });
                let e = PushEvent {
                    app,
                    arn,
                    token,
                    what: PushEventKind::Feedback(event),
                    attempts: 0,
                };
                return self.feedback(c, e, event).await;
            }
        }
        if roll < 60 {
            // No endpoint yet: something else.
            roll = 90 + roll * 10;
        }
        let Some(plan) = self.plan(roll) else {
            return;
        };
        self.http(c, plan).await;
    }

    /// An endpoint some call handed out (it may be gone by now).
    fn pick_endpoint(&self) -> Option<(usize, String, String)> {
        let s = &mut *self.sched.state();
        let app = s.rng.gen_range(0..s.endpoints.len());
        let all: Vec<(&String, &String)> = s.endpoints[app].iter().collect();
        if all.is_empty() {
            return None;
        }
        let (arn, token) = all[s.rng.gen_range(0..all.len())];
        Some((app, arn.clone(), token.clone()))
    }

    fn plan(&self, roll: u32) -> Option<Planned> {
        let apps = self.apps.len();
        let know = self.know.borrow();
        let s = &mut *self.sched.state();
        let rng = &mut s.rng;
        let app = rng.gen_range(0..apps);
        let k = &know[app];
        let live: Vec<usize> = (0..k.accounts.len())
            .filter(|i| k.accounts[*i].id.is_some() && !k.accounts[*i].keys.is_empty())
            .collect();
        let gone: Vec<usize> = (0..k.accounts.len())
            .filter(|i| k.accounts[*i].id.is_none())
            .collect();
        let planned = |account: usize, key: Option<String>, kind: OpKind, desc: String, http| {
            Some(Planned {
                app,
                account: Some(account),
                key,
                kind,
                desc,
                http,
            })
        };
        // Accounts: sign-ups (mostly of a username whose account was
        // deleted), logins, deletions. argon2 makes these slow: few.
        if roll < 90 {
            let r = roll - 60;
            if r < 8 {
                let a = *pick(rng, &gone).or_else(|| pick(rng, &live))?;
                let username = k.accounts[a].username.clone();
                let email = rng
                    .gen_bool(0.2)
                    .then(|| format!("{}@example.com", rng.gen_range(0..6)));
                return planned(
                    a,
                    None,
                    OpKind::SignUp {
                        username: username.clone(),
                    },
                    format!("POST accounts/ sign-up {username} email={email:?}"),
                    Http::SignUp { username, email },
                );
            }
            let a = *pick(rng, &live)?;
            let acct = &k.accounts[a];
            let key = pick(rng, &acct.keys).cloned();
            let username = acct.username.clone();
            return match r {
                8..=17 => {
                    let password = if rng.gen_bool(0.2) {
                        WRONG_PASSWORD
                    } else {
                        PASSWORD
                    };
                    planned(
                        a,
                        None,
                        OpKind::Login {
                            username: username.clone(),
                        },
                        format!(
                            "POST accounts/ login {username} right={}",
                            password == PASSWORD
                        ),
                        Http::Login { username, password },
                    )
                }
                18..=25 => planned(
                    a,
                    key,
                    OpKind::DeleteAccount {
                        username: username.clone(),
                        account_id: acct.id.clone().unwrap_or_default(),
                    },
                    format!("DELETE accounts/{username}/"),
                    Http::DeleteAccount { username },
                ),
                _ => planned(
                    a,
                    key,
                    OpKind::GetAccount,
                    "GET accounts/".into(),
                    Http::GetAccount,
                ),
            };
        }
        let a = *pick(rng, &live)?;
        let acct = &k.accounts[a];
        let key = pick(rng, &acct.keys).cloned();
        let kind = if rng.gen_bool(0.6) {
            DeviceKind::Apns
        } else {
            DeviceKind::Gcm
        };
        let pool = match kind {
            DeviceKind::Apns => &self.apns_tokens,
            DeviceKind::Gcm => &self.gcm_tokens,
        };
        let token = pick(rng, pool)?.clone();
        let sent_token = if kind == DeviceKind::Apns && rng.gen_bool(0.05) {
            // Older apps: `<abcd ef01 ...>`, upper case.
            format!("<{} {}>", &token[..8].to_uppercase(), &token[8..])
        } else {
            token.clone()
        };
        let own: Vec<&(DeviceKind, String, String)> =
            acct.devices.iter().filter(|d| d.0 == kind).collect();
        let device = pick(rng, &own).map(|d| (*d).clone());
        let name = |rng: &mut StdRng| -> Value {
            match rng.gen_range(0..3) {
                0 => Value::Null,
                n => json!(format!("phone-{n}")),
            }
        };
        let path_kind = kind.as_str();
        let r = roll - 90;
        match r {
            // POST device/<kind>/
            0..=259 => {
                let mut body = json!({ "registration_id": sent_token, "name": name(rng) });
                if rng.gen_bool(0.2) {
                    body["device_id"] = json!(format!("hw-{}", rng.gen_range(0..4)));
                }
                if kind == DeviceKind::Apns
                    && self.apps[app].both_environments
                    && rng.gen_bool(0.08)
                {
                    let env = match (s.true_env.get(&token), rng.gen_bool(0.8)) {
                        (Some(Platform::ApnsSandbox), true) | (Some(Platform::Apns), false) => {
                            "sandbox"
                        }
                        _ => "production",
                    };
                    body["environment"] = json!(env);
                }
                let registration_id = cleaned(kind, &sent_token);
                planned(
                    a,
                    key,
                    OpKind::Register { registration_id },
                    format!("POST device/{path_kind}/ {body}"),
                    Http::Register { kind, body },
                )
            }
            // PUT device/<kind>/<id>/
            260..=319 => {
                let (_, id, old) = device?;
                let registration_id = if rng.gen_bool(0.5) { token } else { old };
                let mut body = json!({ "registration_id": registration_id, "name": name(rng) });
                if rng.gen_bool(0.1) {
                    body["active"] = json!(false);
                }
                let activates = body.get("active").is_none();
                planned(
                    a,
                    key,
                    OpKind::Update {
                        id: id.clone(),
                        registration_id: Some(registration_id.clone()),
                        activates,
                    },
                    format!("PUT device/{path_kind}/{id}/ {body}"),
                    Http::Update {
                        kind,
                        id,
                        partial: false,
                        body,
                    },
                )
            }
            // PATCH device/<kind>/<id>/
            320..=419 => {
                let (_, id, _) = device?;
                let (body, registration_id, activates) = match rng.gen_range(0..10) {
                    0..=3 => (json!({ "name": name(rng) }), None, false),
                    4..=6 => (
                        json!({ "registration_id": token }),
                        Some(token.clone()),
                        false,
                    ),
                    7 => (json!({ "active": false }), None, false),
                    _ => (json!({ "active": true }), None, true),
                };
                planned(
                    a,
                    key,
                    OpKind::Update {
                        id: id.clone(),
                        registration_id,
                        activates,
                    },
                    format!("PATCH device/{path_kind}/{id}/ {body}"),
                    Http::Update {
                        kind,
                        id,
                        partial: true,
                        body,
                    },
                )
            }
            // DELETE device/<kind>/<id>/
            420..=479 => {
                let (_, id, _) = device?;
                planned(
                    a,
                    key,
                    OpKind::DeleteDevice { id: id.clone() },
                    format!("DELETE device/{path_kind}/{id}/"),
                    Http::DeleteDevice { kind, id },
                )
            }
            480..=504 => planned(
                a,
                key,
                OpKind::ListDevices,
                format!("GET device/{path_kind}/"),
                Http::ListDevices { kind },
            ),
            505..=524 => {
                let (_, id, _) = device?;
                planned(
                    a,
                    key,
                    OpKind::RetrieveDevice,
                    format!("GET device/{path_kind}/{id}/"),
                    Http::RetrieveDevice { kind, id },
                )
            }
            // POST tokens/
            525..=644 => {
                let (kind, id, registration_id) = device?;
                let field = kind.token_field();
                let named = if rng.gen_bool(0.1) {
                    registration_id
                } else {
                    id
                };
                let body = json!({ field: named, "name": name(rng) });
                planned(
                    a,
                    key,
                    OpKind::CreateToken,
                    format!("POST tokens/ {body}"),
                    Http::CreateToken { body },
                )
            }
            645..=669 => {
                let (token, _) = pick(rng, &acct.tokens)?.clone();
                let partial = rng.gen_bool(0.5);
                let body = if rng.gen_bool(0.2) {
                    json!({})
                } else {
                    json!({ "name": name(rng) })
                };
                planned(
                    a,
                    key,
                    OpKind::RenameToken,
                    format!(
                        "{} tokens/{}/ {body}",
                        if partial { "PATCH" } else { "PUT" },
                        short(&token)
                    ),
                    Http::RenameToken {
                        token,
                        partial,
                        body,
                    },
                )
            }
            670..=704 => {
                let (token, _) = pick(rng, &acct.tokens)?.clone();
                planned(
                    a,
                    key,
                    OpKind::RevokeToken,
                    format!("DELETE tokens/{}/", short(&token)),
                    Http::RevokeToken { token },
                )
            }
            705..=719 => planned(
                a,
                key,
                OpKind::ListTokens,
                "GET tokens/".into(),
                Http::ListTokens,
            ),
            // POST messages/: any token of any account of the app, now and
            // then a made-up one.
            _ => {
                let all: Vec<&String> = if rng.gen_bool(0.8) && !k.recent.is_empty() {
                    k.recent.iter().collect()
                } else {
                    k.token_owner.keys().collect()
                };
                let (token, owner) = match pick(rng, &all) {
                    Some(t) if rng.gen_bool(0.97) => ((*t).clone(), k.token_owner.get(*t).cloned()),
                    _ => (format!("{:040x}", rng.gen::<u128>()), None),
                };
                let mut body = json!({ "token": token });
                match rng.gen_range(0..4) {
                    0 => body["data"] = json!("hello"),
                    1 => body["priority"] = json!("low"),
                    _ => {}
                }
                Some(Planned {
                    app,
                    account: None,
                    key: None,
                    kind: OpKind::Knock { owner },
                    desc: format!("POST messages/ {}", short(&token)),
                    http: Http::Knock { body },
                })
            }
        }
    }

    /// Devices of `owner` and their endpoints, read outside the scheduler.
    async fn observe(&self, app: usize, owner: &str) -> Observed {
        let devices = self.apps[app]
            .raw
            .store
            .list_devices(owner)
            .await
            .unwrap_or_default();
        let mut out = Vec::new();
        for d in devices {
            let mut eps = Vec::new();
            for arn in d.endpoints() {
                let state = self.backend.endpoint(app, arn).await.unwrap_or(None);
                eps.push((arn.to_string(), state));
            }
            out.push((d, eps));
        }
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        out
    }

    async fn http(&self, c: usize, p: Planned) {
        let knock_owner = match &p.kind {
            OpKind::Knock { owner } => owner.clone(),
            _ => None,
        };
        let id = self
            .sched
            .begin_op(c, p.app, p.kind.clone(), p.desc.clone());
        let before = match &knock_owner {
            Some(owner) => Some(self.observe(p.app, owner).await),
            None => None,
        };
        self.clients[c].current.store(id, Ordering::SeqCst);
        let deps = &self.clients[c].deps[p.app];
        let key = p.key.as_deref();
        let run = std::panic::AssertUnwindSafe(self.send(deps, key, &p.http, c))
            .catch_unwind()
            .await;
        let (status, body) = match run {
            Ok(answer) => answer,
            Err(panic) => (0, json!(format!("PANIC {}", panic_text(&panic)))),
        };
        if let (Some(owner), Some(before)) = (knock_owner, before) {
            let after = self.observe(p.app, &owner).await;
            self.knocks.borrow_mut().insert(
                id,
                KnockObs {
                    owner,
                    before,
                    after,
                },
            );
        }
        self.sched.end_op(id, status, body.to_string());
        self.tally(status);
        if status == 0 || status == 500 {
            self.failures
                .borrow_mut()
                .push((id, format!("{status} {body}")));
        }
        self.learn(id, &p, status, &body);
    }

    async fn send(&self, deps: &Deps, key: Option<&str>, http: &Http, c: usize) -> (u16, Value) {
        use push_core::{accounts, devices, knock, tokens};
        match http {
            Http::SignUp { username, email } => {
                let mut body = json!({ "username": username, "password": PASSWORD });
                if let Some(e) = email {
                    body["email"] = json!(e);
                }
                let req = request("POST", "accounts/", None, Some(&body), c);
                answer(accounts::create_or_login(deps, &req).await)
            }
            Http::Login { username, password } => {
                let body = json!({ "username": username, "password": password });
                let req = request("POST", "accounts/", key, Some(&body), c);
                answer(accounts::create_or_login(deps, &req).await)
            }
            Http::DeleteAccount { username } => {
                let req = request("DELETE", &format!("accounts/{username}/"), key, None, c);
                answer(accounts::delete_named(deps, &req, username).await)
            }
            Http::GetAccount => {
                let req = request("GET", "accounts/", key, None, c);
                answer(accounts::get_own(deps, &req).await)
            }
            Http::Register { kind, body } => {
                let req = request(
                    "POST",
                    &format!("device/{}/", kind.as_str()),
                    key,
                    Some(body),
                    c,
                );
                answer(devices::register(deps, &req, *kind).await)
            }
            Http::Update {
                kind,
                id,
                partial,
                body,
            } => {
                let method = if *partial { "PATCH" } else { "PUT" };
                let path = format!("device/{}/{id}/", kind.as_str());
                let req = request(method, &path, key, Some(body), c);
                answer(devices::update(deps, &req, *kind, id, *partial).await)
            }
            Http::DeleteDevice { kind, id } => {
                let req = request(
                    "DELETE",
                    &format!("device/{}/{id}/", kind.as_str()),
                    key,
                    None,
                    c,
                );
                answer(devices::delete(deps, &req, *kind, id).await)
            }
            Http::ListDevices { kind } => {
                let req = request("GET", &format!("device/{}/", kind.as_str()), key, None, c);
                answer(devices::list(deps, &req, *kind).await)
            }
            Http::RetrieveDevice { kind, id } => {
                let req = request(
                    "GET",
                    &format!("device/{}/{id}/", kind.as_str()),
                    key,
                    None,
                    c,
                );
                answer(devices::retrieve(deps, &req, *kind, id).await)
            }
            Http::CreateToken { body } => {
                let req = request("POST", "tokens/", key, Some(body), c);
                answer(tokens::create(deps, &req).await)
            }
            Http::RenameToken {
                token,
                partial,
                body,
            } => {
                let method = if *partial { "PATCH" } else { "PUT" };
                let req = request(method, &format!("tokens/{token}/"), key, Some(body), c);
                answer(tokens::rename(deps, &req, token, *partial).await)
            }
            Http::RevokeToken { token } => {
                let req = request("DELETE", &format!("tokens/{token}/"), key, None, c);
                answer(tokens::revoke(deps, &req, token).await)
            }
            Http::ListTokens => {
                let req = request("GET", "tokens/", key, None, c);
                answer(tokens::list(deps, &req).await)
            }
            Http::Knock { body } => {
                let req = request("POST", "messages/", None, Some(body), c);
                answer(knock::knock(deps, &req).await)
            }
        }
    }

    /// Updates what the clients know from an answer.
    fn learn(&self, op: OpId, p: &Planned, status: u16, body: &Value) {
        let Some(a) = p.account else {
            return;
        };
        let mut know = self.know.borrow_mut();
        let k = &mut know[p.app];
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        match (&p.http, status) {
            (Http::SignUp { .. } | Http::Login { .. }, 200 | 201) => {
                let (Some(id), Some(key)) = (text("id"), text("token")) else {
                    return;
                };
                let acct = &mut k.accounts[a];
                if acct.id.as_deref() != Some(id.as_str()) {
                    acct.id = Some(id);
                    acct.keys.clear();
                    acct.devices.clear();
                    acct.tokens.clear();
                }
                acct.keys.push(key);
            }
            (Http::DeleteAccount { .. }, 204) => {
                let deleted = match &p.kind {
                    OpKind::DeleteAccount { account_id, .. } => account_id.clone(),
                    _ => return,
                };
                let acct = &mut k.accounts[a];
                let keys = if acct.id.as_deref() == Some(deleted.as_str()) {
                    acct.keys.clone()
                } else {
                    p.key.iter().cloned().collect()
                };
                self.deleted.borrow_mut().push(Deleted {
                    app: p.app,
                    id: deleted.clone(),
                    username: acct.username.clone(),
                    keys,
                    op,
                });
                if acct.id.as_deref() == Some(deleted.as_str()) {
                    acct.id = None;
                    acct.keys.clear();
                    acct.devices.clear();
                    acct.tokens.clear();
                }
            }
            (Http::Register { kind, .. }, 200 | 201) | (Http::Update { kind, .. }, 200) => {
                let (Some(id), Some(reg)) = (text("id"), text("registration_id")) else {
                    return;
                };
                let acct = &mut k.accounts[a];
                acct.devices.retain(|d| d.1 != id);
                acct.devices.push((*kind, id, reg));
            }
            (Http::DeleteDevice { id, .. }, 204 | 404)
            | (Http::Update { id, .. } | Http::RetrieveDevice { id, .. }, 404) => {
                let acct = &mut k.accounts[a];
                acct.devices.retain(|d| d.1 != *id);
                acct.tokens.retain(|t| t.1 != *id);
            }
            (Http::CreateToken { .. }, 201) => {
                let Some(token) = text("token") else {
                    return;
                };
                let device = text("apns_device").or_else(|| text("gcm_device"));
                let acct = &mut k.accounts[a];
                acct.tokens
                    .push((token.clone(), device.unwrap_or_default()));
                if let Some(owner) = acct.id.clone() {
                    k.token_owner.insert(token.clone(), owner);
                    k.recent.push_back(token);
                    if k.recent.len() > 8 {
                        k.recent.pop_front();
                    }
                }
            }
            (Http::RevokeToken { token }, 204 | 404) => {
                k.accounts[a].tokens.retain(|t| t.0 != *token);
                k.token_owner.remove(token);
                k.recent.retain(|t| t != token);
            }
            (_, 401) => {
                // A key of a deleted account: forget it.
                if let Some(key) = &p.key {
                    k.accounts[a].keys.retain(|x| x != key);
                }
            }
            _ => {}
        }
    }
}

pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
