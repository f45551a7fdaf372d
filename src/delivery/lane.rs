//! A lane: one endpoint's queue and its sender threads.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::{sender, Route, Shared};
use crate::endpoint::EndpointId;
use crate::event::EventId;
use crate::store::records::DeliveryState;
use crate::time::now_ms;

#[derive(Default)]
struct LaneState {
    /// Deliveries that may be attempted now, oldest event first.
    ready: BTreeSet<EventId>,
    /// Deliveries waiting for a retry: (due, event).
    retries: BTreeSet<(u64, EventId)>,
    /// Sender threads alive.
    workers: usize,
    /// Of those, threads blocked waiting for work.
    idle: usize,
    /// Set when the endpoint is deleted or the bus shuts down.
    closed: bool,
    handles: Vec<JoinHandle<()>>,
}

pub(crate) struct Lane {
    pub(crate) id: EndpointId,
    route: RwLock<Arc<Route>>,
    state: Mutex<LaneState>,
    wake: Condvar,
}

impl Lane {
    pub(crate) fn new(id: EndpointId, route: Route) -> Arc<Lane> {
        Arc::new(Lane {
            id,
            route: RwLock::new(Arc::new(route)),
            state: Mutex::new(LaneState::default()),
            wake: Condvar::new(),
        })
    }

    pub(crate) fn route(&self) -> Arc<Route> {
        self.route.read().clone()
    }

    /// Replaces the settings (an update, enable or disable) and starts
    /// senders if the lane now has work it may do.
    pub(crate) fn set_route(self: &Arc<Self>, shared: &Arc<Shared>, route: Route) {
        *self.route.write() = Arc::new(route);
        let mut st = self.state.lock();
        self.wake.notify_all();
        self.kick(shared, &mut st);
    }

    /// Queues a delivery found in the store at open. Senders start with
    /// [`Lane::start`].
    pub(crate) fn restore(&self, event: EventId, state: DeliveryState) {
        let mut st = self.state.lock();
        match state {
            DeliveryState::Waiting { due_ms, .. } if due_ms > now_ms() => {
                st.retries.insert((due_ms, event));
            }
            DeliveryState::Waiting { .. } | DeliveryState::InFlight { .. } => {
                st.ready.insert(event);
            }
            DeliveryState::Delivered { .. } | DeliveryState::Failed { .. } => {}
        }
    }

    pub(crate) fn start(self: &Arc<Self>, shared: &Arc<Shared>) {
        let mut st = self.state.lock();
        self.kick(shared, &mut st);
    }

    /// Queues a newly published delivery.
    pub(crate) fn push(self: &Arc<Self>, shared: &Arc<Shared>, event: EventId) {
        let mut st = self.state.lock();
        st.ready.insert(event);
        self.kick(shared, &mut st);
    }

    /// Queues a delivery for a later attempt at `due_ms`.
    pub(crate) fn schedule(self: &Arc<Self>, shared: &Arc<Shared>, due_ms: u64, event: EventId) {
        let mut st = self.state.lock();
        st.retries.insert((due_ms, event));
        // A waiting thread may be sleeping towards a later retry.
        self.wake.notify_one();
        self.kick(shared, &mut st);
    }

    /// Deliveries queued or waiting for a retry (not counting ones in flight).
    pub(crate) fn queued(&self) -> usize {
        let st = self.state.lock();
        st.ready.len() + st.retries.len()
    }

    /// Stops the lane's threads after their current attempt; returns them to
    /// be joined. Queued deliveries stay in the store.
    pub(crate) fn close(&self) -> Vec<JoinHandle<()>> {
        let mut st = self.state.lock();
        st.closed = true;
        self.wake.notify_all();
        std::mem::take(&mut st.handles)
    }

    /// Makes sure a thread will pick up the work: wakes an idle one, or
    /// starts one if the endpoint's concurrency allows.
    fn kick(self: &Arc<Self>, shared: &Arc<Shared>, st: &mut LaneState) {
        if st.closed || shared.is_stopping() || !self.route.read().enabled {
            return;
        }
        if st.ready.is_empty() && st.retries.is_empty() {
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
        while let Some(event) = self.next_job(shared) {
            sender::deliver(shared, &self, event);
        }
    }

    /// Blocks until a delivery may be attempted. Returns `None`, with the
    /// thread already counted out, when the lane closes or stays idle for
    /// `sender_idle_timeout`.
    fn next_job(&self, shared: &Shared) -> Option<EventId> {
        let mut st = self.state.lock();
        let idle_since = Instant::now();
        loop {
            if st.closed || shared.is_stopping() {
                st.workers -= 1;
                return None;
            }
            let enabled = self.route.read().enabled;
            let now = now_ms();
            let mut next_due = None;
            if enabled {
                while let Some(&(due, event)) = st.retries.first() {
                    if due > now {
                        next_due = Some(due);
                        break;
                    }
                    st.retries.pop_first();
                    st.ready.insert(event);
                }
                if let Some(event) = st.ready.pop_first() {
                    return Some(event);
                }
            }
            let wait = match next_due {
                Some(due) => Duration::from_millis(due - now),
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
