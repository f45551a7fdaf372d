//! A lane: one endpoint's queue, and the rules for starting its next
//! delivery (due time, concurrency, order, rate limit). Lanes own no
//! threads: a lane with something to start queues itself on the
//! [pool](super::pool), and one with something due later asks the
//! [clock](super::clock) to wake it.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::pool::SLOW_ATTEMPT;
use super::{sender, Engine, Route};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::http::HttpOutcome;
use crate::log::ErrorKind;
use crate::stats::Counters;
#[cfg(feature = "postgres")]
use crate::store::queue::Window;
use crate::store::records::{DeliveryState, EndpointStateRecord, Mode};
use crate::store::{Storage, Unfinished};
use crate::time::now_ms;

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

/// Queued deliveries a lane keeps in memory; past this, the janitor moves
/// the newest ones out to storage (a `p` key each) and the lane reads them
/// back in windows of half this size as it drains. Bounds a lane's memory
/// at roughly 100 KiB however long its backlog.
pub(crate) const LANE_WINDOW: usize = 1024;

/// How many stored deliveries of an ordered endpoint are looked through,
/// at open or when a replica takes the endpoint over, for one whose
/// attempts had begun (it goes first): 8 windows. A begun delivery lies
/// past the first window only when a resend or recover queued that many
/// older ones behind it; this bounds what a long backlog costs at open
/// (about 8 reads of a window per ordered endpoint with such a backlog).
pub(crate) const BEGUN_SEARCH: usize = 8 * LANE_WINDOW;

/// Conditional writes of an endpoint's state tried before one writes over
/// whatever another replica stored (see `Lane::update_health`).
const STATE_WRITE_TRIES: u32 = 3;

/// Keys written per lock hold when a backlog is moved out of memory.
const EVICT_CHUNK: usize = 4096;

#[derive(Default)]
struct LaneState {
    /// The head of the queue: deliveries in memory below `spill_from` (all
    /// of them when nothing is spilled), by event id (publish order).
    pending: BTreeMap<EventId, Slot>,
    /// The same deliveries by (due, event): the order unordered lanes take them.
    by_due: BTreeSet<(u64, EventId)>,
    /// Deliveries in memory at or above `spill_from`: published (or
    /// requeued) after part of the backlog was spilled. They wait until the
    /// refills reach them, so the queue still goes out oldest first.
    tail: BTreeMap<EventId, Slot>,
    /// Set while part of the queue lives only in storage: every queued
    /// delivery from this event on is in `tail` or stored under `p`.
    spill_from: Option<EventId>,
    /// How many deliveries are in storage only.
    spilled: usize,
    /// Deliveries being attempted, and whether each is implied.
    in_flight: BTreeMap<EventId, bool>,
    /// On an ordered endpoint, the delivery whose round has begun and not
    /// ended: it goes before every other queued one, even one with a lower
    /// id. Ids follow publish order except between publishes that overlap
    /// on different replicas; the one stored later, with the lower id,
    /// waits for the one already being tried instead of cutting in between
    /// its attempts.
    head: Option<EventId>,
    /// Set when the endpoint is deleted or the bus shuts down.
    closed: bool,
    /// In the pool's ready queue: set by `poke`, cleared by the worker
    /// that takes the lane, so a lane is queued at most once.
    scheduled: bool,
    /// The earliest wake-up asked of the clock and not yet fired.
    wake_at: Option<u64>,
    /// Rate limit: the earliest start of the next attempt (µs since the
    /// epoch).
    next_start_us: u64,
}

impl LaneState {
    /// Queues a delivery, unless it is being attempted now: its attempt is
    /// what sends it (and requeues it if need be). On a shared store, a
    /// resend or recover queues deliveries while the notification of the
    /// same write may have loaded them already; queuing one beside its own
    /// attempt would let a second worker attempt it at the same time.
    fn insert(&mut self, event: EventId, slot: Slot) {
        if self.in_flight.contains_key(&event) {
            return;
        }
        if self.spill_from.is_some_and(|lo| event >= lo) {
            self.tail.insert(event, slot);
            return;
        }
        self.insert_head(event, slot);
    }

