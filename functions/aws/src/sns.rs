//! [`PushGateway`] on SNS mobile push: one platform endpoint per device,
//! managed as AWS recommends (create, on "already exists" adopt, keep its
//! `Token` current and `Enabled=true`), and publishes with
//! `MessageStructure=json`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sns::error::ProvideErrorMetadata;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use push_core::model::{DeviceKind, Platform};
use push_core::ports::{PortError, PublishError, Push, PushGateway};
use serde_json::json;

use crate::errors::port_error;

/// One app's platform applications, each on the platform its ARN names.
pub struct SnsGateway {
    client: crate::lazy::LazyClient<Client>,
    /// In the order devices are pushed through them: APNs production, APNs
    /// sandbox, FCM.
    applications: Vec<(Platform, String)>,
}

impl SnsGateway {
    /// The gateway of an app with these platform application ARNs (at most
    /// one per platform; see `config::App`).
    pub fn new(client: Client, application_arns: &[String]) -> Self {
        Self::with_client(crate::lazy::LazyClient::ready(client), application_arns)
    }

    /// [`SnsGateway::new`] with a client built when first used.
    pub fn with_client(
        client: crate::lazy::LazyClient<Client>,
        application_arns: &[String],
    ) -> Self {
        let mut applications: Vec<(Platform, String)> = application_arns
            .iter()
            .filter_map(|arn| Some((Platform::of_arn(arn)?, arn.clone())))
            .collect();
        applications.sort_by_key(|(p, _)| *p as u8);
        SnsGateway {
            client,
            applications,
        }
    }

    fn application(&self, platform: Platform) -> Result<&str, PortError> {
        self.applications
            .iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, arn)| arn.as_str())
            .ok_or_else(|| {
                PortError::Internal(format!(
                    "no platform application for {}",
                    platform.sns_name()
                ))
            })
    }

    /// The message key SNS expects for an endpoint: its platform (`APNS`,
    /// `APNS_SANDBOX` or `GCM`, from its ARN).
    pub fn platform_key(arn: &str, kind: DeviceKind) -> &'static str {
        match Platform::of_arn(arn) {
            Some(platform) => platform.sns_name(),
            None => match kind {
                DeviceKind::Apns => "APNS",
                DeviceKind::Gcm => "GCM",
            },
        }
    }

    /// `Some(attributes)` of an endpoint, `None` when it does not exist.
    async fn attributes(&self, arn: &str) -> Result<Option<HashMap<String, String>>, PortError> {
        match self
            .client
            .get_endpoint_attributes()
            .endpoint_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e) if e.code() == Some("NotFound") => Ok(None),
            Err(e) => Err(port_error("GetEndpointAttributes", e)),
        }
    }

    /// Makes an existing endpoint carry `token` and be enabled, if it is not already.
    async fn refresh(
        &self,
        arn: &str,
        token: &str,
        attributes: &HashMap<String, String>,
    ) -> Result<(), PortError> {
        let current_token = attributes.get("Token").map(String::as_str);
        let enabled = attributes.get("Enabled").map(String::as_str) == Some("true");
        if current_token == Some(token) && enabled {
            return Ok(());
        }
        self.client
            .set_endpoint_attributes()
            .endpoint_arn(arn)
            .attributes("Token", token)
            .attributes("Enabled", "true")
            .send()
            .await
            .map_err(|e| match e.code() {
                // Deleted since it was read, by a request deleting the
                // device that held this push token: the operation starts
                // again from its reads.
                Some("NotFound") => PortError::Conflict("endpoint vanished".into()),
                _ => port_error("SetEndpointAttributes", e),
            })?;
        Ok(())
    }

    async fn create(&self, platform: Platform, token: &str) -> Result<String, PortError> {
        let application = self.application(platform)?;
        let result = self
            .client
            .create_platform_endpoint()
            .platform_application_arn(application)
            .token(token)
            .send()
            .await;
        match result {
            Ok(out) => out.endpoint_arn.ok_or_else(|| {
                PortError::Internal("CreatePlatformEndpoint returned no ARN".into())
            }),
            // "Endpoint <arn> already exists with the same Token, but different
            // attributes." — adopt that endpoint.
            // Any other invalid parameter is the token itself (the
            // application ARN is ours and known good): the client's to fix.
            Err(e) if e.code() == Some("InvalidParameter") => {
                e.message().and_then(existing_endpoint_arn).ok_or_else(|| {
                    PortError::Refused("CreatePlatformEndpoint: InvalidParameter".into())
                })
            }
            Err(e) => Err(port_error("CreatePlatformEndpoint", e)),
        }
    }
}

/// The ARN named in SNS's "already exists" message, if that is what it says.
fn existing_endpoint_arn(message: &str) -> Option<String> {
    if !message.contains("already exists") {
        return None;
    }
    message
        .split_whitespace()
        .find(|w| w.starts_with("arn:"))
        .map(|w| w.trim_end_matches([',', '.']).to_string())
}

#[async_trait]
impl PushGateway for SnsGateway {
    fn platforms(&self, kind: DeviceKind) -> Vec<Platform> {
        self.applications
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| p.kind() == kind)
            .collect()
    }

    async fn ensure_endpoint(
        &self,
        platform: Platform,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError> {
        if let Some(arn) = known {
            if let Some(attributes) = self.attributes(arn).await? {
                self.refresh(arn, token, &attributes).await?;
                return Ok(arn.to_string());
            }
        }
        let arn = self.create(platform, token).await?;
        // An identical endpoint may already exist, possibly disabled by SNS.
        match self.attributes(&arn).await? {
            Some(attributes) => self.refresh(&arn, token, &attributes).await?,
            // Deleted meanwhile by a request deleting the device that held
            // this push token: the operation starts again from its reads.
            None => return Err(PortError::Conflict("new endpoint vanished".into())),
        }
        Ok(arn)
    }

    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError> {
        match self.client.delete_endpoint().endpoint_arn(arn).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NotFound") => Ok(()),
            Err(e) => Err(port_error("DeleteEndpoint", e)),
        }
    }

    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError> {
        Ok(self
            .attributes(arn)
            .await?
            .map(|a| a.get("Enabled").map(String::as_str) == Some("true")))
    }

    async fn publish(&self, arn: &str, kind: DeviceKind, push: &Push) -> Result<(), PublishError> {
        let message = json!({
            "default": "New Message!",
            Self::platform_key(arn, kind): push.payload,
        });
        let mut request = self
            .client
            .publish()
            .target_arn(arn)
            .message_structure("json")
            .message(message.to_string());
        let attributes = [
            ("AWS.SNS.MOBILE.APNS.PUSH_TYPE", push.apns_push_type),
            ("AWS.SNS.MOBILE.APNS.PRIORITY", push.apns_priority),
        ];
        for (name, value) in attributes {
            if let Some(value) = value {
                let attribute = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| PortError::Internal(format!("message attribute: {e}")))?;
                request = request.message_attributes(name, attribute);
            }
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("EndpointDisabled") => Err(PublishError::Disabled),
            Err(e) if e.code() == Some("NotFound") => Err(PublishError::Gone),
            Err(e) => Err(PublishError::Port(port_error("Publish", e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_from_already_exists_message() {
        let m = "Invalid parameter: Token Reason: Endpoint arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/abc already exists with the same Token, but different attributes.";
        assert_eq!(
            existing_endpoint_arn(m).as_deref(),
            Some("arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/abc")
        );
        assert_eq!(existing_endpoint_arn("Invalid parameter: Token"), None);
    }
}
