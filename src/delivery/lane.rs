//! A lane: one endpoint's queue and its sender threads.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::{sender, Route, Shared};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::stats::Counters;
use crate::store::records::{EndpointStateRecord, Mode};
use crate::time::{self, now_ms};

/// `due` of a delivery whose publish is not yet durable: never attempted
/// until released, and it holds back the deliveries behind it on an ordered
/// endpoint.
const RESERVED: u64 = u64::MAX;

/// A due time as queued: never the reserved mark, whatever a stored record
/// or a saturated sum says.
fn due(ms: u64) -> u64 {
    ms.min(RESERVED - 1)
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// When it may be attempted (ms since the epoch).
    due: u64,
    /// Only implied by its event (no delivery key written yet).
    implied: bool,
}

#[derive(Default)]
struct LaneState {
    /// Every queued delivery, by event id (publish order).
    pending: BTreeMap<EventId, Slot>,
    /// The same deliveries by (due, event): the order unordered lanes take them.
    by_due: BTreeSet<(u64, EventId)>,
    /// Deliveries being attempted, and whether each is implied.
    in_flight: BTreeMap<EventId, bool>,
    /// Sender threads alive.
    workers: usize,
    /// Of those, threads blocked waiting for work.
    idle: usize,
    /// Set when the endpoint is deleted or the bus shuts down.
    closed: bool,
    handles: Vec<JoinHandle<()>>,
}

impl LaneState {
    fn insert(&mut self, event: EventId, slot: Slot) {
        if let Some(old) = self.pending.insert(event, slot) {
            self.by_due.remove(&(old.due, event));
        }
        self.by_due.insert((slot.due, event));
    }

    fn remove(&mut self, event: EventId) -> Option<Slot> {
        let slot = self.pending.remove(&event)?;
        self.by_due.remove(&(slot.due, event));
        Some(slot)
    }

    /// Queued and in flight, for the gauges: nothing once closed, when the
    /// deliveries left are no longer this process's to send.
    fn gauged(&self) -> (usize, usize) {
        if self.closed {
            (0, 0)
        } else {
            (self.pending.len(), self.in_flight.len())
        }
    }
}

pub(crate) struct Lane {
    pub(crate) id: EndpointId,
    route: RwLock<Arc<Route>>,
    state: Mutex<LaneState>,
    wake: Condvar,
    /// Mirrors `health.mode == Active`, read by every sender loop.
    active: AtomicBool,
    /// Mirrors `health.mode != Disabled`, read by every publish.
    receiving: AtomicBool,
    /// The endpoint's state; changes are made (and written) under this lock.
    pub(crate) health: Mutex<EndpointStateRecord>,
    /// What was last written of it.
    stored_health: Mutex<EndpointStateRecord>,
    pub(crate) counters: Counters,
}

impl Lane {
    /// `per_endpoint_metrics`: the builder's setting of that name.
    pub(crate) fn new(
        id: EndpointId,
        route: Route,
        health: EndpointStateRecord,
        per_endpoint_metrics: bool,
    ) -> Arc<Lane> {
        Arc::new(Lane {
            id,
            route: RwLock::new(Arc::new(route)),
            state: Mutex::new(LaneState::default()),
            wake: Condvar::new(),
            active: AtomicBool::new(health.mode == Mode::Active),
            receiving: AtomicBool::new(health.mode != Mode::Disabled),
            stored_health: Mutex::new(health.clone()),
            health: Mutex::new(health),
            counters: Counters::new(id, per_endpoint_metrics),
        })
    }

    pub(crate) fn route(&self) -> Arc<Route> {
        self.route.read().clone()
    }

    /// Replaces the settings and wakes the senders to apply them.
    pub(crate) fn set_route(self: &Arc<Self>, shared: &Arc<Shared>, route: Route) {
        *self.route.write() = Arc::new(route);
        let mut st = self.state.lock();
        self.wake.notify_all();
        self.kick(shared, &mut st);
    }

