//! The invariants, checked once every client is done (a quiescent point):
//! over a snapshot of the whole store and SNS, and over the epoch's trace
//! (what each knock answered `202` must have reached).
//!
//! What the design may leave behind is tolerated by name, each with the
//! reason the trace gives for it ([`History`]), never by a looser check.

use std::collections::{BTreeMap, BTreeSet};

use push_core::model::{DeviceKind, DeviceRecord, Platform};
use push_core::secrets::sha256_hex;

use crate::driver::KnockObs;
use crate::trace::{CallDetail, Injected, Op, OpId, OpKind, Trace};
use crate::world::Snapshot;

#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
    /// Texts (ids, ARNs, tokens) naming what it concerns: the trace printed
    /// is the operations that mention any of them.
    pub focus: Vec<String>,
    /// The app it concerns, when one: only that app's operations are shown
    /// (the memory mode's two gateways hand out the same ARNs).
    pub app: Option<usize>,
}

fn violation(invariant: &'static str, detail: String, focus: Vec<String>) -> Violation {
    // Every detail names its app first ("app N: ..."), when it has one.
    let app = detail
        .strip_prefix("app ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    Violation {
        invariant,
        detail,
        focus,
        app,
    }
}

/// An account whose deletion answered `204`.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub app: usize,
    pub id: String,
    pub username: String,
    /// Its API keys the clients knew.
    pub keys: Vec<String>,
    pub op: OpId,
}

/// What earlier epochs' traces said, that a later check needs.
#[derive(Debug, Default)]
pub struct History {
    /// Endpoints the design may leave behind, by (app, ARN): why.
    pub orphan_ok: BTreeMap<(usize, String), String>,
    /// When each endpoint was last disabled by the push service.
    pub last_disable: BTreeMap<(usize, String), u64>,
    /// Devices set active by PUT/PATCH, which re-enables no endpoint: when.
    pub activated: BTreeMap<String, (u64, OpId)>,
    /// Devices whose removal was cut short (their tokens may remain): why.
    pub cut_short: BTreeMap<String, String>,
    /// Endpoints deleted, after their device's record, by the removal of
    /// that device (by app and ARN): the removing device's id, and the op.
    pub deleted_by_removal: BTreeMap<(usize, String), (String, OpId)>,
    /// When each endpoint was deleted (by app and ARN; global order), and
    /// when the deleting operation last looked at the table or SNS before
    /// (what it decided the deletion on).
    deletions: BTreeMap<(usize, String), Vec<(u64, u64)>>,
    /// Adoptions of an endpoint by a write: (app, ARN) → (when an
    /// operation's `ensure_endpoint` returned it, when that operation's
    /// next save took effect).
    adoptions: BTreeMap<(usize, String), Vec<(u64, u64)>>,
    pub deleted: Vec<Deleted>,
}

/// Whether a port call reads what a deletion is decided on.
fn is_look(call: &str) -> bool {
    call.starts_with("get_")
        || call.starts_with("list_")
        || call == "devices_by_endpoint"
        || call == "endpoint_enabled"
}

impl History {
    /// Whether an endpoint was deleted while a write was adopting it: the
    /// write's `ensure_endpoint` returned it (SNS keeps one per token)
    /// before the deletion, and its save took effect after the deleting
    /// operation's last look (what it decided on). SNS deletes
    /// cannot be conditional on what the table says meanwhile (a settling,
    /// a release, a dropped environment, a removal); the device's next
    /// knock re-creates it (knock::reattach; docs/ARCHITECTURE.md,
    /// "Concurrency"). Only that window is tolerated.
    pub fn deleted_while_adopted(&self, app: usize, arn: &str) -> bool {
        let key = (app, arn.to_string());
        let (Some(deletions), Some(adoptions)) =
            (self.deletions.get(&key), self.adoptions.get(&key))
        else {
            return false;
        };
        adoptions.iter().any(|(ensured, saved)| {
            deletions
                .iter()
                .any(|(looked, deleted)| ensured < deleted && looked < saved)
        })
    }

