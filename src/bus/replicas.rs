//! Being one replica among many on PostgreSQL: a thread that claims and
//! renews endpoint leases (see `store/postgres/queue.rs`), loads the queues
//! of the endpoints this replica serves, and follows the changes other
//! replicas make (endpoints added, changed, deleted, paused, resumed) — at
//! once through LISTEN/NOTIFY, and through a slow poll for anything a
//! dropped notification hid.
//!
//! Bounds, with the defaults: a change made through another replica takes
//! effect here when its notification arrives (milliseconds), at the latest
//! after `postgres_poll_interval` (1 s), and before any publish through
//! this replica that begins after the change committed (`catch_up`); the
//! endpoints of a replica that died are taken over within `postgres_lease`
//! (30 s) plus a third of it. A replica with nothing to do reads the
//! database once per poll interval and never busy-polls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::endpoints::from_record;
use super::{Bus, Inner, Registered};
use crate::delivery::{Engine, Lane, Route, BEGUN_SEARCH, LANE_WINDOW};
use crate::endpoint::EndpointId;
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::store::postgres::notify::{Change, Listener};
use crate::store::records::EndpointRecord;
use crate::tenant::TenantId;

/// What wakes the replica thread.
enum Signal {
    Change(Change),
    /// Notifications may have been missed: look at everything.
    Resync,
    Stop,
}

/// Every this many rounds, the lease round also gives lease rows to
/// endpoints that lack one and prunes the settings change log.
const RESYNC_EVERY: u32 = 10;

pub(super) struct Replicas {
    stop: Arc<AtomicBool>,
    signals: Sender<Signal>,
    worker: Option<JoinHandle<()>>,
    worker_id: ThreadId,
    listener: Option<JoinHandle<()>>,
}

impl Replicas {
    /// Claims this replica's first endpoints (so a bus serves as soon as
    /// `open` returns), then starts the threads.
    pub(super) fn start(bus: &Bus) -> Result<Replicas> {
        let engine = Arc::clone(&bus.inner.engine);
        let mut state = State::default();
        round(&bus.inner, &mut state, Vec::new(), true, false);
        let stop = Arc::new(AtomicBool::new(false));
        let (signals, inbox) = crossbeam_channel::unbounded();
        let spawn_error = |source| Error::Io {
            action: "starting the PostgreSQL replica thread",
            source,
        };
        let listener = {
            let (stop, signals, engine) = (Arc::clone(&stop), signals.clone(), Arc::clone(&engine));
            thread::Builder::new()
                .name("hookbus-listen".into())
                .spawn(move || listen(&engine, &stop, &signals))
                .map_err(spawn_error)?
        };
        let weak = Arc::downgrade(&bus.inner);
        let worker = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("hookbus-replica".into())
                .spawn(move || work(&weak, &stop, &inbox, state))
                .map_err(spawn_error)?
        };
        Ok(Replicas {
            stop,
            signals,
            worker_id: worker.thread().id(),
            worker: Some(worker),
            listener: Some(listener),
        })
    }

    /// Stops both threads; `true` if one had panicked. Called from the
    /// worker itself (it held the last handle of the bus), it only signals.
    pub(super) fn stop(&mut self) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.signals.send(Signal::Stop);
        let mut panicked = false;
        if thread::current().id() != self.worker_id {
            if let Some(h) = self.worker.take() {
                panicked |= h.join().is_err();
            }
        }
        if let Some(h) = self.listener.take() {
            panicked |= h.join().is_err();
        }
        panicked
    }
}