    /// Changes the stored state (mode, health) with `change`, writes it,
    /// and starts or holds the senders to match. Not yet durable: callers
    /// that must, commit.
    pub(crate) fn update_health(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        change: impl FnOnce(&mut EndpointStateRecord),
    ) -> Result<EndpointStateRecord> {
        let updated = {
            let mut health = self.health.lock();
            let mut next = health.clone();
            change(&mut next);
            if worth_writing(&self.stored_health.lock(), &next) {
                shared.store.put_endpoint_state(self.id, &next)?;
                *self.stored_health.lock() = next.clone();
            }
            // The mirrors change under the same lock, so they never show
            // an older mode than the record.
            self.receiving
                .store(next.mode != Mode::Disabled, Ordering::SeqCst);
            let active = next.mode == Mode::Active;
            let woke = self.active.swap(active, Ordering::SeqCst) != active && active;
            *health = next;
            (health.clone(), woke)
        };
        let (updated, woke) = updated;
        if woke {
            let mut st = self.state.lock();
            self.kick(shared, &mut st);
        }
        Ok(updated)
    }

    /// Whether new events are queued for it (active or paused).
    pub(crate) fn receives_events(&self) -> bool {
        self.receiving.load(Ordering::SeqCst)
    }

    pub(crate) fn mode(&self) -> Mode {
        self.health.lock().mode
    }

    /// Holds a place for a delivery whose publish is being made durable.
    pub(crate) fn reserve(&self, event: EventId) {
        let mut st = self.state.lock();
        st.insert(
            event,
            Slot {
                due: RESERVED,
                implied: true,
            },
        );
        self.report(&st);
    }

    /// Moves the depth gauges to the queue as it is now; called after every
    /// change to it, with its lock held.
    fn report(&self, st: &LaneState) {
        let (queued, in_flight) = st.gauged();
        self.counters.depth(queued, in_flight);
    }

    /// The publish is durable: the delivery may go.
    pub(crate) fn release(self: &Arc<Self>, shared: &Arc<Shared>, event: EventId, due_ms: u64) {
        let mut st = self.state.lock();
        if st.pending.contains_key(&event) {
            st.insert(
                event,
                Slot {
                    due: due(due_ms),
                    implied: true,
                },
            );
            self.kick(shared, &mut st);
        }
    }

    /// The publish failed: forget the reservation.
    pub(crate) fn cancel(&self, event: EventId) {
        let mut st = self.state.lock();
        st.remove(event);
        self.report(&st);
        // An ordered lane may have been waiting behind it.
        self.wake.notify_all();
    }

    /// Queues a delivery found at open. Senders start with [`Lane::start`].
    pub(crate) fn restore(&self, event: EventId, due_ms: u64, implied: bool) {
        self.state.lock().insert(
            event,
            Slot {
                due: due(due_ms),
                implied,
            },
        );
    }

    pub(crate) fn start(self: &Arc<Self>, shared: &Arc<Shared>) {
        let mut st = self.state.lock();
        // Restored deliveries are counted once, here.
        self.report(&st);
        self.kick(shared, &mut st);
    }

    /// Queues a delivery for an attempt at `due_ms` (a retry, a resend).
    pub(crate) fn schedule(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        due_ms: u64,
        event: EventId,
        implied: bool,
    ) {
        let mut st = self.state.lock();
        st.insert(
            event,
            Slot {
                due: due(due_ms),
                implied,
            },
        );
        self.report(&st);
        // A waiting thread may be sleeping towards a later retry.
        self.wake.notify_one();
        self.kick(shared, &mut st);
    }

