//! Delivery: the per-endpoint queues, the shared sender pool and the retry
//! clock.
//!
//! # Threading model
//!
//! Every endpoint has a [`Lane`]: an in-memory queue of its pending
//! deliveries (ordered by event id, which is publish order). Lanes own no
//! threads. A bounded [`pool`] of sender threads (`sender_threads`, 64 by
//! default) serves every lane round-robin, one delivery per turn, within
//! each endpoint's `concurrency` (2 by default; 1 on ordered endpoints) and
//! optional rate limit. One [`clock`] thread wakes lanes whose next delivery
//! is due later (retries, `Retry-After`, rate limits): no thread sleeps on
//! behalf of a waiting delivery. Pool threads start on demand and end after
//! `sender_idle_timeout` (10 s) without work, so an idle bus has none.
//!
//! Endpoints that time out are contained: see [`pool`] for the rule.
//!
//! The stored delivery record is the truth; lanes are rebuilt from it at
//! open. See [`sender`] for the order of writes around an attempt.

pub(crate) mod clock;
mod lane;
pub(crate) mod pool;
mod retry;
mod sender;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

pub(crate) use lane::{Lane, LANE_WINDOW};
pub(crate) use retry::RetryPolicy;
pub(crate) use sender::test_send;

use crate::config::Config;
use crate::endpoint::{Endpoint, EndpointId, Settings};
use crate::event::IdGenerator;
use crate::formats::Format;
use crate::http::HttpClient;
use crate::notice::Notices;
use crate::signing::{Signing, SigningKey};
use crate::store::Store;
use crate::time;

/// What every sender thread, the janitor and the bus share.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) http: HttpClient,
    pub(crate) config: Config,
    pub(crate) ids: IdGenerator,
    /// Every endpoint's lane; changed only with the bus's registry lock held.
    pub(crate) lanes: RwLock<BTreeMap<EndpointId, Arc<Lane>>>,
    pub(crate) notices: Notices,
    /// The sender threads every lane shares.
    pub(crate) pool: Arc<pool::Pool>,
    /// The one retry clock.
    pub(crate) clock: clock::Clock,
    pub(crate) published: AtomicU64,
    stopping: AtomicBool,
    panics: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(store: Store, http: HttpClient, config: Config, ids: IdGenerator) -> Self {
        Shared {
            pool: Arc::new(pool::Pool::new(
                config.sender_threads,
                config.sender_idle_timeout,
            )),
            clock: clock::Clock::new(),
            http,
            store,
            config,
            ids,
            lanes: RwLock::new(BTreeMap::new()),
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

    pub(crate) fn panics(&self) -> usize {
        self.panics.load(Ordering::SeqCst) + self.pool.panics()
    }
}

/// An endpoint's sending settings with the bus defaults filled in.
pub(crate) struct Route {
    pub(crate) url: String,
    /// The current secret, then rotated-out ones with the time (ms) they
    /// stop signing.
    secrets: Vec<(SigningKey, Option<u64>)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) format: Format,
    pub(crate) signing: Signing,
    /// The delivery settings, bus defaults filled in.
    pub(crate) settings: Settings,
    pub(crate) retry: RetryPolicy,
}

impl Route {
    /// `endpoint` has been validated, so its secret decodes.
    pub(crate) fn new(endpoint: &Endpoint, config: &Config) -> Route {
        let c = &endpoint.config;
        let settings = c.settings.resolve(config);
        let current = c
            .secret
            .iter()
            .filter_map(|s| SigningKey::new(s, &c.signing))
            .map(|k| (k, None));
        let previous = endpoint.previous_secrets.iter().filter_map(|(s, until)| {
            Some((SigningKey::new(s, &c.signing)?, Some(time::to_ms(*until))))
        });
        Route {
            url: c.url.clone(),
            secrets: current.chain(previous).collect(),
            headers: c.headers.clone(),
            format: c.format.clone(),
            signing: c.signing.clone(),
            retry: RetryPolicy::new(settings.retry_delays.clone(), settings.retry_jitter),
            settings,
        }
    }

    /// The secrets that sign now, the current one first.
    pub(crate) fn active_keys(&self, now_ms: u64) -> Vec<&SigningKey> {
        self.secrets
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now_ms))
            .map(|(k, _)| k)
            .collect()
    }
}
