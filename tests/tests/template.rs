//! template.yaml is the one source of routes: the local router serves exactly
//! its routes, and each function's code serves exactly the routes the template
//! sends it, with and without a trailing slash, for the default app
//! (`/api/v1/…`) and for every app by name (`/{app}/api/v1/…`).

use std::collections::BTreeSet;

use local_api::template::{load, routes, table_properties};
use local_api::FUNCTIONS;

fn template() -> serde_yaml::Value {
    load(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).expect("template.yaml")
}

#[test]
fn every_template_route_has_a_handler_and_every_handler_route_is_in_the_template() {
    let tpl = template();
    let routes = routes(&tpl);
    assert!(!routes.is_empty());
    let functions: BTreeSet<&str> = routes.iter().map(|r| r.function.as_str()).collect();
    let known: BTreeSet<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
    assert_eq!(functions, known, "functions in the template vs. the router");
    for (function, code_routes) in FUNCTIONS {
        let in_template: BTreeSet<String> = routes
            .iter()
            .filter(|r| r.function == *function)
            .map(|r| {
                assert_eq!(
                    r.method, "ANY",
                    "{function} {}: the handler answers 405 itself",
                    r.path
                );
                r.path.clone()
            })
            .collect();
        let expected: BTreeSet<String> = code_routes
            .iter()
            .flat_map(|p| [p.to_string(), format!("{p}/")])
            .flat_map(|p| [format!("/{{app}}{p}"), p])
            .collect();
        assert_eq!(in_template, expected, "{function}");
    }
}

#[test]
fn the_table_has_the_keys_index_and_ttl_the_code_uses() {
    use push_aws::keys;
    let tpl = template();
    let props = table_properties(&tpl).expect("table");
    let text = |v: &serde_yaml::Value, k: &str| v[k].as_str().map(str::to_string);
    // (attribute, key type) pairs of a key schema, in order.
    let schema = |v: &serde_yaml::Value| -> Vec<(String, String)> {
        v["KeySchema"]
            .as_sequence()
            .expect("KeySchema")
            .iter()
            .map(|k| {
                (
                    text(k, "AttributeName").unwrap_or_default(),
                    text(k, "KeyType").unwrap_or_default(),
                )
            })
            .collect()
    };
    let pair = |a: &str, t: &str| (a.to_string(), t.to_string());
    assert_eq!(
        schema(props),
        [pair(keys::PK, "HASH"), pair(keys::SK, "RANGE")],
        "the table's keys"
    );
    let indexes = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("indexes");
    let gsi1 = indexes
        .iter()
        .find(|g| text(g, "IndexName").as_deref() == Some(keys::GSI1))
        .expect("gsi1");
    assert_eq!(
        schema(gsi1),
        [pair(keys::GSI1PK, "HASH"), pair(keys::GSI1SK, "RANGE")],
        "the index's keys"
    );
    let gsi2 = indexes
        .iter()
        .find(|g| text(g, "IndexName").as_deref() == Some(keys::GSI2))
        .expect("gsi2");
    assert_eq!(
        schema(gsi2),
        [pair(keys::GSI2PK, "HASH"), pair("gsi2sk", "RANGE")],
        "the second endpoint's index's keys"
    );
    let ttl = &props["TimeToLiveSpecification"];
    assert_eq!(text(ttl, "AttributeName").as_deref(), Some(keys::TTL));
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));
    assert_eq!(
        text(props, "BillingMode").as_deref(),
        Some("PAY_PER_REQUEST")
    );
}

// Needs the local stack (`make test` turns this feature on).
#[cfg(feature = "stack")]
#[tokio::test]
async fn the_router_serves_every_template_route() {
    let api = api_tests::Api::new();
    for route in routes(&template()) {
        let path = route
            .path
            .replace("{username}", "nobody")
            .replace("{kind}", "apns")
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{token}", "abc")
            .replace("{app}", "zom");
        let url = format!("{}{}", api.base.trim_end_matches("/api/v1/"), path);
        // An unauthenticated GET reaches the handler: 401, 200 or 405 — never
        // the router's own 404.
        let r = api.get(&url, None).await;
        assert!(
            [200, 401, 405].contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.text
        );
    }
}

