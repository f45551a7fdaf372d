//! Endpoint management on the bus: add, read, update, enable, disable,
//! pause, resume, rotate secrets, delete.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Bus, Registered};
use crate::delivery::{Lane, Route};
use crate::endpoint::{
    Endpoint, EndpointConfig, EndpointId, EndpointStatus, EventFilter, PauseReason, Secret,
};
use crate::error::{Error, Result};
use crate::store::records::{EndpointRecord, EndpointStateRecord, Mode};
use crate::time;

impl Bus {
    /// Registers an endpoint, active. Checks every field first: on an error
    /// nothing is written.
    pub fn add_endpoint(&self, config: EndpointConfig) -> Result<Endpoint> {
        self.check_open()?;
        let filter = self.validate(&config)?;
        let shared = &self.inner.shared;
        let mut registry = self.inner.registry.write();
        let id = EndpointId(shared.store.generate_id()?);
        let endpoint = Endpoint {
            id,
            config,
            status: EndpointStatus::Active,
            created_at: time::from_ms(time::now_ms()),
            previous_secrets: Vec::new(),
        };
        shared.store.put_endpoint(id, &to_record(&endpoint))?;
        let lane = Lane::new(
            id,
            Route::new(&endpoint, &shared.config),
            EndpointStateRecord::default(),
        );
        shared.lanes.write().insert(id, Arc::clone(&lane));
        registry.insert(
            id,
            Registered {
                endpoint: endpoint.clone(),
                filter,
                lane,
            },
        );
        tracing::info!(endpoint = %id, name = %endpoint.name(), "endpoint added");
        Ok(endpoint)
    }

    /// Checks an endpoint's settings, and its URL against the bus's
    /// https-only setting.
    fn validate(&self, config: &EndpointConfig) -> Result<EventFilter> {
        let filter = config.validate()?;
        let https = config
            .url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if self.inner.shared.config.https_only && !https {
            return Err(Error::InvalidUrl {
                url: config.url.clone(),
                reason: "this bus accepts https:// endpoints only",
            });
        }
        if let crate::endpoint::Format::Custom(name) = &config.format {
            if !self.inner.shared.config.envelopes.0.contains_key(name) {
                return Err(Error::InvalidEndpoint {
                    field: "format",
                    reason: format!("no envelope named {name:?} is registered on this bus"),
                });
            }
        }
        Ok(filter)
    }

    /// One endpoint.
    pub fn endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.inner
            .registry
            .read()
            .get(&id)
            .map(current)
            .ok_or(Error::EndpointNotFound(id))
    }

    /// Every endpoint, in id order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.inner.registry.read().values().map(current).collect()
    }

    /// Replaces an endpoint's settings; it keeps its id, its status and its
    /// queue. Checks every field first: on an error nothing changes.
    pub fn update_endpoint(&self, id: EndpointId, config: EndpointConfig) -> Result<Endpoint> {
        self.check_open()?;
        let filter = self.validate(&config)?;
        self.modify(id, |reg| {
            reg.endpoint.config = config;
            reg.filter = filter;
        })
    }

    /// Replaces an endpoint's secret with `new_secret`, and keeps the old
    /// one signing alongside it for `grace`, so receivers can switch at
    /// their pace. With Standard Webhooks every active secret signs (one
    /// `v1,` entry each); the single-value schemes (a header or a body
    /// field) carry the new secret only. Expired secrets are forgotten.
    pub fn rotate_secret(
        &self,
        id: EndpointId,
        new_secret: impl Into<Secret>,
        grace: Duration,
    ) -> Result<Endpoint> {
        self.check_open()?;
        let new_secret = new_secret.into();
        new_secret.key_for(&self.endpoint(id)?.config.signing)?;
        let now = SystemTime::now();
        self.modify(id, |reg| {
            let ep = &mut reg.endpoint;
            ep.previous_secrets.retain(|(_, until)| *until > now);
            if let Some(old) = ep.config.secret.replace(new_secret) {
                if !grace.is_zero() {
                    ep.previous_secrets.insert(0, (old, now + grace));
                }
            }
        })
    }

    fn modify(&self, id: EndpointId, change: impl FnOnce(&mut Registered)) -> Result<Endpoint> {
        let shared = &self.inner.shared;
        let mut registry = self.inner.registry.write();
        let reg = registry.get_mut(&id).ok_or(Error::EndpointNotFound(id))?;
        let mut changed = Registered {
            endpoint: reg.endpoint.clone(),
            filter: reg.filter.clone(),
            lane: Arc::clone(&reg.lane),
        };
        change(&mut changed);
        shared
            .store
            .put_endpoint(id, &to_record(&changed.endpoint))?;
        changed
            .lane
            .set_route(shared, Route::new(&changed.endpoint, &shared.config));
        *reg = changed;
        tracing::info!(endpoint = %id, "endpoint changed");
        Ok(current(reg))
    }

    /// Makes an endpoint active: it receives new events and sends its queue.
    /// Also resumes a paused endpoint.
    pub fn enable_endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.set_mode(id, Mode::Active)
    }

    /// Disables an endpoint: new events are not queued for it, and its
    /// queued deliveries wait, stored, until it is enabled again.
    pub fn disable_endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.set_mode(id, Mode::Disabled)
    }

    /// Pauses an endpoint: new events are still queued for it, and nothing
    /// is sent until it is resumed.
    pub fn pause_endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        let since_ms = time::now_ms();
        self.set_mode(
            id,
            Mode::Paused {
                reason: PauseReason::Manual,
                since_ms,
            },
        )
    }

    /// Resumes a paused (or disabled) endpoint: its queue is sent (in
    /// publish order on an ordered endpoint; otherwise oldest first, with
    /// deliveries waiting for a retry going at their retry time), and the
    /// failed deliveries that paused it no longer count
    /// towards the next pause.
    pub fn resume_endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.set_mode(id, Mode::Active)
    }

    fn set_mode(&self, id: EndpointId, mode: Mode) -> Result<Endpoint> {
        self.check_open()?;
        let shared = &self.inner.shared;
        let registry = self.inner.registry.read();
        let reg = registry.get(&id).ok_or(Error::EndpointNotFound(id))?;
        reg.lane.update_health(shared, |h| {
            if mode == Mode::Active && h.mode != Mode::Active {
                // The failures that paused it no longer count towards the
                // next pause; the failing-attempt streak stays, so its
                // first success reports it recovered.
                h.consecutive_failed_deliveries = 0;
            }
            h.mode = mode;
        })?;
        shared.store.commit()?;
        tracing::info!(endpoint = %id, ?mode, "endpoint status changed");
        Ok(current(reg))
    }

    /// Removes an endpoint and its queue. Its finished deliveries and its
    /// delivery log stay readable. An attempt in flight finishes in the
    /// background.
    pub fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        self.check_open()?;
        let mut registry = self.inner.registry.write();
        if !registry.contains_key(&id) {
            return Err(Error::EndpointNotFound(id));
        }
        self.inner.shared.store.delete_endpoint(id)?;
        self.inner.shared.lanes.write().remove(&id);
        if let Some(reg) = registry.remove(&id) {
            reg.lane.close();
        }
        tracing::info!(endpoint = %id, "endpoint deleted");
        Ok(())
    }

    pub(super) fn lane(&self, id: EndpointId) -> Result<Arc<Lane>> {
        self.inner
            .registry
            .read()
            .get(&id)
            .map(|r| Arc::clone(&r.lane))
            .ok_or(Error::EndpointNotFound(id))
    }
}

