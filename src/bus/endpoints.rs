//! Endpoint management on the bus: add, read, update, enable, disable,
//! pause, resume, rotate secrets, delete.

use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Bus, Registered};
use crate::bounds;
use crate::delivery::{Lane, Route};
use crate::endpoint::{
    Endpoint, EndpointConfig, EndpointId, EndpointStatus, EventFilter, PauseReason,
};
use crate::error::{Error, Result};
use crate::page::{Cursor, Page};
use crate::signing::Secret;
use crate::store::records::{EndpointRecord, EndpointStateRecord, Mode};
use crate::tenant::TenantId;
use crate::time;

impl Bus {
    /// Registers an endpoint, active, in its [tenant](EndpointConfig::tenant).
    /// Checks every field first: on an error nothing is written.
    pub fn add_endpoint(&self, config: EndpointConfig) -> Result<Endpoint> {
        self.check_open()?;
        let filter = self.validate(&config)?;
        let tenant = tenant_of(&config)?;
        let engine = &self.inner.engine;
        let mut registry = self.inner.registry.write();
        let id = EndpointId(engine.runtime.store.generate_id()?);
        if !tenant.is_default() {
            // Written first: see Store::put_endpoint_tenant.
            engine.runtime.store.put_endpoint_tenant(id, &tenant)?;
        }
        let endpoint = Endpoint {
            id,
            tenant: tenant.clone(),
            config,
            status: EndpointStatus::Active,
            created_at: time::from_ms(time::now_ms()),
            previous_secrets: Vec::new(),
        };
        engine
            .runtime
            .store
            .put_endpoint(id, &to_record(&endpoint))?;
        let lane = Lane::new(
            id,
            Route::new(&endpoint, &engine.runtime.config),
            EndpointStateRecord::default(),
            engine.runtime.config.per_endpoint_metrics,
            // On a shared store, the replica that claims its lease sends it.
            !engine.runtime.store.is_shared(),
        );
        engine.lanes.write().insert(id, Arc::clone(&lane));
        self.inner
            .routing
            .write()
            .insert(&tenant, id, filter.clone(), Arc::clone(&lane));
        self.inner.members.write().add(&tenant, id);
        registry.insert(
            id,
            Registered {
                endpoint: endpoint.clone(),
                filter,
                lane,
            },
        );
        tracing::info!(endpoint = %id, %tenant, name = %endpoint.name(), "endpoint added");
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
        if self.inner.engine.runtime.config.https_only && !https {
            return Err(Error::InvalidUrl {
                url: config.url.clone(),
                reason: "this bus accepts https:// endpoints only",
            });
        }
        if let crate::formats::Format::Custom(name) = &config.format {
            if !self
                .inner
                .engine
                .runtime
                .config
                .envelopes
                .0
                .contains_key(name)
            {
                return Err(Error::InvalidEndpoint {
                    field: "format",
                    reason: format!("no envelope named {name:?} is registered on this bus"),
                });
            }
        }
        Ok(filter)
    }

    /// One endpoint; `None` if it does not exist (or was deleted).
    pub fn endpoint(&self, id: EndpointId) -> Option<Endpoint> {
        self.inner.registry.read().get(&id).map(current)
    }