    /// Takes in what an epoch's trace tells.
    pub fn learn(&mut self, trace: &Trace) {
        for op in trace.ops.values() {
            let incomplete = !op.ok();
            let mut ensured: Vec<String> = Vec::new();
            let mut removed: Vec<(String, Vec<String>)> = Vec::new();
            let mut adopting: Vec<(String, u64)> = Vec::new();
            let mut last_look = 0;
            for call in &op.calls {
                if is_look(call.name) {
                    last_look = call.seq;
                }
                // A call refused before it ran has no detail: its arguments
                // name what it was for.
                let refused = matches!(
                    call.injected,
                    Some(Injected::Unavailable | Injected::Conflict)
                );
                if refused && call.name == "delete_endpoint" {
                    self.orphan_ok.insert(
                        (op.app, call.args.clone()),
                        format!(
                            "its deletion failed in op {} (injected {:?}): best effort, adopted by the next registration of its token",
                            op.id, call.injected
                        ),
                    );
                }
                if refused && call.name == "delete_device_tokens" && !op.ok() {
                    self.cut_short.insert(
                        call.args.clone(),
                        format!(
                            "its tokens' deletion failed in op {}, which answered {}",
                            op.id, op.status
                        ),
                    );
                }
                let took_effect =
                    call.result == "()" || call.injected == Some(Injected::LostResponse);
                if call.name == "save_device" && took_effect {
                    for (arn, ensured_at) in adopting.drain(..) {
                        self.adoptions
                            .entry((op.app, arn))
                            .or_default()
                            .push((ensured_at, call.seq));
                    }
                }
                match &call.detail {
                    CallDetail::DeleteEndpoint { arn, ok: false } => {
                        self.orphan_ok.insert(
                            (op.app, arn.clone()),
                            format!(
                                "its deletion failed in op {} ({}): best effort, adopted by the next registration of its token",
                                op.id,
                                call.result
                            ),
                        );
                    }
                    CallDetail::EnsureEndpoint { arn: Some(arn) } => {
                        ensured.push(arn.clone());
                        adopting.push((arn.clone(), call.seq));
                    }
                    CallDetail::ReplaceEndpoint { replaced: false } => {
                        for arn in &ensured {
                            self.orphan_ok.insert(
                                (op.app, arn.clone()),
                                format!(
                                    "re-created by op {} for a device that changed meanwhile (knock::reattach leaves it: it may be another device's)",
                                    op.id
                                ),
                            );
                        }
                    }
                    CallDetail::DeleteEndpoint { arn, ok: true } => {
                        if let Some((id, _)) = removed.iter().find(|(_, e)| e.contains(arn)) {
                            self.deleted_by_removal
                                .insert((op.app, arn.clone()), (id.clone(), op.id));
                        }
                        self.deletions
                            .entry((op.app, arn.clone()))
                            .or_default()
                            .push((last_look, call.seq));
                    }
                    CallDetail::RemovedDevice { id, endpoints, .. } => {
                        removed.push((id.clone(), endpoints.clone()));
                        let lost = call.injected == Some(Injected::LostResponse);
                        if incomplete {
                            self.cut_short.insert(
                                id.clone(),
                                format!("removed by op {} which answered {}", op.id, op.status),
                            );
                        }
                        // SNS after DynamoDB: a failure between the record's
                        // deletion and its endpoints' leaves them, for the
                        // next registration of the token to adopt
                        // (docs/ARCHITECTURE.md, "Concurrency").
                        if incomplete || lost {
                            for arn in endpoints {
                                self.orphan_ok.entry((op.app, arn.clone())).or_insert_with(|| {
                                    format!(
                                        "its device's record was removed by op {} ({}), which failed before deleting it",
                                        op.id,
                                        if lost { "answer lost" } else { "cut short" }
                                    )
                                });
                            }
                        }
                    }
                    CallDetail::DeletedDeviceTokens { id, ok: false, .. } => {
                        self.cut_short.insert(
                            id.clone(),
                            format!("its tokens' deletion failed in op {}", op.id),
                        );
                    }
                    _ => {}
                }
            }
            // An endpoint made for an operation that did not complete:
            // releasing it is best effort (devices::save_landed_or_release),
            // and skipped when the operation gave up after conflicts.
            let given_up = op.status == 503 || op.faulted();
            if incomplete && given_up {
                for arn in ensured {
                    self.orphan_ok.entry((op.app, arn)).or_insert_with(|| {
                        format!(
                            "made by op {} which answered {} after a failure (release is best effort)",
                            op.id, op.status
                        )
                    });
                }
            }
            match &op.kind {
                OpKind::Kill { arn } if op.status == 200 => {
                    self.last_disable.insert((op.app, arn.clone()), op.end);
                }
                OpKind::Update {
                    id,
                    activates: true,
                    ..
                } if op.ok() => {
                    self.activated.insert(id.clone(), (op.end, op.id));
                }
                _ => {}
            }
        }
    }
}

