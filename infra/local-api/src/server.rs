//! A small HTTP server that turns each request into the `lambda_http`
//! request API Gateway would deliver and calls the function's handler.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use push_aws::Deployment;
use tokio::net::TcpListener;

use crate::template::Route;

/// API Gateway's own limit is 10 MB; the handlers refuse more than 16 KiB.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

pub struct State {
    pub apps: Deployment,
    pub routes: Vec<Route>,
    /// Take the source address from [`SOURCE_HEADER`] rather than the
    /// connection's peer (`LOCAL_API_TRUST_SOURCE_HEADER=1`; off by default).
    /// Test-only: API Gateway sets `sourceIp` itself, so nothing deployed
    /// has a way to choose it.
    pub source_header: bool,
}

/// The header a test names its request's source address in.
pub const SOURCE_HEADER: &str = "x-local-source-ip";

fn json_response(status: u16, body: &str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves one request: route by the template, call the handler in-process.
pub async fn dispatch(
    state: &State,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if let Some(function) = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|p| p.strip_suffix("/invocations"))
    {
        return invoke(state, function, body).await;
    }
    let Some((route, params)) = state
        .routes
        .iter()
        .find_map(|r| r.matches(parts.method.as_str(), &path).map(|p| (r, p)))
    else {
        return json_response(404, r#"{"detail":"Not found."}"#);
    };
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return json_response(413, r#"{"detail":"Request body is too large."}"#),
    };
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let uri = format!(
        "http://{host}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(lambda_http::Body::from(body.to_vec())) else {
        return json_response(400, r#"{"detail":"Malformed request."}"#);
    };
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    let pairs: Vec<(String, String)> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    for (k, v) in pairs {
        query.entry(k).or_default().push(v);
    }
    // As API Gateway reports the client's address (`requestContext.http.sourceIp`).
    let mut context = ApiGatewayV2httpRequestContext::default();
    let named = state
        .source_header
        .then(|| parts.headers.get(SOURCE_HEADER))
        .flatten()
        .and_then(|v| v.to_str().ok());
    context.http.source_ip = Some(named.map_or_else(|| peer.ip().to_string(), str::to_string));
    let request = request
        .with_query_string_parameters(query)
        .with_path_parameters(params.into_iter().collect::<HashMap<_, _>>())
        .with_request_context(RequestContext::ApiGatewayV2(context));

    let response = match route.function.as_str() {
        "RegisterFunction" => register::handle(&state.apps, request).await,
        "TokensFunction" => tokens::handle(&state.apps, request).await,
        "KnockFunction" => knock::handle(&state.apps, request).await,
        other => {
            tracing::error!(
                function = other,
                "template routes to a function the router does not know"
            );
            return json_response(500, r#"{"detail":"Internal server error."}"#);
        }
    };
    let (parts, body) = response.into_parts();
    let mut out = hyper::Response::new(Full::new(Bytes::copy_from_slice(body.as_ref())));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

/// Lambda's Invoke API for the functions that API Gateway does not front
/// (the SNS-triggered `feedback`): the body is the event.
async fn invoke(state: &State, function: &str, body: Incoming) -> hyper::Response<Full<Bytes>> {
    let Ok(collected) = Limited::new(body, MAX_REQUEST_BYTES).collect().await else {
        return json_response(413, r#"{"errorMessage":"event too large"}"#);
    };
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&collected.to_bytes()) else {
        return json_response(400, r#"{"errorMessage":"the event is not JSON"}"#);
    };
    match function {
        "FeedbackFunction" => match feedback::handle_within(state.apps.default_app(), &event, None)
            .await
        {
            Ok(result) => json_response(200, &result.to_string()),
            Err(e) => json_response(
                502,
                &serde_json::json!({"errorType": "FunctionError", "errorMessage": e.to_string()})
                    .to_string(),
            ),
        },
        _ => json_response(404, r#"{"errorMessage":"no such function"}"#),
    }
}

/// Accepts connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut shutdown => return Ok(()),
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(dispatch(&state, req, peer).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