    /// The endpoints in id order, one page at a time (see [`Page`]).
    pub fn endpoints(&self, after: Option<Cursor<Endpoint>>, limit: usize) -> Page<Endpoint> {
        let limit = limit.max(1);
        // Endpoint ids are u64; a larger position can only be made up and
        // is past every endpoint.
        let start = match after.map(|c| u64::try_from(c.position())) {
            None => Bound::Unbounded,
            Some(Ok(id)) => Bound::Excluded(EndpointId(id)),
            Some(Err(_)) => return Page::new(Vec::new(), None),
        };
        let registry = self.inner.registry.read();
        let items: Vec<Endpoint> = registry
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, reg)| current(reg))
            .collect();
        let next = (items.len() == limit)
            .then(|| {
                items
                    .last()
                    .map(|e| Cursor::at(u128::from(e.id().as_u64())))
            })
            .flatten();
        Page::new(items, next)
    }

    /// Replaces an endpoint's settings; it keeps its id, its status, its
    /// queue and its tenant. Checks every field first: on an error nothing
    /// changes. The settings must name the endpoint's own tenant (as the
    /// config read back from [`Endpoint::config`] does): an endpoint never
    /// moves to another tenant, so naming another one (or none, for an
    /// endpoint outside the default tenant) is an [`Error::InvalidTenant`].
    pub fn update_endpoint(&self, id: EndpointId, config: EndpointConfig) -> Result<Endpoint> {
        self.check_open()?;
        let filter = self.validate(&config)?;
        let tenant = tenant_of(&config)?;
        let current = self.endpoint(id).ok_or(Error::EndpointNotFound(id))?;
        if tenant != current.tenant {
            return Err(Error::InvalidTenant {
                key: tenant.to_string(),
                reason: "an endpoint stays in its tenant; add a new endpoint to the other tenant",
            });
        }
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
    ///
    /// `grace` allowed: 0 to 365 days; outside that the call fails with
    /// [`Error::InvalidEndpoint`] (field `grace`) and nothing changes.
    pub fn rotate_secret(
        &self,
        id: EndpointId,
        new_secret: impl Into<Secret>,
        grace: Duration,
    ) -> Result<Endpoint> {
        self.check_open()?;
        bounds::ROTATION_GRACE
            .check(grace)
            .map_err(|reason| Error::InvalidEndpoint {
                field: "grace",
                reason,
            })?;
        let new_secret = new_secret.into();
        let endpoint = self.endpoint(id).ok_or(Error::EndpointNotFound(id))?;
        new_secret.key_for(&endpoint.config.signing)?;
        let now = SystemTime::now();
        // Within the bound this cannot overflow on any platform; a clock
        // set absurdly far ahead gets no grace rather than a panic.
        let until = now.checked_add(grace);
        self.modify(id, |reg| {
            let ep = &mut reg.endpoint;
            ep.previous_secrets.retain(|(_, until)| *until > now);
            if let Some(old) = ep.config.secret.replace(new_secret) {
                if let Some(until) = until.filter(|_| !grace.is_zero()) {
                    ep.previous_secrets.insert(0, (old, until));
                }
            }
        })
    }

    fn modify(&self, id: EndpointId, change: impl FnOnce(&mut Registered)) -> Result<Endpoint> {
        let engine = &self.inner.engine;
        let mut registry = self.inner.registry.write();
        let reg = registry.get_mut(&id).ok_or(Error::EndpointNotFound(id))?;
        let mut changed = Registered {
            endpoint: reg.endpoint.clone(),
            filter: reg.filter.clone(),
            lane: Arc::clone(&reg.lane),
        };
        change(&mut changed);
        if changed.endpoint.tenant != reg.endpoint.tenant {
            // update_endpoint checked it outside this lock; a concurrent
            // change cannot alter a tenant, but the index must never lie.
            return Err(Error::InvalidTenant {
                key: changed.endpoint.tenant.to_string(),
                reason: "an endpoint stays in its tenant",
            });
        }
        engine
            .runtime
            .store
            .put_endpoint(id, &to_record(&changed.endpoint))?;
        changed.lane.set_route(
            engine,
            Route::new(&changed.endpoint, &engine.runtime.config),
        );
        self.inner.routing.write().insert(
            &changed.endpoint.tenant,
            id,
            changed.filter.clone(),
            Arc::clone(&changed.lane),
        );
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
        let engine = &self.inner.engine;
        let registry = self.inner.registry.read();
        let reg = registry.get(&id).ok_or(Error::EndpointNotFound(id))?;
        reg.lane.update_health(engine, |h| {
            if mode == Mode::Active && h.mode != Mode::Active {
                // The failures that paused it no longer count towards the
                // next pause; the failing-attempt streak stays, so its
                // first success reports it recovered.
                h.consecutive_failed_deliveries = 0;
            }
            h.mode = mode;
        })?;
        engine.runtime.store.commit()?;
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
        self.inner.engine.runtime.store.delete_endpoint(id)?;
        self.inner.routing.write().remove(id);
        self.inner.engine.lanes.write().remove(&id);
        if let Some(reg) = registry.remove(&id) {
            reg.lane.close();
        }
        tracing::info!(endpoint = %id, "endpoint deleted");
        Ok(())
    }

    /// The endpoint's lane, for actions: they fail on an unknown endpoint.
    pub(super) fn lane(&self, id: EndpointId) -> Result<Arc<Lane>> {
        self.lane_of(id).ok_or(Error::EndpointNotFound(id))
    }

    /// The endpoint's lane, for reads: an unknown endpoint is `None`.
    pub(super) fn lane_of(&self, id: EndpointId) -> Option<Arc<Lane>> {
        self.inner
            .registry
            .read()
            .get(&id)
            .map(|r| Arc::clone(&r.lane))
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

pub(super) fn to_record(ep: &Endpoint) -> EndpointRecord {
    let c = &ep.config;
    EndpointRecord {
        name: c.name.clone(),
        url: c.url.clone(),
        events: c.events.clone(),
        secret: c.secret.as_ref().map(|s| s.expose().to_string()),
        headers: c.headers.clone(),
        format: c.format.clone(),
        signing: c.signing.clone(),
        attribute_filters: c.attribute_filters.clone(),
        settings: c.settings.clone(),
        previous_secrets: ep
            .previous_secrets
            .iter()
            .map(|(s, at)| (s.expose().to_string(), time::to_ms(*at)))
            .collect(),
        created_ms: time::to_ms(ep.created_at),
    }
}

/// The tenant an endpoint's settings name, checked.
fn tenant_of(config: &EndpointConfig) -> Result<TenantId> {
    match &config.tenant {
        Some(key) => TenantId::new(key),
        None => Ok(TenantId::default_tenant()),
    }
}

pub(super) fn from_record(
    id: EndpointId,
    tenant: TenantId,
    r: EndpointRecord,
    state: &EndpointStateRecord,
) -> Result<(Endpoint, EventFilter)> {
    let mut config = EndpointConfig {
        name: r.name,
        url: r.url,
        events: r.events,
        secret: r.secret.map(Secret::new),
        headers: r.headers,
        format: r.format,
        signing: r.signing,
        attribute_filters: r.attribute_filters,
        settings: r.settings,
        tenant: (!tenant.is_default()).then(|| tenant.as_str().to_string()),
    };
    if config.settings.clamp_legacy() {
        tracing::warn!(endpoint = %id, "a stored setting was outside its allowed range and is used at the nearest allowed value");
    }
    let filter = config.validate().map_err(|e| Error::Corrupt {
        what: "endpoint",
        detail: e.to_string(),
    })?;
    Ok((
        Endpoint {
            id,
            tenant,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_settings_outside_todays_ranges_load_clamped() {
        let endpoint = Endpoint {
            id: EndpointId(7),
            config: EndpointConfig::new("old", "https://example.com/hook"),
            status: EndpointStatus::Active,
            created_at: time::from_ms(1_000),
            previous_secrets: Vec::new(),
            tenant: TenantId::default_tenant(),
        };
        let mut record = to_record(&endpoint);
        // As an earlier release, which had no upper bounds, could store.
        let s = &mut record.settings;
        s.max_attempts = Some(u32::MAX);
        s.retry_delays = Some(vec![Duration::from_millis(u64::MAX); 150]);
        s.timeout = Some(Duration::from_millis(u64::MAX));
        s.concurrency = Some(100_000);
        s.pause_after = Some(Some(u32::MAX));
        let (loaded, _) = from_record(
            EndpointId(7),
            TenantId::default_tenant(),
            record,
            &EndpointStateRecord::default(),
        )
        .unwrap();
        let c = &loaded.config().settings;
        assert_eq!(c.max_attempts, Some(1000));
        let delays = c.retry_delays.as_ref().unwrap();
        assert_eq!(delays.len(), 100);
        assert!(delays.iter().all(|d| *d == bounds::RETRY_DELAY.max));
        assert_eq!(c.timeout, Some(bounds::TIMEOUT.max));
        assert_eq!(c.concurrency, Some(256));
        assert_eq!(c.pause_after, Some(Some(1_000_000)));
    }
}
