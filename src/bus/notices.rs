//! Telling the other replicas about this replica's publishes, coalesced.
//!
//! A publish on PostgreSQL commits without a NOTIFY of its own: PostgreSQL
//! serializes the commits of every transaction that holds a pending NOTIFY
//! (one global lock until after commit), which capped publishes at about
//! 1,000/s whatever the number of threads or replicas (BENCHMARKS.md,
//! scenario 12). Instead, once committed, a publish hands the endpoints
//! this replica does not send itself to one thread, which sends them in
//! one notification (one autocommitted `pg_notify`) per batch: whatever
//! arrived while the previous one was being sent. An idle replica adds no
//! delay; a busy one sends one notification per round trip, not per
//! publish.
//!
//! A replica killed between a commit and its notification loses nothing:
//! the replica serving the endpoint compares its queue with the stored one
//! every poll interval (`postgres_poll_interval`) and reads what it lacks.
//! A publish in the host's own transaction (`publish_in`) still notifies
//! inside it: only the host knows when that commits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::delivery::Engine;
use crate::endpoint::EndpointId;
use crate::error::{Error, Result};
use crate::store::postgres::notify::deliveries_payload;

/// How long the thread waits for a batch before looking at the stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(200);

enum Notice {
    Deliveries(Vec<EndpointId>),
    Stop,
}

pub(super) struct Notices {
    queue: Sender<Notice>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Notices {
    pub(super) fn start(engine: &Arc<Engine>) -> Result<Notices> {
        let (queue, inbox) = crossbeam_channel::unbounded();
        let engine = Arc::clone(engine);
        let thread = thread::Builder::new()
            .name("hookbus-notify".into())
            .spawn(move || send_batches(&engine, &inbox))
            .map_err(|source| Error::Io {
                action: "starting the PostgreSQL notification thread",
                source,
            })?;
        Ok(Notices {
            queue,
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// New deliveries for these endpoints are committed: the replicas
    /// serving them are to hear of it.
    pub(super) fn deliveries(&self, endpoints: Vec<EndpointId>) {
        if !endpoints.is_empty() {
            let _ = self.queue.send(Notice::Deliveries(endpoints));
        }
    }

    /// Sends what is queued, then stops the thread; `true` if it had
    /// panicked.
    pub(super) fn stop(&self) -> bool {
        let _ = self.queue.send(Notice::Stop);
        match self.thread.lock().take() {
            Some(handle) => handle.join().is_err(),
            None => false,
        }
    }
}

fn send_batches(engine: &Engine, inbox: &Receiver<Notice>) {
    let Some(pg) = engine.runtime.store.shared() else {
        return;
    };
    loop {
        let first = match inbox.recv_timeout(IDLE_WAIT) {
            Ok(notice) => notice,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut stop = false;
        let mut endpoints = BTreeSet::new();
        for notice in std::iter::once(first).chain(inbox.try_iter()) {
            match notice {
                Notice::Deliveries(ids) => endpoints.extend(ids),
                Notice::Stop => stop = true,
            }
        }
        if !endpoints.is_empty() {
            let ids: Vec<EndpointId> = endpoints.iter().copied().collect();
            let payload = deliveries_payload(&ids);
            // One retry: the poll covers a notification that is lost.
            let sent = pg.notify_now(&payload).or_else(|_| pg.notify_now(&payload));
            if let Err(e) = sent {
                tracing::warn!(error = %e, endpoints = endpoints.len(), "cannot notify the other replicas of new deliveries; they find them at their next poll");
            }
        }
        if stop {
            return;
        }
    }
}
