//! The SDK clients of the functions (one HTTPS stack, the request's time
//! budget on every call) and every app's ports built on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use push_core::budget;
use push_core::ports::SystemClock;
use push_core::{Deps, Settings};

use crate::config::{App, AppConfig};
use crate::lazy::LazyClient;
use crate::source_keys::SecretSourceKeys;
use crate::{DynamoStore, SnsGateway};

/// The roots AWS's endpoints chain to, compiled in (Amazon Trust Services:
/// Amazon Root CA 1 to 4 and Starfield Services Root Certificate Authority -
/// G2; their SHA-256 fingerprints are in docs/SECURITY.md): a cold start
/// decodes five certificates, not the system's hundred and more
/// (docs/BENCHMARKS.md, "Where init goes").
pub const AWS_ROOTS_PEM: &str = include_str!("../trust/aws-roots.pem");

/// Which roots the functions' TLS trusts (`TLS_TRUST_ROOTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// `built-in` (the default): AWS's roots alone ([`AWS_ROOTS_PEM`]).
    BuiltIn,
    /// `system`: the system's store (`SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// honoured), for an endpoint that chains elsewhere: a VPC endpoint
    /// behind a TLS-inspecting proxy, a private CA.
    System,
}

impl TrustRoots {
    pub fn parse(value: Option<&str>) -> Result<TrustRoots, String> {
        match value.map(str::trim) {
            None | Some("") | Some("built-in") => Ok(TrustRoots::BuiltIn),
            Some("system") => Ok(TrustRoots::System),
            Some(other) => Err(format!(
                "TLS_TRUST_ROOTS {other:?}: \"built-in\" (AWS's roots) or \"system\""
            )),
        }
    }

    /// `TLS_TRUST_ROOTS` (`AppConfig::from_env` refuses a bad value; here it
    /// reads as the default).
    pub fn from_env() -> TrustRoots {
        Self::parse(std::env::var("TLS_TRUST_ROOTS").ok().as_deref()).unwrap_or(TrustRoots::BuiltIn)
    }
}

/// The SDK's HTTPS client: rustls with ring for its crypto (one provider; the
/// SDK's default, aws-lc, is C code that makes each function ~2 MB larger),
/// trusting the roots `TLS_TRUST_ROOTS` names.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    https_client_trusting(TrustRoots::from_env())
}

/// [`https_client`] trusting `roots`.
pub fn https_client_trusting(roots: TrustRoots) -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{
        rustls_provider::CryptoMode, Provider, TlsContext, TrustStore,
    };
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    match roots {
        TrustRoots::System => builder.build_https(),
        TrustRoots::BuiltIn => {
            let store = TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
            let context = TlsContext::builder()
                .with_trust_store(store)
                .build()
                .expect("a trust store alone is a valid TLS context");
            builder.tls_context(context).build_https()
        }
    }
}

/// The SDK configuration: bounded retries and timeouts so a slow dependency
/// becomes a `503` well before the Lambda's own timeout (the clients of
/// [`build_deployment`] also cut each call's timeouts to the request's
/// budget, [`RequestBudget`]), and the region, credentials and endpoint
/// from the SDK's standard sources.
///
/// Where Lambda runs the functions, its environment holds all three
/// (`AWS_REGION`, `AWS_ACCESS_KEY_ID` and the rest, `AWS_ENDPOINT_URL` when
/// a local stack sets one): then they are taken from there, as the default
/// chain's first links would take them, without the rest of the chain
/// (profile files, SSO, IMDS) — a third of a millisecond of every cold
/// start (docs/BENCHMARKS.md, "Where init goes"). Anywhere else (no region
/// or no key in the environment, `AWS_PROFILE` naming a profile, or a
/// service's own `AWS_ENDPOINT_URL_<SERVICE>`), the whole default chain.
pub async fn load_sdk_config() -> SdkConfig {
    let retry = RetryConfig::standard().with_max_attempts(3);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(budget::ATTEMPT_TIMEOUT)
        .operation_timeout(budget::OPERATION_TIMEOUT)
        .build();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    // A service's own endpoint (`AWS_ENDPOINT_URL_DYNAMODB`, …) is the
    // default chain's to honour.
    let service_endpoint = std::env::vars_os().any(|(k, _)| {
        k.to_str()
            .is_some_and(|k| k.starts_with("AWS_ENDPOINT_URL_"))
    });
    let from_environment = region.is_some()
        && env("AWS_ACCESS_KEY_ID").is_some()
        && env("AWS_PROFILE").is_none()
        && !service_endpoint;
    if !from_environment {
        return aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(retry)
            .timeout_config(timeouts)
            .load()
            .await;
    }
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let ignore_endpoints =
        env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.unwrap_or_default()))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .http_client(https_client())
        .retry_config(retry)
        .timeout_config(timeouts)
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio's sleep"))
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    if let Some(url) = env("AWS_ENDPOINT_URL").filter(|_| !ignore_endpoints) {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// Bounds every SDK call of a client by the budget of the operation that
/// makes it ([`push_core::budget`]): when the call starts, its operation and
/// attempt timeouts become the configured ones or what is left of the budget
/// (less the margin to answer) if that is less; before each attempt is sent,
/// with too little left, it fails at once without being sent. An interceptor
/// on the client, not a `customize()` at each call site: no call can forget
/// it, the device store's included.
///
/// The refusal is an interceptor error before transmission, which the SDK
/// reports as a dispatch failure (transient: `503`) and does not retry.
#[derive(Debug)]
pub struct RequestBudget;

/// Why a call was not sent.
#[derive(Debug)]
pub struct BudgetSpent;

impl std::fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's time budget is spent")
    }
}