#[test]
fn openapi_describes_exactly_the_template_routes() {
    let spec = load(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).expect("openapi.yaml");
    assert_eq!(spec["openapi"].as_str(), Some("3.1.0"));
    let documented: BTreeSet<String> = spec["paths"]
        .as_mapping()
        .expect("paths")
        .iter()
        .map(|(path, operations)| {
            let methods = operations.as_mapping().map(|m| m.len()).unwrap_or(0);
            assert!(methods > 0, "{path:?} documents no operation");
            path.as_str().unwrap().to_string()
        })
        .collect();
    // Every app's routes are the default app's under `/{app}`: one more
    // server in openapi.yaml, not more paths.
    let routed: BTreeSet<String> = routes(&template())
        .into_iter()
        .map(|r| r.path.trim_start_matches("/{app}").to_string())
        .collect();
    assert_eq!(
        documented, routed,
        "openapi.yaml paths vs template.yaml routes"
    );
    let servers = spec["servers"].as_sequence().expect("servers");
    assert!(
        servers
            .iter()
            .any(|s| s["url"].as_str().is_some_and(|u| u.ends_with("/{app}"))),
        "openapi.yaml names the per-app base URL"
    );
}

/// The value under a CloudFormation short-form tag (`!If`, `!Ref`, ...).
fn tagged<'a>(v: &'a serde_yaml::Value, tag: &str) -> &'a serde_yaml::Value {
    match v {
        serde_yaml::Value::Tagged(t) if t.tag == serde_yaml::value::Tag::new(tag) => &t.value,
        other => panic!("expected !{tag}, found {other:?}"),
    }
}

/// On AWS the functions get no `AWS_ENDPOINT_URL` at all: the SDK takes even
/// an empty one as the endpoint (and panics). Only a local run that sets
/// `LocalEndpointUrl` declares it (`make sam-local`).
#[test]
fn aws_endpoint_url_is_declared_only_when_a_local_run_sets_it() {
    let tpl = template();
    assert_eq!(tpl["Parameters"]["LocalEndpointUrl"]["Default"], "");
    let condition = tagged(&tpl["Conditions"]["HasLocalEndpoint"], "Not");
    let equals = tagged(&condition[0], "Equals");
    assert_eq!(tagged(&equals[0], "Ref"), "LocalEndpointUrl");
    assert_eq!(equals[1], "");
    let value = tagged(
        &tpl["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"],
        "If",
    );
    assert_eq!(value[0], "HasLocalEndpoint");
    assert_eq!(tagged(&value[1], "Ref"), "LocalEndpointUrl");
    assert_eq!(tagged(&value[2], "Ref"), "AWS::NoValue");
    for (name, resource) in tpl["Resources"].as_mapping().unwrap() {
        let own = &resource["Properties"]["Environment"]["Variables"];
        assert!(
            own.get("AWS_ENDPOINT_URL").is_none(),
            "{name:?} declares AWS_ENDPOINT_URL unconditionally"
        );
    }
}

/// IAM's `StringLike`/resource matching: `*` any run of characters, `?` one.
fn iam_match(pattern: &str, value: &str) -> bool {
    match pattern.chars().next() {
        None => value.is_empty(),
        Some('*') => {
            let rest = &pattern[1..];
            (0..=value.len())
                .filter(|i| value.is_char_boundary(*i))
                .any(|i| iam_match(rest, &value[i..]))
        }
        Some(p) => value.chars().next().is_some_and(|v| {
            (p == '?' || p == v) && iam_match(&pattern[p.len_utf8()..], &value[v.len_utf8()..])
        }),
    }
}

/// Every SNS resource of every function's policy, with the stack's values
/// put in for `${…}`.
fn sns_resources(tpl: &serde_yaml::Value, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (_, resource) in tpl["Resources"].as_mapping().unwrap() {
        let Some(policies) = resource["Properties"]["Policies"].as_sequence() else {
            continue;
        };
        for policy in policies {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let serde_yaml::Value::Tagged(sub) = &statement["Resource"] else {
                    continue;
                };
                let Some(arn) = sub.value.as_str().filter(|a| a.contains(":sns:")) else {
                    continue;
                };
                found.push(
                    arn.replace("${AWS::Partition}", "aws")
                        .replace("${AWS::Region}", "us-east-1")
                        .replace("${AWS::AccountId}", "123456789012")
                        .replace("${PlatformApplicationPrefix}", prefix),
                );
            }
        }
    }
    found
}