fn kind_of(platform: Platform) -> DeviceKind {
    platform.kind()
}

/// The invariants over the whole store and SNS.
pub fn check_state(snap: &Snapshot, hist: &History, now_us: i64) -> Vec<Violation> {
    let mut out = Vec::new();
    let endpoints: BTreeMap<(usize, &str), _> = snap
        .endpoints
        .iter()
        .map(|e| ((e.app, e.arn.as_str()), e))
        .collect();
    let mut referenced: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for (app, a) in snap.apps.iter().enumerate() {
        let devices: BTreeMap<(&str, &str), &DeviceRecord> = a
            .devices
            .iter()
            .map(|d| ((d.owner.as_str(), d.id.as_str()), d))
            .collect();
        let accounts: BTreeMap<&str, _> = a.accounts.iter().map(|x| (x.id.as_str(), x)).collect();
        // Every claim names a live device with that push token.
        for c in &a.claims {
            match devices.get(&(c.owner.as_str(), c.device_id.as_str())) {
                None => out.push(violation(
                    "every claim names a live device",
                    format!(
                        "app {app}: the {} claim {} names device {} of {}, which does not exist",
                        c.kind.as_str(),
                        &c.token_hash[..12],
                        c.device_id,
                        c.owner
                    ),
                    vec![c.device_id.clone(), c.owner.clone()],
                )),
                Some(d) if d.kind != c.kind || sha256_hex(&d.registration_id) != c.token_hash => {
                    out.push(violation(
                        "every claim names a device with that push token",
                        format!(
                            "app {app}: the {} claim {} names device {}, whose push token is {} ({})",
                            c.kind.as_str(),
                            &c.token_hash[..12],
                            d.id,
                            d.registration_id,
                            d.kind.as_str()
                        ),
                        vec![d.id.clone(), d.registration_id.clone()],
                    ))
                }
                Some(_) => {}
            }
        }
        let claims: BTreeMap<(&str, &str), _> = a
            .claims
            .iter()
            .map(|c| ((c.kind.as_str(), c.token_hash.as_str()), c))
            .collect();
        for d in &a.devices {
            let focus = vec![d.id.clone(), d.registration_id.clone()];
            // Every live device is claimed by its token's claim.
            let hash = sha256_hex(&d.registration_id);
            match claims.get(&(d.kind.as_str(), hash.as_str())) {
                Some(c) if c.owner == d.owner && c.device_id == d.id => {}
                Some(c) => out.push(violation(
                    "every live device is claimed by its push token's claim",
                    format!(
                        "app {app}: device {} of {} has push token {}, whose claim names device {} of {}",
                        d.id, d.owner, d.registration_id, c.device_id, c.owner
                    ),
                    [focus.clone(), vec![c.device_id.clone()]].concat(),
                )),
                None => out.push(violation(
                    "every live device is claimed by its push token's claim",
                    format!(
                        "app {app}: device {} of {} has push token {}, which nobody claims",
                        d.id, d.owner, d.registration_id
                    ),
                    focus.clone(),
                )),
            }
            if !accounts.contains_key(d.owner.as_str()) {
                out.push(violation(
                    "every device belongs to an account",
                    format!(
                        "app {app}: device {} belongs to {}, which does not exist",
                        d.id, d.owner
                    ),
                    [focus.clone(), vec![d.owner.clone()]].concat(),
                ));
            }
            // Every live device's endpoints exist, with its token, enabled
            // or known dead.
            for (i, arn) in d.endpoints().enumerate() {
                referenced
                    .entry((app, arn.to_string()))
                    .or_default()
                    .push(d.id.clone());
                let mut focus = focus.clone();
                focus.push(arn.to_string());
                let Some(e) = endpoints.get(&(app, arn)) else {
                    // A device deletion racing a registration of the same
                    // push token: the registration adopted the endpoint
                    // (SNS keeps one per token) after the record of the
                    // device deleted went and before its endpoint did. The
                    // device's next knock gives it a new one
                    // (knock::reattach; docs/ARCHITECTURE.md, "Concurrency").
                    if let Some((removed, _)) = hist.deleted_by_removal.get(&(app, arn.to_string()))
                    {
                        if *removed != d.id {
                            continue;
                        }
                    }
                    // The same race with any other deletion: settling
                    // (devices::settle_environment), a release of what a
                    // failed save made, an environment dropped by a
                    // refresh — within the adoption's window only.
                    if hist.deleted_while_adopted(app, arn) {
                        continue;
                    }
                    out.push(violation(
                        "every live device's endpoints exist in SNS",
                        format!(
                            "app {app}: device {} ({}) names endpoint {arn}, which does not exist",
                            d.id, d.registration_id
                        ),
                        focus,
                    ));
                    continue;
                };
                if e.token != d.registration_id {
                    out.push(violation(
                        "every live device's endpoints carry its push token",
                        format!(
                            "app {app}: device {} has push token {}, its endpoint {arn} carries {}",
                            d.id, d.registration_id, e.token
                        ),
                        [focus.clone(), vec![e.token.clone()]].concat(),
                    ));
                }
                let platform_ok = match (e.platform, &d.alternate_arn, i) {
                    (Some(p), None, _) => kind_of(p) == d.kind,
                    (Some(Platform::Apns), Some(_), 0) => d.kind == DeviceKind::Apns,
                    (Some(Platform::ApnsSandbox), Some(_), 1) => d.kind == DeviceKind::Apns,
                    _ => false,
                };
                if !platform_ok {
                    out.push(violation(
                        "every live device's endpoints are on its platforms",
                        format!(
                            "app {app}: {} device {} has endpoint {arn} (platform {:?}) as its endpoint #{i}",
                            d.kind.as_str(),
                            d.id,
                            e.platform
                        ),
                        focus.clone(),
                    ));
                }
                if !e.enabled && d.active && d.alternate_arn.is_none() {
                    let disabled = hist.last_disable.get(&(app, arn.to_string())).copied();
                    let tolerated = match (hist.activated.get(&d.id), disabled) {
                        (Some((at, _)), Some(disabled)) => *at > disabled,
                        (Some(_), None) => true,
                        _ => false,
                    };
                    if !tolerated {
                        out.push(violation(
                            "a disabled endpoint's device is inactive or settling",
                            format!(
                                "app {app}: device {} is active with its one endpoint {arn} disabled (last disabled @{}), every report of it handled",
                                d.id,
                                disabled.map_or("?".into(), |s| s.to_string())
                            ),
                            focus.clone(),
                        ));
                    }
                }
            }
            if let Some(alt) = &d.alternate_arn {
                if *alt == d.endpoint_arn {
                    out.push(violation(
                        "a device of unknown environment has two endpoints",
                        format!("app {app}: device {} has {alt} twice", d.id),
                        focus.clone(),
                    ));
                }
            }
        }
        // Every whitelist token names a live device of its owner.
        for t in &a.tokens {
            if devices.contains_key(&(t.owner.as_str(), t.device_id.as_str())) {
                continue;
            }
            let deleting = accounts.get(t.owner.as_str()).is_some_and(|x| x.deleting);
            if deleting || hist.cut_short.contains_key(&t.device_id) {
                continue;
            }
            out.push(violation(
                "every whitelist token names a live device",
                format!(
                    "app {app}: token {} (live: {}) of {} names device {}, which does not exist",
                    &t.token[..8],
                    t.expires_us > now_us,
                    t.owner,
                    t.device_id
                ),
                vec![t.device_id.clone(), t.token[..8].to_string()],
            ));
        }
        // Every API key names a live account.
        for (hash, account) in &a.api_keys {
            if !accounts.contains_key(account.as_str()) {
                out.push(violation(
                    "every API key names a live account",
                    format!(
                        "app {app}: API key {} names account {account}, which does not exist",
                        &hash[..8]
                    ),
                    vec![account.clone()],
                ));
            }
        }
        for acct in &a.accounts {
            if acct.deleting {
                out.push(violation(
                    "a deletion cut short is finished by the next login",
                    format!(
                        "app {app}: account {} ({}) is still marked deleting after a login",
                        acct.username, acct.id
                    ),
                    vec![acct.id.clone(), acct.username.clone()],
                ));
            }
            let devices = a.devices.iter().filter(|d| d.owner == acct.id).count() as i64;
            let counted = snap
                .device_counts
                .iter()
                .find(|(id, _)| *id == acct.id)
                .map_or(0, |(_, n)| *n);
            if counted != devices {
                out.push(violation(
                    "every account's device count equals its devices",
                    format!(
                        "app {app}: account {} has {devices} devices, its count says {counted}",
                        acct.id
                    ),
                    vec![acct.id.clone()],
                ));
            }
        }
    }
    // At most one endpoint per push token and platform application.
    let mut per_token: BTreeMap<(usize, Option<&str>, &str), Vec<&str>> = BTreeMap::new();
    for e in &snap.endpoints {
        per_token
            .entry((e.app, e.platform.map(Platform::sns_name), e.token.as_str()))
            .or_default()
            .push(e.arn.as_str());
    }
    for ((app, platform, token), arns) in per_token {
        if arns.len() > 1 {
            out.push(violation(
                "one endpoint per push token and platform application",
                format!(
                    "app {app}: {platform:?} has {} endpoints for token {token}: {arns:?}",
                    arns.len()
                ),
                arns.iter()
                    .map(|s| s.to_string())
                    .chain([token.to_string()])
                    .collect(),
            ));
        }
    }
    // An endpoint serves at most one device; one that serves none is
    // tolerated only for a reason the trace gives.
    for e in &snap.endpoints {
        match referenced.get(&(e.app, e.arn.clone())) {
            Some(devices) if devices.len() > 1 => out.push(violation(
                "an endpoint serves at most one device",
                format!(
                    "app {}: endpoint {} is named by devices {devices:?}",
                    e.app, e.arn
                ),
                [vec![e.arn.clone()], devices.clone()].concat(),
            )),
            Some(_) => {}
            None => {
                if !hist.orphan_ok.contains_key(&(e.app, e.arn.clone())) {
                    out.push(violation(
                        "no endpoint is left behind without a reason",
                        format!(
                            "app {}: endpoint {} (token {}, enabled {}) serves no device, and no operation left it behind by design",
                            e.app, e.arn, e.token, e.enabled
                        ),
                        vec![e.arn.clone(), e.token.clone()],
                    ));
                }
            }
        }
    }
    // The accounts' own copies (DynamoDB): each names a live item and back.
    if let (Some(owned), true) = (&snap.owned_tokens, true) {
        let knock_items: BTreeSet<(&str, &str)> = snap
            .apps
            .iter()
            .flat_map(|a| {
                a.tokens
                    .iter()
                    .map(|t| (t.owner.as_str(), t.token.as_str()))
            })
            .collect();
        let copies: BTreeSet<(&str, &str)> = owned
            .iter()
            .map(|t| (t.owner.as_str(), t.token.as_str()))
            .collect();
        for (owner, token) in knock_items.symmetric_difference(&copies) {
            let device = owned
                .iter()
                .find(|t| t.token == *token)
                .map(|t| t.device_id.clone())
                .or_else(|| {
                    snap.apps
                        .iter()
                        .flat_map(|a| &a.tokens)
                        .find(|t| t.token == *token)
                        .map(|t| t.device_id.clone())
                })
                .unwrap_or_default();
            if hist.cut_short.contains_key(&device) {
                continue;
            }
            out.push(violation(
                "every whitelist token has its owner's copy, and back",
                format!(
                    "token {} of {owner}: knock item {}, owner's copy {}",
                    &token[..8],
                    knock_items.contains(&(owner, token)),
                    copies.contains(&(owner, token))
                ),
                vec![token[..8].to_string(), owner.to_string()],
            ));
        }
    }
    if let Some(owned) = &snap.owned_keys {
        let keys: BTreeSet<(&str, &str)> = snap
            .apps
            .iter()
            .flat_map(|a| a.api_keys.iter().map(|(h, id)| (id.as_str(), h.as_str())))
            .collect();
        let copies: BTreeSet<(&str, &str)> = owned
            .iter()
            .map(|(id, h)| (id.as_str(), h.as_str()))
            .collect();
        for (id, hash) in keys.symmetric_difference(&copies) {
            out.push(violation(
                "every API key has its account's copy, and back",
                format!(
                    "key {} of {id}: key item {}, account's copy {}",
                    &hash[..8],
                    keys.contains(&(id, hash)),
                    copies.contains(&(id, hash))
                ),
                vec![id.to_string()],
            ));
        }
    }
    out
}

