//! The janitor: one background thread that keeps the database tidy.
//!
//! Every `janitor_interval` (2 s by default) it
//!
//! 1. gives deliveries that have waited a while without any attempt (for
//!    example on a paused endpoint) a key of their own, and moves the queue
//!    checkpoint past every event whose deliveries all have one, so that
//!    the next open reads only the events published since;
//! 2. applies retention: deletes delivered events older than `retention`,
//!    with their attempts, a bounded number per round, and forgets expired
//!    idempotency keys;
//! 3. on PostgreSQL, finishes the tenant deletions of replicas that died
//!    part-way through ([`finish_interrupted_deletions`], which `Bus::open`
//!    also calls before it loads any endpoint; on sled only `open` does, as
//!    the one process).
//!
//! It sleeps on a condition variable that shutdown signals.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use std::collections::{BTreeMap, BTreeSet};

use crate::delivery::Engine;
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::store::records::DeliveryRecord;
use crate::store::Storage;
use crate::time::{self, now_ms};

/// Deliveries younger than this are left implied: most are attempted well
/// before, and writing a key for them would double the work of a publish.
const MATERIALIZE_AFTER: Duration = Duration::from_secs(30);

/// Keys written per lane per round, so the lane's lock (which its senders
/// need) is never held long; a large backlog is covered over a few rounds.
const MATERIALIZE_PER_ROUND: usize = 2_000;

/// Events looked at per retention round, so a round stays short.
const RETENTION_BUDGET: usize = 20_000;

