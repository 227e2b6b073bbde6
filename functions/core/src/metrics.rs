//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per
//! event, which CloudWatch Logs turns into metrics. No dependency, no call on
//! the hot path, and never an identifier in a dimension.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "ChatSecurePush";

/// Every metric the code emits, with its dimension set (`Function` first):
/// what the dashboard (template.yaml) may chart and the alarms may watch.
/// Emitting anything else fails the tests (a debug assertion in [`line`]);
/// tests/tests/template.rs checks the dashboard against this list.
pub const CATALOGUE: &[(&str, &[&str])] = &[
    // Per function: what the alarms watch.
    ("KnocksAccepted", &["Function"]),
    ("PushesPublishedApns", &["Function"]),
    ("PushesPublishedFcm", &["Function"]),
    ("PublishFailures", &["Function"]),
    ("EndpointsDisabled", &["Function"]),
    ("EndpointsGone", &["Function"]),
    ("DevicesDeactivated", &["Function"]),
    ("DevicesSettled", &["Function"]),
    ("KnockLatency", &["Function"]),
    ("LimitHits", &["Function", "Limit"]),
    ("DevicesDeactivated", &["Function", "Event"]),
    ("DevicesSettled", &["Function", "Event"]),
    ("EndpointsDead", &["Function", "Event"]),
    // Per app and APNs environment (`fcm` for FCM, `unknown` for a device
    // still in both): where a deployment's pushes go and fail.
    ("KnocksAccepted", &["Function", "App"]),
    ("Pushes", &["Function", "App", "Environment"]),
    ("PublishFailures", &["Function", "App", "Environment"]),
    ("DevicesDeactivated", &["Function", "App", "Environment"]),
    ("DevicesSettled", &["Function", "App", "Environment"]),
    ("DevicesReenabled", &["Function", "App", "Environment"]),
    (
        "EndpointsDisabled",
        &["Function", "App", "Environment", "Reason"],
    ),
];

/// The `Reason` dimension's values: a fixed list, the rest `other`.
pub const REASONS: &[&str] = &[
    "InvalidPlatformToken",
    "EndpointDisabled",
    "EndpointUpdated",
];

/// A failure's `Reason` dimension: its SNS failure type if listed, else `other`.
pub fn reason_dimension(failure_type: &str) -> &'static str {
    REASONS
        .iter()
        .find(|r| **r == failure_type)
        .copied()
        .unwrap_or("other")
}

/// Counts by dimension values, emitted as one line per distinct set of
/// values (zero counts are not emitted).
#[derive(Debug, Default)]
pub struct Tally {
    lines: std::collections::BTreeMap<DimensionValues, Vec<(&'static str, f64)>>,
}

/// A line's dimensions (`Function` aside) and their values.
type DimensionValues = Vec<(&'static str, String)>;

impl Tally {
    /// Adds `n` to `metric` at these dimension values (`Function` aside).
    pub fn add(&mut self, metric: &'static str, dimensions: &[(&'static str, &str)], n: usize) {
        if n == 0 {
            return;
        }
        let key = dimensions
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        let values = self.lines.entry(key).or_default();
        match values.iter_mut().find(|(name, _)| *name == metric) {
            Some((_, total)) => *total += n as f64,
            None => values.push((metric, n as f64)),
        }
    }

    /// The lines for `function`, as [`emit`] prints them.
    pub fn lines(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        self.lines
            .iter()
            .map(|(dims, values)| {
                let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let values: Vec<(&str, f64, &str)> =
                    values.iter().map(|(n, v)| (*n, *v, "Count")).collect();
                line(function, &values, &dims, timestamp_ms)
            })
            .collect()
    }

    pub fn emit(&self, function: &str) {
        if silent() {
            return;
        }
        for l in self.lines(function, chrono::Utc::now().timestamp_millis()) {
            println!("{l}");
        }
    }
}

static SILENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// No metric line from now on in this process (`make bench` runs the
/// handlers in-process thousands of times; a function never calls it).
pub fn silence() {
    SILENT.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn silent() -> bool {
    SILENT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Emits `values` (name, value, unit) for `function`, with extra dimensions
/// whose values are fixed vocabularies (platform, reason), never identifiers.
pub fn emit(function: &str, values: &[(&str, f64, &str)], dimensions: &[(&str, &str)]) {
    if silent() {
        return;
    }
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
    for (name, _, _) in values {
        debug_assert!(
            CATALOGUE.contains(&(name, dims.as_slice())),
            "metric {name} with dimensions {dims:?} is not in the catalogue"
        );
    }
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

    #[test]
    fn a_tally_emits_a_line_per_set_of_dimension_values() {
        let mut t = Tally::default();
        let prod = [("App", "zom"), ("Environment", "production")];
        t.add("Pushes", &prod, 2);
        t.add("Pushes", &prod, 1);
        t.add("PublishFailures", &prod, 0);
        t.add("Pushes", &[("App", "zom"), ("Environment", "fcm")], 1);
        t.add("KnocksAccepted", &[("App", "zom")], 1);
        let lines: Vec<Value> = t
            .lines("knock", 5)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let production = lines
            .iter()
            .find(|l| l["Environment"] == "production")
            .unwrap();
        assert_eq!(production["Pushes"], 3.0);
        assert!(
            production.get("PublishFailures").is_none(),
            "zeros are left out"
        );
        assert_eq!(
            production["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "App", "Environment"]])
        );
        assert_eq!(
            reason_dimension("InvalidPlatformToken"),
            "InvalidPlatformToken"
        );
        assert_eq!(reason_dimension("Throttled"), "other");
    }

    #[test]
    #[should_panic(expected = "not in the catalogue")]
    fn an_uncatalogued_metric_is_a_bug() {
        line("knock", &[("Pushes", 1.0, "Count")], &[], 0);
    }
}
