//! Endpoints: where events go, which events they want, and how to reach them.
//!
//! One concept per file: [`id`] (the endpoint id), [`config`] (the settings
//! a host gives, and their validation), [`settings`] (the delivery settings
//! an endpoint may override, resolved against the bus's), [`filter`] (the
//! compiled subscriptions) and [`status`] (active, disabled, paused). The
//! read model [`Endpoint`] is here. Secrets and signing schemes live in
//! [`signing`](crate::signing), body formats in `formats`. Persisting
//! endpoints is the store's job; serving their queues is the delivery
//! module's.

mod config;
mod filter;
mod id;
pub(crate) mod settings;
mod status;

use std::time::SystemTime;

pub use config::EndpointConfig;
pub(crate) use filter::{EventFilter, Pattern};
pub use id::{EndpointId, ParseEndpointIdError};
pub use settings::SuccessPolicy;
pub(crate) use settings::{Overrides, Settings};
pub use status::{EndpointStatus, PauseReason};

use crate::signing::Secret;

/// A registered endpoint, as read back from the bus.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub(crate) id: EndpointId,
    pub(crate) tenant: crate::tenant::TenantId,
    pub(crate) config: EndpointConfig,
    pub(crate) status: EndpointStatus,
    pub(crate) created_at: SystemTime,
    /// Secrets replaced by a rotation, still signing until they expire.
    pub(crate) previous_secrets: Vec<(Secret, SystemTime)>,
}

impl Endpoint {
    /// The endpoint's id.
    pub fn id(&self) -> EndpointId {
        self.id
    }
    /// The tenant it belongs to.
    pub fn tenant(&self) -> &crate::tenant::TenantId {
        &self.tenant
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
    /// Its URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }
    /// The event-type patterns it subscribes to.
    pub fn events(&self) -> &[String] {
        &self.config.events
    }
    /// Whether it has a signing secret.
    pub fn has_secret(&self) -> bool {
        self.config.secret.is_some()
    }
    /// Whether it receives new events (it is active or paused).
    pub fn is_enabled(&self) -> bool {
        !matches!(self.status, EndpointStatus::Disabled)
    }
    /// Whether it is paused: receiving events but holding them.
    pub fn is_paused(&self) -> bool {
        matches!(self.status, EndpointStatus::Paused { .. })
    }
    /// Active, disabled or paused, as of when this copy was read.
    pub fn status(&self) -> EndpointStatus {
        self.status
    }
    /// When it was added.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }
    /// Its full settings (the secret stays redacted in `Debug`).
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }
    /// When each secret replaced by [`Bus::rotate_secret`](crate::Bus::rotate_secret)
    /// stops signing, for the ones still active.
    pub fn previous_secrets_expire_at(&self) -> Vec<SystemTime> {
        let now = SystemTime::now();
        self.previous_secrets
            .iter()
            .map(|(_, at)| *at)
            .filter(|at| *at > now)
            .collect()
    }
}
