//! Every key of the single table, built in one place.
//!
//! | item            | pk                         | sk              | gsi1pk / gsi1sk          |
//! |-----------------|----------------------------|-----------------|--------------------------|
//! | account         | `USER#<username>`          | `ACCOUNT`       |                          |
//! | email claim     | `EMAIL#<lower-case email>` | `EMAIL`         |                          |
//! | API key         | `KEY#<sha256(key)>`        | `KEY`           |                          |
//! | the account's copy of an API key | `ACCT#<account id>` | `KEY#<sha256(key)>` |      |
//! | device          | `ACCT#<account id>`        | `DEVICE#<id>`   | `ENDPOINT#<sha256(arn)>` / `DEVICE#<id>`; while its APNs environment is unknown also `gsi2pk` / `gsi2sk`: the same of its sandbox endpoint |
//! | push-token claim| `PUSH#<kind>#<sha256(tok)>`| `PUSH`          |                          |
//! | whitelist token (the knock's) | `TOKEN#<token>` | `TOKEN`      |                          |
//! | whitelist token (the owner's) | `ACCT#<account id>` | `TOKEN#<token>` |                   |
//! | token creations in a window | `ACCT#<account id>` | `LIMIT#TOKENS#<window>` |            |
//! | sign-ups in a window | `LIMIT#SIGNUPS`       | `LIMIT#<window>` |                         |
//! | sign-ups from one source in a window | `LIMIT#SIGNUPS#<hmac(source)>` | `LIMIT#<window>` | |
//! | new devices in a window | `ACCT#<account id>` | `LIMIT#DEVICES#<window>` |                |
//! | the account's device count | `ACCT#<account id>` | `COUNT#DEVICES` |                     |
//!
//! Every app but the default one has its own namespace (`<app>/` before
//! the keys above that are found by what a client sends: usernames, emails,
//! API keys, push-token claims, whitelist tokens, sign-up counters), so one
//! app's accounts, devices and tokens cannot be found through another's base
//! URL. The partitions of accounts (`ACCT#<random id>`), reached only through
//! those, and `gsi1` (endpoint ARNs, unique per platform application) need
//! none. `gsi2` finds a device by its second endpoint, which it has only while
//! its APNs environment is unknown.
//!
//! Account and token items also carry a sliding log of failed logins or
//! knocks (`h0`, `h1`, ...); counter items carry `hits` and expire by TTL
//! (see `limits`).
//!
//! Everything an account owns has an item in the account's partition, so one
//! strongly consistent `Query` finds all of it right after it was written:
//! its devices (the knock's fan-out), its tokens (listing, device deletion)
//! and its API keys (account deletion). `gsi1`, which DynamoDB updates a
//! moment late, serves only the feedback function, which may read it late:
//! it finds a device by its SNS endpoint.

use push_core::model::DeviceKind;
use push_core::secrets::sha256_hex;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2PK: &str = "gsi2pk";
/// The table's TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";

pub const DEVICE_PREFIX: &str = "DEVICE#";
pub const TOKEN_PREFIX: &str = "TOKEN#";
pub const KEY_PREFIX: &str = "KEY#";
pub const LIMIT_PREFIX: &str = "LIMIT#";

/// An app's key namespace: empty for the default app (its keys are as they
/// were before there were apps), else `<app>/`.
pub fn namespace(app: Option<&str>) -> String {
    app.map(|a| format!("{a}/")).unwrap_or_default()
}

pub fn account(ns: &str, username: &str) -> (String, String) {
    (format!("{ns}USER#{username}"), "ACCOUNT".into())
}

pub fn email(ns: &str, email: &str) -> (String, String) {
    (
        format!("{ns}EMAIL#{}", email.to_lowercase()),
        "EMAIL".into(),
    )
}

pub fn api_key(ns: &str, key_hash: &str) -> (String, String) {
    (format!("{ns}KEY#{key_hash}"), "KEY".into())
}

/// The partition of everything an account owns in the base table, and its
/// `gsi1` partition.
pub fn owner(account_id: &str) -> String {
    format!("ACCT#{account_id}")
}

pub fn device(owner_id: &str, device_id: &str) -> (String, String) {
    (owner(owner_id), format!("{DEVICE_PREFIX}{device_id}"))
}

/// Push tokens can be 4 KB; partition keys must stay under 2 KB, so hash.
pub fn claim(ns: &str, kind: DeviceKind, registration_id: &str) -> (String, String) {
    (
        format!("{ns}PUSH#{}#{}", kind.as_str(), sha256_hex(registration_id)),
        "PUSH".into(),
    )
}

/// The `gsi1` partition that finds a device by its SNS endpoint (feedback).
pub fn endpoint(endpoint_arn: &str) -> String {
    format!("ENDPOINT#{}", sha256_hex(endpoint_arn))
}

/// The service-wide counter of account creations in one fixed window.
pub fn signup_counter(ns: &str, window: i64) -> (String, String) {
    (
        format!("{ns}LIMIT#SIGNUPS"),
        format!("{LIMIT_PREFIX}{window}"),
    )
}

/// The counter of sign-ups from one source (a keyed hash of its address).
pub fn signup_source_counter(ns: &str, source: &str, window: i64) -> (String, String) {
    (
        format!("{ns}LIMIT#SIGNUPS#{source}"),
        format!("{LIMIT_PREFIX}{window}"),
    )
}

/// The counter of an account's new devices in one fixed window.
pub fn device_registration_counter(account_id: &str, window: i64) -> (String, String) {
    (owner(account_id), format!("{LIMIT_PREFIX}DEVICES#{window}"))
}

/// How many devices an account has (attribute `n`), kept by the device
/// transactions themselves.
pub fn device_count(account_id: &str) -> (String, String) {
    (owner(account_id), "COUNT#DEVICES".into())
}

/// The counter of an account's token creations in one fixed window; in the
/// account's partition, so deleting the account finds it.
pub fn token_counter(account_id: &str, window: i64) -> (String, String) {
    (owner(account_id), format!("{LIMIT_PREFIX}TOKENS#{window}"))
}

pub fn token(ns: &str, token: &str) -> (String, String) {
    (format!("{ns}{TOKEN_PREFIX}{token}"), "TOKEN".into())
}

/// The owner's copy of a whitelist token, in the account's partition.
pub fn owned_token(account_id: &str, token: &str) -> (String, String) {
    (owner(account_id), format!("{TOKEN_PREFIX}{token}"))
}

/// The account's copy of one of its API keys, in the account's partition.
pub fn owned_api_key(account_id: &str, key_hash: &str) -> (String, String) {
    (owner(account_id), format!("{KEY_PREFIX}{key_hash}"))
}
