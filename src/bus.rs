//! The public handle: open, publish, manage endpoints, read the log, shut down.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::config::{BusBuilder, Config};
use crate::delivery::{Lane, Route, Shared};
use crate::endpoint::{Endpoint, EndpointConfig, EndpointId, EventFilter, Secret};
use crate::error::{Error, Result};
use crate::event::{validate_event_type, Event, EventId, IdGenerator, StoredEvent};
use crate::http::HttpClient;
use crate::log::{Attempt, Delivery};
use crate::store::records::{EndpointRecord, EventRecord};
use crate::store::Store;
use crate::time;

/// A durable webhook bus. Cheap to clone: clones share one bus.
///
/// The bus shuts down when [`Bus::shutdown`] is called or the last clone is
/// dropped. See the [crate docs](crate) for the guarantees.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Registered {
    endpoint: Endpoint,
    filter: EventFilter,
    lane: Arc<Lane>,
}

struct Inner {
    shared: Arc<Shared>,
    ids: IdGenerator,
    registry: RwLock<BTreeMap<EndpointId, Registered>>,
    closed: AtomicBool,
    /// Threads of deleted endpoints, joined at shutdown.
    retired: Mutex<Vec<JoinHandle<()>>>,
    recovery: RecoveryReport,
}

/// What [`Bus::open`] found in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Endpoints loaded.
    pub endpoints: usize,
    /// Unfinished deliveries put back in their queues.
    pub resumed: usize,
    /// Records that failed to decode: reported through `tracing` and skipped.
    pub corrupt_records: usize,
}

