//! The sender pool: a bounded set of threads shared by every endpoint.
//!
//! A lane with a delivery it may start now (due, under its concurrency and
//! rate limit, endpoint active) puts itself at the back of a ready queue,
//! once. A worker takes the lane at the front, starts exactly one delivery
//! from it, and — if the lane could start another — puts it at the back
//! again before making the attempt. So endpoints are served round-robin: a
//! backlog of a million deliveries at one endpoint gets one turn per round,
//! and a fresh endpoint's first delivery waits at most for the lanes ahead
//! of it in the queue, never behind that backlog.
//!
//! Threads start on demand up to `sender_threads` and retire after
//! `sender_idle_timeout` without work. They are detached: a thread that
//! ends gives its stack back at once; shutdown waits for the count to reach
//! zero.
//!
//! # Hung endpoints
//!
//! An endpoint is *proven* once an attempt to it got an answer (any status,
//! or a quick connection error) in less than [`SLOW_ATTEMPT`]. Until then —
//! a new endpoint, or one whose last attempt timed out or was slow — it is
//! *unproven*: it has at most one attempt in flight, and all unproven
//! endpoints together hold at most half of the pool (rounded up). However
//! many endpoints hang, the other half keeps serving proven endpoints. The
//! limit: a healthy endpoint that has not answered yet since the bus opened
//! competes with the hung ones for the unproven half, so its first delivery
//! may wait up to one attempt timeout; after its first quick answer it
//! never waits for them again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Engine, Lane};

/// An attempt slower than this makes its endpoint unproven, as a timeout
/// does: it is likely to hold a thread for long again.
pub(crate) const SLOW_ATTEMPT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    /// Lanes of proven endpoints with a delivery to start.
    proven: VecDeque<Arc<Lane>>,
    /// Lanes of unproven endpoints with a delivery to start.
    unproven: VecDeque<Arc<Lane>>,
    /// Threads alive, and of those, waiting for a lane.
    workers: usize,
    idle: usize,
    /// Workers busy with an attempt to an unproven endpoint.
    unproven_busy: usize,
    /// Alternates between the two queues so neither starves the other.
    unproven_turn: bool,
    stopping: bool,
    /// Threads ever started (a diagnostic).
    started: u64,
    /// Workers that have stopped taking work and are ending.
    leaving: usize,
    /// Workers that panicked outside an attempt.
    panics: usize,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    /// Workers wait here for lanes.
    ready: Condvar,
    /// Signalled when a worker exits (shutdown waits on it).
    exited: Condvar,
    max_threads: usize,
    unproven_cap: usize,
    idle_timeout: Duration,
}

