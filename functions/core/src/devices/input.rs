//! What a device body may hold, checked: push tokens as PROTOCOL.md says,
//! and the optional fields.

use crate::error::ApiError;
use crate::fields::Fields;
use crate::model::{DeviceKind, Platform};
use crate::request::ApiRequest;

/// Cleans and checks a push token as PROTOCOL.md says; `Err` is the message.
pub fn clean_registration_id(kind: DeviceKind, raw: &str) -> Result<String, String> {
    match kind {
        DeviceKind::Apns => {
            let cleaned: String = raw
                .chars()
                .filter(|c| !matches!(c, '<' | '>') && !c.is_whitespace())
                .collect();
            if cleaned.is_empty() {
                Err("This field may not be blank.".into())
            } else if cleaned.len() > 400 {
                Err("Ensure this field has no more than 400 characters.".into())
            } else if !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
                Err("Enter a valid APNS token: hexadecimal characters only.".into())
            } else {
                Ok(cleaned.to_ascii_lowercase())
            }
        }
        DeviceKind::Gcm => {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                Err("This field may not be blank.".into())
            } else if trimmed.chars().count() > 4096 {
                Err("Ensure this field has no more than 4096 characters.".into())
            } else if !trimmed.chars().all(|c| c.is_ascii_graphic()) {
                Err(
                    "Enter a valid FCM registration token: printable ASCII characters, no whitespace."
                        .into(),
                )
            } else {
                Ok(trimmed.to_string())
            }
        }
    }
}

/// A device body's fields, validated. `None`: not sent.
pub(super) struct DeviceInput {
    pub registration_id: Option<String>,
    pub name: Option<Option<String>>,
    pub device_id: Option<Option<String>>,
    pub active: Option<bool>,
    /// APNs only: the environment the client says its build is in.
    pub environment: Option<Platform>,
}

/// The push token field, cleaned. A problem is recorded in `fields` (which
/// then refuses the body) and an empty stand-in returned.
fn registration_id(kind: DeviceKind, fields: &mut Fields) -> String {
    let raw = fields.required_string("registration_id", usize::MAX);
    match raw.map(|raw| clean_registration_id(kind, &raw)) {
        Some(Ok(clean)) => clean,
        Some(Err(message)) => {
            fields.error("registration_id", message);
            String::new()
        }
        None => String::new(),
    }
}

/// The optional fields, as sent; the push token is the caller's.
fn optional(kind: DeviceKind, fields: &mut Fields, registration_id: Option<String>) -> DeviceInput {
    let mut optional = |name: &str| fields.has(name).then(|| fields.opt_string(name, 255));
    let name = optional("name");
    let device_id = optional("device_id");
    let active = fields.opt_bool("active");
    // Only APNs has environments; for FCM the field is unknown, so ignored.
    let environment = match kind {
        DeviceKind::Apns => environment(fields),
        DeviceKind::Gcm => None,
    };
    DeviceInput {
        registration_id,
        name,
        device_id,
        active,
        environment,
    }
}

/// The optional `environment` (`"production"` or `"sandbox"`; null or
/// absent: not known to the client).
fn environment(fields: &mut Fields) -> Option<Platform> {
    let raw = fields
        .opt_string("environment", 32)
        .filter(|r| !r.is_empty())?;
    Platform::of_environment(&raw).or_else(|| {
        fields.error(
            "environment",
            format!("\"{raw}\" is not a valid choice: \"production\" or \"sandbox\"."),
        );
        None
    })
}

/// A registration's body: the push token (required) and the optional fields.
pub(super) async fn read_registration(
    req: &ApiRequest,
    kind: DeviceKind,
) -> Result<(String, DeviceInput), ApiError> {
    let mut fields = req.fields().await?;
    let token = registration_id(kind, &mut fields);
    let input = optional(kind, &mut fields, None);
    fields.finish()?;
    Ok((token, input))
}

/// An update's body. `PUT` (`partial == false`) replaces: the push token is
/// required, and optional fields it does not send are cleared (`active`:
/// true). `PATCH` changes what it sends.
pub(super) async fn read_update(
    req: &ApiRequest,
    kind: DeviceKind,
    partial: bool,
) -> Result<DeviceInput, ApiError> {
    let mut fields = req.fields().await?;
    let token =
        (!partial || fields.has("registration_id")).then(|| registration_id(kind, &mut fields));
    let mut input = optional(kind, &mut fields, token);
    fields.finish()?;
    if !partial {
        input.name.get_or_insert(None);
        input.device_id.get_or_insert(None);
        input.active.get_or_insert(true);
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_tokens_are_cleaned_and_checked() {
        assert_eq!(
            clean_registration_id(DeviceKind::Apns, "<ABCD ef01 2345>").unwrap(),
            "abcdef012345"
        );
        assert!(clean_registration_id(DeviceKind::Apns, "< >").is_err());
        assert!(clean_registration_id(DeviceKind::Apns, "xyz").is_err());
        assert!(clean_registration_id(DeviceKind::Apns, &"a".repeat(401)).is_err());
        assert!(clean_registration_id(DeviceKind::Apns, &"a".repeat(400)).is_ok());
    }

    #[test]
    fn fcm_tokens_are_trimmed_and_opaque() {
        assert_eq!(
            clean_registration_id(DeviceKind::Gcm, "  a:B-c_d  ").unwrap(),
            "a:B-c_d"
        );
        assert!(clean_registration_id(DeviceKind::Gcm, "a b").is_err());
        assert!(clean_registration_id(DeviceKind::Gcm, "a\u{1}b").is_err());
        assert!(clean_registration_id(DeviceKind::Gcm, "jörg").is_err());
        assert!(clean_registration_id(DeviceKind::Gcm, "   ").is_err());
        assert!(clean_registration_id(DeviceKind::Gcm, &"x".repeat(4097)).is_err());
        assert!(clean_registration_id(DeviceKind::Gcm, &"x".repeat(4096)).is_ok());
    }
}
