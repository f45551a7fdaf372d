//! The public handle: open, publish, shut down. Endpoint management, the
//! delivery log and manual operations are in the files beside this one.

mod endpoints;
mod manual;
#[cfg(feature = "postgres")]
mod notices;
#[cfg(feature = "postgres")]
mod outbox;
mod queries;
#[cfg(feature = "postgres")]
mod replicas;
mod tenants;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::catalog::{Catalog, EventType};
use crate::config::{BusBuilder, Config};
use crate::delivery::{Engine, Lane, Route};
use crate::endpoint::{Endpoint, EndpointId, EventFilter};
use crate::error::{Error, PublishError, Result};
use crate::event::{validate_event_type, Event, EventId, IdGenerator};
use crate::http::{HttpClient, HttpOptions};
use crate::janitor::{self, Janitor};
use crate::routing::{Membership, Routing};
use crate::runtime::Runtime;
use crate::stats;
use crate::store::records::{DeliveryState, EventRecord, IdempotencyRecord};
use crate::store::{Storage, Store, StoreOptions};
use crate::tenant::TenantId;
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
    /// The settings; its status is read from the lane when handed out.
    endpoint: Endpoint,
    filter: EventFilter,
    lane: Arc<Lane>,
}

struct Inner {
    engine: Arc<Engine>,
    registry: RwLock<BTreeMap<EndpointId, Registered>>,
    /// The registry's endpoints by tenant and pattern, for publish; changed
    /// only with the registry's write lock held (taken first).
    routing: RwLock<Routing<Arc<Lane>>>,
    /// Every endpoint's tenant, deleted endpoints included.
    members: RwLock<Membership>,
    closed: AtomicBool,
    janitor: Mutex<Option<Janitor>>,
    /// The thread that claims endpoint leases and follows other replicas'
    /// changes (PostgreSQL only).
    #[cfg(feature = "postgres")]
    replicas: Mutex<Option<replicas::Replicas>>,
    /// Taken by a publish that finds this replica's endpoints behind the
    /// stored ones, so that concurrent publishes catch up once.
    #[cfg(feature = "postgres")]
    catching_up: Mutex<()>,
    /// Sends the notifications of this replica's publishes (PostgreSQL
    /// only).
    #[cfg(feature = "postgres")]
    notices: Option<notices::Notices>,
    /// Serializes the check-then-write of publishes with an idempotency key.
    keyed_publish: Mutex<()>,
    /// Serializes resends and recovers.
    manual: Mutex<()>,
    recovery: RecoveryReport,
    catalog: Catalog,
}

/// What [`Bus::open`] found in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Endpoints loaded.
    pub endpoints: usize,
    /// Unfinished deliveries put back in their queues.
    pub resumed: usize,
    /// Records that failed to decode: reported through `tracing` and skipped.
    pub corrupt_records: usize,
}

/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;

