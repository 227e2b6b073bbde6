//! Typed access to request fields, whichever encoding they arrived in, with
//! validation messages in the protocol's `{"field": ["message"]}` shape.

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};

/// The fields of a request body. Unknown fields are simply never read.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    map: Map<String, Value>,
    errors: FieldErrors,
}

pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Fields {
            map,
            errors: FieldErrors::new(),
        }
    }

    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Records a validation error against a field.
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors
            .entry(name.to_string())
            .or_default()
            .push(message.into());
    }

    /// `Ok(())` when no error was recorded, else the collected errors.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    /// An optional string: absent or null → `None`. Numbers are refused.
    pub fn opt_string(&mut self, name: &str, max_chars: usize) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if s.chars().count() > max_chars {
                    self.error(
                        name,
                        format!("Ensure this field has no more than {max_chars} characters."),
                    );
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(_) => {
                self.error(name, "Not a valid string.");
                None
            }
        }
    }

    /// A required, non-blank string of at most `max_chars` characters.
    pub fn required_string(&mut self, name: &str, max_chars: usize) -> Option<String> {
        if !self.has(name) || matches!(self.map.get(name), Some(Value::Null)) {
            let message = if self.has(name) {
                "This field may not be null."
            } else {
                REQUIRED
            };
            self.error(name, message);
            return None;
        }
        let value = self.opt_string(name, max_chars)?;
        if value.is_empty() {
            self.error(name, BLANK);
            return None;
        }
        Some(value)
    }

    /// An optional boolean from JSON or a form string (`true`/`false`, `1`/`0`, `on`/`off`).
    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        let parsed = match self.map.get(name) {
            None | Some(Value::Null) => return None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" | "t" | "y" => Some(true),
                "false" | "0" | "off" | "no" | "f" | "n" | "" => Some(false),
                _ => None,
            },
            Some(_) => None,
        };
        if parsed.is_none() {
            self.error(name, "Must be a valid boolean.");
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(map) => Fields::new(map),
            _ => unreachable!(),
        }
    }

    #[test]
    fn booleans_from_json_and_forms() {
        let mut f =
            fields(json!({"a": true, "b": "false", "c": "1", "d": "on", "e": "maybe", "f": 0}));
        assert_eq!(f.opt_bool("a"), Some(true));
        assert_eq!(f.opt_bool("b"), Some(false));
        assert_eq!(f.opt_bool("c"), Some(true));
        assert_eq!(f.opt_bool("d"), Some(true));
        assert_eq!(f.opt_bool("f"), Some(false));
        assert_eq!(f.opt_bool("missing"), None);
        assert_eq!(f.opt_bool("e"), None);
        let err = f.finish().unwrap_err();
        assert_eq!(
            err.into_response().body.unwrap(),
            json!({"e": ["Must be a valid boolean."]})
        );
    }

    #[test]
    fn strings_required_blank_long_and_wrong_type() {
        let mut f = fields(json!({"blank": "", "long": "abcdef", "num": 5, "ok": "x"}));
        assert_eq!(f.required_string("ok", 5), Some("x".into()));
        assert_eq!(f.required_string("missing", 5), None);
        assert_eq!(f.required_string("blank", 5), None);
        assert_eq!(f.required_string("long", 5), None);
        assert_eq!(f.opt_string("num", 5), None);
        let body = f.finish().unwrap_err().into_response().body.unwrap();
        assert_eq!(body["missing"], json!([REQUIRED]));
        assert_eq!(body["blank"], json!([BLANK]));
        assert!(body["long"][0].as_str().unwrap().contains("5 characters"));
        assert!(body["num"].is_array());
    }
}
