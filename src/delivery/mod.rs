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
mod kept;
mod lane;
pub(crate) mod pool;
mod retry;
mod sender;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

#[cfg(feature = "portal")]
pub(crate) use kept::{is_credential_header, REDACTED};
pub(crate) use lane::{Lane, BEGUN_SEARCH, LANE_WINDOW};
pub(crate) use retry::RetryPolicy;
pub(crate) use sender::test_send;

use crate::config::Config;
use crate::endpoint::{Endpoint, EndpointId, Settings};
use crate::formats::Format;
use crate::runtime::Runtime;
use crate::signing::{Signing, SigningKey};
use crate::time;

/// The delivery machinery of an open bus: every endpoint's lane, the sender
/// pool and the retry clock, over the [`Runtime`] they run on. The bus, the
/// sender threads and the janitor share one.
pub(crate) struct Engine {
    pub(crate) runtime: Runtime,
    /// Every endpoint's lane; changed only with the bus's registry lock held.
    pub(crate) lanes: RwLock<BTreeMap<EndpointId, Arc<Lane>>>,
    /// The sender threads every lane shares.
    pub(crate) pool: Arc<pool::Pool>,
    /// The one retry clock.
    pub(crate) clock: clock::Clock,
}

impl Engine {
    pub(crate) fn new(runtime: Runtime) -> Self {
        Engine {
            pool: Arc::new(pool::Pool::new(
                runtime.config.sender_threads,
                runtime.config.sender_idle_timeout,
            )),
            clock: clock::Clock::new(),
            lanes: RwLock::new(BTreeMap::new()),
            runtime,
        }
    }

    /// Every panic caught, in the pool's threads or elsewhere.
    pub(crate) fn panics(&self) -> usize {
        self.runtime.panics() + self.pool.panics()
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