/// The listener thread: forwards notifications, reconnects after a loss.
fn listen(engine: &Arc<Engine>, stop: &AtomicBool, signals: &Sender<Signal>) {
    let Some(pg) = engine.runtime.store.shared() else {
        return;
    };
    let poll = engine.runtime.config.postgres_poll_interval;
    // Short waits, so that shutdown is never held up long.
    let wait = poll.min(Duration::from_millis(200));
    let mut listener: Option<Listener> = None;
    while !stop.load(Ordering::SeqCst) {
        let conn = match listener.as_mut() {
            Some(l) => l,
            None => match pg.listen() {
                Ok(l) => {
                    // Whatever was sent while not listening is looked at.
                    let _ = signals.send(Signal::Resync);
                    listener.insert(l)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN on PostgreSQL; relying on polling, retrying");
                    thread::sleep(poll);
                    continue;
                }
            },
        };
        match conn.wait(wait) {
            Ok(changes) => {
                for change in changes {
                    let _ = signals.send(Signal::Change(change));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the LISTEN connection was lost; reconnecting");
                listener = None;
                let _ = signals.send(Signal::Resync);
                thread::sleep(wait);
            }
        }
    }
}

#[derive(Default)]
struct State {
    last_lease_round: Option<Instant>,
    /// When the stored queues were last compared with the lanes.
    last_poll: Option<Instant>,
    rounds: u32,
}

/// The replica thread: one round per signal batch or poll interval.
fn work(inner: &Weak<Inner>, stop: &AtomicBool, inbox: &Receiver<Signal>, mut state: State) {
    let Some(config) = inner.upgrade().map(|i| i.engine.runtime.config.clone()) else {
        return;
    };
    let tick = config.postgres_poll_interval.min(config.postgres_lease / 3);
    loop {
        let mut batch = Vec::new();
        let mut timed_out = false;
        match inbox.recv_timeout(tick) {
            Ok(signal) => batch.push(signal),
            Err(RecvTimeoutError::Timeout) => timed_out = true,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        batch.extend(inbox.try_iter());
        if stop.load(Ordering::SeqCst) || batch.iter().any(|s| matches!(s, Signal::Stop)) {
            return;
        }
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let resync = batch.iter().any(|s| matches!(s, Signal::Resync));
        let changes = batch
            .into_iter()
            .filter_map(|s| match s {
                Signal::Change(c) => Some(c),
                _ => None,
            })
            .collect();
        let guarded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            round(&inner, &mut state, changes, resync, timed_out)
        }));
        if guarded.is_err() {
            inner.engine.runtime.note_panic();
            tracing::error!("the PostgreSQL replica thread panicked in a round; going on");
        }
    }
}