/// The endpoint with its status as of now.
fn current(reg: &Registered) -> Endpoint {
    let mut endpoint = reg.endpoint.clone();
    endpoint.status = status_of(reg.lane.mode());
    endpoint
}

pub(super) fn status_of(mode: Mode) -> EndpointStatus {
    match mode {
        Mode::Active => EndpointStatus::Active,
        Mode::Disabled => EndpointStatus::Disabled,
        Mode::Paused { reason, since_ms } => EndpointStatus::Paused {
            reason,
            since: time::from_ms(since_ms),
        },
    }
}

fn to_record(ep: &Endpoint) -> EndpointRecord {
    let c = &ep.config;
    let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
    EndpointRecord {
        name: c.name.clone(),
        url: c.url.clone(),
        events: c.events.clone(),
        secret: c.secret.as_ref().map(|s| s.expose().to_string()),
        headers: c.headers.clone(),
        max_attempts: c.max_attempts,
        retry_delays_ms: c
            .retry_delays
            .as_ref()
            .map(|v| v.iter().copied().map(ms).collect()),
        timeout_ms: c.timeout.map(ms),
        concurrency: c.concurrency,
        format: c.format.clone(),
        signing: c.signing.clone(),
        success: c.success,
        attribute_filters: c.attribute_filters.clone(),
        ordered: c.ordered,
        pause_after: c.pause_after,
        previous_secrets: ep
            .previous_secrets
            .iter()
            .map(|(s, at)| (s.expose().to_string(), time::to_ms(*at)))
            .collect(),
        created_ms: time::to_ms(ep.created_at),
        rate_limit: c.rate_limit.map(|r| r.get()),
    }
}

pub(super) fn from_record(
    id: EndpointId,
    r: EndpointRecord,
    state: &EndpointStateRecord,
) -> Result<(Endpoint, EventFilter)> {
    let config = EndpointConfig {
        name: r.name,
        url: r.url,
        events: r.events,
        secret: r.secret.map(Secret::new),
        headers: r.headers,
        max_attempts: r.max_attempts,
        retry_delays: r
            .retry_delays_ms
            .map(|v| v.into_iter().map(Duration::from_millis).collect()),
        timeout: r.timeout_ms.map(Duration::from_millis),
        concurrency: r.concurrency,
        rate_limit: r.rate_limit.and_then(std::num::NonZeroU32::new),
        format: r.format,
        signing: r.signing,
        success: r.success,
        attribute_filters: r.attribute_filters,
        ordered: r.ordered,
        pause_after: r.pause_after,
    };
    let filter = config.validate().map_err(|e| Error::Corrupt {
        what: "endpoint",
        detail: e.to_string(),
    })?;
    Ok((
        Endpoint {
            id,
            config,
            status: status_of(state.mode),
            created_at: time::from_ms(r.created_ms),
            previous_secrets: r
                .previous_secrets
                .into_iter()
                .map(|(s, at)| (Secret::new(s), time::from_ms(at)))
                .collect(),
        },
        filter,
    ))
}