impl Bus {
    /// Opens (or creates) a bus in `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Bus> {
        Bus::builder(path).open()
    }

    /// Starts configuring a bus in `path`.
    pub fn builder(path: impl AsRef<Path>) -> BusBuilder {
        BusBuilder::new(path)
    }

    /// Starts configuring a bus stored in PostgreSQL at `url` (a
    /// connection string such as `postgres://app@db.internal:5432/app`, or
    /// `host=… user=… dbname=…`), which any number of replicas of the host
    /// may open at once to share one queue. Needs the `postgres` feature.
    ///
    /// Every setting of the builder applies, except sled's own
    /// (`cache_capacity`, `flush_every`), which are ignored; the
    /// `postgres_*` setters tune the backend. The schema is created or
    /// migrated on open. See the crate docs, section "PostgreSQL", for what
    /// replicas guarantee.
    ///
    /// ```no_run
    /// let bus = hookbus::Bus::postgres("postgres://app@127.0.0.1:5432/app")
    ///     .postgres_schema("webhooks")
    ///     .open()?;
    /// # Ok::<_, hookbus::Error>(())
    /// ```
    #[cfg(feature = "postgres")]
    pub fn postgres(url: impl Into<String>) -> BusBuilder {
        BusBuilder::new_postgres(url.into())
    }

    fn open_with(config: Config) -> Result<Bus> {
        // Settings are checked before the database is touched.
        config.validate()?;
        let catalog = Catalog::new(config.event_types.clone(), config.validate_payloads)?;
        let http = HttpClient::new(&http_options(&config))?;
        let store = open_storage(&config)?;
        let mut recovery = RecoveryReport::default();
        recovery.corrupt_records += janitor::finish_interrupted_deletions(&store, true)?;
        // What is read below is current up to this endpoint change at least.
        #[cfg(feature = "postgres")]
        if let Some(pg) = store.shared() {
            pg.mark_settings_seen(pg.settings_version()?);
        }
        let mut members = Membership::default();
        let mut owners: BTreeMap<EndpointId, TenantId> = BTreeMap::new();
        for item in store.endpoint_tenants()? {
            match item {
                Ok((id, tenant)) => {
                    members.add(&tenant, id);
                    owners.insert(id, tenant);
                }
                Err(e) => {
                    // Its endpoint is not loaded: better unreachable than
                    // in the wrong tenant.
                    tracing::error!(error = %e, "skipping an endpoint whose tenant cannot be read");
                    recovery.corrupt_records += 1;
                }
            }
        }
        let ids = match store.is_shared() {
            #[cfg(feature = "postgres")]
            true => IdGenerator::shared(store.last_event_id()?),
            _ => IdGenerator::new(store.last_event_id()?),
        };
        let engine = Arc::new(Engine::new(Runtime::new(store, http, config, ids)));
        let mut registry = BTreeMap::new();
        let unreadable_tenant = |id: EndpointId| {
            engine
                .runtime
                .store
                .has_endpoint_tenant(id)
                .map(|has| has && !owners.contains_key(&id))
        };
        for (id, record) in engine.runtime.store.endpoints()? {
            if unreadable_tenant(id)? {
                continue;
            }
            let tenant = owners.get(&id).cloned().unwrap_or_default();
            let state = engine.runtime.store.endpoint_state(id)?;
            match record.and_then(|r| endpoints::from_record(id, tenant, r, &state)) {
                Ok((endpoint, filter)) => {
                    let lane = Lane::new(
                        id,
                        Route::new(&endpoint, &engine.runtime.config),
                        state,
                        engine.runtime.config.per_endpoint_metrics,
                        !engine.runtime.store.is_shared(),
                    );
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
        #[cfg(feature = "postgres")]
        if let Some(pg) = engine.runtime.store.shared() {
            // The shared queue: whichever replica ends up sending it.
            recovery.resumed = pg.unfinished_total()?;
        }
        // Each endpoint's stored queue, one window of it: the rest is read
        // as the queue drains, so a backlog of millions costs no memory
        // and little time here (an ordered endpoint's is read through at
        // most `BEGUN_SEARCH` rows). (A shared store loads an endpoint's
        // queue when this replica claims its lease.)
        let own_queues = if engine.runtime.store.is_shared() {
            BTreeMap::new()
        } else {
            registry.iter().map(|(id, reg)| (*id, reg)).collect()
        };
        for (id, reg) in own_queues {
            let store = &engine.runtime.store;
            let window_size = crate::delivery::LANE_WINDOW;
            let mut window =
                store.pending_window(id, EventId::from_u128(0), window_size, |_| false)?;
            // An ordered endpoint's begun delivery goes first, even past the
            // first window (within `BEGUN_SEARCH`): it is held in memory
            // from the start.
            let mut held_past = 0;
            if reg.lane.route().settings.ordered {
                if let Some(begun) =
                    store.begun_past(id, &window, window_size, crate::delivery::BEGUN_SEARCH)?
                {
                    window.found.push(Ok(begun));
                    held_past = 1;
                }
                reg.lane.adopt_begun(&window.found);
            }
            for item in window.found {
                match item {
                    Ok(u) => {
                        let due = match u.record.state {
                            DeliveryState::Waiting { due_ms, .. } => due_ms,
                            _ => 0,
                        };
                        reg.lane.restore(u.event, due, false);
                        recovery.resumed += 1;
                    }
                    Err(e) => {
                        tracing::error!(endpoint = %id, error = %e, "skipping a delivery record that cannot be read");
                        recovery.corrupt_records += 1;
                    }
                }
            }
            if let Some(next) = window.next {
                let more = store.count_pending(id, next)?.saturating_sub(held_past);
                reg.lane.restore_spilled(next, more);
                recovery.resumed += more;
            }
        }
        // First deliveries of events published since the checkpoint, which
        // have no key of their own yet.
        let checkpoint = engine.runtime.store.checkpoint()?;
        for item in engine.runtime.store.implied_since(checkpoint, |_| true)? {
            match item {
                Ok(u) => {
                    // Deliveries to a deleted (or unreadable) endpoint stay
                    // stored and are not sent.
                    let Some(reg) = registry.get(&u.endpoint) else {
                        continue;
                    };
                    reg.lane.restore(u.event, u.record.created_ms, true);
                    recovery.resumed += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "skipping an event record that cannot be read");
                    recovery.corrupt_records += 1;
                }
            }
        }
        *engine.lanes.write() = registry
            .iter()
            .map(|(id, reg)| (*id, Arc::clone(&reg.lane)))
            .collect();
        let mut routing = Routing::default();
        for (id, reg) in &registry {
            routing.insert(
                &reg.endpoint.tenant,
                *id,
                reg.filter.clone(),
                Arc::clone(&reg.lane),
            );
        }
        crate::delivery::clock::Clock::start(&engine).map_err(|source| Error::Io {
            action: "starting the retry clock thread",
            source,
        })?;
        for reg in registry.values() {
            reg.lane.start(&engine);
        }
        let janitor = Janitor::start(Arc::clone(&engine)).map_err(|source| Error::Io {
            action: "starting the janitor thread",
            source,
        })?;
        tracing::info!(
            endpoints = recovery.endpoints,
            resumed = recovery.resumed,
            corrupt = recovery.corrupt_records,
            "hookbus opened"
        );
        #[cfg(feature = "postgres")]
        let notices = match engine.runtime.store.is_shared() {
            true => Some(notices::Notices::start(&engine)?),
            false => None,
        };
        let bus = Bus {
            inner: Arc::new(Inner {
                engine,
                registry: RwLock::new(registry),
                routing: RwLock::new(routing),
                members: RwLock::new(members),
                closed: AtomicBool::new(false),
                janitor: Mutex::new(Some(janitor)),
                #[cfg(feature = "postgres")]
                replicas: Mutex::new(None),
                #[cfg(feature = "postgres")]
                catching_up: Mutex::new(()),
                #[cfg(feature = "postgres")]
                notices,
                keyed_publish: Mutex::new(()),
                manual: Mutex::new(()),
                recovery,
                catalog,
            }),
        };
        #[cfg(feature = "postgres")]
        if bus.inner.engine.runtime.store.is_shared() {
            let worker = replicas::Replicas::start(&bus)?;
            *bus.inner.replicas.lock() = Some(worker);
        }
        Ok(bus)
    }

    /// What was found and resumed when the bus opened.
    pub fn recovery(&self) -> RecoveryReport {
        self.inner.recovery
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Stores an event and queues one delivery per endpoint of its
    /// [tenant](Event::tenant) that matches it (active or paused; disabled
    /// endpoints get nothing), makes it durable, and returns its id.
    /// Endpoints of other tenants are never looked at.
    ///
    /// `Ok` means the event and its deliveries survive a kill -9 of this
    /// process from now on. Concurrent publishes share flushes. An `Err`
    /// other than a validation error (a failed flush, a full disk) means
    /// the event may or may not have been stored: it is never delivered by
    /// this run, but may be after a restart.
    ///
    /// On failure the [`PublishError`] hands the event back
    /// ([`PublishError::into_event`]), so a host can publish it again
    /// without cloning every event beforehand; give events an
    /// [idempotency key](Event::idempotency_key) so that a retry after an
    /// uncertain failure cannot store one twice. In a function returning
    /// [`hookbus::Result`](crate::Result), `bus.publish(event)?` converts it
    /// to the [`Error`].
    ///
    /// With an [idempotency key](Event::idempotency_key) seen within the
    /// bus's `idempotency_window`, nothing is stored and the first event's
    /// id is returned (once that event is durable).
    pub fn publish(&self, event: Event) -> Result<EventId, PublishError> {
        let tenant = match self.check_publish(&event) {
            Ok(tenant) => tenant,
            Err(e) => return Err(PublishError::new(e, event)),
        };
        #[cfg(feature = "postgres")]
        if self.inner.engine.runtime.store.is_shared() {
            return self.publish_shared(event, &tenant, None);
        }
        let tenant_key = (!tenant.is_default()).then(|| tenant.as_str());
        let engine = &self.inner.engine;
        let now_us = time::now_us();
        let now = now_us / 1000;
        let keyed = event
            .idempotency_key
            .as_ref()
            .map(|_| self.inner.keyed_publish.lock());
        if let Some(key) = &event.idempotency_key {
            match self.seen_key(tenant_key, key, now) {
                Ok(None) => {}
                Ok(Some(original)) => {
                    drop(keyed);
                    // The first publish may still be flushing: wait for it.
                    return match engine.runtime.store.commit() {
                        Ok(()) => Ok(original),
                        Err(e) => Err(PublishError::new(e, event)),
                    };
                }
                Err(e) => return Err(PublishError::new(e, event)),
            }
        }
        let (id, lanes) = {
            let routing = self.inner.routing.read();
            let lanes: Vec<Arc<Lane>> = routing
                .matching(tenant.as_str(), &event.event_type, &event.attributes)
                .into_iter()
                .filter(|(_, lane)| lane.receives_events())
                .map(|(_, lane)| Arc::clone(lane))
                .collect();
            // Reserving under the id lock keeps each queue in id order, and
            // lets the janitor's checkpoint account for this publish.
            let id = engine.runtime.ids.next_with(|id| {
                for lane in &lanes {
                    lane.reserve(id);
                }
            });
            (id, lanes)
        };
        // Everything logged from here on (storage errors included) names
        // the event.
        let _span =
            tracing::debug_span!("publish", event = %id, deliveries = lanes.len()).entered();
        // Moved into the record (no copy of the payload); rebuilt from it if
        // the write fails, to hand the event back.
        let given_time = event.occurred_at_us;
        let record = event_record(event, &tenant, &lanes, now, now_us);
        let written = sled_of(&engine.runtime.store)
            .and_then(|sled| sled.insert_event(id, &record).map(|()| sled))
            .and_then(|sled| match &record.idempotency_key {
                Some(key) => sled.put_idempotency(
                    tenant_key,
                    key,
                    &IdempotencyRecord {
                        event: id.as_u128(),
                        created_ms: now,
                    },
                ),
                None => Ok(()),
            });
        drop(keyed);
        if let Err(e) = written.and_then(|()| engine.runtime.store.commit()) {
            for lane in &lanes {
                lane.cancel(engine, id);
            }
            let event = Event {
                event_type: record.event_type,
                payload: record.payload.into_boxed_slice(),
                occurred_at_us: given_time,
                attributes: record.attributes,
                idempotency_key: record.idempotency_key,
                tenant: record.tenant,
            };
            return Err(PublishError::new(e, event));
        }
        engine.runtime.published.fetch_add(1, Ordering::Relaxed);
        self.inner.routing.read().note_published(tenant.as_str());
        for lane in &lanes {
            lane.release(engine, id, now);
        }
        stats::published();
        tracing::debug!(event = %id, %tenant, event_type = %record.event_type, deliveries = lanes.len(), "published");
        Ok(id)
    }

    /// The event-type catalog declared with
    /// [`BusBuilder::event_type`], sorted by name.
    pub fn event_types(&self) -> &[EventType] {
        self.inner.catalog.types()
    }

    /// One type of the catalog, by name.
    pub fn event_type(&self, name: &str) -> Option<&EventType> {
        self.inner.catalog.get(name)
    }

    /// The store, for the portal's own small records (its session key and
    /// revocations; see `Store::meta`).
    #[cfg(feature = "portal")]
    pub(crate) fn store(&self) -> &Storage {
        &self.inner.engine.runtime.store
    }

    /// Checks a payload against the schema of its event type, whether or
    /// not publishes are validated (the portal's test send).
    #[cfg(feature = "portal")]
    pub(crate) fn check_payload(&self, event_type: &str, payload: &[u8]) -> Result<()> {
        self.inner.catalog.check(event_type, payload)
    }

    /// The checks a publish makes before touching the database.
    /// Returns the event's tenant.
    fn check_publish(&self, event: &Event) -> Result<TenantId> {
        self.check_open()?;
        validate_event_type(&event.event_type)?;
        let tenant = match &event.tenant {
            Some(key) => TenantId::new(key)?,
            None => TenantId::default_tenant(),
        };
        let limit = self.inner.engine.runtime.config.max_payload_bytes;
        if event.payload.len() > limit {
            return Err(Error::PayloadTooLarge {
                size: event.payload.len(),
                limit,
            });
        }
        self.inner
            .catalog
            .check_publish(&event.event_type, &event.payload)?;
        if let Some(key) = &event.idempotency_key {
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
                return Err(Error::InvalidIdempotencyKey {
                    reason: "must be 1 to 256 bytes",
                });
            }
        }
        Ok(tenant)
    }

    /// The event an idempotency key was first published with, if that was
    /// within the window and the event is still stored.
    fn seen_key(&self, tenant: Option<&str>, key: &str, now: u64) -> Result<Option<EventId>> {
        let store = &self.inner.engine.runtime.store;
        let window = time::duration_ms(self.inner.engine.runtime.config.idempotency_window);
        let Some(seen) = store.idempotency(tenant, key)? else {
            return Ok(None);
        };
        let id = EventId::from_u128(seen.event);
        if seen.created_ms.saturating_add(window) < now || store.event(id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(id))
    }

    /// Stops the bus: refuses new publishes and changes, lets attempts in
    /// flight finish (waiting at most the builder's `shutdown_timeout`,
    /// 15 s by default), joins every thread and flushes the database.
    /// Queued and scheduled deliveries stay stored and resume on the next
    /// open. Attempts still running at the timeout finish in the
    /// background, or are made again after the next open if the process
    /// exits first; until they finish they keep the database open, so
    /// opening the same directory again in this process meanwhile returns
    /// [`Error::AlreadyOpen`].
    ///
    /// Every [`notices`](Bus::notices) receiver disconnects: a host's
    /// `for notice in bus.notices()` loop ends, even while other clones of
    /// the bus are alive.
    ///
    /// Returns [`Error::WorkerPanicked`] with the number of panics caught
    /// on background threads since the bus opened: in the janitor, or in
    /// a delivery attempt (for example in a custom [`Envelope`](crate::Envelope)).
    /// A panicked attempt is logged as failed, with kind `other` and the
    /// panic's message, and retried on the delivery's schedule.
    /// Calling it again does nothing.
    pub fn shutdown(&self) -> Result<()> {
        self.inner.shutdown()
    }
}

/// The sled store of a bus whose publishes take sled's path.
fn sled_of(store: &Storage) -> Result<&Store> {
    store.sled().ok_or_else(|| Error::InvalidConfig {
        setting: "backend",
        reason: "this operation needs the sled backend".to_string(),
    })
}

/// Opens the storage the settings name: PostgreSQL when the bus was built
/// with [`Bus::postgres`], else sled.
fn open_storage(config: &Config) -> Result<Storage> {
    #[cfg(feature = "postgres")]
    if let Some(url) = &config.postgres_url {
        let options = crate::store::postgres::PgOptions {
            url: url.0.clone(),
            schema: config.postgres_schema.clone(),
            pool_size: config.postgres_pool_size,
            statement_timeout: config.postgres_statement_timeout,
            lease: config.postgres_lease,
            connect_timeout: config.postgres_connect_timeout,
        };
        let store = crate::store::postgres::PgStore::open(&options)?;
        return Ok(Storage::Postgres(Box::new(store)));
    }
    Ok(Storage::Sled(Store::open(&store_options(config))?))
}

/// The store's share of the bus settings.
fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        path: config.path.clone(),
        cache_capacity_bytes: config.cache_capacity_bytes,
        flush_every: config.flush_every,
    }
}