/// The functions' SNS permissions name this stack's platform applications
/// (`<prefix>.…`) and no sibling stack's whose prefix starts with this one
/// (`chatsecure-push-staging` for `chatsecure-push`), for applications and
/// their endpoints alike; the prefix cannot hold the separator.
#[test]
fn sns_permissions_name_this_stacks_applications_and_no_siblings() {
    let tpl = template();
    let pattern = tpl["Parameters"]["PlatformApplicationPrefix"]["AllowedPattern"]
        .as_str()
        .expect("AllowedPattern");
    assert!(
        !pattern.contains('.'),
        "the prefix may hold the separator: {pattern}"
    );
    let resources = sns_resources(&tpl, "chatsecure-push");
    assert!(resources.len() >= 4, "{resources:?}");
    let app = |name: &str| format!("arn:aws:sns:us-east-1:123456789012:app/APNS/{name}");
    let endpoint =
        |name: &str| format!("arn:aws:sns:us-east-1:123456789012:endpoint/APNS/{name}/0b1c");
    for resource in &resources {
        let (ours, sibling) = if resource.contains(":app/") {
            (
                app("chatsecure-push.zom-apns"),
                app("chatsecure-push-staging.zom-apns"),
            )
        } else {
            (
                endpoint("chatsecure-push.zom-apns"),
                endpoint("chatsecure-push-staging.zom-apns"),
            )
        };
        assert!(iam_match(resource, &ours), "{resource} refuses {ours}");
        assert!(
            !iam_match(resource, &sibling),
            "{resource} allows {sibling}"
        );
        // The name platform-apps.sh used to give: no longer this stack's.
        let old = ours.replace("chatsecure-push.", "chatsecure-push-");
        assert!(!iam_match(resource, &old), "{resource} allows {old}");
    }
}

/// The key that hides sign-up sources is a generated secret of the stack,
/// readable by the register function alone (the only one that signs up),
/// named to the functions as `SOURCE_KEY_SECRET`; the table holds no salt
/// items any more, so no function may reach a `SALT#` partition.
#[test]
fn the_source_key_is_a_generated_secret_only_the_register_function_reads() {
    let tpl = template();
    let secret = &tpl["Resources"]["SourceKeySecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    let generated = &secret["Properties"]["GenerateSecretString"];
    assert!(
        generated["PasswordLength"]
            .as_u64()
            .is_some_and(|n| n >= 32),
        "a long generated value: {generated:?}"
    );
    assert!(
        secret["Properties"].get("SecretString").is_none(),
        "no value written into the template"
    );
    assert_eq!(
        tagged(
            &tpl["Globals"]["Function"]["Environment"]["Variables"]["SOURCE_KEY_SECRET"],
            "Ref"
        ),
        "SourceKeySecret"
    );
    let mut readers = Vec::new();
    for (name, resource) in tpl["Resources"].as_mapping().unwrap() {
        let policies = resource["Properties"]["Policies"].as_sequence();
        for statement in policies
            .into_iter()
            .flatten()
            .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
        {
            let actions: Vec<&str> = match &statement["Action"] {
                serde_yaml::Value::String(a) => vec![a.as_str()],
                serde_yaml::Value::Sequence(s) => s.iter().filter_map(|a| a.as_str()).collect(),
                _ => vec![],
            };
            if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                assert_eq!(actions, ["secretsmanager:GetSecretValue"], "{name:?}");
                assert_eq!(tagged(&statement["Resource"], "Ref"), "SourceKeySecret");
                readers.push(name.as_str().unwrap_or_default().to_string());
            }
            let leading =
                &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
            for key in leading.as_sequence().into_iter().flatten() {
                let key = key.as_str().unwrap_or_default();
                assert!(
                    !iam_match(key, "SALT#20000"),
                    "{name:?} may still reach salt items: {key}"
                );
            }
        }
    }
    assert_eq!(readers, ["RegisterFunction"]);
}

