//! The scheduler: one seeded generator for the whole run, and wrappers of the
//! `Store` and `PushGateway` ports that every client's calls go through.
//! Before and after delegating, a wrapper lets the other clients run (a
//! random number of `yield_now`s, now and then a pause of virtual time), so
//! clients interleave at every port call; the same seed gives the same
//! interleaving. It may also answer a call with a failure AWS can give
//! (before the call, or after it took effect: a lost answer), and it
//! records every call, at the moment it took effect, in the trace.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use push_core::feedback::EventType;
use push_core::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, Platform, PushFailure, PushTokenClaim,
    TokenRecord,
};
use push_core::ports::{
    AccountStore, Admission, ClaimChange, CreateAccountError, DeviceRemoval, DeviceStore,
    DeviceWrite, KnockAdmission, LimitKey, LimitStore, PortError, PublishError, Push, PushGateway,
    Store, TokenStore, WriteConflict,
};
use push_core::time::Micros;
use push_core::Limit;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::trace::{Call, CallDetail, Injected, Op, OpId, OpKind, Trace};

/// How hard the scheduler shakes the run.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// At most this many `yield_now`s before and after each call.
    pub max_yields: u32,
    /// Per mille of pauses that also sleep, up to `max_sleep_us` (virtual
    /// time in memory mode; real time against the emulator).
    pub sleep_permille: u32,
    pub max_sleep_us: u64,
    /// Per mille of calls failed before they run (throttling; for writes
    /// also transaction conflicts).
    pub fault_permille: u32,
    /// Per mille of calls whose answer is lost after they took effect.
    pub lost_permille: u32,
}

/// Something the push service does on its own, later: reject a push token
/// (SNS then disables its endpoint), or report an endpoint to the feedback
/// function.
#[derive(Debug, Clone)]
pub struct PushEvent {
    pub app: usize,
    pub arn: String,
    pub token: String,
    pub what: PushEventKind,
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PushEventKind {
    /// The push service refused the token: SNS disables the endpoint, then
    /// reports it (`DeliveryFailure`).
    Reject,
    Feedback(EventType),
}

pub struct State {
    pub rng: StdRng,
    pub seq: u64,
    next_op: OpId,
    in_flight: BTreeMap<OpId, Op>,
    pub trace: Trace,
    /// What the push service will do, oldest first.
    pub events: VecDeque<PushEvent>,
    /// Every endpoint an `ensure_endpoint` returned, by app: the token it
    /// was last set to.
    pub endpoints: Vec<BTreeMap<String, String>>,
    /// Endpoints deleted through the gateway, by app.
    pub deleted: Vec<BTreeSet<String>>,
    /// The APNs environment each APNs push token really belongs to.
    pub true_env: BTreeMap<String, Platform>,
}

pub struct Sched {
    state: Mutex<State>,
    pub knobs: Knobs,
}

impl Sched {
    pub fn new(seed: u64, knobs: Knobs, apps: usize, true_env: BTreeMap<String, Platform>) -> Self {
        Sched {
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed ^ 0x5eed_5eed),
                seq: 0,
                next_op: 0,
                in_flight: BTreeMap::new(),
                trace: Trace::default(),
                events: VecDeque::new(),
                endpoints: vec![BTreeMap::new(); apps],
                deleted: vec![BTreeSet::new(); apps],
                true_env,
            }),
            knobs,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        f(&mut self.state().rng)
    }

    /// Lets the other clients run: a random number of yields, sometimes a
    /// pause.
    pub async fn interleave(&self) {
        let (yields, sleep_us) = {
            let mut s = self.state();
            let yields = if self.knobs.max_yields == 0 || s.rng.gen_bool(0.4) {
                0
            } else {
                s.rng.gen_range(1..=self.knobs.max_yields)
            };
            let sleep =
                self.knobs.max_sleep_us > 0 && s.rng.gen_range(0..1000) < self.knobs.sleep_permille;
            let sleep_us = if sleep {
                s.rng.gen_range(1..=self.knobs.max_sleep_us)
            } else {
                0
            };
            (yields, sleep_us)
        };
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        if sleep_us > 0 {
            tokio::time::sleep(Duration::from_micros(sleep_us)).await;
        }
    }

    fn draw_fault(&self, write: bool) -> Option<Injected> {
        let mut s = self.state();
        if s.rng.gen_range(0..1000) < self.knobs.fault_permille {
            if write && s.rng.gen_bool(0.4) {
                Some(Injected::Conflict)
            } else {
                Some(Injected::Unavailable)
            }
        } else {
            None
        }
    }

    fn draw_lost(&self) -> bool {
        let mut s = self.state();
        s.rng.gen_range(0..1000) < self.knobs.lost_permille
    }

    pub fn begin_op(&self, client: usize, app: usize, kind: OpKind, desc: String) -> OpId {
        let mut s = self.state();
        s.seq += 1;
        s.next_op += 1;
        let id = s.next_op;
        let start = s.seq;
        s.in_flight.insert(
            id,
            Op {
                id,
                client,
                app,
                kind,
                desc,
                start,
                end: 0,
                status: 0,
                body: String::new(),
                calls: Vec::new(),
            },
        );
        id
    }

    pub fn end_op(&self, id: OpId, status: u16, body: String) {
        let mut s = self.state();
        s.seq += 1;
        let end = s.seq;
        if let Some(mut op) = s.in_flight.remove(&id) {
            op.end = end;
            op.status = status;
            op.body = body;
            s.trace.ops.insert(id, op);
        }
    }

    /// Records a call at this moment; returns its sequence number.
    pub fn record(&self, op: OpId, mut call: Call) -> u64 {
        let mut s = self.state();
        s.seq += 1;
        call.seq = s.seq;
        let seq = s.seq;
        if let Some(op) = s.in_flight.get_mut(&op) {
            op.calls.push(call);
        }
        seq
    }

    /// The epoch's trace, leaving an empty one.
    pub fn take_trace(&self) -> Trace {
        std::mem::take(&mut self.state().trace)
    }

    pub fn ops_in_flight(&self) -> usize {
        self.state().in_flight.len()
    }
}