/// One round: the changes heard of, then (when due) the leases, then (on a
/// resync, or cheaply once per poll interval, however busy) what a lost
/// notification could hide.
fn round(inner: &Inner, state: &mut State, changes: Vec<Change>, resync: bool, quiet: bool) {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return;
    };
    let poll = inner.engine.runtime.config.postgres_poll_interval;
    let quiet = quiet || state.last_poll.is_none_or(|at| at.elapsed() >= poll);
    if quiet {
        state.last_poll = Some(Instant::now());
    }
    let mut load: BTreeSet<EndpointId> = BTreeSet::new();
    let mut serve: BTreeSet<EndpointId> = BTreeSet::new();
    let mut load_all = false;
    let mut full_sync = false;
    for change in changes {
        match change {
            Change::Endpoint(id) => {
                // A new endpoint's lease is free: claim now, not at the
                // next lease round.
                state.last_lease_round = None;
                if let Err(e) = sync_endpoint(inner, id) {
                    tracing::warn!(endpoint = %id, error = %e, "cannot read a changed endpoint; the next poll tries again");
                    full_sync = true;
                }
            }
            Change::State(id) => {
                if let Some(lane) = lane_of(inner, id) {
                    if let Err(e) = lane.adopt_health(&inner.engine, || pg.endpoint_state(id)) {
                        tracing::warn!(endpoint = %id, error = %e, "cannot read an endpoint's state");
                        full_sync = true;
                    }
                }
            }
            Change::Deliveries(Some(ids)) => load.extend(ids),
            Change::Deliveries(None) => load_all = true,
        }
    }
    state.rounds = state.rounds.wrapping_add(1);
    if resync || full_sync {
        if let Err(e) = sync_all(inner) {
            tracing::warn!(error = %e, "cannot read the endpoints; the next poll tries again");
        }
    } else if quiet {
        // A change whose notification was lost (without the connection
        // dropping) shows in the settings version: one query when current.
        if let Err(e) = catch_up(inner) {
            tracing::warn!(error = %e, "cannot read the endpoint changes; the next poll tries again");
        }
    }
    // Every poll interval at most (a third of the lease at least): an
    // endpoint whose lease is free, or one this replica holds but does not
    // serve yet (its lane was replaced while it was claimed), waits at most
    // that long, not a third of the lease.
    let every = (pg.lease / 3).min(poll);
    let lease_due = state
        .last_lease_round
        .is_none_or(|at| at.elapsed() >= every);
    if lease_due {
        state.last_lease_round = Some(Instant::now());
        match leases(inner, state.rounds % RESYNC_EVERY == 1) {
            Ok(claimed) => serve.extend(claimed),
            Err(e) => tracing::warn!(error = %e, "renewing endpoint leases failed; trying again"),
        }
    }
    if resync || load_all {
        load.extend(served(inner));
    } else if quiet {
        // One query: the served endpoints whose stored queue holds more
        // than their lane knows of.
        match behind(inner) {
            Ok(ids) => load.extend(ids),
            Err(e) => tracing::warn!(error = %e, "cannot compare the stored queues; trying again"),
        }
    }
    let serving = serve.iter().map(|id| (*id, true));
    let loading = load.difference(&serve).map(|id| (*id, false));
    for (id, claim) in serving.chain(loading).collect::<Vec<_>>() {
        if let Some(lane) = lane_of(inner, id) {
            if let Err(e) = load_queue(&inner.engine, &lane, claim) {
                tracing::warn!(endpoint = %id, error = %e, "cannot read an endpoint's queue; the next poll tries again");
            }
        }
    }
}

/// Renews this replica's leases, drops the ones it lost, claims up to its
/// fair share and gives back idle ones above it. Returns the endpoints
/// newly claimed.
fn leases(inner: &Inner, ensure_rows: bool) -> Result<Vec<EndpointId>> {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return Ok(Vec::new());
    };
    pg.heartbeat()?;
    if ensure_rows {
        pg.ensure_leases()?;
        pg.prune_settings_changes()?;
    }
    let kept: BTreeSet<EndpointId> = pg.renew_leases()?.into_iter().collect();
    for id in served(inner) {
        if !kept.contains(&id) {
            if let Some(lane) = lane_of(inner, id) {
                tracing::info!(endpoint = %id, "endpoint lease lost to another replica");
                lane.unserve();
            }
        }
    }
    let share = pg.fair_share()?;
    let owned = kept.len();
    // Held but not served yet: a claim whose first load failed.
    let mut claimed: Vec<EndpointId> = kept
        .iter()
        .filter(|id| lane_of(inner, **id).is_some_and(|l| !l.is_served()))
        .copied()
        .collect();
    if owned < share {
        for id in pg.claim_leases(share - owned)? {
            if lane_of(inner, id).is_none() {
                sync_endpoint(inner, id)?;
            }
            if lane_of(inner, id).is_some() {
                claimed.push(id);
            } else {
                // Deleted meanwhile: not ours to keep.
                pg.release_leases(&[id])?;
            }
        }
    } else if owned > share {
        let idle: Vec<EndpointId> = kept
            .iter()
            .filter_map(|id| lane_of(inner, *id).filter(|l| l.is_served() && l.holds_nothing()))
            .take(owned - share)
            .map(|lane| {
                lane.unserve();
                lane.id
            })
            .collect();
        pg.release_leases(&idle)?;
    }
    Ok(claimed)
}

