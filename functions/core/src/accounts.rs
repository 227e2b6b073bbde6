//! `accounts/`: sign-up doubling as login, the caller's account, deletion.

use http::StatusCode;
use serde_json::{json, Value};

use crate::devices::remove_device_record;
use crate::error::{refuse_if_limited, ApiError};
use crate::model::{AccountRecord, ApiKeyRecord};
use crate::ports::{Admission, CreateAccountError, LimitKey, LimitName};
use crate::request::ApiRequest;
use crate::response::ApiResponse;
use crate::retry::{deadline_of, retry_conflicts, Backoff};
use crate::{secrets, Deps};

/// Resolves `Authorization: Token <key>` to its holder with one store read.
pub async fn authenticate(deps: &Deps, req: &ApiRequest) -> Result<ApiKeyRecord, ApiError> {
    let header = req
        .authorization
        .as_deref()
        .ok_or(ApiError::Unauthenticated(
            "Authentication credentials were not provided.",
        ))?;
    let mut parts = header.split_whitespace();
    let (Some(scheme), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::Unauthenticated("Invalid token header."));
    };
    if !scheme.eq_ignore_ascii_case("token") {
        return Err(ApiError::Unauthenticated(
            "Authentication credentials were not provided.",
        ));
    }
    if key.len() > 200 {
        return Err(ApiError::Unauthenticated("Invalid token."));
    }
    deps.store
        .get_api_key(&secrets::sha256_hex(key))
        .await?
        .ok_or(ApiError::Unauthenticated("Invalid token."))
}

/// Django's username rule: letters, digits and `@ . + - _`.
fn valid_username(username: &str) -> bool {
    username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
}

fn account_json(id: &str, username: &str, email: &str) -> Value {
    json!({ "id": id, "username": username, "email": email })
}

/// `POST accounts/`: creates the account (`201`), or logs in when the username
/// exists and the password matches (`200`). Either way a fresh API key.
pub async fn create_or_login(deps: &Deps, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut fields = req.fields().await?;
    // A field with an error gets a stand-in value (empty); `finish` then
    // refuses the body, so no stand-in is ever used.
    let username = fields.required_string("username", 30);
    if let Some(u) = &username {
        if u == "." || u == ".." {
            // They would name a path segment, not an account, in the URLs
            // of `accounts/<username>/`.
            fields.error("username", "This username is reserved.");
        } else if !valid_username(u) {
            fields.error(
                "username",
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
            );
        }
    }
    let username = username.unwrap_or_default();
    let password = fields.required_string("password", 100).unwrap_or_default();
    let email = fields
        .opt_string("email", 100)
        .unwrap_or_default()
        .trim()
        .to_string();
    if !email.is_empty() && !email_address::EmailAddress::is_valid(&email) {
        fields.error("email", "Enter a valid email address.");
    }
    fields.finish()?;

    // Attempts until one settles: a sign-up that loses the race for its
    // username becomes a login; a write that meets a concurrent one is
    // retried from its reads. The password is hashed, checked and the
    // sign-up counted once, whatever the number of attempts.
    let mut backoff = Backoff::for_request(deps, req);
    let mut state = Attempts::default();
    loop {
        let attempt = signup_or_login(
            deps,
            &username,
            &password,
            &email,
            req.source_ip.as_deref(),
            &mut state,
        );
        match attempt.await {
            Err(ApiError::Conflict(what)) => backoff.after_conflict(what).await?,
            other => return other,
        }
    }
}

/// Counts a sign-up against its source's limits: at each network it is
/// counted as, narrowest first, stopping at the first refusal (a /64 refused
/// at its own limit spends nothing of its /48's). Each under a keyed hash of
/// the network with the day's key (from a secret outside the table, the same
/// in every instance), so no address is stored, a table copy cannot be
/// hashed against addresses, and yesterday's counters cannot be linked to
/// today's.
async fn count_source(deps: &Deps, source_ip: Option<&str>) -> Result<(), ApiError> {
    let limits = deps.settings.signup_source_limits;
    let counted: Vec<_> = source_ip
        .map(secrets::source_networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, network)| (limits.of(kind), network))
        .filter(|(limit, _)| limit.max > 0)
        .collect();
    if counted.is_empty() {
        return Ok(());
    }
    let now = deps.clock.now_us();
    let key = deps
        .source_keys
        .key_of_day(now.div_euclid(86_400_000_000))
        .await?;
    for (limit, network) in counted {
        let source = secrets::keyed_hash(&key, &network);
        let admission = deps
            .store
            .count_hit(&LimitKey::SignupsFrom { source }, now, limit)
            .await?;
        refuse_if_limited(admission, LimitName::SignupsPerSource)?;
    }
    Ok(())
}

