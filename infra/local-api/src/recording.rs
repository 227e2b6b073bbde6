//! Reading the emulator's request recorder (`/moto-api/recorder/…`), which
//! the tests and `make bench` use to count AWS calls on the wire.

use base64::Engine;
use serde_json::Value;

/// One AWS request as the recorder saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// The operation: `UpdateItem`, `Query`, `Publish`, ...
    pub operation: String,
    /// The request body, decoded.
    pub body: String,
}

impl RecordedCall {
    /// The body as form fields (the query protocols: SNS).
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.body).unwrap_or_default()
    }
}

/// Parses a recording (`download-recording`: one JSON object per line).
pub fn parse(text: &str) -> Vec<RecordedCall> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|entry| {
            let raw = entry["body"].as_str().unwrap_or_default();
            let body = if entry["body_encoded"] == true {
                String::from_utf8_lossy(
                    &base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default(),
                )
                .into_owned()
            } else {
                raw.to_string()
            };
            // JSON protocols (DynamoDB) name the operation in a header, query
            // protocols (SNS) in the form body.
            let operation = match entry["headers"]["X-Amz-Target"].as_str() {
                Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
                None => body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .unwrap_or("?")
                    .to_string(),
            };
            RecordedCall { operation, body }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_come_from_the_target_header_or_the_form_body() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("Action=Publish&X=1");
        let text = format!(
            "{}\n{}\nnot json\n",
            serde_json::json!({"headers": {"X-Amz-Target": "DynamoDB_20120810.UpdateItem"}, "body": "{\"TableName\":\"t\"}", "body_encoded": false}),
            serde_json::json!({"headers": {}, "body": encoded, "body_encoded": true}),
        );
        let calls = parse(&text);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].operation, "UpdateItem");
        assert!(calls[0].body.contains("\"TableName\":\"t\""));
        assert_eq!(calls[1].operation, "Publish");
        assert_eq!(calls[1].body, "Action=Publish&X=1");
    }
}