/// The `ChatSecurePush` metrics a dashboard body charts, each with its
/// dimension set: from its SEARCH expressions (`{ChatSecurePush,<dims>}
/// … MetricName="<name>"`) and its plain metric rows (`["ChatSecurePush",
/// "<name>", "<dim>", "<value>", …]`).
fn charted(body: &serde_json::Value) -> BTreeSet<(String, Vec<String>)> {
    let mut found = BTreeSet::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        let Some(rows) = widget["properties"]["metrics"].as_array() else {
            continue;
        };
        for row in rows {
            let row = row.as_array().expect("a metric row");
            if let Some(expression) = row.iter().find_map(|c| c["expression"].as_str()) {
                let Some((_, schema)) = expression.split_once("{ChatSecurePush,") else {
                    assert!(
                        !expression.contains("ChatSecurePush"),
                        "an expression this test cannot read: {expression}"
                    );
                    continue;
                };
                let (dims, rest) = schema.split_once('}').expect("a SEARCH schema");
                let (_, name) = rest
                    .split_once("MetricName=\"")
                    .unwrap_or_else(|| panic!("{expression} names no metric"));
                let name = name.split('"').next().unwrap_or_default();
                let dims = dims.split(',').map(|d| d.trim().to_string()).collect();
                found.insert((name.to_string(), dims));
            } else if row.first().and_then(|c| c.as_str()) == Some("ChatSecurePush") {
                let name = row[1].as_str().expect("a metric name").to_string();
                let dims = row[2..]
                    .iter()
                    .filter_map(|c| c.as_str())
                    .step_by(2)
                    .map(str::to_string)
                    .collect();
                found.insert((name, dims));
            }
        }
    }
    found
}

/// The dashboard charts what the code emits: every `ChatSecurePush` metric it
/// shows, with the dimensions it shows it by, is in the code's catalogue
/// (which a debug assertion holds every emitted line to), and every
/// per-app metric of the catalogue is on it. So are the API's 4xx, 5xx and
/// latency and every function's throttles; and each alarm on a custom
/// metric watches one the code emits.
#[test]
fn the_dashboard_charts_exactly_what_the_code_emits() {
    let tpl = template();
    let dashboard = &tpl["Resources"]["PushDashboard"];
    assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
    let body = tagged(&dashboard["Properties"]["DashboardBody"], "Sub")
        .as_str()
        .expect("a !Sub of the JSON body");
    let body: serde_json::Value = serde_json::from_str(body).expect("the body is JSON");
    let catalogue: BTreeSet<(String, Vec<String>)> = push_core::metrics::CATALOGUE
        .iter()
        .map(|(name, dims)| {
            (
                name.to_string(),
                dims.iter().map(|d| d.to_string()).collect(),
            )
        })
        .collect();
    let charted = charted(&body);
    assert!(!charted.is_empty());
    for metric in &charted {
        assert!(
            catalogue.contains(metric),
            "charted but never emitted: {metric:?}"
        );
    }
    for metric in &catalogue {
        if metric.1.iter().any(|d| d == "App") {
            assert!(
                charted.contains(metric),
                "emitted by app but not charted: {metric:?}"
            );
        }
    }
    let text = body.to_string();
    for needle in [
        r#"["AWS/ApiGateway","4xx","ApiId","${PushApi}""#,
        r#"["AWS/ApiGateway","5xx","ApiId","${PushApi}""#,
        r#"["AWS/ApiGateway","Latency","ApiId","${PushApi}""#,
    ] {
        assert!(text.contains(needle), "the dashboard lacks {needle}");
    }
    let functions: Vec<&str> = tpl["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, _)| name.as_str().unwrap())
        .collect();
    assert_eq!(
        functions.len(),
        FUNCTIONS.len() + 1,
        "the functions and the feedback function"
    );
    for function in functions {
        let needle = format!(r#"["AWS/Lambda","Throttles","FunctionName","${{{function}}}""#);
        assert!(
            text.contains(&needle),
            "the dashboard lacks {function}'s throttles"
        );
    }
    // The alarms on custom metrics watch what the code emits.
    for (name, resource) in tpl["Resources"].as_mapping().unwrap() {
        let props = &resource["Properties"];
        if resource["Type"] != "AWS::CloudWatch::Alarm" || props["Namespace"] != "ChatSecurePush" {
            continue;
        }
        let dims: Vec<String> = props["Dimensions"]
            .as_sequence()
            .map(|ds| {
                ds.iter()
                    .map(|d| d["Name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let metric = (props["MetricName"].as_str().unwrap().to_string(), dims);
        assert!(
            catalogue.contains(&metric),
            "{name:?} watches {metric:?}, never emitted"
        );
    }
}
