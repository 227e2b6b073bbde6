//! A whole-table snapshot for tests (feature `testing`): one consistent
//! `Scan` of every item, each classified by its keys (`keys.rs`). Never on a
//! request path: the explorer (`infra/explore`) checks its invariants over it
//! once every client is done.

use aws_sdk_dynamodb::types::AttributeValue;
use push_core::model::{DeviceKind, DeviceRecord, TokenRecord};
use push_core::ports::PortError;
use push_core::time::Micros;

use super::device_items::DeviceItem;
use super::{from_item, DynamoStore, Item};
use crate::errors::port_error;
use crate::keys;

/// One item of the table, by what its keys say it is. `ns` is the app's key
/// namespace (`""` for the default app, else `<app>/`).
#[derive(Debug, Clone, PartialEq)]
pub enum TableItem {
    Account {
        ns: String,
        username: String,
        id: String,
        email: String,
        deleting: bool,
    },
    Email {
        ns: String,
        email: String,
        account_id: String,
    },
    ApiKey {
        ns: String,
        key_hash: String,
        account_id: String,
        username: String,
    },
    /// The account's copy of one of its API keys.
    OwnedApiKey {
        account_id: String,
        key_hash: String,
    },
    Device(DeviceRecord),
    /// A push-token claim: the token is known only by its hash.
    Claim {
        ns: String,
        kind: DeviceKind,
        token_hash: String,
        owner: String,
        device_id: String,
    },
    /// A whitelist token as the knock finds it.
    Token {
        ns: String,
        token: String,
        owner: String,
        device_id: String,
        expires_us: Micros,
    },
    /// The owner's copy of a whitelist token.
    OwnedToken(TokenRecord),
    /// An account's device count.
    DeviceCount {
        account_id: String,
        n: i64,
    },
    /// Anything else (limit counters): its keys.
    Other {
        pk: String,
        sk: String,
    },
}

/// Every item of the table, as of one scan.
#[derive(Debug, Clone, Default)]
pub struct TableSnapshot {
    pub items: Vec<TableItem>,
}

fn text(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

fn number(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_default(),
        _ => 0,
    }
}

fn flag(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

fn classify(item: Item) -> Result<TableItem, PortError> {
    let (pk, sk) = (text(&item, keys::PK), text(&item, keys::SK));
    let owner_partition = pk.strip_prefix("ACCT#").map(str::to_string);
    let namespaced = |marker: &str| {
        pk.split_once(marker)
            .map(|(ns, rest)| (ns.to_string(), rest.to_string()))
    };
    Ok(match (sk.as_str(), owner_partition) {
        ("ACCOUNT", None) => {
            let (ns, username) = namespaced("USER#").unwrap_or_default();
            TableItem::Account {
                ns,
                username,
                id: text(&item, "id"),
                email: text(&item, "email"),
                deleting: flag(&item, "deleting"),
            }
        }
        ("EMAIL", None) => {
            let (ns, email) = namespaced("EMAIL#").unwrap_or_default();
            TableItem::Email {
                ns,
                email,
                account_id: text(&item, "account_id"),
            }
        }
        ("KEY", None) => {
            let (ns, key_hash) = namespaced(keys::KEY_PREFIX).unwrap_or_default();
            TableItem::ApiKey {
                ns,
                key_hash,
                account_id: text(&item, "account_id"),
                username: text(&item, "username"),
            }
        }
        ("PUSH", None) => {
            let (ns, rest) = namespaced("PUSH#").unwrap_or_default();
            let (kind, token_hash) = rest.split_once('#').unwrap_or_default();
            TableItem::Claim {
                ns,
                kind: DeviceKind::from_path(kind)
                    .ok_or_else(|| PortError::Internal(format!("claim of kind {kind:?}")))?,
                token_hash: token_hash.to_string(),
                owner: text(&item, "owner"),
                device_id: text(&item, "device_id"),
            }
        }
        ("TOKEN", None) => {
            let (ns, token) = namespaced(keys::TOKEN_PREFIX).unwrap_or_default();
            TableItem::Token {
                ns,
                token,
                owner: text(&item, "owner"),
                device_id: text(&item, "device_id"),
                expires_us: number(&item, "expires_us"),
            }
        }
        (sk, Some(account_id)) if sk.starts_with(keys::KEY_PREFIX) => TableItem::OwnedApiKey {
            account_id,
            key_hash: sk[keys::KEY_PREFIX.len()..].to_string(),
        },
        (sk, Some(_)) if sk.starts_with(keys::DEVICE_PREFIX) => {
            TableItem::Device(DeviceRecord::from(from_item::<DeviceItem>(item)?))
        }
        (sk, Some(_)) if sk.starts_with(keys::TOKEN_PREFIX) => {
            let kind = text(&item, "kind");
            TableItem::OwnedToken(TokenRecord {
                token: text(&item, "token"),
                owner: text(&item, "owner"),
                device_id: text(&item, "device_id"),
                kind: DeviceKind::from_path(&kind)
                    .ok_or_else(|| PortError::Internal(format!("token of kind {kind:?}")))?,
                name: item.get("name").and_then(|v| v.as_s().ok()).cloned(),
                created_us: number(&item, "created_us"),
                expires_us: number(&item, "expires_us"),
            })
        }
        ("COUNT#DEVICES", Some(account_id)) => TableItem::DeviceCount {
            account_id,
            n: number(&item, "n"),
        },
        _ => TableItem::Other { pk, sk },
    })
}

impl DynamoStore {
    /// Every item of the table, whatever its app: one strongly consistent
    /// `Scan`, page after page. For tests only.
    pub async fn snapshot_table(&self) -> Result<TableSnapshot, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                items.push(classify(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(TableSnapshot { items }),
            }
        }
    }
}