/// Nothing of an account whose deletion answered `204` remains.
pub fn check_deleted(snap: &Snapshot, deleted: &Deleted) -> Vec<Violation> {
    let id = deleted.id.as_str();
    let mut left = Vec::new();
    for (app, a) in snap.apps.iter().enumerate() {
        left.extend(
            a.accounts
                .iter()
                .filter(|x| x.id == id)
                .map(|x| format!("app {app} account {}", x.username)),
        );
        left.extend(
            a.api_keys
                .iter()
                .filter(|(_, o)| o == id)
                .map(|(h, _)| format!("app {app} API key {}", &h[..8])),
        );
        left.extend(
            a.devices
                .iter()
                .filter(|d| d.owner == id)
                .map(|d| format!("app {app} device {}", d.id)),
        );
        left.extend(
            a.claims
                .iter()
                .filter(|c| c.owner == id)
                .map(|c| format!("app {app} claim naming device {}", c.device_id)),
        );
        left.extend(
            a.tokens
                .iter()
                .filter(|t| t.owner == id)
                .map(|t| format!("app {app} token {}", &t.token[..8])),
        );
    }
    left.extend(
        snap.owned_keys
            .iter()
            .flatten()
            .filter(|(o, _)| o == id)
            .map(|(_, h)| format!("its copy of API key {}", &h[..8])),
    );
    left.extend(
        snap.owned_tokens
            .iter()
            .flatten()
            .filter(|t| t.owner == id)
            .map(|t| format!("its copy of token {}", &t.token[..8])),
    );
    left.extend(
        snap.device_counts
            .iter()
            .filter(|(o, _)| o == id)
            .map(|(_, n)| format!("its device count ({n})")),
    );
    left.extend(
        snap.account_items
            .iter()
            .filter(|(o, _)| o.contains(id))
            .map(|(_, what)| what.clone()),
    );
    if left.is_empty() {
        return vec![];
    }
    vec![violation(
        "nothing of a deleted account remains",
        format!(
            "app {}: account {} ({id}), deleted by op {} (204), still has: {}",
            deleted.app,
            deleted.username,
            deleted.op,
            left.join(", ")
        ),
        vec![id.to_string()],
    )]
}