/// Reads the first window of an endpoint's stored queue into its lane, if
/// this replica serves it (or, with `claim`, starts to) and the lane has
/// room.
fn load_queue(engine: &Arc<Engine>, lane: &Arc<Lane>, claim: bool) -> Result<()> {
    if !claim && (!lane.is_served() || !lane.has_room()) {
        return Ok(());
    }
    let store = &engine.runtime.store;
    let mut window = store.pending_window(lane.id, EventId::from_u128(0), LANE_WINDOW, |e| {
        lane.contains(e)
    })?;
    // Taking an ordered endpoint over: the delivery the last server had
    // begun goes first, even past the first window (within `BEGUN_SEARCH`).
    if claim && lane.route().settings.ordered {
        if let Some(begun) = store.begun_past(lane.id, &window, LANE_WINDOW, BEGUN_SEARCH)? {
            window.found.push(Ok(begun));
        }
    }
    lane.load_stored(engine, window, claim);
    Ok(())
}

/// Served endpoints with more unfinished rows than their lane holds.
fn behind(inner: &Inner) -> Result<Vec<EndpointId>> {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return Ok(Vec::new());
    };
    let served = served(inner);
    if served.is_empty() {
        return Ok(Vec::new());
    }
    Ok(pg
        .unfinished_counts(&served)?
        .into_iter()
        .filter(|(id, stored)| {
            lane_of(inner, *id).is_some_and(|l| {
                let (queued, flying) = l.depth();
                *stored > queued + flying
            })
        })
        .map(|(id, _)| id)
        .collect())
}

fn lane_of(inner: &Inner, id: EndpointId) -> Option<Arc<Lane>> {
    inner.registry.read().get(&id).map(|r| Arc::clone(&r.lane))
}

fn served(inner: &Inner) -> Vec<EndpointId> {
    inner
        .registry
        .read()
        .iter()
        .filter(|(_, r)| r.lane.is_served())
        .map(|(id, _)| *id)
        .collect()
}

/// Brings one endpoint in line with its stored settings. Read under the
/// registry's lock, which a change through this replica holds while it
/// writes: an older read can never overwrite a newer change.
fn sync_endpoint(inner: &Inner, id: EndpointId) -> Result<()> {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return Ok(());
    };
    let mut registry = inner.registry.write();
    let record = pg.endpoint(id)?;
    let tenant = pg.endpoint_tenant(id)?.unwrap_or_default();
    apply(inner, &mut registry, id, record, tenant)
}

/// Makes this replica's endpoints current before a publish routes: if an
/// endpoint change was committed (through any replica) that this replica
/// has not applied yet, applies it now rather than when its notification
/// arrives. One query when current. Concurrent publishes that find the
/// replica behind catch up once, in turn.
pub(super) fn catch_up(inner: &Inner) -> Result<()> {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return Ok(());
    };
    if pg.settings_version()? <= pg.settings_seen() {
        return Ok(());
    }
    catch_up_now(inner)
}

/// Before a publish: makes the endpoints current (as [`catch_up`]) and
/// raises this replica's event ids above every event stored, so that an
/// event whose publish began after another replica's returned gets the
/// larger id, which is what an ordered endpoint's order follows. One
/// query when current.
pub(super) fn before_publish(inner: &Inner) -> Result<()> {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return Ok(());
    };
    let (version, last) = pg.before_publish()?;
    if let Some(last) = last {
        inner.engine.runtime.ids.raise_floor(last);
    }
    if version <= pg.settings_seen() {
        return Ok(());
    }
    catch_up_now(inner)
}

/// Applies the endpoint changes this replica has not applied yet.
fn catch_up_now(inner: &Inner) -> Result<()> {
    let Some(pg) = inner.engine.runtime.store.shared() else {
        return Ok(());
    };
    let _turn = inner.catching_up.lock();
    let seen = pg.settings_seen();
    let newest = pg.settings_version()?;
    if newest <= seen {
        return Ok(());
    }
    match pg.settings_changes(seen)? {
        Some(changes) if changes.last().is_some_and(|(v, _)| *v >= newest) => {
            let touched: BTreeSet<EndpointId> = changes.iter().map(|(_, id)| *id).collect();
            for id in touched {
                sync_endpoint(inner, id)?;
                if let Some(lane) = lane_of(inner, id) {
                    lane.adopt_health(&inner.engine, || pg.endpoint_state(id))?;
                }
            }
            pg.mark_settings_seen(newest);
            Ok(())
        }
        // The log no longer reaches back to what this replica applied.
        _ => sync_all(inner),
    }
}