/// The HTTP client's share of the bus settings.
fn http_options(config: &Config) -> HttpOptions {
    HttpOptions {
        connect_timeout: config.connect_timeout,
        response_body_limit: config.response_body_limit,
        user_agent: config.user_agent.clone(),
        allow_private_networks: config.allow_private_networks,
        allowed_networks: config.allowed_networks.clone(),
        https_only: config.https_only,
    }
}

// The builder is plain data in `config`; opening is the bus's business.
impl BusBuilder {
    /// Opens the bus: opens or creates the database, resumes every pending
    /// delivery and starts the senders.
    ///
    /// Every setting is checked first, before the database is touched: one
    /// outside its allowed range (given in its setter's doc) fails with
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig), which names
    /// the setting and the range.
    pub fn open(self) -> Result<Bus> {
        Bus::open_with(self.into_config())
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("path", &self.inner.engine.runtime.config.path)
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
        self.engine.runtime.stop();
        let mut panics = 0;
        #[cfg(feature = "postgres")]
        if let Some(mut r) = self.replicas.lock().take() {
            panics += usize::from(r.stop());
        }
        #[cfg(feature = "postgres")]
        if let Some(notices) = &self.notices {
            panics += usize::from(notices.stop());
        }
        if let Some(mut j) = self.janitor.lock().take() {
            panics += usize::from(j.stop());
        }
        for reg in self.registry.read().values() {
            reg.lane.close();
        }
        if self.engine.clock.stop() {
            panics += 1;
        }
        let deadline = Instant::now().checked_add(self.engine.runtime.config.shutdown_timeout);
        let left_running = self.engine.pool.stop(deadline);
        panics += self.engine.panics();
        if left_running > 0 {
            tracing::warn!(
                threads = left_running,
                "attempts still in flight at the shutdown timeout are left to finish in the background"
            );
        }
        // After the joins, so notices of the attempts that finished reach
        // their subscribers; then every `notices()` loop ends.
        self.engine.runtime.notices.close();
        #[cfg(feature = "postgres")]
        if let Some(pg) = self.engine.runtime.store.shared() {
            // Given back at once, so other replicas need not wait for the
            // leases to expire.
            let mine: Vec<EndpointId> = self
                .registry
                .read()
                .iter()
                .filter(|(_, r)| r.lane.is_served() && r.lane.depth().1 == 0)
                .map(|(id, _)| *id)
                .collect();
            if let Err(e) = pg.release_leases(&mine) {
                tracing::warn!(error = %e, "giving back endpoint leases failed; they expire on their own");
            }
            if let Err(e) = pg.leave() {
                tracing::warn!(error = %e, "removing this replica's row failed; it ages out after one lease");
            }
        }
        // A last checkpoint makes the next open quick.
        if let Err(e) = janitor::checkpoint(&self.engine, janitor::Round::Final) {
            tracing::warn!(error = %e, "final queue checkpoint failed; the next open reads more");
        }
        self.engine.runtime.store.flush()?;
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

/// The stored record of a published event, moving its payload (no copy):
/// the same for every backend. `lanes` are the endpoints it is queued for.
pub(super) fn event_record(
    event: Event,
    tenant: &TenantId,
    lanes: &[Arc<Lane>],
    now_ms: u64,
    now_us: u64,
) -> EventRecord {
    EventRecord {
        occurred_us: event.occurred_at_us.unwrap_or(now_us),
        event_type: event.event_type,
        payload: event.payload.into_vec(),
        attributes: event.attributes,
        targets: lanes.iter().map(|l| l.id.as_u64()).collect(),
        created_ms: now_ms,
        idempotency_key: event.idempotency_key,
        tenant: (!tenant.is_default()).then(|| tenant.as_str().to_string()),
    }
}