/// Every knock answered `202` reached each active device of its owner that
/// nothing else touched during the knock, once per live endpoint.
/// `expected` counts the (knock, endpoint) pairs that had to get a push.
pub fn check_knocks(
    trace: &Trace,
    knocks: &BTreeMap<OpId, KnockObs>,
    expected: &mut u64,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for (id, obs) in knocks {
        let Some(k) = trace.ops.get(id) else { continue };
        if k.status != 202 {
            continue;
        }
        // Never twice to one endpoint.
        let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
        let mut faulted: BTreeSet<&str> = BTreeSet::new();
        for c in &k.calls {
            if let CallDetail::Publish { arn, ok } = &c.detail {
                if *ok {
                    *sent.entry(arn.as_str()).or_default() += 1;
                } else if c.result.starts_with("Err(unavailable") {
                    // A publish that failed transiently (the emulator's
                    // faults: SNS throttling, an outage, a timeout) is the
                    // failure the knock records (`PublishFailures`), not a
                    // device left out. Any other failure on a live endpoint
                    // is the code's.
                    faulted.insert(arn.as_str());
                }
            }
            if c.name == "publish"
                && matches!(c.injected, Some(Injected::Unavailable | Injected::Conflict))
            {
                faulted.insert(c.args.as_str());
            }
        }
        for (arn, n) in &sent {
            if *n > 1 {
                out.push(violation(
                    "a knock pushes once per endpoint",
                    format!("knock op {id} published {n} times to {arn}"),
                    vec![arn.to_string(), format!("op {id} client")],
                ));
            }
        }
        for (d, eps) in &obs.before {
            let Some((after, eps_after)) = obs.after.iter().find(|(a, _)| a.id == d.id) else {
                continue;
            };
            if after != d || eps_after != eps || !d.active || touched(trace, k, d, eps) {
                continue;
            }
            for (arn, state) in eps {
                let live = state
                    .as_ref()
                    .is_some_and(|s| s.enabled && s.token == d.registration_id);
                if !live || faulted.contains(arn.as_str()) {
                    continue;
                }
                *expected += 1;
                if !sent.contains_key(arn.as_str()) {
                    out.push(violation(
                        "a knock answered 202 reaches every untouched active device",
                        format!(
                            "knock op {id} (owner {}) answered 202 but published nothing to {arn}, the live endpoint of active device {} ({}), which nothing changed meanwhile",
                            obs.owner, d.id, d.registration_id
                        ),
                        vec![arn.clone(), d.id.clone(), format!("op {id} client")],
                    ));
                }
            }
        }
    }
    out
}

/// Whether an operation overlapping knock `k` may have changed device `d`.
fn touched(
    trace: &Trace,
    k: &Op,
    d: &DeviceRecord,
    eps: &[(String, Option<crate::world::EndpointState>)],
) -> bool {
    trace.ops.values().any(|o| {
        if o.id == k.id || !o.overlaps(k) {
            return false;
        }
        let same_app = o.app == k.app;
        match &o.kind {
            OpKind::Register { registration_id } => {
                same_app && *registration_id == d.registration_id
            }
            OpKind::Update {
                id,
                registration_id,
                ..
            } => {
                same_app
                    && (*id == d.id
                        || registration_id.as_deref() == Some(d.registration_id.as_str()))
            }
            OpKind::DeleteDevice { id } => same_app && *id == d.id,
            OpKind::DeleteAccount { account_id, .. } => same_app && *account_id == d.owner,
            OpKind::Kill { arn } | OpKind::Feedback { arn } => eps.iter().any(|(a, _)| a == arn),
            _ => false,
        }
    })
}