pub(crate) struct Janitor {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Janitor {
    pub(crate) fn start(engine: Arc<Engine>) -> std::io::Result<Janitor> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("hookbus-janitor".into())
            .spawn(move || run(&engine, &signal))?;
        Ok(Janitor {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the thread and waits for its current round; `true` if it had
    /// panicked.
    pub(crate) fn stop(&mut self) -> bool {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        self.handle.take().is_some_and(|h| h.join().is_err())
    }
}

fn run(engine: &Arc<Engine>, stop: &(Mutex<bool>, Condvar)) {
    let mut retention_from = EventId::from_u128(0);
    // Retention needs no hurry: every minute, or a tenth of the retention
    // when that is shorter, and never more often than the janitor wakes.
    let retention_every = engine
        .runtime
        .config
        .retention
        .map_or(Duration::from_secs(60), |keep| keep / 10)
        .min(Duration::from_secs(60))
        .max(engine.runtime.config.janitor_interval);
    let mut last_retention: Option<Instant> = None;
    loop {
        {
            let mut stopped = stop.0.lock();
            if !*stopped {
                stop.1
                    .wait_for(&mut stopped, engine.runtime.config.janitor_interval);
            }
            if *stopped {
                return;
            }
        }
        if let Err(e) = checkpoint(engine, Round::Periodic) {
            tracing::error!(error = %e, "janitor: moving the queue checkpoint failed");
        }
        #[cfg(feature = "postgres")]
        if engine.runtime.store.is_shared() {
            if let Err(e) = finish_interrupted_deletions(&engine.runtime.store, false) {
                tracing::error!(error = %e, "janitor: finishing an interrupted tenant deletion failed");
            }
        }
        if last_retention.is_none_or(|at| at.elapsed() >= retention_every) {
            last_retention = Some(Instant::now());
            match retention(engine, retention_from) {
                Ok(next) => retention_from = next,
                Err(e) => tracing::error!(error = %e, "janitor: retention failed"),
            }
        }
    }
}

/// How far a checkpoint round goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// The janitor's periodic round: keys only for deliveries that have
    /// waited [`MATERIALIZE_AFTER`], a bounded number per lane.
    Periodic,
    /// The last round, at shutdown: every queued delivery gets its key, so
    /// that the next open reads no event twice.
    Final,
}

/// Moves the queue checkpoint as far as it may go.
pub(crate) fn checkpoint(engine: &Engine, round: Round) -> Result<()> {
    let Some(store) = engine.runtime.store.sled() else {
        // A shared store writes every delivery as a row at publish:
        // nothing is implied, and there is no checkpoint to move.
        return Ok(());
    };
    let (before, per_lane) = match round {
        Round::Periodic => (
            now_ms().saturating_sub(time::duration_ms(MATERIALIZE_AFTER)),
            MATERIALIZE_PER_ROUND,
        ),
        Round::Final => (u64::MAX, usize::MAX),
    };
    // A lane holding nothing needs no look (and no lock): with 100,000
    // endpoints that is nearly all of them.
    let lanes: Vec<_> = engine
        .lanes
        .read()
        .values()
        .filter(|l| !l.holds_nothing())
        .cloned()
        .collect();
    let queued_key = |lane: &crate::delivery::Lane, event: EventId, due| {
        let mut rec = DeliveryRecord::implied(event.timestamp_ms());
        rec.state = crate::store::records::DeliveryState::Waiting {
            next_attempt: 1,
            due_ms: due,
        };
        store.put_pending(lane.id, event, &rec)
    };
    let mut wrote = 0;
    for lane in &lanes {
        wrote += lane.materialize_older_than(before, per_lane, |event, due| {
            if store.has_delivery_key(lane.id, event)? {
                return Ok(());
            }
            queued_key(lane, event, due)
        })?;
        wrote += lane.spill_over_window(|event, due| queued_key(lane, event, due))?;
    }
    if wrote > 0 {
        // The keys must be durable before a checkpoint that relies on them.
        store.commit()?;
    }
    // Under the id generator's lock no publish can reserve a delivery, so
    // the oldest implied delivery of every lane is known exactly.
    // A lane counts what it holds under its lock, and a publish reserves
    // its deliveries under the id lock held here: a lane that holds
    // nothing now has no implied delivery.
    let checkpoint = engine.runtime.ids.with_last(|last| {
        let lanes = engine.lanes.read();
        lanes
            .values()
            .filter(|l| !l.holds_nothing())
            .filter_map(|l| l.oldest_implied())
            .min()
            .unwrap_or(EventId::from_u128(last.saturating_add(1)))
    });
    if checkpoint > store.checkpoint()? {
        store.set_checkpoint(checkpoint)?;
    }
    Ok(())
}

/// One retention round; returns where the next one starts. On a shared
/// store, only the replica holding the background lock does it.
fn retention(engine: &Engine, from: EventId) -> Result<EventId> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = engine.runtime.store.shared() {
        return Ok(pg
            .as_leader(|| retention_round(engine, from))?
            .unwrap_or(from));
    }
    retention_round(engine, from)
}

fn retention_round(engine: &Engine, from: EventId) -> Result<EventId> {
    let store = &engine.runtime.store;
    let Some(keep) = engine.runtime.config.retention else {
        return Ok(from);
    };
    let cutoff_ms = now_ms().saturating_sub(time::duration_ms(keep));
    let cutoff = EventId::from_u128(u128::from(cutoff_ms) << 80);
    let (purged, next) = store.purge_delivered(from, cutoff, RETENTION_BUDGET)?;
    let window = time::duration_ms(engine.runtime.config.idempotency_window);
    let keys = store.purge_idempotency(now_ms().saturating_sub(window))?;
    if purged > 0 || keys > 0 {
        tracing::debug!(
            events = purged,
            idempotency_keys = keys,
            "janitor: retention"
        );
    }
    Ok(next.unwrap_or(EventId::from_u128(0)))
}

/// Finishes the tenant deletions a crash interrupted: their endpoints are
/// removed and every unfinished delivery to them ends cancelled. Called by
/// `Bus::open` before any endpoint is loaded, and on a shared store by the
/// janitor, for the deletions of replicas that died: one still being made
/// by a live replica (which holds its lock) is left to it. Returns how many
/// deletion records could not be read (left in place; reported when
/// `report` is set, so the janitor does not repeat it every round).
pub(crate) fn finish_interrupted_deletions(store: &Storage, report: bool) -> Result<usize> {
    let mut unreadable = 0;
    for (seq, rec) in store.tenant_deletions()? {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                if report {
                    tracing::error!(error = %e, "a tenant deletion record cannot be read; left as is");
                }
                unreadable += 1;
                continue;
            }
        };
        #[cfg(feature = "postgres")]
        let _held = match store.shared() {
            Some(pg) => match pg.try_lock_tenant_deletion(seq)? {
                Some(held) => Some(held),
                // A live replica is making it.
                None => continue,
            },
            None => None,
        };
        let endpoints: BTreeSet<u64> = rec.endpoints.iter().copied().collect();
        for &id in &endpoints {
            store.remove_endpoint_settings(EndpointId(id))?;
        }
        let mut implied: BTreeMap<EndpointId, Vec<EventId>> = BTreeMap::new();
        if let Some(from) = rec.from {
            for (ep, ev) in store.implied_deliveries_since(EventId::from_u128(from), &endpoints)? {
                implied.entry(ep).or_default().push(ev);
            }
        }
        let now = time::now_ms();
        let mut cancelled = 0;
        for &id in &endpoints {
            let ep = EndpointId(id);
            let events = implied.remove(&ep).unwrap_or_default();
            cancelled += store.cancel_deliveries(ep, events, now)?;
        }
        store.commit()?;
        store.finish_tenant_deletion(seq)?;
        tracing::info!(
            tenant = %rec.tenant,
            endpoints = endpoints.len(),
            cancelled,
            "finished a tenant deletion interrupted by a crash"
        );
    }
    Ok(unreadable)
}