impl std::error::Error for BudgetSpent {}

impl Intercept for RequestBudget {
    fn name(&self) -> &'static str {
        "RequestBudget"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if budget::remaining().is_none() {
            return Ok(());
        }
        // Spent already: the smallest timeouts; the call is refused before
        // it is sent (`read_before_transmit`).
        let bounds = budget::call_bounds().unwrap_or(budget::CallBounds {
            operation: budget::MIN_CALL,
            attempt: budget::MIN_CALL,
        });
        // Merged over the client's: the connect timeout stays.
        cfg.interceptor_state().store_put(
            TimeoutConfig::builder()
                .operation_timeout(bounds.operation)
                .operation_attempt_timeout(bounds.attempt)
                .build(),
        );
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match budget::call_bounds() {
            Some(_) => Ok(()),
            None => Err(Box::new(BudgetSpent)),
        }
    }
}

/// The DynamoDB client of the functions: the SDK configuration, each call
/// bounded by its request's budget.
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(RequestBudget)
            .build(),
    )
}

/// The Secrets Manager client of the functions (the source key), likewise.
pub fn secrets_client(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(RequestBudget)
            .build(),
    )
}

/// The SNS client of the functions, likewise; SNS's own throttling answer
/// is retried like any other ([`SnsThrottled`]).
pub fn sns_client(sdk: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(sdk)
            .interceptor(RequestBudget)
            .retry_classifier(SnsThrottled)
            .build(),
    )
}

/// SNS answers a request over its account's rate with `429 Throttled`
/// (`ThrottledException`), a code the SDK's standard classifiers do not know
/// as throttling (they know `ThrottlingException`) and a status they do not
/// count as transient: without this, a throttled publish or endpoint call
/// would fail at its first attempt. Retried with the throttling back-off,
/// within the same attempts and budget as every other retry.
#[derive(Debug)]
pub struct SnsThrottled;

impl aws_sdk_sns::config::retry::ClassifyRetry for SnsThrottled {
    fn classify_retry(
        &self,
        ctx: &aws_sdk_sns::config::interceptors::InterceptorContext,
    ) -> aws_sdk_sns::config::retry::RetryAction {
        match ctx.response() {
            Some(response) if response.status().as_u16() == 429 => {
                aws_sdk_sns::config::retry::RetryAction::throttling_error()
            }
            _ => aws_sdk_sns::config::retry::RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "SnsThrottled"
    }
}

/// Every app's ports, built once; the handlers share them for the
/// process's life.
#[derive(Clone)]
pub struct Deployment {
    default_app: Deps,
    by_name: HashMap<String, Deps>,
}

impl Deployment {
    /// The default app's ports (also what the feedback function uses: it
    /// finds devices by endpoint, whatever their app).
    pub fn default_app(&self) -> &Deps {
        &self.default_app
    }

    /// The app a request's route names: its `{app}` path parameter
    /// (`/{app}/api/v1/…`), or the default app for a route without one
    /// (`/api/v1/…`); `None` for an unknown app.
    pub fn app(&self, name: Option<&str>) -> Option<&Deps> {
        match name {
            None => Some(&self.default_app),
            Some(name) => self.by_name.get(name),
        }
    }

    /// Every app's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort();
        names
    }
}

/// Builds every app's ports once.
pub fn build_deployment(sdk: &SdkConfig, config: &AppConfig) -> Deployment {
    // Built on a thread of their own while the runtime starts and polls for
    // the first event (`lazy`), not before.
    let dynamo = {
        let sdk = sdk.clone();
        LazyClient::new(move || dynamodb_client(&sdk))
    };
    let sns = {
        let sdk = sdk.clone();
        LazyClient::new(move || sns_client(&sdk))
    };
    // One key for every app: the counters of each app are in its own
    // namespace already. Shared, so an instance reads the secret once a day.
    // Its client is built at the first sign-up, not here.
    let secrets_sdk = sdk.clone();
    let source_keys: Arc<dyn push_core::ports::SourceKeys> = Arc::new(SecretSourceKeys::new(
        move || secrets_client(&secrets_sdk),
        config.source_key_secret.clone().unwrap_or_default(),
    ));
    let applications: Vec<(String, String)> = std::iter::once(&config.default_app)
        .chain(&config.apps)
        .flat_map(|app| {
            app.application_arns
                .iter()
                .map(|arn| (arn.clone(), app.name.clone()))
        })
        .collect();
    let deps = |app: &App, namespace: Option<&str>| Deps {
        store: Arc::new(DynamoStore::for_app(
            dynamo.clone(),
            config.table_name.clone(),
            namespace,
        )),
        push: Arc::new(SnsGateway::with_client(sns.clone(), &app.application_arns)),
        clock: Arc::new(SystemClock),
        source_keys: source_keys.clone(),
        settings: Settings {
            app: app.name.clone(),
            applications: applications.clone(),
            ..config.settings.clone()
        },
    };
    let default_app = deps(&config.default_app, None);
    let mut by_name = HashMap::from([(config.default_app.name.clone(), default_app.clone())]);
    for app in &config.apps {
        by_name.insert(app.name.clone(), deps(app, Some(&app.name)));
    }
    crate::startup::mark("ports");
    // DynamoDB first: a knock's first call is to the table.
    crate::lazy::warm_in_turn(vec![dynamo.force_later(), sns.force_later()]);
    Deployment {
        default_app,
        by_name,
    }
}

/// The default app's ports alone.
pub fn build_deps(sdk: &SdkConfig, config: &AppConfig) -> Deps {
    build_deployment(sdk, config).default_app
}