/// What earlier attempts of one `POST accounts/` already did.
#[derive(Default)]
struct Attempts {
    signup_counted: bool,
    password_hash: Option<String>,
    /// The account whose password was checked, and whether it matched.
    checked: Option<(String, bool)>,
}

async fn signup_or_login(
    deps: &Deps,
    username: &str,
    password: &str,
    email: &str,
    source_ip: Option<&str>,
    state: &mut Attempts,
) -> Result<ApiResponse, ApiError> {
    if let Some(account) = deps.store.get_account(username).await? {
        if account.deleting {
            // A deletion cut short: finish it (its devices, then the rest),
            // then the username is free again.
            finish_deletion(deps, &account.id, &account.username, &account.email).await?;
            return Err(ApiError::Conflict(
                "finished an interrupted deletion".into(),
            ));
        }
        return login(deps, &account, password, state).await;
    }
    if !state.signup_counted {
        count_source(deps, source_ip).await?;
        let admission = deps
            .store
            .count_hit(
                &LimitKey::Signups,
                deps.clock.now_us(),
                deps.settings.signup_limit,
            )
            .await?;
        refuse_if_limited(admission, LimitName::Signups)?;
        state.signup_counted = true;
    }
    let password_hash = match &state.password_hash {
        Some(hash) => hash.clone(),
        None => {
            let hash = secrets::hash_password(password)
                .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))?;
            state.password_hash = Some(hash.clone());
            hash
        }
    };
    let account = AccountRecord {
        id: crate::entropy::uuid_v4().to_string(),
        username: username.to_string(),
        email: email.to_string(),
        password_hash,
        created_us: deps.clock.now_us(),
        failed_logins: Vec::new(),
        deleting: false,
    };
    let key = secrets::new_api_key();
    let key_record = ApiKeyRecord {
        key_hash: secrets::sha256_hex(&key),
        account_id: account.id.clone(),
        username: account.username.clone(),
        email: account.email.clone(),
    };
    match deps.store.create_account(&account, &key_record).await {
        Ok(()) => {
            tracing::info!(account = %account.id, "account created");
            let mut body = account_json(&account.id, &account.username, &account.email);
            body["token"] = Value::String(key);
            Ok(ApiResponse::json(StatusCode::CREATED, body))
        }
        Err(CreateAccountError::UsernameTaken) => {
            Err(ApiError::Conflict("username taken meanwhile".into()))
        }
        Err(CreateAccountError::EmailTaken) => Err(ApiError::EmailTaken),
        Err(CreateAccountError::Port(e)) => Err(e.into()),
    }
}

