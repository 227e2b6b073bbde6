//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per
//! event, which CloudWatch Logs turns into metrics. No dependency, no call on
//! the hot path, and never an identifier in a dimension.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "ChatSecurePush";

/// Emits `values` (name, value, unit) for `function`, with extra dimensions
/// whose values are fixed vocabularies (platform, reason), never identifiers.
pub fn emit(function: &str, values: &[(&str, f64, &str)], dimensions: &[(&str, &str)]) {
    println!(
        "{}",
        line(
            function,
            values,
            dimensions,
            chrono::Utc::now().timestamp_millis()
        )
    );
}

pub fn line(
    function: &str,
    values: &[(&str, f64, &str)],
    dimensions: &[(&str, &str)],
    timestamp_ms: i64,
) -> String {
    let mut dims: Vec<&str> = vec!["Function"];
    dims.extend(dimensions.iter().map(|(k, _)| *k));
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dims],
                "Metrics": values.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Function".into(), json!(function));
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(v));
    }
    for (name, value, _) in values {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_every_metric_and_dimension() {
        let l = line(
            "knock",
            &[
                ("KnocksAccepted", 1.0, "Count"),
                ("KnockLatency", 12.5, "Milliseconds"),
            ],
            &[],
            1000,
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "KnockLatency", "Unit": "Milliseconds"})
        );
        assert_eq!(v["KnocksAccepted"], 1.0);
        assert_eq!(v["Function"], "knock");
    }
}
