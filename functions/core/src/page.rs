//! The page object of list endpoints: `{"count", "next", "previous", "results"}`.
//!
//! Pages are cursor-based over a stable sort key, so following `next` walks
//! every item exactly once even while new items are created. `?after=<key>`
//! starts after an item, `?before=<key>` ends before one; both keys are opaque.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::request::ApiRequest;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1000;

/// Builds the page object for `items`, which must already be sorted in display
/// order by the strictly monotonic `sort_key`.
pub fn page<T>(
    req: &ApiRequest,
    base_url: Option<&str>,
    items: &[T],
    sort_key: impl Fn(&T) -> String,
    render: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let size = match req.query_param("page_size") {
        None | Some("") => DEFAULT_PAGE_SIZE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    "page_size",
                    format!("Ensure this value is a whole number from 1 to {MAX_PAGE_SIZE}."),
                ))
            }
        },
    };
    let decode = |name: &str| -> Result<Option<String>, ApiError> {
        match req.query_param(name) {
            None | Some("") => Ok(None),
            Some(raw) => URL_SAFE_NO_PAD
                .decode(raw)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(Some)
                .ok_or_else(|| ApiError::field(name, "Invalid cursor.")),
        }
    };
    let after = decode("after")?;
    let before = decode("before")?;
    let keys: Vec<String> = items.iter().map(&sort_key).collect();
    // Display order is ascending by `position`; find the window.
    let (start, end) = match (&after, &before) {
        (Some(a), _) => {
            let start = keys.iter().position(|k| k > a).unwrap_or(keys.len());
            (start, (start + size).min(keys.len()))
        }
        (None, Some(b)) => {
            let end = keys.iter().position(|k| k >= b).unwrap_or(keys.len());
            (end.saturating_sub(size), end)
        }
        (None, None) => (0, size.min(keys.len())),
    };
    let base = base_url
        .map(|b| b.trim_end_matches('/').to_string())
        .unwrap_or_else(|| req.origin.clone());
    let link = |param: &str, key: &str| -> Value {
        let cursor = URL_SAFE_NO_PAD.encode(key.as_bytes());
        let mut url = format!("{base}{}?{param}={cursor}", req.path);
        if size != DEFAULT_PAGE_SIZE {
            url.push_str(&format!("&page_size={size}"));
        }
        Value::String(url)
    };
    let next = if end < keys.len() && end > start {
        link("after", &keys[end - 1])
    } else {
        Value::Null
    };
    let previous = if start > 0 && start < keys.len() {
        link("before", &keys[start])
    } else {
        Value::Null
    };
    let results: Vec<Value> = items[start..end].iter().map(render).collect();
    Ok(json!({
        "count": items.len(),
        "next": next,
        "previous": previous,
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &[(&str, &str)]) -> ApiRequest {
        ApiRequest {
            origin: "https://push.example".into(),
            path: "/api/v1/tokens/".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn cursor_of(url: &str) -> (String, String) {
        let q = url.split('?').nth(1).unwrap();
        let first = q.split('&').next().unwrap();
        let (k, v) = first.split_once('=').unwrap();
        (k.to_string(), v.to_string())
    }

    #[test]
    fn next_links_walk_every_item_once_and_previous_walks_back() {
        let items: Vec<u32> = (0..23).collect();
        let key = |i: &u32| format!("{i:05}");
        let render = |i: &u32| json!(i);
        let mut seen = Vec::new();
        let mut query: Vec<(String, String)> = vec![("page_size".into(), "5".into())];
        let mut pages = Vec::new();
        loop {
            let q: Vec<(&str, &str)> = query
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let p = page(&req(&q), None, &items, key, render).unwrap();
            assert_eq!(p["count"], 23);
            seen.extend(
                p["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32),
            );
            pages.push(p.clone());
            match p["next"].as_str() {
                Some(url) => {
                    assert!(url.starts_with("https://push.example/api/v1/tokens/?after="));
                    assert!(url.ends_with("&page_size=5"));
                    let (k, v) = cursor_of(url);
                    query = vec![(k, v), ("page_size".into(), "5".into())];
                }
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert_eq!(pages.len(), 5);
        assert!(pages[0]["previous"].is_null());
        // previous of the last page leads back to the fourth page.
        let (k, v) = cursor_of(pages[4]["previous"].as_str().unwrap());
        let back = page(
            &req(&[(&k, &v), ("page_size", "5")]),
            None,
            &items,
            key,
            render,
        )
        .unwrap();
        assert_eq!(back["results"], pages[3]["results"]);
    }

    #[test]
    fn page_size_bounds_and_bad_cursor() {
        let items: Vec<u32> = (0..3).collect();
        let key = |i: &u32| format!("{i:05}");
        for bad in ["0", "1001", "x", "-1"] {
            assert_eq!(
                page(&req(&[("page_size", bad)]), None, &items, key, |i| json!(i))
                    .unwrap_err()
                    .status(),
                400
            );
        }
        assert_eq!(
            page(&req(&[("after", "***")]), None, &items, key, |i| json!(i))
                .unwrap_err()
                .status(),
            400
        );
        let p = page(&req(&[]), Some("https://api.example/"), &items, key, |i| {
            json!(i)
        })
        .unwrap();
        assert_eq!(p["results"], json!([0, 1, 2]));
        assert!(p["next"].is_null() && p["previous"].is_null());
    }
}
