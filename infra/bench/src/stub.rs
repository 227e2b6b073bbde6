//! A stand-in for DynamoDB and SNS that answers a knock's three calls at
//! once (`UpdateItem` → the token, `Query` → one device, `Publish` → a
//! message id), so that a fresh `knock` bootstrap's first knock measures the
//! SDK's own first-call costs (set-up, signing, first connection) and nothing
//! of a backend.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

/// The whitelist token the stub knows.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

fn s(v: &str) -> Value {
    json!({ "S": v })
}

fn n(v: i64) -> Value {
    json!({ "N": v.to_string() })
}

fn token_item() -> Value {
    json!({
        "pk": s(&format!("TOKEN#{TOKEN}")), "sk": s("TOKEN"), "token": s(TOKEN),
        "owner": s("owner"), "device_id": s("device"), "kind": s("apns"),
        "created_us": n(0), "expires_us": n(i64::MAX / 2), "expires_at": n(i64::MAX / 2_000_000),
    })
}

fn device_item() -> Value {
    json!({
        "pk": s("ACCT#owner"), "sk": s("DEVICE#device"), "gsi1pk": s("ENDPOINT#x"), "gsi1sk": s("DEVICE#device"),
        "id": s("device"), "owner": s("owner"), "kind": s("apns"), "registration_id": s("ab"),
        "active": json!({ "BOOL": true }), "created_us": n(0),
        "endpoint_arn": s("arn:aws:sns:us-east-1:123456789012:endpoint/APNS_SANDBOX/app/x"),
    })
}

async fn answer(req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let _ = req.into_body().collect().await;
    let (content_type, body) = if target.ends_with(".UpdateItem") {
        (
            "application/x-amz-json-1.0",
            json!({ "Attributes": token_item() }).to_string(),
        )
    } else if target.ends_with(".Query") {
        (
            "application/x-amz-json-1.0",
            json!({ "Items": [device_item()], "Count": 1, "ScannedCount": 1 }).to_string(),
        )
    } else {
        ("text/xml", "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>".to_string())
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert("content-type", content_type.parse().expect("header"));
    resp
}

/// Starts the stub on a free port; returns its URL.
pub async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}