    fn insert_head(&mut self, event: EventId, slot: Slot) {
        if let Some(old) = self.pending.insert(event, slot) {
            self.by_due.remove(&(old.due, event));
        }
        self.by_due.insert((slot.due, event));
    }

    fn remove(&mut self, event: EventId) -> Option<Slot> {
        if let Some(slot) = self.tail.remove(&event) {
            return Some(slot);
        }
        let slot = self.pending.remove(&event)?;
        self.by_due.remove(&(slot.due, event));
        Some(slot)
    }

    fn contains(&self, event: EventId) -> bool {
        self.pending.contains_key(&event)
            || self.tail.contains_key(&event)
            || self.in_flight.contains_key(&event)
    }

    fn in_memory(&self) -> usize {
        self.pending.len() + self.tail.len()
    }

    /// The delivery an ordered lane sends next: the begun one, else the
    /// oldest.
    fn ordered_next(&self) -> Option<(EventId, Slot)> {
        self.head
            .and_then(|h| {
                self.pending
                    .get(&h)
                    .or_else(|| self.tail.get(&h))
                    .map(|s| (h, *s))
            })
            .or_else(|| self.pending.first_key_value().map(|(e, s)| (*e, *s)))
    }

    /// Takes the begun delivery among stored ones as the head, unless the
    /// lane has one queued or in flight already.
    fn adopt_begun(&mut self, found: &[Result<Unfinished>]) {
        if self.head.is_some_and(|h| self.contains(h)) {
            return;
        }
        self.head = found
            .iter()
            .filter_map(|u| u.as_ref().ok())
            .filter(|u| u.record.begun())
            .map(|u| u.event)
            .min()
            .or(self.head);
    }

    /// Queued (in memory or spilled) and in flight, for the gauges:
    /// nothing once closed, when the deliveries left are no longer this
    /// process's to send.
    fn gauged(&self) -> (usize, usize) {
        if self.closed {
            (0, 0)
        } else {
            (self.in_memory() + self.spilled, self.in_flight.len())
        }
    }

    /// The spill now starts at `from` (or is gone): tail entries below it
    /// join the head.
    fn move_spill(&mut self, from: Option<EventId>) {
        self.spill_from = from;
        let joining = match from {
            Some(lo) => {
                let keep = self.tail.split_off(&lo);
                std::mem::replace(&mut self.tail, keep)
            }
            None => std::mem::take(&mut self.tail),
        };
        for (event, slot) in joining {
            self.insert_head(event, slot);
        }
    }
}

/// What a lane can do now.
enum Start {
    /// Start a delivery now.
    Now,
    /// Nothing before this time (ms since the epoch).
    Later(u64),
    /// Nothing until something changes (an attempt ends, a publish, a
    /// resume), which pokes the lane.
    Idle,
}

pub(crate) struct Lane {
    pub(crate) id: EndpointId,
    route: RwLock<Arc<Route>>,
    state: Mutex<LaneState>,
    /// Mirrors `health.mode == Active`, read by every sender loop.
    active: AtomicBool,
    /// Mirrors `health.mode != Disabled`, read by every publish.
    receiving: AtomicBool,
    /// The endpoint answered its last attempt quickly (see the pool's docs
    /// on hung endpoints). A new lane is unproven.
    proven: AtomicBool,
    /// The endpoint's state; changes are made (and written) under this lock.
    pub(crate) health: Mutex<EndpointStateRecord>,
    /// What was last written of it.
    stored_health: Mutex<EndpointStateRecord>,
    pub(crate) counters: Counters,
    /// Deliveries queued (in memory or spilled) or in flight, closed or
    /// not: lets the janitor pass over the lanes with nothing to do
    /// without taking their locks.
    held: AtomicUsize,
    /// This process sends the endpoint's queue. Always on sled; on
    /// PostgreSQL only while this replica holds the endpoint's lease.
    served: AtomicBool,
}