async fn login(
    deps: &Deps,
    account: &AccountRecord,
    password: &str,
    state: &mut Attempts,
) -> Result<ApiResponse, ApiError> {
    let limit = deps.settings.login_limit;
    // Too many failures: the username is locked until the oldest of them
    // leaves the window, whatever the password (so guessing gains nothing).
    // As read: refusing needs no write.
    if let Some(retry_after_seconds) =
        limit.blocked_by_log(&account.failed_logins, deps.clock.now_us())
    {
        return Err(ApiError::rate_limited(
            LimitName::FailedLogins,
            retry_after_seconds,
        ));
    }
    let matches = match &state.checked {
        Some((id, matches)) if *id == account.id => *matches,
        _ => {
            let matches = secrets::verify_password(password, &account.password_hash);
            state.checked = Some((account.id.clone(), matches));
            matches
        }
    };
    if !matches {
        tracing::info!(account = %account.id, "login with wrong password");
        // Logged on condition that the log still has room: of concurrent
        // guesses that all read an open log, no more than the limit's worth
        // are answered 401; the rest are 429.
        if limit.max > 0 {
            let admission = deps
                .store
                .log_failed_login(&account.username, deps.clock.now_us(), limit)
                .await?;
            refuse_if_limited(admission, LimitName::FailedLogins)?;
        }
        return Err(ApiError::InvalidCredentials);
    }
    let key = secrets::new_api_key();
    let record = ApiKeyRecord {
        key_hash: secrets::sha256_hex(&key),
        account_id: account.id.clone(),
        username: account.username.clone(),
        email: account.email.clone(),
    };
    // The key is stored, and earlier failures forgiven, only if the log is
    // not full by now: a right guess racing wrong ones that locked the
    // username meanwhile is refused like any other login.
    match deps
        .store
        .add_login_key(&record, deps.clock.now_us(), limit)
        .await?
    {
        Admission::Admitted => {}
        // Deleted (or being deleted) meanwhile: start over from the username.
        Admission::Missing => return Err(ApiError::Conflict("account changed".into())),
        Admission::Limited {
            retry_after_seconds,
        } => {
            return Err(ApiError::rate_limited(
                LimitName::FailedLogins,
                retry_after_seconds,
            ))
        }
    }
    // Keys are capped: the oldest beyond the newest N are revoked. The
    // login has succeeded either way; a failure here leaves extra keys for
    // the next login to revoke.
    match deps
        .store
        .trim_api_keys(&account.id, deps.settings.api_key_limit)
        .await
    {
        Ok(0) => {}
        Ok(revoked) => tracing::info!(account = %account.id, revoked, "oldest API keys revoked"),
        Err(e) => {
            tracing::warn!(account = %account.id, error = %e, "could not revoke old API keys")
        }
    }
    let mut body = account_json(&account.id, &account.username, &account.email);
    body["token"] = Value::String(key);
    Ok(ApiResponse::json(StatusCode::OK, body))
}

/// `GET accounts/`: the caller's account.
pub async fn get_own(deps: &Deps, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    Ok(account_response(&caller))
}

/// The caller, if `username` is the caller's own; any other name, existing
/// or not, is `404` (never reveal which usernames exist).
async fn own_account(
    deps: &Deps,
    req: &ApiRequest,
    username: &str,
) -> Result<ApiKeyRecord, ApiError> {
    let caller = authenticate(deps, req).await?;
    if caller.username != username {
        return Err(ApiError::NotFound);
    }
    Ok(caller)
}

fn account_response(caller: &ApiKeyRecord) -> ApiResponse {
    ApiResponse::json(
        StatusCode::OK,
        account_json(&caller.account_id, &caller.username, &caller.email),
    )
}

/// `GET accounts/<username>/`: the caller's own account.
pub async fn get_named(
    deps: &Deps,
    req: &ApiRequest,
    username: &str,
) -> Result<ApiResponse, ApiError> {
    Ok(account_response(&own_account(deps, req, username).await?))
}

/// `DELETE accounts/<username>/`: the account and everything it owns (the
/// order that makes this hold under races: `push-aws`, `dynamo/deletion.rs`).
pub async fn delete_named(
    deps: &Deps,
    req: &ApiRequest,
    username: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = own_account(deps, req, username).await?;
    retry_conflicts(&*deps.clock, deadline_of(deps, req), || {
        delete_account(deps, &caller)
    })
    .await?;
    Ok(ApiResponse::no_content())
}

async fn delete_account(deps: &Deps, caller: &ApiKeyRecord) -> Result<(), ApiError> {
    // From the mark on, nothing can be added to the account; then every
    // device (read consistently after it) goes, and with the devices the
    // means to create tokens; then the rest.
    deps.store
        .begin_account_deletion(&caller.account_id, &caller.username)
        .await?;
    finish_deletion(deps, &caller.account_id, &caller.username, &caller.email).await
}

/// Everything of a deletion after its mark: the account's devices (and
/// their endpoints), then its keys, tokens, email and username. Run again
/// by whoever finds the mark — the client's retry, or the next sign-up or
/// login of that username — it finishes what was cut short.
async fn finish_deletion(
    deps: &Deps,
    account_id: &str,
    username: &str,
    email: &str,
) -> Result<(), ApiError> {
    // One after another: every device transaction also counts the account's
    // devices on one item, so concurrent ones would only conflict. Their
    // tokens go with the rest below.
    let devices = deps.store.list_devices(account_id).await?;
    for device in &devices {
        remove_device_record(deps, device).await?;
    }
    deps.store
        .finish_account_deletion(account_id, username, email)
        .await?;
    tracing::info!(account = %account_id, devices = devices.len(), "account deleted");
    Ok(())
}
