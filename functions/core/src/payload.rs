//! What a phone receives for a knock, in the shapes the existing apps parse.

use serde_json::{json, Value};

use crate::model::DeviceKind;
use crate::ports::Push;

/// APNs refuses larger payloads.
pub const APNS_MAX_PAYLOAD_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    High,
    Low,
}

impl Priority {
    /// `"high"` or `"low"`, exactly; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "high" => Some(Priority::High),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Low => "low",
        }
    }
}

/// iOS reads `aps.alert.message.token`; `high` is an alert push (priority 10),
/// `low` a background push (priority 5). The same `message` also stands at the
/// payload's top level, outside `aps`, where an app may read it without an
/// `alert` (Apple prefers background pushes without one).
pub fn apns_push(token: &str, data: &Value, priority: Priority) -> Push {
    let message = json!({ "token": token, "data": data });
    let aps = match priority {
        Priority::High => json!({
            "content-available": 1,
            "sound": "default",
            "alert": { "body": "New Message!", "loc-key": "New Message!", "message": message.clone() },
        }),
        Priority::Low => json!({ "content-available": 1, "alert": { "message": message.clone() } }),
    };
    Push {
        payload: json!({ "aps": aps, "message": message }).to_string(),
        apns_push_type: Some(match priority {
            Priority::High => "alert",
            Priority::Low => "background",
        }),
        apns_priority: Some(match priority {
            Priority::High => "10",
            Priority::Low => "5",
        }),
    }
}

/// Android reads the data key `message` as a JSON string holding
/// `{"message": {"token", "data"}}`, with `data` itself a string.
pub fn fcm_push(token: &str, data: &Value, priority: Priority) -> Push {
    let data_as_string = match data {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    };
    let inner = json!({ "message": { "token": token, "data": data_as_string } }).to_string();
    Push {
        payload: json!({
            "data": { "message": inner },
            "priority": match priority { Priority::High => "high", Priority::Low => "normal" },
        })
        .to_string(),
        apns_push_type: None,
        apns_priority: None,
    }
}

pub fn push_for(kind: DeviceKind, token: &str, data: &Value, priority: Priority) -> Push {
    match kind {
        DeviceKind::Apns => apns_push(token, data, priority),
        DeviceKind::Gcm => fcm_push(token, data, priority),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_low_is_a_background_push_with_the_token() {
        let push = apns_push("t0k", &json!({"a": 1}), Priority::Low);
        let v: Value = serde_json::from_str(&push.payload).unwrap();
        assert_eq!(
            v,
            json!({"aps": {"content-available": 1, "alert": {"message": {"token": "t0k", "data": {"a": 1}}}},
                   "message": {"token": "t0k", "data": {"a": 1}}})
        );
        assert_eq!(push.apns_push_type, Some("background"));
        assert_eq!(push.apns_priority, Some("5"));
    }

    #[test]
    fn apns_high_is_an_alert_with_sound() {
        let push = apns_push("t0k", &Value::Null, Priority::High);
        let v: Value = serde_json::from_str(&push.payload).unwrap();
        assert_eq!(v["aps"]["alert"]["body"], "New Message!");
        assert_eq!(v["aps"]["alert"]["loc-key"], "New Message!");
        assert_eq!(v["aps"]["sound"], "default");
        assert_eq!(v["aps"]["content-available"], 1);
        assert_eq!(
            v["aps"]["alert"]["message"],
            json!({"token": "t0k", "data": null})
        );
        assert_eq!(
            (push.apns_push_type, push.apns_priority),
            (Some("alert"), Some("10"))
        );
    }

    #[test]
    fn fcm_message_is_a_json_string_with_string_data() {
        let push = fcm_push("t0k", &json!({"a": [1]}), Priority::Low);
        let v: Value = serde_json::from_str(&push.payload).unwrap();
        let inner: Value = serde_json::from_str(v["data"]["message"].as_str().unwrap()).unwrap();
        assert_eq!(
            inner,
            json!({"message": {"token": "t0k", "data": "{\"a\":[1]}"}})
        );
        assert_eq!(v["priority"], "normal");
    }

    #[test]
    fn largest_allowed_knock_fits_apns() {
        // 200-char token, 1024-byte data string full of characters JSON escapes.
        let data = Value::String("\"".repeat(511));
        for priority in [Priority::High, Priority::Low] {
            let push = apns_push(&"x".repeat(200), &data, priority);
            assert!(
                push.payload.len() < APNS_MAX_PAYLOAD_BYTES,
                "{}",
                push.payload.len()
            );
        }
    }
}
