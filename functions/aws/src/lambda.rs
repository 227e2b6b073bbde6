//! The glue between `lambda_http` and the protocol: converting requests and
//! responses, and the start-up every function's `main` shares.

use std::convert::Infallible;

use lambda_http::{Body, Request, RequestExt, Response};
use push_core::budget;
use push_core::error::respond;
use push_core::request::ApiRequest;
use push_core::{ApiError, ApiResponse, Deps};

use crate::{build_deployment, load_sdk_config, AppConfig, Deployment};

/// Reduces an API Gateway request to what the protocol needs; `None` for a
/// path outside `/api/v1/`.
pub fn api_request(req: &Request) -> Option<ApiRequest> {
    let path = req.uri().path().to_string();
    let segments = ApiRequest::segments_of(&path)?;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let scheme = header("x-forwarded-proto")
        .or_else(|| req.uri().scheme_str().map(str::to_string))
        .unwrap_or_else(|| "https".into());
    let host = header("host")
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let params = req.query_string_parameters();
    let mut query: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if query.is_empty() {
        query = req
            .uri()
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
    }
    Some(ApiRequest {
        method: req.method().clone(),
        segments,
        query,
        content_type: header("content-type"),
        authorization: header("authorization"),
        origin: format!("{scheme}://{host}"),
        path,
        body: bytes::Bytes::copy_from_slice(req.body().as_ref()),
        // The invocation's deadline (epoch milliseconds), so that retries stop
        // in time to answer before the function's own timeout.
        deadline_us: req
            .lambda_context_ref()
            .and_then(|c| i64::try_from(c.deadline).ok())
            .map(|ms| ms.saturating_mul(1_000)),
        source_ip: match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
                context.http.source_ip.clone()
            }
            _ => None,
        },
    })
}

/// Renders a protocol response for API Gateway.
pub fn lambda_response(response: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(response.status);
    let body = match &response.body {
        Some(_) => {
            builder = builder.header("content-type", "application/json");
            Body::from(response.body_bytes())
        }
        None => Body::Empty,
    };
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::from(r#"{"detail":"Internal server error."}"#));
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Serves one request with the router of the function named `function`,
/// with the ports of the app its route names (the `{app}` of
/// `/{app}/api/v1/…`; the default app for `/api/v1/…`). An unknown app is a
/// `404`.
pub async fn serve<F, Fut>(
    apps: &Deployment,
    req: Request,
    function: &str,
    route: F,
) -> Response<Body>
where
    F: FnOnce(Deps, ApiRequest) -> Fut,
    Fut: std::future::Future<Output = Result<ApiResponse, ApiError>>,
{
    let params = req.path_parameters();
    let result = match (apps.app(params.first("app")), api_request(&req)) {
        // Every AWS call of the operation is bounded by what is left before
        // the invocation's deadline (the local router: the functions'
        // timeout from now), so it answers in time, with `503` at worst.
        (Some(deps), Some(api)) => budget::within(api.deadline_us, route(deps.clone(), api)).await,
        _ => Err(ApiError::NotFound),
    };
    lambda_response(respond(function, result))
}

/// The system's CA bundles, one file each, where Amazon Linux 2023 (the
/// `provided.al2023` runtime), Debian and Alpine keep them.
const CA_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// With `TLS_TRUST_ROOTS=system`, the SDK's HTTPS client loads the trusted
/// roots when the first AWS client is built (`rustls-native-certs`): the
/// system's CA bundle *and* every file of
/// its certificate directory, which on Amazon Linux 2023 and Debian hold the
/// same certificates again, each PEM-decoded with a constant-time base64
/// decoder — most of a cold start's own work (docs/BENCHMARKS.md, "Where it
/// goes"). Unless `SSL_CERT_FILE` or `SSL_CERT_DIR` says otherwise, point it
/// at the bundle alone: the same roots, read once. Only an existing bundle
/// is named; without one the usual search applies.
///
/// Called before anything else runs: it sets a process environment variable.
pub fn prefer_one_ca_bundle() -> Option<&'static str> {
    if std::env::var_os("SSL_CERT_FILE").is_some()
        || std::env::var_os("SSL_CERT_DIR").is_some()
        || crate::deployment::TrustRoots::from_env() != crate::deployment::TrustRoots::System
    {
        return None;
    }
    let bundle = CA_BUNDLES
        .iter()
        .copied()
        .find(|b| std::path::Path::new(b).is_file())?;
    std::env::set_var("SSL_CERT_FILE", bundle);
    Some(bundle)
}

/// Configuration from the environment and the AWS clients, built once.
/// With `STARTUP_TIMINGS=1` (`make bench`), how long each phase took, in
/// microseconds since `main` began, as one line on stderr.
pub async fn deployment_from_env() -> Result<Deployment, String> {
    crate::startup::begin();
    prefer_one_ca_bundle();
    let config = AppConfig::from_env()?;
    crate::startup::mark("config");
    let sdk = load_sdk_config().await;
    crate::startup::mark("sdk_config");
    let deployment = build_deployment(&sdk, &config);
    crate::startup::report();
    Ok(deployment)
}

/// What every HTTP function's `main` does: read the configuration and build the
/// AWS clients once, then serve invocations until the runtime stops us.
pub async fn run<F, Fut>(function: &'static str, route: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Deps, ApiRequest) -> Fut + Clone + Send + Sync,
    Fut: std::future::Future<Output = Result<ApiResponse, ApiError>> + Send,
{
    crate::startup::begin();
    lambda_http::tracing::init_default_subscriber();
    crate::startup::mark("log_subscriber");
    let apps = deployment_from_env().await?;
    let apps = &apps;
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let route = route.clone();
        async move { Ok::<_, Infallible>(serve(apps, req, function, route).await) }
    }))
    .await
}