impl Lane {
    /// `per_endpoint_metrics`: the builder's setting of that name.
    pub(crate) fn new(
        id: EndpointId,
        route: Route,
        health: EndpointStateRecord,
        per_endpoint_metrics: bool,
        served: bool,
    ) -> Arc<Lane> {
        Arc::new(Lane {
            id,
            route: RwLock::new(Arc::new(route)),
            state: Mutex::new(LaneState::default()),
            active: AtomicBool::new(health.mode == Mode::Active),
            receiving: AtomicBool::new(health.mode != Mode::Disabled),
            proven: AtomicBool::new(false),
            stored_health: Mutex::new(health.clone()),
            health: Mutex::new(health),
            counters: Counters::new(id, per_endpoint_metrics),
            held: AtomicUsize::new(0),
            served: AtomicBool::new(served),
        })
    }

    pub(crate) fn route(&self) -> Arc<Route> {
        self.route.read().clone()
    }

    /// Replaces the settings and applies them to what is queued.
    pub(crate) fn set_route(self: &Arc<Self>, engine: &Arc<Engine>, route: Route) {
        *self.route.write() = Arc::new(route);
        let mut st = self.state.lock();
        self.poke(engine, &mut st);
    }

    /// Changes the stored state (mode, health) with `change`, writes it,
    /// and starts or holds the queue to match. Not yet durable: callers
    /// that must, commit.
    pub(crate) fn update_health(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        mut change: impl FnMut(&mut EndpointStateRecord),
    ) -> Result<EndpointStateRecord> {
        let store = &engine.runtime.store;
        let updated = {
            let mut health = self.health.lock();
            let mut conflicts = 0;
            loop {
                let mut next = health.clone();
                change(&mut next);
                let stored = self.stored_health.lock().clone();
                if worth_writing(&stored, &next) {
                    // On a shared store another replica may have written
                    // it since (a pause, the health of the replica that
                    // sends it): written only over what this one last saw,
                    // else re-read and `change` applied again to that. A
                    // record that keeps changing under it is written over
                    // after a few tries rather than never.
                    let was = (conflicts < STATE_WRITE_TRIES).then_some(&stored);
                    if !store.put_endpoint_state(self.id, &next, was, stored.mode != next.mode)? {
                        conflicts += 1;
                        let current = store.endpoint_state(self.id)?;
                        *self.stored_health.lock() = current.clone();
                        *health = current;
                        continue;
                    }
                    *self.stored_health.lock() = next.clone();
                }
                // The mirrors change under the same lock, so they never
                // show an older mode than the record.
                self.receiving
                    .store(next.mode != Mode::Disabled, Ordering::SeqCst);
                let active = next.mode == Mode::Active;
                let woke = self.active.swap(active, Ordering::SeqCst) != active && active;
                *health = next;
                break (health.clone(), woke);
            }
        };
        let (updated, woke) = updated;
        if woke {
            let mut st = self.state.lock();
            self.poke(engine, &mut st);
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
        self.held.store(
            st.in_memory() + st.spilled + st.in_flight.len(),
            Ordering::SeqCst,
        );
    }

    /// Whether the lane holds no delivery at all, queued or in flight.
    /// Read without the lane's lock: a delivery being added concurrently
    /// may not show yet (the janitor catches it on its next round).
    pub(crate) fn holds_nothing(&self) -> bool {
        self.held.load(Ordering::SeqCst) == 0
    }

    /// The publish is durable: the delivery may go. `false` if its place
    /// was gone (the lane stopped serving the endpoint meanwhile, on a
    /// shared store): whoever serves it now must hear of it.
    pub(crate) fn release(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        event: EventId,
        due_ms: u64,
    ) -> bool {
        let mut st = self.state.lock();
        if !(st.pending.contains_key(&event) || st.tail.contains_key(&event)) {
            return false;
        }
        st.insert(
            event,
            Slot {
                due: due(due_ms),
                implied: true,
            },
        );
        self.poke(engine, &mut st);
        true
    }

    /// The publish failed: forget the reservation.
    pub(crate) fn cancel(self: &Arc<Self>, engine: &Arc<Engine>, event: EventId) {
        let mut st = self.state.lock();
        st.remove(event);
        self.report(&st);
        // An ordered lane may have been held back by it.
        self.poke(engine, &mut st);
    }

    /// Takes the oldest begun delivery among `found` (stored ones, about to
    /// be queued) as the head of an ordered lane, unless it has one.
    pub(crate) fn adopt_begun(&self, found: &[Result<Unfinished>]) {
        self.state.lock().adopt_begun(found);
    }

    /// Queues a delivery found at open. The lane starts with [`Lane::start`].
    pub(crate) fn restore(&self, event: EventId, due_ms: u64, implied: bool) {
        self.state.lock().insert(
            event,
            Slot {
                due: due(due_ms),
                implied,
            },
        );
    }

    pub(crate) fn start(self: &Arc<Self>, engine: &Arc<Engine>) {
        let mut st = self.state.lock();
        // Restored deliveries are counted once, here.
        self.report(&st);
        self.poke(engine, &mut st);
    }

    /// Queues a delivery for an attempt at `due_ms` (a retry, a resend).
    pub(crate) fn schedule(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
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
        self.poke(engine, &mut st);
    }

    /// The clock fired for this lane.
    pub(crate) fn on_clock(self: &Arc<Self>, engine: &Arc<Engine>) {
        let mut st = self.state.lock();
        // Whatever it was asked for: `poke` asks again for the next moment
        // the lane needs. (Comparing with the wall clock here could leave
        // `wake_at` set with no entry behind it if the clock stepped back.)
        st.wake_at = None;
        self.poke(engine, &mut st);
    }

    /// Deliveries queued or waiting for a retry (in memory or spilled to
    /// storage), and in flight.
    pub(crate) fn depth(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.in_memory() + st.spilled, st.in_flight.len())
    }