/// Where a wrapper's calls are recorded: the run's scheduler, the client's
/// current operation, the app.
#[derive(Clone)]
pub struct Tap {
    pub sched: Arc<Sched>,
    pub current: Arc<AtomicU64>,
    pub app: usize,
}

impl Tap {
    /// Runs one port call under the scheduler: interleave, maybe fail
    /// instead, call, record, maybe lose the answer, interleave.
    async fn call<T, F>(
        &self,
        name: &'static str,
        args: String,
        write: bool,
        fut: F,
        inject: impl FnOnce(Injected) -> T,
        describe: impl FnOnce(&T) -> (String, CallDetail),
    ) -> T
    where
        F: Future<Output = T>,
    {
        self.call_then(name, args, write, fut, inject, describe, |_, _| {})
            .await
    }

    /// [`Tap::call`], and `effect` run on the scheduler's state with what the
    /// call did, at the moment it took effect.
    #[allow(clippy::too_many_arguments)]
    async fn call_then<T, F>(
        &self,
        name: &'static str,
        args: String,
        write: bool,
        fut: F,
        inject: impl FnOnce(Injected) -> T,
        describe: impl FnOnce(&T) -> (String, CallDetail),
        effect: impl FnOnce(&mut State, &CallDetail),
    ) -> T
    where
        F: Future<Output = T>,
    {
        self.sched.interleave().await;
        let op = self.current.load(Ordering::SeqCst);
        let result = match self.sched.draw_fault(write) {
            Some(fault) => {
                let r = inject(fault);
                self.sched.record(
                    op,
                    Call {
                        seq: 0,
                        name,
                        args,
                        result: "(not called)".into(),
                        injected: Some(fault),
                        detail: CallDetail::None,
                    },
                );
                r
            }
            None => {
                let r = fut.await;
                let (text, detail) = describe(&r);
                effect(&mut self.sched.state(), &detail);
                let lost = self.sched.draw_lost();
                self.sched.record(
                    op,
                    Call {
                        seq: 0,
                        name,
                        args,
                        result: text,
                        injected: lost.then_some(Injected::LostResponse),
                        detail,
                    },
                );
                if lost {
                    inject(Injected::LostResponse)
                } else {
                    r
                }
            }
        };
        self.sched.interleave().await;
        result
    }

