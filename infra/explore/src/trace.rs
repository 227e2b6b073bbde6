//! What a run did: every operation with its response and every port call it
//! made, each call stamped with the global sequence number of the moment it
//! took effect (its interleaving point). Printed on a violation; hashed to
//! show that a seed replays.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

pub type OpId = u64;

/// A failure the scheduler answered instead of (or after) the real call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Before the call: throttling or an outage; nothing happened.
    Unavailable,
    /// Before the call: a DynamoDB transaction conflict; nothing happened.
    Conflict,
    /// After the call: it took effect, but its answer was lost (a timeout).
    LostResponse,
}

/// What the checks need to know of a call, beyond its text.
#[derive(Debug, Clone, PartialEq)]
pub enum CallDetail {
    None,
    /// `ensure_endpoint`: the endpoint it returned.
    EnsureEndpoint {
        arn: Option<String>,
    },
    /// `delete_endpoint` of `arn`: whether it succeeded.
    DeleteEndpoint {
        arn: String,
        ok: bool,
    },
    /// `publish` to `arn`: whether SNS took it.
    Publish {
        arn: String,
        ok: bool,
    },
    /// `replace_endpoint`: whether the device took the new endpoint.
    ReplaceEndpoint {
        replaced: bool,
    },
    /// A call that removed device `id` of `owner` (deleted, or taken
    /// over), which had `endpoints` (when known).
    RemovedDevice {
        owner: String,
        id: String,
        endpoints: Vec<String>,
    },
    /// `drop_endpoint` (settling) that took `arn` off its device's record.
    DroppedEndpoint {
        arn: String,
    },
    /// `delete_device_tokens` of a device: whether it succeeded.
    DeletedDeviceTokens {
        owner: String,
        id: String,
        ok: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Call {
    /// When it took effect (or was refused), in the run's global order.
    pub seq: u64,
    pub name: &'static str,
    pub args: String,
    pub result: String,
    pub injected: Option<Injected>,
    pub detail: CallDetail,
}

/// What an operation was, for the checks (its text is in `desc`).
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    SignUp {
        username: String,
    },
    Login {
        username: String,
    },
    DeleteAccount {
        username: String,
        account_id: String,
    },
    GetAccount,
    Register {
        registration_id: String,
    },
    /// PUT or PATCH of device `id`; `registration_id` if the body names one.
    Update {
        id: String,
        registration_id: Option<String>,
        activates: bool,
    },
    DeleteDevice {
        id: String,
    },
    ListDevices,
    RetrieveDevice,
    CreateToken,
    RenameToken,
    RevokeToken,
    ListTokens,
    /// A knock with a token the driver knows to be `owner`'s (or a bogus one).
    Knock {
        owner: Option<String>,
    },
    /// The push service kills a push token: SNS disables `arn`.
    Kill {
        arn: String,
    },
    /// An SNS event about `arn` handed to the feedback function.
    Feedback {
        arn: String,
    },
    /// The checker's own requests at a quiescent point.
    Check,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub id: OpId,
    pub client: usize,
    pub app: usize,
    pub kind: OpKind,
    pub desc: String,
    pub start: u64,
    pub end: u64,
    pub status: u16,
    pub body: String,
    pub calls: Vec<Call>,
}

impl Op {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn faulted(&self) -> bool {
        self.calls.iter().any(|c| c.injected.is_some())
    }
    /// Whether its window overlaps `other`'s.
    pub fn overlaps(&self, other: &Op) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The operations of one epoch (between two quiescent points), by id.
#[derive(Default)]
pub struct Trace {
    pub ops: BTreeMap<OpId, Op>,
}

/// Replaces every UUID by its order of first appearance (`#1`, `#2`, ...):
/// device ids may come from the OS's random source (not the seeded one), and
/// a trace that differs only in them is the same run.
pub fn canonical(text: &str, names: &mut BTreeMap<String, usize>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            let next = names.len() + 1;
            let n = *names.entry(text[i..i + 36].to_string()).or_insert(next);
            let _ = write!(out, "#{n}");
            i += 36;
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_uuid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

impl Op {
    /// The operation and its calls as text, one line each.
    pub fn render(&self) -> String {
        let mut s = format!(
            "op {} client {} app {} [{}..{}] {} -> {} {}\n",
            self.id, self.client, self.app, self.start, self.end, self.desc, self.status, self.body
        );
        for c in &self.calls {
            let injected = match c.injected {
                Some(i) => format!(" !{i:?}"),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "    @{} {}({}) = {}{}",
                c.seq, c.name, c.args, c.result, injected
            );
        }
        s
    }
}

/// A running hash of every epoch's trace, UUIDs canonicalised.
pub struct TraceHash {
    hasher: Sha256,
    names: BTreeMap<String, usize>,
}

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash {
            hasher: Sha256::new(),
            names: BTreeMap::new(),
        }
    }
}

impl TraceHash {
    pub fn add(&mut self, trace: &Trace) {
        for op in trace.ops.values() {
            let text = canonical(&op.render(), &mut self.names);
            self.hasher.update(text.as_bytes());
        }
    }
    pub fn hex(&self) -> String {
        let digest = self.hasher.clone().finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The interleaving of a set of operations: every call of each, in the
/// order they took effect, with the ops' starts and ends.
pub fn interleaving(ops: &[&Op]) -> String {
    let mut lines: Vec<(u64, u8, String)> = Vec::new();
    for op in ops {
        lines.push((
            op.start,
            0,
            format!(
                "@{} op {} client {} app {} start: {}",
                op.start, op.id, op.client, op.app, op.desc
            ),
        ));
        for c in &op.calls {
            let injected = match c.injected {
                Some(i) => format!(" !{i:?}"),
                None => String::new(),
            };
            lines.push((
                c.seq,
                1,
                format!(
                    "@{}   op {} {}({}) = {}{}",
                    c.seq, op.id, c.name, c.args, c.result, injected
                ),
            ));
        }
        lines.push((
            op.end,
            2,
            format!("@{} op {} end -> {} {}", op.end, op.id, op.status, op.body),
        ));
    }
    lines.sort_by_key(|l| (l.0, l.1));
    lines
        .into_iter()
        .map(|(_, _, l)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_named_by_first_appearance() {
        let mut names = BTreeMap::new();
        let a = "0b1e4f0e-4a8e-4f6b-9d0e-2f7b3c1d9a11";
        let b = "9c2d4f0e-4a8e-4f6b-9d0e-2f7b3c1d9a22";
        assert_eq!(
            canonical(&format!("x {a} y {b} z {a}"), &mut names),
            "x #1 y #2 z #1"
        );
        assert_eq!(canonical("no ids ✓", &mut names), "no ids ✓");
    }
}
