//! Bus settings: every default lives in the one `impl Default` below.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use crate::bus::Bus;
use crate::error::Result;
use crate::formats::{Envelope, Envelopes};

/// The highest `max_payload_bytes` accepted: records stay far below what
/// the record decoder allows.
const MAX_PAYLOAD_LIMIT: usize = 64 * 1024 * 1024;

/// The most sender threads a bus may have.
const MAX_SENDER_THREADS: usize = 4096;

/// Every bus-wide setting. Built through [`BusBuilder`].
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    pub(crate) max_payload_bytes: usize,
    pub(crate) max_attempts: u32,
    pub(crate) retry_delays: Vec<Duration>,
    pub(crate) retry_jitter: f64,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) concurrency: u32,
    pub(crate) response_body_limit: usize,
    pub(crate) cache_capacity_bytes: u64,
    pub(crate) flush_every: Duration,
    pub(crate) sender_idle_timeout: Duration,
    pub(crate) sender_threads: usize,
    pub(crate) user_agent: String,
    pub(crate) allow_private_networks: bool,
    pub(crate) allowed_networks: Vec<String>,
    pub(crate) https_only: bool,
    pub(crate) envelopes: Envelopes,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) pause_after: Option<u32>,
    pub(crate) retention: Option<Duration>,
    pub(crate) idempotency_window: Duration,
    pub(crate) janitor_interval: Duration,
}

impl Config {
    /// Checks the settings the builder cannot check one by one.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |setting, reason: &str| {
            Err(crate::Error::InvalidConfig {
                setting,
                reason: reason.to_string(),
            })
        };
        if self.max_payload_bytes > MAX_PAYLOAD_LIMIT {
            return bad("max_payload_bytes", "must be at most 64 MiB");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1");
        }
        if self.retry_delays.is_empty() {
            return bad("retry_delays", "needs at least one delay");
        }
        if self.concurrency == 0 {
            return bad("concurrency", "must be at least 1");
        }
        if !(1..=MAX_SENDER_THREADS).contains(&self.sender_threads) {
            return bad("sender_threads", "must be 1 to 4096");
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be above zero");
        }
        if self.pause_after == Some(0) {
            return bad("pause_after", "must be at least 1 (or None)");
        }
        if self.janitor_interval.is_zero() {
            return bad("janitor_interval", "must be above zero");
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: PathBuf::new(),
            max_payload_bytes: 256 * 1024,
            max_attempts: 3,
            // Genesy's schedule; Svix's runs longer, see NOTES.
            retry_delays: vec![
                Duration::from_secs(30),
                Duration::from_secs(5 * 60),
                Duration::from_secs(50 * 60),
            ],
            retry_jitter: 0.1,
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            concurrency: 2,
            response_body_limit: 4096,
            // sled defaults to 1 GiB, far too much inside someone else's process.
            cache_capacity_bytes: 64 * 1024 * 1024,
            flush_every: Duration::from_millis(500),
            sender_idle_timeout: Duration::from_secs(10),
            // Delivery is I/O-bound: a thread mostly waits for a receiver.
            // 64 keeps 32 threads for proven endpoints however many others
            // hang (see the pool's docs), and costs nothing while idle
            // (threads retire); a busy one holds ~100 KiB.
            sender_threads: 64,
            user_agent: concat!("hookbus/", env!("CARGO_PKG_VERSION")).to_string(),
            allow_private_networks: false,
            allowed_networks: Vec::new(),
            https_only: false,
            envelopes: Envelopes::default(),
            shutdown_timeout: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(3600),
            // Seed 001 pauses after 10 failed deliveries.
            pause_after: Some(10),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            idempotency_window: Duration::from_secs(24 * 3600),
            janitor_interval: Duration::from_secs(2),
        }
    }
}

/// Opens a [`Bus`] with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// let bus = hookbus::Bus::builder("/var/lib/myapp/webhooks")
///     .max_attempts(5)
///     .retry_delays([Duration::from_secs(5), Duration::from_secs(300)])
///     .open()?;
/// # Ok::<_, hookbus::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BusBuilder {
    config: Config,
}

impl BusBuilder {
    pub(crate) fn new(path: impl AsRef<Path>) -> Self {
        BusBuilder {
            config: Config {
                path: path.as_ref().to_path_buf(),
                ..Config::default()
            },
        }
    }