/// Brings every endpoint in line with the stored ones; on PostgreSQL,
/// this replica is then current up to the change read first.
fn sync_all(inner: &Inner) -> Result<()> {
    let store = &inner.engine.runtime.store;
    let mut registry = inner.registry.write();
    let version = match store.shared() {
        Some(pg) => Some(pg.settings_version()?),
        None => None,
    };
    let tenants: BTreeMap<EndpointId, TenantId> = store
        .endpoint_tenants()?
        .into_iter()
        .filter_map(|t| t.ok())
        .collect();
    let mut seen = BTreeSet::new();
    for (id, record) in store.endpoints()? {
        seen.insert(id);
        match record {
            Ok(record) => {
                let tenant = tenants.get(&id).cloned().unwrap_or_default();
                apply(inner, &mut registry, id, Some(record), tenant)?;
                if let Some(reg) = registry.get(&id) {
                    reg.lane
                        .adopt_health(&inner.engine, || store.endpoint_state(id))?;
                }
            }
            Err(e) => {
                tracing::error!(endpoint = %id, error = %e, "skipping an endpoint that cannot be read")
            }
        }
    }
    let gone: Vec<EndpointId> = registry
        .keys()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    for id in gone {
        apply(inner, &mut registry, id, None, TenantId::default())?;
    }
    if let (Some(pg), Some(version)) = (store.shared(), version) {
        pg.mark_settings_seen(version);
    }
    Ok(())
}

/// Adds, changes or removes this replica's copy of an endpoint to match
/// `record` (`None`: deleted).
fn apply(
    inner: &Inner,
    registry: &mut BTreeMap<EndpointId, Registered>,
    id: EndpointId,
    record: Option<EndpointRecord>,
    tenant: TenantId,
) -> Result<()> {
    let engine = &inner.engine;
    let Some(record) = record else {
        if let Some(reg) = registry.remove(&id) {
            inner.routing.write().remove(id);
            engine.lanes.write().remove(&id);
            reg.lane.close();
            tracing::info!(endpoint = %id, "endpoint deleted through another replica");
        }
        return Ok(());
    };
    if let Some(reg) = registry.get(&id) {
        if super::endpoints::to_record(&reg.endpoint) == record {
            return Ok(());
        }
    }
    let state = engine.runtime.store.endpoint_state(id)?;
    let (endpoint, filter) = match from_record(id, tenant.clone(), record, &state) {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(endpoint = %id, error = %e, "skipping an endpoint that cannot be read");
            return Ok(());
        }
    };
    let route = Route::new(&endpoint, &engine.runtime.config);
    match registry.get_mut(&id) {
        Some(reg) => {
            reg.lane.set_route(engine, route);
            reg.endpoint = endpoint;
            reg.filter = filter.clone();
            inner
                .routing
                .write()
                .insert(&tenant, id, filter, Arc::clone(&reg.lane));
            tracing::info!(endpoint = %id, "endpoint changed through another replica");
        }
        None => {
            let lane = Lane::new(
                id,
                route,
                state,
                engine.runtime.config.per_endpoint_metrics,
                false,
            );
            lane.start(engine);
            engine.lanes.write().insert(id, Arc::clone(&lane));
            inner
                .routing
                .write()
                .insert(&tenant, id, filter.clone(), Arc::clone(&lane));
            inner.members.write().add(&tenant, id);
            registry.insert(
                id,
                Registered {
                    endpoint,
                    filter,
                    lane,
                },
            );
            tracing::info!(endpoint = %id, %tenant, "endpoint added through another replica");
        }
    }
    Ok(())
}
