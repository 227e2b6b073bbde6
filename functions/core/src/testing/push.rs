//! The push gateway (SNS platform endpoints), in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::{Fault, Faults};
use crate::model::{DeviceKind, Platform};
use crate::ports::{PortError, PublishError, Push, PushGateway};

/// One SNS platform endpoint, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub platform: Platform,
    pub token: String,
    pub enabled: bool,
}

/// Something a test runs at a chosen moment, standing in for a concurrent request.
type Interleaving = Box<dyn Fn() + Send + Sync>;

/// The push gateway, in memory: endpoints by ARN, and every push published.
pub struct MemoryPush {
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
    serial: Mutex<u64>,
    /// Every successful publish: (endpoint ARN, push).
    published: Mutex<Vec<(String, Push)>>,
    publish_faults: Faults,
    faults: Faults,
    platforms: Vec<Platform>,
    before_ensure: Mutex<Option<Interleaving>>,
}

impl Default for MemoryPush {
    fn default() -> Self {
        Self::with_kinds(&[DeviceKind::Apns, DeviceKind::Gcm])
    }
}

impl MemoryPush {
    /// A gateway configured for these kinds of device only (APNs: production).
    pub fn with_kinds(kinds: &[DeviceKind]) -> Self {
        let platforms: Vec<Platform> = kinds
            .iter()
            .map(|k| match k {
                DeviceKind::Apns => Platform::Apns,
                DeviceKind::Gcm => Platform::Gcm,
            })
            .collect();
        Self::with_platforms(&platforms)
    }
    /// A gateway with these platform applications (an app with both APNs
    /// environments: `[Apns, ApnsSandbox, Gcm]`).
    pub fn with_platforms(platforms: &[Platform]) -> Self {
        MemoryPush {
            endpoints: Mutex::default(),
            serial: Mutex::default(),
            published: Mutex::default(),
            publish_faults: Faults::default(),
            faults: Faults::default(),
            platforms: platforms.to_vec(),
            before_ensure: Mutex::default(),
        }
    }
    pub fn endpoint(&self, arn: &str) -> Option<Endpoint> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(arn)
            .cloned()
    }
    pub fn endpoint_count(&self) -> usize {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
    /// What SNS does when the push service reports the token dead.
    pub fn disable(&self, arn: &str) {
        if let Some(e) = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(arn)
        {
            e.enabled = false;
        }
    }
    /// An endpoint deleted behind the store's back.
    pub fn remove(&self, arn: &str) {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(arn);
    }
    /// The pushes published so far: (endpoint ARN, push).
    pub fn published(&self) -> Vec<(String, Push)> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    /// The next `times` publishes to `arn` fail as unavailable.
    pub fn fail_publish(&self, arn: &str, times: usize) {
        self.publish_faults.push(arn, Fault::Unavailable, times);
    }
    /// Runs `f` at the start of every `ensure_endpoint` call: what another
    /// request does meanwhile.
    pub fn before_ensure_endpoint(&self, f: impl Fn() + Send + Sync + 'static) {
        *self
            .before_ensure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(f));
    }
    /// The next `times` calls of `call` (`ensure_endpoint`, ...) fail so.
    pub fn fail(&self, call: &str, fault: Fault, times: usize) {
        self.faults.push(call, fault, times);
    }
}

#[async_trait]
impl PushGateway for MemoryPush {
    fn platforms(&self, kind: DeviceKind) -> Vec<Platform> {
        self.platforms
            .iter()
            .copied()
            .filter(|p| p.kind() == kind)
            .collect()
    }
    async fn ensure_endpoint(
        &self,
        platform: Platform,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError> {
        if let Some(f) = &*self
            .before_ensure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            f();
        }
        self.faults.check("ensure_endpoint")?;
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fresh = Endpoint {
            platform,
            token: token.into(),
            enabled: true,
        };
        if let Some(arn) = known.filter(|arn| endpoints.contains_key(*arn)) {
            endpoints.insert(arn.into(), fresh);
            return Ok(arn.into());
        }
        // SNS keeps one endpoint per token and application.
        if let Some((arn, e)) = endpoints
            .iter_mut()
            .find(|(_, e)| e.platform == platform && e.token == token)
        {
            e.enabled = true;
            return Ok(arn.clone());
        }
        let mut serial = self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        *serial += 1;
        let arn = format!(
            "arn:memory:sns:endpoint/{}/app/{}",
            platform.sns_name(),
            *serial
        );
        endpoints.insert(arn.clone(), fresh);
        Ok(arn)
    }
    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError> {
        self.faults.check("delete_endpoint")?;
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(arn);
        Ok(())
    }
    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError> {
        self.faults.check("endpoint_enabled")?;
        Ok(self.endpoint(arn).map(|e| e.enabled))
    }
    async fn publish(&self, arn: &str, _kind: DeviceKind, push: &Push) -> Result<(), PublishError> {
        self.publish_faults.check(arn)?;
        match self.endpoint(arn) {
            None => Err(PublishError::Gone),
            Some(e) if !e.enabled => Err(PublishError::Disabled),
            Some(_) => {
                self.published
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((arn.into(), push.clone()));
                Ok(())
            }
        }
    }
}

/// Another gateway with publishing simulated: each publish succeeds after
/// `latency` without reaching it; everything else is the inner gateway's.
/// For measuring the code's own fan-out (`make bench`), not the emulator's.
pub struct SimulatedPublish {
    inner: Arc<dyn PushGateway>,
    latency: Duration,
}

impl SimulatedPublish {
    pub fn new(inner: Arc<dyn PushGateway>, latency: Duration) -> Self {
        SimulatedPublish { inner, latency }
    }
}

#[async_trait]
impl PushGateway for SimulatedPublish {
    fn platforms(&self, kind: DeviceKind) -> Vec<Platform> {
        self.inner.platforms(kind)
    }
    async fn ensure_endpoint(
        &self,
        platform: Platform,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError> {
        self.inner.ensure_endpoint(platform, token, known).await
    }
    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError> {
        self.inner.delete_endpoint(arn).await
    }
    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError> {
        self.inner.endpoint_enabled(arn).await
    }
    async fn publish(
        &self,
        _arn: &str,
        _kind: DeviceKind,
        _push: &Push,
    ) -> Result<(), PublishError> {
        tokio::time::sleep(self.latency).await;
        Ok(())
    }
}