    /// Largest accepted payload, in bytes of JSON, at most 64 MiB.
    /// Defaults to 256 KiB.
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.config.max_payload_bytes = n;
        self
    }

    /// Attempts per delivery, the first included (at least 1, or
    /// [`open`](Self::open) fails with
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig)).
    /// Endpoints may override it. Defaults to 3.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n;
        self
    }

    /// Delays before the 2nd, 3rd… attempt; the last repeats when there are
    /// more attempts than delays. At least one, or `open` fails.
    /// Endpoints may override it. Defaults to 30 s, 5 min, 50 min.
    pub fn retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.config.retry_delays = delays.into_iter().collect();
        self
    }

    /// Random spread added to each retry delay, as a fraction: 0.1 means
    /// ±10 %. Clamped to 0..=1. Defaults to 0.1.
    pub fn retry_jitter(mut self, fraction: f64) -> Self {
        self.config.retry_jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Total time for one attempt, connect to last byte of the response.
    /// Endpoints may override it. Defaults to 15 s.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.config.timeout = t;
        self
    }

    /// Time allowed to open a connection, within the attempt's timeout.
    /// Defaults to 5 s.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Deliveries in flight at once per endpoint, one sender thread each
    /// (at least 1, or `open` fails).
    /// Endpoints may override it. Defaults to 2.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Bytes of each response body kept in the delivery log; the rest is
    /// never read. Defaults to 4096.
    pub fn response_body_limit(mut self, n: usize) -> Self {
        self.config.response_body_limit = n;
        self
    }

    /// sled's page cache, in bytes. Defaults to 64 MiB.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.config.cache_capacity_bytes = bytes;
        self
    }

    /// How often sled's background flusher syncs writes that are not
    /// flushed at once (delivery results, the delivery log). Publishes and
    /// endpoint changes are always flushed before they return.
    /// Defaults to 500 ms.
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.config.flush_every = every.max(Duration::from_millis(1));
        self
    }

    /// How long an endpoint's sender thread waits with nothing to do before
    /// it exits. Idle threads cost no CPU of their own, but sled's memory
    /// reclamation walks every thread that touched the database, so with
    /// thousands of endpoints short is better. Defaults to 10 s.
    pub fn sender_idle_timeout(mut self, t: Duration) -> Self {
        self.config.sender_idle_timeout = t;
        self
    }

    /// The most sender threads the bus runs, shared by every endpoint: at
    /// most this many attempts are in flight at once. Threads start when
    /// there is work and end after `sender_idle_timeout` without. Half of
    /// them (rounded up) at most serve endpoints that time out or have not
    /// answered yet, so hung endpoints never take the whole pool. 1 to
    /// 4096; defaults to 64.
    pub fn sender_threads(mut self, n: usize) -> Self {
        self.config.sender_threads = n;
        self
    }

    /// The `user-agent` header of every request. Defaults to `hookbus/<version>`.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.config.user_agent = ua.into();
        self
    }

    /// Lets endpoints reach loopback, private, link-local and other reserved
    /// addresses. Meant for development and tests; in production prefer
    /// [`allow_network`](Self::allow_network) for the subnets you trust.
    /// Defaults to `false`: such addresses are refused, checked on what DNS
    /// returns, and the attempt is logged as [`ErrorKind::Blocked`](crate::ErrorKind::Blocked).
    pub fn allow_private_networks(mut self, allow: bool) -> Self {
        self.config.allow_private_networks = allow;
        self
    }

    /// Lets endpoints reach one network otherwise refused, in CIDR notation
    /// (`10.20.0.0/16`, `fd00:1::/64`, or a single address). May be called
    /// several times. A malformed network makes [`open`](Self::open) fail
    /// with [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    /// Defaults to none.
    pub fn allow_network(mut self, cidr: impl Into<String>) -> Self {
        self.config.allowed_networks.push(cidr.into());
        self
    }

    /// Refuses `http://` endpoint URLs: only `https://` may be registered
    /// and connected to. Defaults to `false`.
    pub fn https_only(mut self, only: bool) -> Self {
        self.config.https_only = only;
        self
    }

    /// How long [`Bus::shutdown`](crate::Bus::shutdown) (and dropping the
    /// bus) waits for attempts in flight. Attempts still running then are
    /// left to finish in the background; if the process exits first, they
    /// are made again after the next open. Defaults to 15 s (the default
    /// attempt timeout).
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.config.shutdown_timeout = t;
        self
    }

    /// The longest a `Retry-After` on a 429 or 503 answer may delay the
    /// next attempt. The next attempt waits for the longer of the scheduled
    /// delay and the asked one, capped at this. Defaults to 1 hour.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// Pauses an endpoint after this many deliveries in a row fail their
    /// last attempt; `None` never pauses for failures (a 410 Gone answer
    /// always pauses). Its events are kept and sent, in order, when the host
    /// resumes it. Endpoints may override it. Defaults to 10, as seed 001
    /// documents.
    pub fn pause_after(mut self, failed_deliveries: Option<u32>) -> Self {
        self.config.pause_after = failed_deliveries;
        self
    }

    /// How long delivered events and their attempts are kept; `None` keeps
    /// them forever. Events with a pending or failed delivery are never
    /// purged by age. Defaults to 7 days.
    pub fn retention(mut self, keep: Option<Duration>) -> Self {
        self.config.retention = keep;
        self
    }

    /// How long an idempotency key given at publish is remembered.
    /// Defaults to 24 hours.
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.config.idempotency_window = window;
        self
    }

    /// How often the janitor thread moves the queue checkpoint (which bounds
    /// the work of the next open) and applies retention. Defaults to 2 s.
    pub fn janitor_interval(mut self, every: Duration) -> Self {
        self.config.janitor_interval = every;
        self
    }

    /// Registers a custom body format under `name`, for endpoints whose
    /// format is [`Format::Custom(name)`](crate::Format::Custom). Register it
    /// on every open: endpoints are stored with the name only. Defaults to
    /// none.
    pub fn envelope(mut self, name: impl Into<String>, envelope: impl Envelope) -> Self {
        self.config
            .envelopes
            .0
            .insert(name.into(), Arc::new(envelope));
        self
    }

    /// Opens the bus: opens or creates the database, resumes every pending
    /// delivery and starts the senders.
    pub fn open(self) -> Result<Bus> {
        Bus::open_with(self.config)
    }
}