/// A lane a worker took, and whether it counts against the unproven share.
pub(crate) struct Turn {
    pub(crate) lane: Arc<Lane>,
    unproven: bool,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, idle_timeout: Duration) -> Pool {
        let max_threads = max_threads.max(1);
        Pool {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            exited: Condvar::new(),
            max_threads,
            unproven_cap: max_threads.div_ceil(2),
            idle_timeout,
        }
    }

    /// Queues a lane that has a delivery to start. The lane calls this at
    /// most once until a worker takes it (its `scheduled` flag).
    pub(crate) fn push(&self, engine: &Arc<Engine>, lane: Arc<Lane>, proven: bool) {
        let mut st = self.state.lock();
        if st.stopping {
            return;
        }
        if proven {
            st.proven.push_back(lane);
        } else {
            st.unproven.push_back(lane);
        }
        if st.idle > 0 {
            self.ready.notify_one();
        }
        // Idle workers take queued lanes; start a thread only for lanes
        // beyond them (a notified worker stays counted idle until it runs).
        let waiting = st.proven.len() + st.unproven.len();
        if waiting <= st.idle || st.workers - st.leaving >= self.max_threads {
            return;
        }
        // An unproven lane over the share would only wait: no new thread.
        if !proven && st.unproven_busy >= self.unproven_cap {
            return;
        }
        let for_thread = Arc::clone(engine);
        let spawned = thread::Builder::new()
            .name("hookbus-sender".into())
            .spawn(move || worker(for_thread));
        match spawned {
            Ok(_detached) => {
                st.workers += 1;
                st.started += 1;
            }
            // The lane stays queued; the next push or finished attempt
            // tries again.
            Err(e) => tracing::error!(error = %e, "cannot start a sender thread"),
        }
    }

    /// Blocks until a lane is ready for this worker; `None` when the
    /// worker should end (shutdown, or idle too long), already counted out.
    fn take(&self) -> Option<Turn> {
        let mut st = self.state.lock();
        let idle_since = Instant::now();
        loop {
            if st.stopping {
                return self.exit(st);
            }
            let may_unproven = st.unproven_busy < self.unproven_cap;
            let unproven_first = st.unproven_turn || st.proven.is_empty();
            let picked = if may_unproven && unproven_first && !st.unproven.is_empty() {
                st.unproven.pop_front().map(|l| (l, true))
            } else if let Some(l) = st.proven.pop_front() {
                Some((l, false))
            } else if may_unproven {
                st.unproven.pop_front().map(|l| (l, true))
            } else {
                None
            };
            if let Some((lane, unproven)) = picked {
                st.unproven_turn = !unproven;
                if unproven {
                    st.unproven_busy += 1;
                }
                return Some(Turn { lane, unproven });
            }
            let left = self.idle_timeout.saturating_sub(idle_since.elapsed());
            if left.is_zero() {
                return self.exit(st);
            }
            st.idle += 1;
            self.ready.wait_for(&mut st, left);
            st.idle -= 1;
        }
    }

    fn exit(&self, mut st: parking_lot::MutexGuard<'_, State>) -> Option<Turn> {
        // Counted out by the worker's guard, once it has let go of the bus.
        st.leaving += 1;
        None
    }

    /// A worker thread is about to end and holds nothing of the bus.
    fn count_out(&self, panicked: bool) {
        let mut st = self.state.lock();
        st.workers -= 1;
        if panicked {
            st.panics += 1;
        } else {
            st.leaving -= 1;
        }
        self.exited.notify_all();
    }

    /// Workers that panicked outside an attempt.
    pub(crate) fn panics(&self) -> usize {
        self.state.lock().panics
    }

    /// The worker is done with its turn.
    fn done(&self, turn: &Turn) {
        if turn.unproven {
            let mut st = self.state.lock();
            st.unproven_busy -= 1;
            // A lane may have been waiting for the share.
            if !st.unproven.is_empty() && st.idle > 0 {
                self.ready.notify_one();
            }
        }
    }

    /// Threads alive now.
    pub(crate) fn threads(&self) -> usize {
        self.state.lock().workers
    }

    /// Threads started since the bus opened.
    pub(crate) fn threads_started(&self) -> u64 {
        self.state.lock().started
    }

    /// Stops taking work and waits until every worker has ended, at most
    /// until `deadline`; returns how many are still running then.
    pub(crate) fn stop(&self, deadline: Option<Instant>) -> usize {
        let mut st = self.state.lock();
        st.stopping = true;
        st.proven.clear();
        st.unproven.clear();
        self.ready.notify_all();
        while st.workers > 0 {
            match deadline {
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        break;
                    }
                    self.exited.wait_for(&mut st, at - now);
                }
                None => self.exited.wait(&mut st),
            }
        }
        st.workers
    }
}

fn worker(engine: Arc<Engine>) {
    let pool = Arc::clone(&engine.pool);
    let _count_out = ExitGuard(&pool);
    // Declared after the guard, so dropped before it: the count reaches
    // zero only once no worker holds the bus (shutdown relies on that to
    // release the database).
    let engine = engine;
    while let Some(turn) = pool.take() {
        // Done even if the turn unwinds (a panic outside the attempt's own
        // catch), so the unproven share never leaks.
        let turn = TurnGuard(&pool, turn);
        turn.1.lane.run_one(&engine);
    }
}

/// Hands a turn back to the pool when dropped.
struct TurnGuard<'a>(&'a Pool, Turn);

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.0.done(&self.1);
    }
}

/// Counts a worker out when it ends, normally or by a panic outside an
/// attempt (an attempt's own panics are caught and logged by the lane).
struct ExitGuard<'a>(&'a Pool);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        self.0.count_out(thread::panicking());
    }
}