    /// Deliveries queued or waiting for a retry, and in flight.
    pub(crate) fn depth(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.pending.len(), st.in_flight.len())
    }

    /// Whether a delivery is queued or in flight here.
    pub(crate) fn holds(&self, event: EventId) -> bool {
        let st = self.state.lock();
        st.pending.contains_key(&event) || st.in_flight.contains_key(&event)
    }

    /// The oldest delivery queued or in flight.
    pub(crate) fn oldest(&self) -> Option<EventId> {
        let st = self.state.lock();
        let queued = st.pending.keys().next().copied();
        let flying = st.in_flight.keys().next().copied();
        queued.into_iter().chain(flying).min()
    }

    /// Queued and in-flight deliveries, oldest first, after `after`.
    pub(crate) fn queued_after(&self, after: Option<EventId>, limit: usize) -> Vec<EventId> {
        let st = self.state.lock();
        let mut all: Vec<EventId> = st
            .pending
            .keys()
            .chain(st.in_flight.keys())
            .copied()
            .filter(|e| after.is_none_or(|a| *e > a))
            .collect();
        all.sort_unstable();
        all.truncate(limit);
        all
    }

    /// The oldest delivery that has no key of its own yet. The queue
    /// checkpoint may not pass it.
    pub(crate) fn oldest_implied(&self) -> Option<EventId> {
        let st = self.state.lock();
        let queued = st.pending.iter().find(|(_, s)| s.implied).map(|(e, _)| *e);
        let flying = st.in_flight.iter().find(|(_, i)| **i).map(|(e, _)| *e);
        queued.into_iter().chain(flying).min()
    }

    /// Gives implied deliveries of events published before `before_ms`
    /// their own key with `write` (which must not overwrite an existing
    /// one), so the checkpoint can move past them. Held under the lane lock
    /// so no sender takes one meanwhile.
    pub(crate) fn materialize_older_than(
        &self,
        before_ms: u64,
        at_most: usize,
        mut write: impl FnMut(EventId, u64) -> Result<()>,
    ) -> Result<usize> {
        let mut st = self.state.lock();
        let stale: Vec<(EventId, Slot)> = st
            .pending
            .iter()
            .filter(|(e, s)| s.implied && s.due != RESERVED && e.timestamp_ms() < before_ms)
            .take(at_most)
            .map(|(e, s)| (*e, *s))
            .collect();
        for (event, slot) in &stale {
            write(*event, slot.due)?;
            st.insert(
                *event,
                Slot {
                    due: slot.due,
                    implied: false,
                },
            );
        }
        Ok(stale.len())
    }

    /// Stops the lane's threads after their current attempt; returns them to
    /// be joined. Queued deliveries stay in the store.
    pub(crate) fn close(&self) -> Vec<JoinHandle<()>> {
        let mut st = self.state.lock();
        st.closed = true;
        self.report(&st);
        self.wake.notify_all();
        std::mem::take(&mut st.handles)
    }

    /// Makes sure a thread will pick up the work: wakes an idle one, or
    /// starts one if the endpoint's concurrency allows.
    fn kick(self: &Arc<Self>, shared: &Arc<Shared>, st: &mut LaneState) {
        if st.closed || shared.is_stopping() || !self.active.load(Ordering::SeqCst) {
            return;
        }
        if st.pending.is_empty() {
            return;
        }
        if st.idle > 0 {
            self.wake.notify_one();
            return;
        }
        if st.workers >= self.route.read().concurrency {
            return;
        }
        reap(shared, &mut st.handles);
        let lane = Arc::clone(self);
        let shared_for_thread = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("hookbus-send-{}", self.id))
            .spawn(move || lane.work(&shared_for_thread));
        match spawned {
            Ok(handle) => {
                st.workers += 1;
                st.handles.push(handle);
            }
            // The work stays queued; the next push or retry tries again.
            Err(e) => {
                tracing::error!(endpoint = %self.id, error = %e, "cannot start a sender thread")
            }
        }
    }

    fn work(self: Arc<Self>, shared: &Arc<Shared>) {
        let _guard = WorkerGuard(&self);
        while let Some((event, implied)) = self.next_job(shared) {
            // More may be waiting: let another sender start on them, so a
            // backlog goes out at the endpoint's full concurrency.
            self.kick(shared, &mut self.state.lock());
            // `deliver` turns a panic inside an attempt into a logged,
            // failed attempt. This catch is the last line only: should its
            // own logging unwind, the delivery stays queued (its stored
            // state intact) and is looked at again much later.
            let requeue = panic::catch_unwind(AssertUnwindSafe(|| {
                sender::deliver(shared, &self, event, implied)
            }))
            .unwrap_or_else(|_| {
                shared.note_panic();
                Some(sender::Requeue {
                    due_ms: now_ms().saturating_add(time::duration_ms(sender::PANIC_RETRY)),
                    implied,
                })
            });
            // Out of flight and back in the queue in one step, so no other
            // sender can take it in between.
            let mut st = self.state.lock();
            st.in_flight.remove(&event);
            if let Some(r) = requeue {
                st.insert(
                    event,
                    Slot {
                        due: due(r.due_ms),
                        implied: r.implied,
                    },
                );
            }
            self.report(&st);
            // Another sender may be sleeping towards a later time, or (on an
            // ordered lane) waiting for this one to finish.
            self.wake.notify_one();
        }
    }

    /// Picks the delivery to attempt now, if any; otherwise the time the
    /// next one is due (`None`: nothing scheduled, wait for a wake-up).
    fn pick(&self, st: &mut LaneState, now: u64) -> Result<(EventId, bool), Option<u64>> {
        let (due, event) = if self.route.read().ordered {
            // Strict publish order: only the oldest may go, and only when
            // nothing is in flight.
            if !st.in_flight.is_empty() {
                return Err(None);
            }
            match st.pending.first_key_value() {
                Some((event, slot)) => (slot.due, *event),
                None => return Err(None),
            }
        } else {
            match st.by_due.first() {
                Some(&(due, event)) => (due, event),
                None => return Err(None),
            }
        };
        if due == RESERVED {
            return Err(None);
        }
        if due > now {
            return Err(Some(due));
        }
        let slot = st.remove(event).is_none_or(|s| s.implied);
        st.in_flight.insert(event, slot);
        self.report(st);
        Ok((event, slot))
    }

    /// Blocks until a delivery may be attempted. Returns `None`, with the
    /// thread already counted out, when the lane closes or stays idle for
    /// `sender_idle_timeout`.
    fn next_job(&self, shared: &Shared) -> Option<(EventId, bool)> {
        let mut st = self.state.lock();
        let idle_since = Instant::now();
        loop {
            if st.closed || shared.is_stopping() {
                st.workers -= 1;
                return None;
            }
            let now = now_ms();
            let mut next_due = None;
            if self.active.load(Ordering::SeqCst) {
                match self.pick(&mut st, now) {
                    Ok(job) => return Some(job),
                    Err(due) => next_due = due,
                }
            }
            let wait = match next_due {
                Some(due) => Duration::from_millis(due.saturating_sub(now)),
                None => {
                    let left = shared
                        .config
                        .sender_idle_timeout
                        .saturating_sub(idle_since.elapsed());
                    if left.is_zero() {
                        st.workers -= 1;
                        return None;
                    }
                    left
                }
            };
            st.idle += 1;
            self.wake.wait_for(&mut st, wait);
            st.idle -= 1;
        }
    }
}