    /// Whether a delivery is queued or in flight here, looking in storage
    /// for the part of the queue spilled there.
    pub(crate) fn holds(&self, store: &Storage, event: EventId) -> Result<bool> {
        if store.is_shared() {
            // The row is the truth, whichever replica sends it (an entry
            // here may be a stale copy about to be dropped).
            return store.has_pending_key(self.id, event);
        }
        let st = self.state.lock();
        if st.contains(event) {
            return Ok(true);
        }

        if st.spill_from.is_some_and(|lo| event >= lo) {
            return store.has_pending_key(self.id, event);
        }
        Ok(false)
    }

    /// The oldest delivery queued or in flight.
    pub(crate) fn oldest(&self) -> Option<EventId> {
        let st = self.state.lock();
        let queued = st.pending.keys().next().copied();
        let flying = st.in_flight.keys().next().copied();
        // The spill starts at a stored delivery, and the tail lies above it.
        let later = st.spill_from.or_else(|| st.tail.keys().next().copied());
        queued.into_iter().chain(flying).chain(later).min()
    }

    /// Queued and in-flight deliveries, oldest first, after `after`,
    /// including the part of the queue spilled to storage.
    pub(crate) fn queued_after(
        &self,
        store: &Storage,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventId>> {
        if store.is_shared() {
            // The rows are the queue, whichever replica sends it.
            let from = after.map_or(EventId::from_u128(0), |a| {
                EventId::from_u128(a.as_u128().saturating_add(1))
            });
            let window = store.pending_window(self.id, from, limit, |_| false)?;
            return Ok(window
                .found
                .into_iter()
                .filter_map(|u| u.ok().map(|u| u.event))
                .collect());
        }
        let st = self.state.lock();
        let mut all: Vec<EventId> = st
            .pending
            .keys()
            .chain(st.tail.keys())
            .chain(st.in_flight.keys())
            .copied()
            .filter(|e| after.is_none_or(|a| *e > a))
            .collect();
        if let Some(lo) = st.spill_from {
            let from = after.map_or(lo, |a| {
                lo.max(EventId::from_u128(a.as_u128().saturating_add(1)))
            });
            let window = store.pending_window(self.id, from, limit, |e| st.contains(e))?;
            all.extend(
                window
                    .found
                    .into_iter()
                    .filter_map(|u| u.ok().map(|u| u.event)),
            );
        }
        all.sort_unstable();
        all.dedup();
        all.truncate(limit);
        Ok(all)
    }

    /// The oldest delivery that has no key of its own yet. The queue
    /// checkpoint may not pass it. (Spilled deliveries all have keys.)
    pub(crate) fn oldest_implied(&self) -> Option<EventId> {
        let st = self.state.lock();
        let queued = st.pending.iter().find(|(_, s)| s.implied).map(|(e, _)| *e);
        let tail = st.tail.iter().find(|(_, s)| s.implied).map(|(e, _)| *e);
        let flying = st.in_flight.iter().find(|(_, i)| **i).map(|(e, _)| *e);
        queued.into_iter().chain(tail).chain(flying).min()
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
            .chain(st.tail.iter())
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

    /// Moves the newest queued deliveries out of memory while the lane
    /// holds more than [`LANE_WINDOW`]: each gets a `p` key (implied ones
    /// are written now; others have theirs) and is read back when the
    /// queue drains to it. The caller commits before moving the queue
    /// checkpoint past deliveries moved out here. Returns how many keys it
    /// wrote.
    pub(crate) fn spill_over_window(
        &self,
        mut write: impl FnMut(EventId, u64) -> Result<()>,
    ) -> Result<usize> {
        let mut wrote = 0;
        loop {
            let mut st = self.state.lock();
            let excess = st.in_memory().saturating_sub(LANE_WINDOW);
            if excess == 0 {
                return Ok(wrote);
            }
            // The newest first, never one whose publish is not durable
            // yet, nor the begun one an ordered lane must find first.
            let head = st.head;
            let out: Vec<(EventId, Slot)> = st
                .tail
                .iter()
                .rev()
                .chain(st.pending.iter().rev())
                .filter(|(e, s)| s.due != RESERVED && Some(**e) != head)
                .take(excess.min(EVICT_CHUNK))
                .map(|(e, s)| (*e, *s))
                .collect();
            if out.is_empty() {
                return Ok(wrote);
            }
            // Every key first: should a write fail, nothing has left
            // memory yet and the lane stays as it was.
            for (event, slot) in &out {
                if slot.implied {
                    write(*event, slot.due)?;
                    wrote += 1;
                }
            }
            let mut lowest = st.spill_from;
            for (event, _) in &out {
                st.remove(*event);
                st.spilled += 1;
                lowest = Some(lowest.map_or(*event, |l| l.min(*event)));
            }
            // Head entries at or above the new start of the spill (held
            // back ones) become tail.
            if let Some(lo) = lowest {
                let moved = st.pending.split_off(&lo);
                for (event, slot) in moved {
                    st.by_due.remove(&(slot.due, event));
                    st.tail.insert(event, slot);
                }
                st.spill_from = Some(lo);
            }
        }
    }

    /// Notes, at open, that the queue goes on in storage from `from` with
    /// `count` more deliveries.
    pub(crate) fn restore_spilled(&self, from: EventId, count: usize) {
        let mut st = self.state.lock();
        st.spilled = count;
        st.spill_from = Some(from);
        let moved = st.pending.split_off(&from);
        for (event, slot) in moved {
            st.by_due.remove(&(slot.due, event));
            st.tail.insert(event, slot);
        }
    }

    /// Reads the next window of the spilled queue back into memory when
    /// the head runs low.
    fn refill(&self, engine: &Arc<Engine>, st: &mut LaneState) {
        let Some(lo) = st.spill_from else { return };
        // A head whose every delivery waits for a later retry must not
        // hold back stored ones that may be due now (an unordered lane
        // takes any due one), as long as there is room in the window.
        let head_waits = !self.route.read().settings.ordered
            && st.by_due.first().is_none_or(|(due, _)| *due > now_ms());
        if st.pending.len() >= LANE_WINDOW / 4 && !(head_waits && st.pending.len() < LANE_WINDOW) {
            return;
        }
        let window = {
            let held = &*st;
            engine
                .runtime
                .store
                .pending_window(self.id, lo, LANE_WINDOW / 2, |e| held.contains(e))
        };
        let window = match window {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(endpoint = %self.id, error = %e, "cannot read the stored queue; trying again in 1 s");
                let at = now_ms().saturating_add(1000);
                if st.wake_at.is_none_or(|w| at < w) {
                    st.wake_at = Some(at);
                    engine.clock.wake_at(at, self.id);
                }
                return;
            }
        };
        if self.route.read().settings.ordered {
            st.adopt_begun(&window.found);
        }
        for found in window.found {
            st.spilled = st.spilled.saturating_sub(1);
            match found {
                Ok(u) => {
                    let due = match u.record.state {
                        DeliveryState::Waiting { due_ms, .. } => due_ms,
                        _ => 0,
                    };
                    st.insert_head(
                        u.event,
                        Slot {
                            due,
                            implied: false,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(endpoint = %self.id, error = %e, "skipping a stored delivery that cannot be read");
                }
            }
        }
        if window.next.is_none() {
            st.spilled = 0;
        }
        st.move_spill(window.next);
    }

    /// Whether this process sends the endpoint's queue (see `served`).
    #[cfg(feature = "postgres")]
    pub(crate) fn is_served(&self) -> bool {
        self.served.load(Ordering::SeqCst)
    }

    /// This replica no longer holds the endpoint's lease: forgets the
    /// queue (it stays stored, for the replica that serves it now).
    /// Attempts in flight finish; their outcomes are fenced off in storage.
    #[cfg(feature = "postgres")]
    pub(crate) fn unserve(&self) {
        self.served.store(false, Ordering::SeqCst);
        let mut st = self.state.lock();
        st.pending.clear();
        st.by_due.clear();
        st.tail.clear();
        st.spill_from = None;
        st.spilled = 0;
        st.head = None;
        self.report(&st);
    }

    /// Adds stored deliveries that are not held yet (a window read from
    /// storage, event order) and starts them; if the stored queue goes on
    /// past the window, the lane reads the rest as it drains.
    #[cfg(feature = "postgres")]
    /// With `serve`, the lane starts serving the endpoint in the same step
    /// (the lease was just claimed): publishes made from here on queue
    /// here behind the loaded window.
    pub(crate) fn load_stored(self: &Arc<Self>, engine: &Arc<Engine>, window: Window, serve: bool) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        if serve {
            self.served.store(true, Ordering::SeqCst);
        } else if !self.served.load(Ordering::SeqCst) {
            return;
        }
        if self.route.read().settings.ordered {
            st.adopt_begun(&window.found);
        }
        for u in window.found {
            match u {
                Ok(u) if !st.contains(u.event) => {
                    let due_ms = match u.record.state {
                        DeliveryState::Waiting { due_ms, .. } => due_ms,
                        _ => 0,
                    };
                    st.insert(
                        u.event,
                        Slot {
                            due: due(due_ms),
                            implied: false,
                        },
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(endpoint = %self.id, error = %e, "skipping a stored delivery that cannot be read");
                }
            }
        }
        if let Some(next) = window.next {
            if st.spill_from.is_none() {
                st.spill_from = Some(next);
                st.spilled = st.spilled.max(1);
                let moved = st.pending.split_off(&next);
                for (event, slot) in moved {
                    st.by_due.remove(&(slot.due, event));
                    st.tail.insert(event, slot);
                }
            }
        }
        self.report(&st);
        self.poke(engine, &mut st);
    }

    /// Whether a delivery is queued in memory or in flight here.
    #[cfg(feature = "postgres")]
    pub(crate) fn contains(&self, event: EventId) -> bool {
        self.state.lock().contains(event)
    }

    /// Whether a delivery older than `event` is queued here.
    #[cfg(feature = "postgres")]
    pub(crate) fn queues_older(&self, event: EventId) -> bool {
        let st = self.state.lock();
        st.pending
            .first_key_value()
            .is_some_and(|(e, _)| *e < event)
    }

    /// Whether the lane has room in memory for more stored deliveries.
    #[cfg(feature = "postgres")]
    pub(crate) fn has_room(&self) -> bool {
        let st = self.state.lock();
        st.spill_from.is_none() && st.in_memory() < LANE_WINDOW
    }

    /// Takes an endpoint state another replica wrote (a pause, a resume)
    /// as this lane's, and starts or holds the queue to match. `read` runs
    /// under the state's lock, which local changes hold while they write,
    /// so an older read never overwrites a newer change.
    #[cfg(feature = "postgres")]
    pub(crate) fn adopt_health(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        read: impl FnOnce() -> Result<EndpointStateRecord>,
    ) -> Result<()> {
        let woke = {
            let mut health = self.health.lock();
            let stored = read()?;
            if stored.mode == health.mode {
                return Ok(());
            }
            *self.stored_health.lock() = stored.clone();
            self.receiving
                .store(stored.mode != Mode::Disabled, Ordering::SeqCst);
            let active = stored.mode == Mode::Active;
            let woke = self.active.swap(active, Ordering::SeqCst) != active && active;
            *health = stored;
            woke
        };
        if woke {
            let mut st = self.state.lock();
            self.poke(engine, &mut st);
        }
        Ok(())
    }

    /// Stops starting deliveries: attempts in flight finish, queued ones
    /// stay in the store.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        self.report(&st);
    }

    /// Records how the endpoint answered an attempt: quickly (proven), or
    /// by timing out or slowly (unproven: one attempt at a time, within the
    /// pool's share for such endpoints).
    pub(crate) fn observe(&self, outcome: &HttpOutcome) {
        let timed_out = matches!(outcome.error, Some((ErrorKind::Timeout, _)));
        let proven = !timed_out && outcome.duration < SLOW_ATTEMPT;
        self.proven.store(proven, Ordering::SeqCst);
    }

    pub(crate) fn is_proven(&self) -> bool {
        self.proven.load(Ordering::SeqCst)
    }

    /// Makes sure the lane's next delivery will be started: queues the
    /// lane on the pool if one may start now, or asks the clock to wake it
    /// when one may. Called with the lane's lock held, after every change.
    fn poke(self: &Arc<Self>, engine: &Arc<Engine>, st: &mut LaneState) {
        if st.scheduled || st.closed || engine.runtime.is_stopping() {
            return;
        }
        if !self.served.load(Ordering::SeqCst) {
            return;
        }
        if !self.active.load(Ordering::SeqCst) {
            return;
        }
        self.refill(engine, st);
        match self.startable(st) {
            Start::Now => {
                st.scheduled = true;
                engine.pool.push(engine, Arc::clone(self), self.is_proven());
            }
            Start::Later(at) => {
                if st.wake_at.is_none_or(|w| at < w) {
                    st.wake_at = Some(at);
                    engine.clock.wake_at(at, self.id);
                }
            }
            Start::Idle => {}
        }
    }

    /// Whether a delivery may start now, and if not, when.
    fn startable(&self, st: &LaneState) -> Start {
        let route = self.route.read();
        let limit = if route.settings.ordered || !self.is_proven() {
            1
        } else {
            route.settings.concurrency
        };
        if st.in_flight.len() >= limit {
            return Start::Idle;
        }
        let due = if route.settings.ordered {
            // Strict publish order: only the oldest (or the one begun)
            // may go.
            st.ordered_next().map(|(_, s)| s.due)
        } else {
            st.by_due.first().map(|(due, _)| *due)
        };
        let Some(due) = due else { return Start::Idle };
        if due == RESERVED {
            return Start::Idle;
        }
        let now = now_ms();
        let rate_ready_ms = st.next_start_us.div_ceil(1000);
        let at = due.max(if st.next_start_us > now_us() {
            rate_ready_ms
        } else {
            0
        });
        if at > now {
            Start::Later(at)
        } else {
            Start::Now
        }
    }

    /// Takes the delivery to start now, if there is one.
    fn take(&self, st: &mut LaneState) -> Option<(EventId, bool)> {
        if !matches!(self.startable(st), Start::Now) {
            return None;
        }
        let route = self.route.read();
        let event = if route.settings.ordered {
            st.ordered_next()?.0
        } else {
            st.by_due.first()?.1
        };
        if let Some(per_second) = route.settings.rate_limit {
            let interval = 1_000_000 / u64::from(per_second.get());
            st.next_start_us = st.next_start_us.max(now_us()).saturating_add(interval);
        }
        let implied = st.remove(event).is_none_or(|s| s.implied);
        st.in_flight.insert(event, implied);
        self.report(st);
        Some((event, implied))
    }

    /// A pool worker's turn: starts one delivery, if one may start now,
    /// and makes the attempt.
    pub(crate) fn run_one(self: &Arc<Self>, engine: &Arc<Engine>) {
        let job = {
            let mut st = self.state.lock();
            st.scheduled = false;
            if st.closed || engine.runtime.is_stopping() || !self.active.load(Ordering::SeqCst) {
                return;
            }
            let job = self.take(&mut st);
            // Back in the queue behind the other lanes if another may start
            // too: that is what makes the pool round-robin.
            self.poke(engine, &mut st);
            job
        };
        let Some((event, implied)) = job else { return };
        // `deliver` turns a panic inside an attempt into a logged, failed
        // attempt. This catch is the last line only: should its own
        // logging unwind, the delivery stays queued (its stored state
        // intact) and is looked at again much later.
        let requeue = panic::catch_unwind(AssertUnwindSafe(|| {
            sender::deliver(engine, self, event, implied)
        }))
        .unwrap_or_else(|_| {
            engine.runtime.note_panic();
            sender::Requeue::after(sender::PANIC_RETRY, implied)
        });
        // Out of flight and back in the queue in one step, so no other
        // worker can take it in between.
        let mut st = self.state.lock();
        st.in_flight.remove(&event);
        // A lane that stopped serving its endpoint meanwhile (another
        // replica holds the lease now) keeps no copy: the stored row is
        // the new owner's to send.
        let requeue = requeue.filter(|_| self.served.load(Ordering::SeqCst));
        match requeue {
            Some(r) if r.begun && self.route.read().settings.ordered => st.head = Some(event),
            Some(_) => {}
            None if st.head == Some(event) => st.head = None,
            None => {}
        }
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
        self.poke(engine, &mut st);
    }
}

/// Microseconds since the Unix epoch, for the rate limit's spacing.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros().min(u128::from(u64::MAX)) as u64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::DeliveryRecord;

    #[test]
    fn a_delivery_in_flight_is_not_queued_beside_its_attempt() {
        let mut st = LaneState::default();
        let event = EventId::from_u128(7);
        let slot = Slot {
            due: 0,
            implied: false,
        };
        st.insert(event, slot);
        // Taken by a worker.
        st.remove(event);
        st.in_flight.insert(event, false);
        // A recover (or a stored window) queues it again meanwhile.
        st.insert(event, slot);
        assert!(st.pending.is_empty() && st.by_due.is_empty() && st.tail.is_empty());
        // Its attempt ends with a retry: requeued as usual.
        st.in_flight.remove(&event);
        st.insert(event, slot);
        assert_eq!(st.pending.len(), 1);
    }

    #[test]
    fn an_ordered_lane_sends_the_begun_delivery_before_older_ones() {
        let mut st = LaneState::default();
        let slot = Slot {
            due: 0,
            implied: false,
        };
        let (older, begun, newer) = (
            EventId::from_u128(1),
            EventId::from_u128(2),
            EventId::from_u128(3),
        );
        st.insert(begun, slot);
        st.insert(newer, slot);
        assert_eq!(st.ordered_next().map(|(e, _)| e), Some(begun));
        // Its first attempt failed; an older delivery is stored meanwhile.
        st.head = Some(begun);
        st.insert(older, slot);
        assert_eq!(st.ordered_next().map(|(e, _)| e), Some(begun));
        // Once it ends, the oldest goes.
        st.remove(begun);
        st.head = None;
        assert_eq!(st.ordered_next().map(|(e, _)| e), Some(older));

        // A replica taking the endpoint over finds the begun one in the
        // stored rows.
        let mut st = LaneState::default();
        let row = |event: EventId, next_attempt: u32| {
            let mut record = DeliveryRecord::implied(0);
            record.state = DeliveryState::Waiting {
                next_attempt,
                due_ms: 0,
            };
            Ok(Unfinished {
                endpoint: EndpointId(1),
                event,
                record,
            })
        };
        let found = vec![row(older, 1), row(begun, 2), row(newer, 1)];
        st.adopt_begun(&found);
        for e in [older, begun, newer] {
            st.insert(e, slot);
        }
        assert_eq!(st.ordered_next().map(|(e, _)| e), Some(begun));
    }
}
