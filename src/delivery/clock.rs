//! The retry clock: one thread for the whole bus that wakes lanes when
//! their next delivery falls due (a retry, a `Retry-After`, a rate limit).
//!
//! No sender thread ever sleeps towards a due time: a lane whose next
//! delivery lies in the future registers that moment here and gives its
//! thread back to the pool. The clock keeps one min-heap of
//! `(due, endpoint)` entries; a lane keeps at most one entry that matters
//! (the earliest it asked for), and entries made stale by a later change
//! only cause a harmless extra look at the lane.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Engine;
use crate::endpoint::EndpointId;
use crate::time::now_ms;

/// The clock's life cycle, under its lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
}

struct State {
    phase: Phase,
    due: BinaryHeap<Reverse<(u64, EndpointId)>>,
}

pub(crate) struct Clock {
    state: Mutex<State>,
    changed: Condvar,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            state: Mutex::new(State {
                phase: Phase::Running,
                due: BinaryHeap::new(),
            }),
            changed: Condvar::new(),
            handle: Mutex::new(None),
        }
    }

    /// Starts the clock's thread.
    pub(crate) fn start(engine: &Arc<Engine>) -> std::io::Result<()> {
        let for_thread = Arc::clone(engine);
        let handle = thread::Builder::new()
            .name("hookbus-clock".into())
            .spawn(move || run(&for_thread))?;
        *engine.clock.handle.lock() = Some(handle);
        Ok(())
    }

    /// Wakes `endpoint`'s lane at `due_ms` (ms since the epoch).
    pub(crate) fn wake_at(&self, due_ms: u64, endpoint: EndpointId) {
        let mut st = self.state.lock();
        let earliest = st.due.peek().is_none_or(|Reverse((d, _))| due_ms < *d);
        st.due.push(Reverse((due_ms, endpoint)));
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Stops the thread and joins it; `true` if it had panicked.
    pub(crate) fn stop(&self) -> bool {
        self.state.lock().phase = Phase::ShuttingDown;
        self.changed.notify_all();
        let handle = self.handle.lock().take();
        handle.is_some_and(|h| h.join().is_err())
    }
}

fn run(engine: &Arc<Engine>) {
    let clock = &engine.clock;
    let mut fired = Vec::new();
    loop {
        {
            let mut st = clock.state.lock();
            loop {
                if st.phase == Phase::ShuttingDown {
                    return;
                }
                let now = now_ms();
                match st.due.peek() {
                    Some(Reverse((due, _))) if *due <= now => {
                        while let Some(Reverse((due, ep))) = st.due.peek().copied() {
                            if due > now {
                                break;
                            }
                            st.due.pop();
                            fired.push(ep);
                        }
                        break;
                    }
                    Some(Reverse((due, _))) => {
                        let wait = Duration::from_millis(due.saturating_sub(now));
                        clock.changed.wait_for(&mut st, wait);
                    }
                    None => clock.changed.wait(&mut st),
                }
            }
        }
        // Lanes are looked at without the clock's lock held: a lane may
        // register a new wake-up meanwhile.
        fired.sort_unstable();
        fired.dedup();
        for ep in fired.drain(..) {
            let lane = engine.lanes.read().get(&ep).cloned();
            if let Some(lane) = lane {
                lane.on_clock(engine);
            }
        }
    }
}