/// Counts a thread out if it unwinds from a panic in the middle of a
/// delivery (a normal exit is counted out by `next_job`).
struct WorkerGuard<'a>(&'a Lane);

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.state.lock().workers -= 1;
        }
    }
}

/// How stale the stored last-success and last-failure times may get: a
/// healthy endpoint would otherwise rewrite its state on every delivery.
const HEALTH_TIME_SLACK_MS: u64 = 10_000;

/// Whether a state change must be written now: always when the mode or a
/// failure count changes (auto-pause depends on them), and for the
/// timestamps only once they drift past the slack.
fn worth_writing(stored: &EndpointStateRecord, next: &EndpointStateRecord) -> bool {
    let drifted = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => b.abs_diff(a) > HEALTH_TIME_SLACK_MS,
        (a, b) => a != b,
    };
    stored.mode != next.mode
        || stored.consecutive_failed_attempts != next.consecutive_failed_attempts
        || stored.consecutive_failed_deliveries != next.consecutive_failed_deliveries
        || drifted(stored.last_success_ms, next.last_success_ms)
        || drifted(stored.last_failure_ms, next.last_failure_ms)
}

/// Joins threads that have finished, counting the ones that panicked.
fn reap(shared: &Shared, handles: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].is_finished() {
            if handles.swap_remove(i).join().is_err() {
                shared.note_panic();
            }
        } else {
            i += 1;
        }
    }
}
