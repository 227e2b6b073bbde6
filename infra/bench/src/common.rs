//! What every measurement uses: the HTTP client of the local stack, test
//! data, percentiles, a process's CPU and memory.

use std::time::Instant;

use serde_json::Value;

pub use api_tests::{apns_token, random_username as username};

pub const FUNCTIONS: &[&str] = &["register", "tokens", "knock", "feedback"];

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `make bench`"))
}

pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    if samples.is_empty() {
        return f64::NAN;
    }
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, f64) {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        );
        if let Some(k) = key {
            req = req.header("Authorization", format!("Token {k}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let start = Instant::now();
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            ms,
        )
    }
}

/// Process CPU seconds (user + system) and peak RSS (KiB) from /proc.
pub fn proc_usage(pid: &str) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, hwm)
}