    /// A list in an order of the scheduler's choosing (DynamoDB's is by
    /// random id): sorted by content first, so the order depends on the seed
    /// only, then shuffled.
    fn shuffle_devices(&self, mut devices: Vec<DeviceRecord>) -> Vec<DeviceRecord> {
        use rand::seq::SliceRandom;
        devices.sort_by(|a, b| {
            (
                a.created_us,
                a.kind.as_str(),
                &a.registration_id,
                &a.endpoint_arn,
                &a.id,
            )
                .cmp(&(
                    b.created_us,
                    b.kind.as_str(),
                    &b.registration_id,
                    &b.endpoint_arn,
                    &b.id,
                ))
        });
        self.sched.with_rng(|rng| devices.shuffle(rng));
        devices
    }
}

fn port_error(i: Injected) -> PortError {
    match i {
        Injected::Unavailable => PortError::Unavailable("injected: throttled".into()),
        Injected::Conflict => PortError::Conflict("injected: transaction conflict".into()),
        Injected::LostResponse => PortError::Unavailable("injected: answer lost".into()),
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn dev(d: &DeviceRecord) -> String {
    format!(
        "{}:{} {} tok={} {} {}{} v{}",
        d.kind.as_str(),
        d.id,
        short(&d.owner),
        short(&d.registration_id),
        if d.active { "active" } else { "inactive" },
        d.endpoint_arn,
        d.alternate_arn
            .as_deref()
            .map(|a| format!("+{a}"))
            .unwrap_or_default(),
        d.version
    )
}

fn res<T: std::fmt::Debug, E: std::fmt::Display>(r: &Result<T, E>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("Err({e})"),
    }
}

fn claim_text(c: &ClaimChange) -> String {
    match c {
        ClaimChange::Keep => "Keep".into(),
        ClaimChange::Create => "Create".into(),
        ClaimChange::TakeFrom(p) => format!("TakeFrom({} of {})", p.device_id, short(&p.owner)),
        other => format!("{other:?}"),
    }
}

/// The store, under the scheduler.
pub struct SchedStore {
    pub inner: Arc<dyn Store>,
    pub tap: Tap,
}

/// The push gateway, under the scheduler.
pub struct SchedPush {
    pub inner: Arc<dyn PushGateway>,
    pub tap: Tap,
}

#[async_trait]
impl AccountStore for SchedStore {
    async fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, PortError> {
        self.tap
            .call(
                "get_account",
                username.into(),
                false,
                self.inner.get_account(username),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(Some(a)) => format!("{} deleting={}", a.id, a.deleting),
                        other => res(&other.as_ref().map(|_| ())),
                    };
                    (text, CallDetail::None)
                },
            )
            .await
    }
    async fn create_account(
        &self,
        account: &AccountRecord,
        key: &ApiKeyRecord,
    ) -> Result<(), CreateAccountError> {
        self.tap
            .call(
                "create_account",
                format!("{} {}", account.username, account.id),
                true,
                self.inner.create_account(account, key),
                |i| Err(CreateAccountError::Port(port_error(i))),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn log_failed_login(
        &self,
        username: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        self.tap
            .call(
                "log_failed_login",
                username.into(),
                true,
                self.inner.log_failed_login(username, now_us, limit),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn add_login_key(
        &self,
        key: &ApiKeyRecord,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        self.tap
            .call(
                "add_login_key",
                format!("{} {}", key.username, key.account_id),
                true,
                self.inner.add_login_key(key, now_us, limit),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn trim_api_keys(&self, account_id: &str, keep: u32) -> Result<usize, PortError> {
        self.tap
            .call(
                "trim_api_keys",
                format!("{account_id} keep {keep}"),
                true,
                self.inner.trim_api_keys(account_id, keep),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, PortError> {
        self.tap
            .call(
                "get_api_key",
                short(key_hash).into(),
                false,
                self.inner.get_api_key(key_hash),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(Some(k)) => format!("{} {}", k.username, k.account_id),
                        other => res(&other.as_ref().map(|_| ())),
                    };
                    (text, CallDetail::None)
                },
            )
            .await
    }
    async fn begin_account_deletion(
        &self,
        account_id: &str,
        username: &str,
    ) -> Result<bool, PortError> {
        self.tap
            .call(
                "begin_account_deletion",
                format!("{username} {account_id}"),
                true,
                self.inner.begin_account_deletion(account_id, username),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn finish_account_deletion(
        &self,
        account_id: &str,
        username: &str,
        email: &str,
    ) -> Result<(), PortError> {
        self.tap
            .call(
                "finish_account_deletion",
                format!("{username} {account_id}"),
                true,
                self.inner
                    .finish_account_deletion(account_id, username, email),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
}

#[async_trait]
impl DeviceStore for SchedStore {
    async fn list_devices(&self, owner: &str) -> Result<Vec<DeviceRecord>, PortError> {
        let r = self
            .tap
            .call(
                "list_devices",
                owner.into(),
                false,
                self.inner.list_devices(owner),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(ds) => ds.iter().map(dev).collect::<Vec<_>>().join("; "),
                        Err(e) => format!("Err({e})"),
                    };
                    (format!("[{text}]"), CallDetail::None)
                },
            )
            .await;
        r.map(|ds| self.tap.shuffle_devices(ds))
    }
    async fn get_device(&self, owner: &str, id: &str) -> Result<Option<DeviceRecord>, PortError> {
        self.tap
            .call(
                "get_device",
                format!("{id} of {}", short(owner)),
                false,
                self.inner.get_device(owner, id),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(Some(d)) => dev(d),
                        other => res(&other.as_ref().map(|_| ())),
                    };
                    (text, CallDetail::None)
                },
            )
            .await
    }
    async fn get_claim(
        &self,
        kind: DeviceKind,
        registration_id: &str,
    ) -> Result<Option<PushTokenClaim>, PortError> {
        self.tap
            .call(
                "get_claim",
                format!("{} {}", kind.as_str(), short(registration_id)),
                false,
                self.inner.get_claim(kind, registration_id),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(Some(c)) => format!("{} of {}", c.device_id, short(&c.owner)),
                        other => res(&other.as_ref().map(|_| ())),
                    };
                    (text, CallDetail::None)
                },
            )
            .await
    }
    async fn save_device(&self, write: &DeviceWrite) -> Result<(), WriteConflict> {
        let removed = match &write.claim {
            ClaimChange::TakeFrom(p) => Some((p.owner.clone(), p.device_id.clone())),
            _ => None,
        };
        self.tap
            .call(
                "save_device",
                format!(
                    "{} new={} claim={} release={:?}",
                    dev(&write.device),
                    write.is_new,
                    claim_text(&write.claim),
                    write.release_claim_of.as_deref().map(short)
                ),
                true,
                self.inner.save_device(write),
                |i| Err(WriteConflict::Port(port_error(i))),
                move |r| {
                    let detail = match (r, removed) {
                        (Ok(()), Some((owner, id))) => CallDetail::RemovedDevice {
                            owner,
                            id,
                            endpoints: vec![],
                        },
                        _ => CallDetail::None,
                    };
                    (res(r), detail)
                },
            )
            .await
    }
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        let (owner, id) = (device.owner.clone(), device.id.clone());
        let endpoints: Vec<String> = device.endpoints().map(str::to_string).collect();
        self.tap
            .call(
                "delete_device",
                dev(device),
                true,
                self.inner.delete_device(device),
                |i| Err(port_error(i)),
                move |r| {
                    let detail = match r {
                        Ok(DeviceRemoval::Removed { .. }) => CallDetail::RemovedDevice {
                            owner,
                            id,
                            endpoints,
                        },
                        _ => CallDetail::None,
                    };
                    (res(r), detail)
                },
            )
            .await
    }
    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        old_arn: &str,
        new_arn: &str,
    ) -> Result<bool, PortError> {
        self.tap
            .call(
                "replace_endpoint",
                format!("{} {old_arn} -> {new_arn}", dev(device)),
                true,
                self.inner.replace_endpoint(device, old_arn, new_arn),
                |i| Err(port_error(i)),
                |r| {
                    let detail = CallDetail::ReplaceEndpoint {
                        replaced: matches!(r, Ok(true)),
                    };
                    (res(r), detail)
                },
            )
            .await
    }
    async fn devices_by_endpoint(
        &self,
        endpoint_arn: &str,
    ) -> Result<Vec<DeviceRecord>, PortError> {
        let r = self
            .tap
            .call(
                "devices_by_endpoint",
                endpoint_arn.into(),
                false,
                self.inner.devices_by_endpoint(endpoint_arn),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(ds) => ds.iter().map(dev).collect::<Vec<_>>().join("; "),
                        Err(e) => format!("Err({e})"),
                    };
                    (format!("[{text}]"), CallDetail::None)
                },
            )
            .await;
        r.map(|ds| self.tap.shuffle_devices(ds))
    }
    async fn deactivate_device(
        &self,
        device: &DeviceRecord,
        failure: &PushFailure,
    ) -> Result<bool, PortError> {
        self.tap
            .call(
                "deactivate_device",
                dev(device),
                true,
                self.inner.deactivate_device(device, failure),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn mark_pushed(&self, device: &DeviceRecord, day: i64) -> Result<bool, PortError> {
        self.tap
            .call(
                "mark_pushed",
                format!("{} day {day}", dev(device)),
                true,
                self.inner.mark_pushed(device, day),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn reenable_device(&self, device: &DeviceRecord) -> Result<bool, PortError> {
        self.tap
            .call(
                "reenable_device",
                dev(device),
                true,
                self.inner.reenable_device(device),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
        pushed_on: Option<i64>,
    ) -> Result<bool, PortError> {
        self.tap
            .call(
                "drop_endpoint",
                format!("{} dead {dead_arn}", dev(device)),
                true,
                self.inner.drop_endpoint(device, dead_arn, pushed_on),
                |i| Err(port_error(i)),
                |r| {
                    let detail = match r {
                        Ok(true) => CallDetail::DroppedEndpoint {
                            arn: dead_arn.to_string(),
                        },
                        _ => CallDetail::None,
                    };
                    (res(r), detail)
                },
            )
            .await
    }
}

#[async_trait]
impl TokenStore for SchedStore {
    async fn create_token(&self, token: &TokenRecord, limit: Limit) -> Result<(), WriteConflict> {
        self.tap
            .call(
                "create_token",
                format!("{} for {}", short(&token.token), token.device_id),
                true,
                self.inner.create_token(token, limit),
                |i| Err(WriteConflict::Port(port_error(i))),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn get_token(&self, token: &str) -> Result<Option<TokenRecord>, PortError> {
        self.tap
            .call(
                "get_token",
                short(token).into(),
                false,
                self.inner.get_token(token),
                |i| Err(port_error(i)),
                |r| (res(&r.as_ref().map(|t| t.is_some())), CallDetail::None),
            )
            .await
    }
    async fn get_own_token(
        &self,
        owner: &str,
        token: &str,
    ) -> Result<Option<TokenRecord>, PortError> {
        self.tap
            .call(
                "get_own_token",
                short(token).into(),
                false,
                self.inner.get_own_token(owner, token),
                |i| Err(port_error(i)),
                |r| (res(&r.as_ref().map(|t| t.is_some())), CallDetail::None),
            )
            .await
    }
    async fn admit_knock(
        &self,
        token: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<KnockAdmission, PortError> {
        self.tap
            .call(
                "admit_knock",
                short(token).into(),
                true,
                self.inner.admit_knock(token, now_us, limit),
                |i| Err(port_error(i)),
                |r| {
                    let text = match r {
                        Ok(KnockAdmission::Admitted(t)) => {
                            format!("Admitted(owner {} device {})", short(&t.owner), t.device_id)
                        }
                        other => res(other),
                    };
                    (text, CallDetail::None)
                },
            )
            .await
    }
    async fn count_live_tokens(&self, owner: &str, now_us: Micros) -> Result<usize, PortError> {
        self.tap
            .call(
                "count_live_tokens",
                short(owner).into(),
                false,
                self.inner.count_live_tokens(owner, now_us),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, PortError> {
        self.tap
            .call(
                "list_tokens",
                short(owner).into(),
                false,
                self.inner.list_tokens(owner),
                |i| Err(port_error(i)),
                |r| (res(&r.as_ref().map(Vec::len)), CallDetail::None),
            )
            .await
    }
    async fn rename_token(
        &self,
        owner: &str,
        token: &str,
        name: Option<&str>,
        now_us: Micros,
    ) -> Result<Option<TokenRecord>, PortError> {
        self.tap
            .call(
                "rename_token",
                format!("{} {name:?}", short(token)),
                true,
                self.inner.rename_token(owner, token, name, now_us),
                |i| Err(port_error(i)),
                |r| (res(&r.as_ref().map(|t| t.is_some())), CallDetail::None),
            )
            .await
    }
    async fn delete_token(
        &self,
        owner: &str,
        token: &str,
        now_us: Micros,
    ) -> Result<bool, PortError> {
        self.tap
            .call(
                "delete_token",
                short(token).into(),
                true,
                self.inner.delete_token(owner, token, now_us),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn delete_device_tokens(&self, owner: &str, device_id: &str) -> Result<(), PortError> {
        let (o, id) = (owner.to_string(), device_id.to_string());
        self.tap
            .call(
                "delete_device_tokens",
                device_id.into(),
                true,
                self.inner.delete_device_tokens(owner, device_id),
                |i| Err(port_error(i)),
                move |r| {
                    let detail = CallDetail::DeletedDeviceTokens {
                        owner: o,
                        id,
                        ok: r.is_ok(),
                    };
                    (res(r), detail)
                },
            )
            .await
    }
}

#[async_trait]
impl LimitStore for SchedStore {
    async fn count_hit(
        &self,
        key: &LimitKey,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        self.tap
            .call(
                "count_hit",
                format!("{:?}", key.name()),
                true,
                self.inner.count_hit(key, now_us, limit),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
}

fn publish_error(i: Injected) -> PublishError {
    PublishError::Port(port_error(i))
}

#[async_trait]
impl PushGateway for SchedPush {
    fn platforms(&self, kind: DeviceKind) -> Vec<Platform> {
        self.inner.platforms(kind)
    }
    async fn ensure_endpoint(
        &self,
        platform: Platform,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError> {
        let app = self.tap.app;
        self.tap
            .call_then(
                "ensure_endpoint",
                format!("{} {} known={known:?}", platform.sns_name(), short(token)),
                true,
                self.inner.ensure_endpoint(platform, token, known),
                |i| Err(port_error(i)),
                |r| {
                    let arn = r.as_ref().ok().cloned();
                    (res(r), CallDetail::EnsureEndpoint { arn })
                },
                // Known even when the answer is lost: the endpoint exists.
                |s, detail| {
                    if let CallDetail::EnsureEndpoint { arn: Some(arn) } = detail {
                        s.endpoints[app].insert(arn.clone(), token.to_string());
                    }
                },
            )
            .await
    }
    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError> {
        let app = self.tap.app;
        let a = arn.to_string();
        self.tap
            .call_then(
                "delete_endpoint",
                arn.into(),
                true,
                self.inner.delete_endpoint(arn),
                |i| Err(port_error(i)),
                move |r| {
                    let ok = r.is_ok();
                    (res(r), CallDetail::DeleteEndpoint { arn: a, ok })
                },
                |s, detail| {
                    if !matches!(detail, CallDetail::DeleteEndpoint { ok: true, .. }) {
                        return;
                    }
                    s.deleted[app].insert(arn.to_string());
                    // SNS reports the deletion to the feedback function
                    // (here: sometimes, to keep the queue short).
                    if s.rng.gen_bool(0.3) {
                        let token = s.endpoints[app].get(arn).cloned().unwrap_or_default();
                        s.events.push_back(PushEvent {
                            app,
                            arn: arn.to_string(),
                            token,
                            what: PushEventKind::Feedback(EventType::EndpointDeleted),
                            attempts: 0,
                        });
                    }
                },
            )
            .await
    }
    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError> {
        self.tap
            .call(
                "endpoint_enabled",
                arn.into(),
                false,
                self.inner.endpoint_enabled(arn),
                |i| Err(port_error(i)),
                |r| (res(r), CallDetail::None),
            )
            .await
    }
    async fn publish(&self, arn: &str, kind: DeviceKind, push: &Push) -> Result<(), PublishError> {
        let app = self.tap.app;
        let a = arn.to_string();
        self.tap
            .call_then(
                "publish",
                arn.into(),
                true,
                self.inner.publish(arn, kind, push),
                |i| Err(publish_error(i)),
                move |r| {
                    let ok = r.is_ok();
                    (res(r), CallDetail::Publish { arn: a, ok })
                },
                |s, detail| {
                    if !matches!(detail, CallDetail::Publish { ok: true, .. }) {
                        return;
                    }
                    // A push through the wrong APNs environment: SNS took
                    // it, the push service refuses the token, and SNS then
                    // disables the endpoint (and reports it).
                    let Some(token) = s.endpoints[app].get(arn).cloned() else {
                        return;
                    };
                    let wrong = match (Platform::of_arn(arn), s.true_env.get(&token)) {
                        (Some(p @ (Platform::Apns | Platform::ApnsSandbox)), Some(env)) => {
                            p != *env
                        }
                        _ => false,
                    };
                    if wrong {
                        s.events.push_back(PushEvent {
                            app,
                            arn: arn.to_string(),
                            token,
                            what: PushEventKind::Reject,
                            attempts: 0,
                        });
                    }
                },
            )
            .await
    }
}
