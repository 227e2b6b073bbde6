//! Reading `template.yaml`: the HTTP routes of each function and the table.

use serde_yaml::Value;

/// One `HttpApi` event of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub function: String,
    pub method: String,
    pub path: String,
}

impl Route {
    /// Whether a request matches, API Gateway style: `{name}` is one segment.
    /// Returns the path parameters when it does.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let pattern: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if pattern.len() != actual.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, a) in pattern.iter().zip(&actual) {
            if p.starts_with('{') && p.ends_with('}') {
                if a.is_empty() {
                    return None;
                }
                params.push((p.trim_matches(['{', '}']).to_string(), a.to_string()));
            } else if p != a {
                return None;
            }
        }
        Some(params)
    }
}

pub fn load(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    serde_yaml::from_str(&text).map_err(|e| format!("cannot parse {path}: {e}"))
}

fn resources(template: &Value) -> impl Iterator<Item = (&str, &Value)> {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .into_iter()
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| Some((k.as_str()?, v)))
}

/// Every `HttpApi` route of every `AWS::Serverless::Function`.
pub fn routes(template: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    for (name, resource) in resources(template) {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        for (_, event) in events.into_iter().flat_map(|m| m.iter()) {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties");
            let path = props.and_then(|p| p.get("Path")).and_then(Value::as_str);
            let method = props.and_then(|p| p.get("Method")).and_then(Value::as_str);
            if let (Some(path), Some(method)) = (path, method) {
                routes.push(Route {
                    function: name.to_string(),
                    method: method.to_ascii_uppercase(),
                    path: path.to_string(),
                });
            }
        }
    }
    routes
}

/// The properties of the (single) `AWS::DynamoDB::Table`.
pub fn table_properties(template: &Value) -> Option<&Value> {
    resources(template)
        .find(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .and_then(|(_, r)| r.get("Properties"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_one_segment() {
        let r = Route {
            function: "F".into(),
            method: "ANY".into(),
            path: "/api/v1/tokens/{token}/".into(),
        };
        assert_eq!(
            r.matches("GET", "/api/v1/tokens/abc/"),
            Some(vec![("token".into(), "abc".into())])
        );
        assert_eq!(r.matches("GET", "/api/v1/tokens/abc"), None);
        assert_eq!(r.matches("GET", "/api/v1/tokens//"), None);
        assert_eq!(r.matches("GET", "/api/v1/tokens/a/b/"), None);
    }
}
