//! The runtime context of an open bus: what the host's calls, the sender
//! threads and the janitor share, below the delivery machinery that runs on
//! it (every endpoint's lane, the sender pool and the retry clock live in
//! [`crate::delivery`], which holds a [`Runtime`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::config::Config;
use crate::event::IdGenerator;
use crate::http::HttpClient;
use crate::notice::Notices;
use crate::store::Storage;

/// The store, the HTTP client, the settings and the bus-wide state of an
/// open bus.
pub(crate) struct Runtime {
    pub(crate) store: Storage,
    pub(crate) http: HttpClient,
    pub(crate) config: Config,
    pub(crate) ids: IdGenerator,
    pub(crate) notices: Notices,
    pub(crate) published: AtomicU64,
    stopping: AtomicBool,
    /// Panics caught outside the sender pool's own threads.
    panics: AtomicUsize,
}

impl Runtime {
    pub(crate) fn new(store: Storage, http: HttpClient, config: Config, ids: IdGenerator) -> Self {
        Runtime {
            store,
            http,
            config,
            ids,
            notices: Notices::default(),
            published: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            panics: AtomicUsize::new(0),
        }
    }

    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn note_panic(&self) {
        self.panics.fetch_add(1, Ordering::SeqCst);
    }

    /// Panics noted here; the pool counts its own.
    pub(crate) fn panics(&self) -> usize {
        self.panics.load(Ordering::SeqCst)
    }
}