impl Bus {
    /// Opens (or creates) a bus in `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Bus> {
        Bus::builder(path).open()
    }

    /// Starts configuring a bus in `path`.
    pub fn builder(path: impl AsRef<Path>) -> BusBuilder {
        BusBuilder::new(path)
    }

    pub(crate) fn open_with(config: Config) -> Result<Bus> {
        // Settings are checked before the database is touched.
        config.validate()?;
        let http = HttpClient::new(&config)?;
        let store = Store::open(&config)?;
        let ids = IdGenerator::new(store.last_event_id()?);
        let shared = Arc::new(Shared::new(store, http, config));
        let mut recovery = RecoveryReport::default();
        let mut registry = BTreeMap::new();
        for (id, record) in shared.store.endpoints()? {
            match record.and_then(|r| endpoint_from_record(id, r)) {
                Ok((endpoint, filter)) => {
                    let lane = Lane::new(id, Route::new(&endpoint, &shared.config));
                    registry.insert(
                        id,
                        Registered {
                            endpoint,
                            filter,
                            lane,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(endpoint = %id, error = %e, "skipping an endpoint that cannot be read");
                    recovery.corrupt_records += 1;
                }
            }
        }
        recovery.endpoints = registry.len();
        for item in shared.store.unfinished()? {
            match item {
                Ok(u) => match registry.get(&u.endpoint) {
                    Some(reg) => {
                        reg.lane.restore(u.event, u.record.state);
                        recovery.resumed += 1;
                    }
                    None => {
                        tracing::error!(endpoint = %u.endpoint, event = %u.event, "delivery to an unreadable endpoint left in place");
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "skipping a delivery record that cannot be read");
                    recovery.corrupt_records += 1;
                }
            }
        }
        for reg in registry.values() {
            reg.lane.start(&shared);
        }
        tracing::info!(
            endpoints = recovery.endpoints,
            resumed = recovery.resumed,
            corrupt = recovery.corrupt_records,
            "hookbus opened"
        );
        Ok(Bus {
            inner: Arc::new(Inner {
                shared,
                ids,
                registry: RwLock::new(registry),
                closed: AtomicBool::new(false),
                retired: Mutex::new(Vec::new()),
                recovery,
            }),
        })
    }

    /// What was found and resumed when the bus opened.
    pub fn recovery(&self) -> RecoveryReport {
        self.inner.recovery
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    // ----- publish -----

    /// Stores an event and one delivery per enabled endpoint whose patterns
    /// match its type, makes them durable, queues them, and returns the id.
    ///
    /// `Ok` means the event and its deliveries survive a kill -9 of this
    /// process from now on. Concurrent publishes share flushes. An `Err`
    /// other than a validation error (a failed flush, a full disk) means
    /// the event may or may not have been stored: it is never delivered by
    /// this run, but may be after a restart.
    pub fn publish(&self, event: Event) -> Result<EventId> {
        self.check_open()?;
        validate_event_type(&event.event_type)?;
        let limit = self.inner.shared.config.max_payload_bytes;
        if event.payload.len() > limit {
            return Err(Error::PayloadTooLarge {
                size: event.payload.len(),
                limit,
            });
        }
        let now = time::now_ms();
        let record = EventRecord {
            occurred_ms: event.occurred_at_ms.unwrap_or(now),
            event_type: event.event_type,
            payload: event.payload.into_vec(),
            attributes: event.attributes,
        };
        let shared = &self.inner.shared;
        let (id, lanes) = {
            let registry = self.inner.registry.read();
            let lanes: Vec<Arc<Lane>> = registry
                .values()
                .filter(|r| {
                    r.endpoint.enabled && r.filter.matches(&record.event_type, &record.attributes)
                })
                .map(|r| Arc::clone(&r.lane))
                .collect();
            let targets: Vec<EndpointId> = lanes.iter().map(|l| l.id).collect();
            let id = self.inner.ids.next();
            shared.store.insert_event(id, &record, &targets, now)?;
            (id, lanes)
        };
        shared.store.commit()?;
        for lane in &lanes {
            lane.push(shared, id);
        }
        tracing::debug!(event = %id, event_type = %record.event_type, deliveries = lanes.len(), "published");
        Ok(id)
    }

    // ----- endpoints -----

    /// Registers an endpoint, enabled. Checks every field first: on an
    /// error nothing is written.
    pub fn add_endpoint(&self, config: EndpointConfig) -> Result<Endpoint> {
        self.check_open()?;
        let filter = self.validate(&config)?;
        let shared = &self.inner.shared;
        let mut registry = self.inner.registry.write();
        let id = EndpointId(shared.store.generate_id()?);
        let endpoint = Endpoint {
            id,
            config,
            enabled: true,
            created_at: time::from_ms(time::now_ms()),
            previous_secrets: Vec::new(),
        };
        shared.store.put_endpoint(id, &endpoint_record(&endpoint))?;
        let lane = Lane::new(id, Route::new(&endpoint, &shared.config));
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
        if self.inner.shared.config.https_only
            && !config
                .url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(Error::InvalidUrl {
                url: config.url.clone(),
                reason: "this bus accepts https:// endpoints only",
            });
        }
        Ok(filter)
    }

    /// One endpoint.
    pub fn endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.inner
            .registry
            .read()
            .get(&id)
            .map(|r| r.endpoint.clone())
            .ok_or(Error::EndpointNotFound(id))
    }

    /// Every endpoint, in id order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.inner
            .registry
            .read()
            .values()
            .map(|r| r.endpoint.clone())
            .collect()
    }

    /// Replaces an endpoint's settings; it keeps its id, its enabled state
    /// and its queue. Checks every field first: on an error nothing changes.
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
        new_secret: impl Into<String>,
        grace: Duration,
    ) -> Result<Endpoint> {
        self.check_open()?;
        let new_secret = Secret::new(new_secret);
        new_secret.key_for(&self.endpoint(id)?.config.signing)?;
        let now = std::time::SystemTime::now();
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

    /// Lets an endpoint receive new events again, and resumes its queue.
    pub fn enable_endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.check_open()?;
        self.modify(id, |reg| reg.endpoint.enabled = true)
    }

    /// Stops an endpoint: new events are not queued for it, and its queued
    /// deliveries wait, stored, until it is enabled again.
    pub fn disable_endpoint(&self, id: EndpointId) -> Result<Endpoint> {
        self.check_open()?;
        self.modify(id, |reg| reg.endpoint.enabled = false)
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
            .put_endpoint(id, &endpoint_record(&changed.endpoint))?;
        changed
            .lane
            .set_route(shared, Route::new(&changed.endpoint, &shared.config));
        let endpoint = changed.endpoint.clone();
        *reg = changed;
        tracing::info!(endpoint = %id, enabled = endpoint.enabled, "endpoint changed");
        Ok(endpoint)
    }

    /// Removes an endpoint and its queued deliveries. Its delivery log
    /// stays readable. An attempt in flight finishes in the background.
    pub fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        self.check_open()?;
        let mut registry = self.inner.registry.write();
        if !registry.contains_key(&id) {
            return Err(Error::EndpointNotFound(id));
        }
        self.inner.shared.store.delete_endpoint(id)?;
        if let Some(reg) = registry.remove(&id) {
            self.inner.retired.lock().extend(reg.lane.close());
        }
        tracing::info!(endpoint = %id, "endpoint deleted");
        Ok(())
    }

    // ----- reading the log -----

    /// A stored event.
    pub fn event(&self, id: EventId) -> Result<Option<StoredEvent>> {
        Ok(self.inner.shared.store.event(id)?.map(|r| StoredEvent {
            id,
            event_type: r.event_type,
            payload: r.payload,
            occurred_at: time::from_ms(r.occurred_ms),
            attributes: r.attributes,
        }))
    }

    /// The delivery of one event to one endpoint, if there is one.
    pub fn delivery(&self, endpoint: EndpointId, event: EventId) -> Result<Option<Delivery>> {
        Ok(self
            .inner
            .shared
            .store
            .delivery(endpoint, event)?
            .map(|r| Delivery::from_record(endpoint, event, &r)))
    }

    /// Every delivery of an event, one per endpoint it was queued for
    /// (deleted endpoints excluded).
    pub fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>> {
        let ids: Vec<EndpointId> = self.inner.registry.read().keys().copied().collect();
        let mut out = Vec::new();
        for ep in ids {
            if let Some(d) = self.delivery(ep, event)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Every attempt made for an event, to any endpoint, oldest first.
    pub fn attempts(&self, event: EventId) -> Result<Vec<Attempt>> {
        let records = self.inner.shared.store.attempts_for_event(event)?;
        Ok(records.into_iter().map(Attempt::from).collect())
    }

    /// The `limit` most recent attempts to an endpoint, newest first.
    pub fn endpoint_attempts(&self, endpoint: EndpointId, limit: usize) -> Result<Vec<Attempt>> {
        let records = self
            .inner
            .shared
            .store
            .attempts_for_endpoint(endpoint, limit)?;
        Ok(records.into_iter().map(Attempt::from).collect())
    }

    /// Deliveries to an endpoint that are queued or waiting for a retry
    /// (in-flight attempts not counted).
    pub fn queue_depth(&self, endpoint: EndpointId) -> Result<usize> {
        let registry = self.inner.registry.read();
        let reg = registry
            .get(&endpoint)
            .ok_or(Error::EndpointNotFound(endpoint))?;
        Ok(reg.lane.queued())
    }

    /// How many storage flushes publishes and endpoint changes have needed
    /// so far. With many threads publishing at once this stays well below
    /// the number of publishes: they share flushes.
    pub fn commit_flushes(&self) -> u64 {
        self.inner.shared.store.commit_flushes()
    }

    // ----- shutdown -----

    /// Stops the bus: refuses new publishes and changes, lets attempts in
    /// flight finish (waiting at most the builder's `shutdown_timeout`,
    /// 15 s by default), joins every thread and flushes the database.
    /// Attempts still running at the timeout finish in the background, or
    /// are made again after the next open if the process exits first. Queued and scheduled deliveries stay
    /// stored and resume on the next open.
    ///
    /// Returns [`Error::WorkerPanicked`] if a sender thread panicked. Calling
    /// it again does nothing.
    pub fn shutdown(&self) -> Result<()> {
        self.inner.shutdown()
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("path", &self.inner.shared.config.path)
            .field("endpoints", &self.inner.registry.read().len())
            .field("shut_down", &self.inner.closed.load(Ordering::SeqCst))
            .finish()
    }
}

impl Inner {
    fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.shared.stop();
        let mut handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.retired.lock());
        for reg in self.registry.read().values() {
            handles.extend(reg.lane.close());
        }
        let mut panics = self.shared.panics();
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        let mut left_running = 0;
        for handle in handles {
            // JoinHandle has no timed join: wait in short naps, bounded by
            // the shutdown timeout. Only shutdown does this.
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !handle.is_finished() {
                left_running += 1;
            } else if handle.join().is_err() {
                panics += 1;
            }
        }
        if left_running > 0 {
            tracing::warn!(
                threads = left_running,
                "attempts still in flight at the shutdown timeout are left to finish in the background"
            );
        }
        self.shared.store.flush()?;
        tracing::info!("hookbus shut down");
        if panics > 0 {
            return Err(Error::WorkerPanicked { count: panics });
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "hookbus shutdown on drop reported a problem");
        }
    }
}

fn endpoint_record(ep: &Endpoint) -> EndpointRecord {
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
        previous_secrets: ep
            .previous_secrets
            .iter()
            .map(|(s, at)| (s.expose().to_string(), time::to_ms(*at)))
            .collect(),
        enabled: ep.enabled,
        created_ms: time::to_ms(ep.created_at),
    }
}

fn endpoint_from_record(id: EndpointId, r: EndpointRecord) -> Result<(Endpoint, EventFilter)> {
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
        format: r.format,
        signing: r.signing,
        success: r.success,
        attribute_filters: r.attribute_filters,
    };
    let filter = config.validate().map_err(|e| Error::Corrupt {
        what: "endpoint",
        detail: e.to_string(),
    })?;
    Ok((
        Endpoint {
            id,
            config,
            enabled: r.enabled,
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
