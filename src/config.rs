//! Bus settings, as plain data: every default lives in the one
//! `impl Default` below, and every allowed range in [`crate::bounds`]. The
//! builder's `open` lives with the bus, so this module knows nothing above
//! it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use crate::bounds::{
    check_retry_delays, ATTEMPTS, CACHE_CAPACITY, CONCURRENCY, CONNECT_TIMEOUT, FLUSH_EVERY,
    IDEMPOTENCY_WINDOW, JANITOR_INTERVAL, MAX_RETRY_AFTER, PAUSE_AFTER, PAYLOAD_BYTES,
    RESPONSE_BODY_LIMIT, RETENTION, RETRY_JITTER, SENDER_IDLE_TIMEOUT, SENDER_THREADS,
    SHUTDOWN_TIMEOUT, TIMEOUT, USER_AGENT_BYTES,
};
use crate::catalog::EventType;
use crate::error::{Error, Result};
use crate::formats::{Envelope, Envelopes};

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
    pub(crate) per_endpoint_metrics: bool,
    /// The event-type catalog, as declared (checked when the bus opens).
    pub(crate) event_types: Vec<EventType>,
    pub(crate) validate_payloads: bool,
    /// Set by [`Bus::postgres`](crate::Bus::postgres): the bus stores in
    /// PostgreSQL instead of sled.
    #[cfg(feature = "postgres")]
    pub(crate) postgres_url: Option<PostgresUrl>,
    #[cfg(feature = "postgres")]
    pub(crate) postgres_schema: String,
    #[cfg(feature = "postgres")]
    pub(crate) postgres_pool_size: u32,
    #[cfg(feature = "postgres")]
    pub(crate) postgres_statement_timeout: Duration,
    #[cfg(feature = "postgres")]
    pub(crate) postgres_lease: Duration,
    #[cfg(feature = "postgres")]
    pub(crate) postgres_poll_interval: Duration,
    /// How long opening a connection to the database may take.
    #[cfg(feature = "postgres")]
    pub(crate) postgres_connect_timeout: Duration,
}

/// A connection string, which may hold a password: never printed.
#[cfg(feature = "postgres")]
#[derive(Clone)]
pub(crate) struct PostgresUrl(pub(crate) String);

#[cfg(feature = "postgres")]
impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresUrl(..)")
    }
}

impl Config {
    /// Checks every setting against its allowed range; the error names the
    /// setting and the range.
    pub(crate) fn validate(&self) -> Result<()> {
        fn named(setting: &'static str, checked: Result<(), String>) -> Result<()> {
            checked.map_err(|reason| Error::InvalidConfig { setting, reason })
        }
        named(
            "max_payload_bytes",
            PAYLOAD_BYTES.check(self.max_payload_bytes),
        )?;
        named("max_attempts", ATTEMPTS.check(self.max_attempts))?;
        named("retry_delays", check_retry_delays(&self.retry_delays))?;
        named("retry_jitter", RETRY_JITTER.check(self.retry_jitter))?;
        named("timeout", TIMEOUT.check(self.timeout))?;
        named(
            "connect_timeout",
            CONNECT_TIMEOUT.check(self.connect_timeout),
        )?;
        named("concurrency", CONCURRENCY.check(self.concurrency))?;
        named("sender_threads", SENDER_THREADS.check(self.sender_threads))?;
        named(
            "response_body_limit",
            RESPONSE_BODY_LIMIT.check(self.response_body_limit),
        )?;
        named(
            "cache_capacity",
            CACHE_CAPACITY.check(self.cache_capacity_bytes),
        )?;
        named("flush_every", FLUSH_EVERY.check(self.flush_every))?;
        named(
            "sender_idle_timeout",
            SENDER_IDLE_TIMEOUT.check(self.sender_idle_timeout),
        )?;
        named("user_agent", check_user_agent(&self.user_agent))?;
        named(
            "shutdown_timeout",
            SHUTDOWN_TIMEOUT.check(self.shutdown_timeout),
        )?;
        named(
            "max_retry_after",
            MAX_RETRY_AFTER.check(self.max_retry_after),
        )?;
        if let Some(n) = self.pause_after {
            named("pause_after", PAUSE_AFTER.check(n))?;
        }
        if let Some(keep) = self.retention {
            named("retention", RETENTION.check(keep))?;
        }
        named(
            "idempotency_window",
            IDEMPOTENCY_WINDOW.check(self.idempotency_window),
        )?;
        named(
            "janitor_interval",
            JANITOR_INTERVAL.check(self.janitor_interval),
        )?;
        #[cfg(feature = "postgres")]
        self.validate_postgres()?;
        Ok(())
    }

    #[cfg(feature = "postgres")]
    fn validate_postgres(&self) -> Result<()> {
        use crate::bounds::{
            POSTGRES_LEASE, POSTGRES_POLL_INTERVAL, POSTGRES_POOL_SIZE, POSTGRES_SCHEMA_BYTES,
            POSTGRES_STATEMENT_TIMEOUT,
        };
        fn named(setting: &'static str, checked: Result<(), String>) -> Result<()> {
            checked.map_err(|reason| Error::InvalidConfig { setting, reason })
        }
        named(
            "postgres_schema",
            check_schema(&self.postgres_schema, &POSTGRES_SCHEMA_BYTES),
        )?;
        named(
            "postgres_pool_size",
            POSTGRES_POOL_SIZE.check(self.postgres_pool_size),
        )?;
        named(
            "postgres_statement_timeout",
            POSTGRES_STATEMENT_TIMEOUT.check(self.postgres_statement_timeout),
        )?;
        named("postgres_lease", POSTGRES_LEASE.check(self.postgres_lease))?;
        named(
            "postgres_poll_interval",
            POSTGRES_POLL_INTERVAL.check(self.postgres_poll_interval),
        )?;
        Ok(())
    }
}

/// A schema name: lowercase ASCII letters, digits and `_`, not starting
/// with a digit, so it needs no quoting rules and names the NOTIFY channel.
#[cfg(feature = "postgres")]
fn check_schema(name: &str, bytes: &crate::bounds::Bounds<u64>) -> Result<(), String> {
    bytes
        .check(name.len())
        .map_err(|why| format!("its length in bytes {why}"))?;
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err("must be lowercase ASCII letters, digits and _, not start with a digit or pg_".into())
    }
}

fn check_user_agent(ua: &str) -> Result<(), String> {
    USER_AGENT_BYTES
        .check(ua.len())
        .map_err(|why| format!("its length in bytes {why}"))?;
    ureq::http::HeaderValue::from_str(ua)
        .map(|_| ())
        .map_err(|_| "is not a valid header value".to_string())
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
            // As the lead CRM does: a pause after 10 failed deliveries.
            pause_after: Some(10),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            idempotency_window: Duration::from_secs(24 * 3600),
            janitor_interval: Duration::from_secs(2),
            // One series per endpoint grows without bound with the number
            // of endpoints: opt-in.
            per_endpoint_metrics: false,
            // The catalog is what the host declares; none by default.
            event_types: Vec::new(),
            // Refusing publishes is a behaviour a host opts into.
            validate_payloads: false,
            #[cfg(feature = "postgres")]
            postgres_url: None,
            #[cfg(feature = "postgres")]
            postgres_schema: "hookbus".to_string(),
            // Senders hold a connection only for each short write.
            #[cfg(feature = "postgres")]
            postgres_pool_size: 8,
            #[cfg(feature = "postgres")]
            postgres_statement_timeout: Duration::from_secs(30),
            // Twice the default attempt timeout; renewed every third of it.
            #[cfg(feature = "postgres")]
            postgres_lease: Duration::from_secs(30),
            #[cfg(feature = "postgres")]
            postgres_poll_interval: Duration::from_secs(1),
            // For the database, not the receivers (that is
            // `connect_timeout`); a `connect_timeout` in the connection
            // string overrides it.
            #[cfg(feature = "postgres")]
            postgres_connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Opens a [`Bus`](crate::Bus) with settings other than the defaults.
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
#[must_use = "a builder does nothing until .open() is called"]
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

    /// Largest accepted payload, in bytes of JSON.
    /// Allowed: 1 byte to 64 MiB. Defaults to 256 KiB.
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.config.max_payload_bytes = n;
        self
    }

    /// Attempts per delivery, the first included. Endpoints may override it.
    /// Allowed: 1 to 1000. Defaults to 3.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n;
        self
    }

    /// Delays before the 2nd, 3rd… attempt; the last repeats when there are
    /// more attempts than delays. Endpoints may override it.
    /// Allowed: 1 to 100 delays, each from 0 to 30 days.
    /// Defaults to 30 s, 5 min, 50 min.
    pub fn retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.config.retry_delays = delays.into_iter().collect();
        self
    }

    /// Random spread added to each retry delay, as a fraction: 0.1 means
    /// ±10 %. Allowed: 0.0 to 1.0 (not NaN). Defaults to 0.1.
    pub fn retry_jitter(mut self, fraction: f64) -> Self {
        self.config.retry_jitter = fraction;
        self
    }

    /// Total time for one attempt, connect to last byte of the response.
    /// Endpoints may override it. Allowed: 1 ms to 2 h. Defaults to 15 s.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.config.timeout = t;
        self
    }

    /// Time allowed to open a connection, within the attempt's timeout.
    /// Allowed: 1 ms to 2 h. Defaults to 5 s.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Deliveries in flight at once per endpoint, one sender thread each.
    /// Endpoints may override it. Allowed: 1 to 256. Defaults to 2.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Bytes of each response body kept in the delivery log; the rest is
    /// never read. The log keeps as many bytes of each request body (the
    /// request as sent, for an attempt's detail). Allowed: 0 to 1 MiB.
    /// Defaults to 4096.
    pub fn response_body_limit(mut self, n: usize) -> Self {
        self.config.response_body_limit = n;
        self
    }

    /// sled's page cache, in bytes. Allowed: 1 MiB to 1 TiB.
    /// Defaults to 64 MiB.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.config.cache_capacity_bytes = bytes;
        self
    }

    /// How often sled's background flusher syncs writes that are not
    /// flushed at once (delivery results, the delivery log). Publishes and
    /// endpoint changes are always flushed before they return.
    /// Allowed: 1 ms to 1 h. Defaults to 500 ms.
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.config.flush_every = every;
        self
    }

    /// How long an endpoint's sender thread waits with nothing to do before
    /// it exits. Idle threads cost no CPU of their own, but sled's memory
    /// reclamation walks every thread that touched the database, so with
    /// thousands of endpoints short is better.
    /// Allowed: 0 to 24 h. Defaults to 10 s.
    pub fn sender_idle_timeout(mut self, t: Duration) -> Self {
        self.config.sender_idle_timeout = t;
        self
    }

    /// The `user-agent` header of every request. Allowed: a valid header
    /// value of at most 1024 bytes. Defaults to `hookbus/<version>`.
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

    /// Declares an event type the host emits, for the catalog
    /// ([`Bus::event_types`](crate::Bus::event_types)): its description,
    /// example and optional JSON Schema, shown by the portal. Call once per
    /// type. Names must be valid event types and unique, the description at
    /// most 4096 bytes, and (with the `schema` feature) the schema must
    /// compile and the example match it: checked by `open`, which fails
    /// with [`Error::InvalidConfig`] (setting `event_type`). Events of
    /// types not declared can still be published. Defaults to none.
    pub fn event_type(mut self, event_type: EventType) -> Self {
        self.config.event_types.push(event_type);
        self
    }

    /// Checks every published payload of a declared type that has a JSON
    /// Schema against it: a payload that does not match fails the publish
    /// with [`Error::PayloadMismatch`] and nothing is stored. Needs the
    /// `schema` feature (without it, `open` fails with
    /// [`Error::InvalidConfig`], setting `validate_payloads`). Defaults to
    /// `false`.
    pub fn validate_payloads(mut self, on: bool) -> Self {
        self.config.validate_payloads = on;
        self
    }

    /// Labels the per-endpoint metrics (attempts, their durations,
    /// deliveries, queue depth, in flight) with an `endpoint` label, the
    /// endpoint's id. Defaults to `false`: each metric is one bus-wide
    /// series, so the number of series does not grow with the number of
    /// endpoints. Only has an effect with the `metrics` feature; see the
    /// crate docs' Metrics section.
    pub fn per_endpoint_metrics(mut self, on: bool) -> Self {
        self.config.per_endpoint_metrics = on;
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
    /// are made again after the next open. Allowed: 0 to 24 h.
    /// Defaults to 15 s (the default attempt timeout).
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.config.shutdown_timeout = t;
        self
    }

    /// The longest a `Retry-After` on a 429 or 503 answer may delay the
    /// next attempt. The next attempt waits for the longer of the scheduled
    /// delay and the asked one, capped at this. Allowed: 0 to 30 days.
    /// Defaults to 1 hour.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// Pauses an endpoint after this many deliveries in a row fail their
    /// last attempt; `None` never pauses for failures (a 410 Gone answer
    /// always pauses). Its events are kept and sent, in order, when the host
    /// resumes it. Endpoints may override it.
    /// Allowed: `None`, or 1 to 1,000,000. Defaults to 10.
    pub fn pause_after(mut self, failed_deliveries: Option<u32>) -> Self {
        self.config.pause_after = failed_deliveries;
        self
    }

    /// How long delivered events and their attempts are kept; `None` keeps
    /// them forever. Events with a pending or failed delivery are never
    /// purged by age. Allowed: `None`, or 0 to 36,525 days (100 years).
    /// Defaults to 7 days.
    pub fn retention(mut self, keep: Option<Duration>) -> Self {
        self.config.retention = keep;
        self
    }

    /// How long an idempotency key given at publish is remembered.
    /// Allowed: 0 to 365 days. Defaults to 24 hours.
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.config.idempotency_window = window;
        self
    }

    /// How often the janitor thread moves the queue checkpoint (which bounds
    /// the work of the next open) and applies retention.
    /// Allowed: 1 ms to 1 h. Defaults to 2 s.
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

    /// The settings, for the bus to open with.
    pub(crate) fn into_config(self) -> Config {
        self.config
    }
}

/// The PostgreSQL backend's settings; on a sled bus they are ignored.
#[cfg(feature = "postgres")]
impl BusBuilder {
    pub(crate) fn new_postgres(url: String) -> Self {
        BusBuilder {
            config: Config {
                postgres_url: Some(PostgresUrl(url)),
                ..Config::default()
            },
        }
    }

    /// The PostgreSQL schema the bus keeps its tables in, created on open.
    /// Replicas that share a queue open the same schema; buses in separate
    /// schemas know nothing of each other. Allowed: 1 to 50 bytes of
    /// lowercase ASCII letters, digits and `_`, not starting with a digit
    /// or `pg_`. Defaults to `hookbus`.
    pub fn postgres_schema(mut self, name: impl Into<String>) -> Self {
        self.config.postgres_schema = name.into();
        self
    }

    /// Connections in this replica's pool (at least 2: retention holds one
    /// while it works with another). Allowed: 2 to 256. Defaults to 8.
    pub fn postgres_pool_size(mut self, n: u32) -> Self {
        self.config.postgres_pool_size = n;
        self
    }

    /// `statement_timeout` of every connection: a statement running longer
    /// fails with a storage error of kind `TimedOut`.
    /// Allowed: 100 ms to 1 h. Defaults to 30 s.
    pub fn postgres_statement_timeout(mut self, t: Duration) -> Self {
        self.config.postgres_statement_timeout = t;
        self
    }

    /// How long an endpoint lease lasts. A replica serves the endpoints
    /// whose leases it holds and renews them every third of this, on a
    /// thread of its own (so attempts may take longer than the lease);
    /// when a replica dies, another takes its endpoints over within this
    /// plus a third of it. A replica stalled longer than this (stopped, or
    /// cut off from the database) may find an attempt it had in flight
    /// made again by the new owner: keep it well above the pauses your
    /// hosts can have. Allowed: 1 s to 1 h. Defaults to 30 s.
    pub fn postgres_lease(mut self, lease: Duration) -> Self {
        self.config.postgres_lease = lease;
        self
    }

    /// How often a replica looks at the database on its own, in case a
    /// notification was missed: new deliveries, endpoint changes, leases to
    /// claim. Changes made through another replica reach this one within
    /// about this long even then (at once when notifications arrive).
    /// Allowed: 10 ms to 60 s. Defaults to 1 s.
    pub fn postgres_poll_interval(mut self, every: Duration) -> Self {
        self.config.postgres_poll_interval = every;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounds::RETRY_DELAY;

    fn refused(config: Config) -> (&'static str, String) {
        match config.validate() {
            Err(Error::InvalidConfig { setting, reason }) => (setting, reason),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_within_their_ranges() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn each_setting_is_refused_outside_its_range_with_the_range_named() {
        let base = Config::default;
        let cases: Vec<(Config, &str, &str)> = vec![
            (
                Config {
                    max_payload_bytes: 64 * 1024 * 1024 + 1,
                    ..base()
                },
                "max_payload_bytes",
                "from 1 to 67108864",
            ),
            (
                Config {
                    max_attempts: 0,
                    ..base()
                },
                "max_attempts",
                "from 1 to 1000",
            ),
            (
                Config {
                    retry_delays: vec![],
                    ..base()
                },
                "retry_delays",
                "from 1 to 100",
            ),
            (
                Config {
                    retry_delays: vec![Duration::ZERO, Duration::MAX],
                    ..base()
                },
                "retry_delays",
                "delay 2 must be from 0 s to 30 days",
            ),
            (
                Config {
                    retry_jitter: f64::NAN,
                    ..base()
                },
                "retry_jitter",
                "from 0 to 1",
            ),
            (
                Config {
                    retry_jitter: -0.5,
                    ..base()
                },
                "retry_jitter",
                "from 0 to 1",
            ),
            (
                Config {
                    timeout: Duration::from_secs(2 * 3600 + 1),
                    ..base()
                },
                "timeout",
                "from 1 ms to 2 h",
            ),
            (
                Config {
                    connect_timeout: Duration::ZERO,
                    ..base()
                },
                "connect_timeout",
                "from 1 ms to 2 h",
            ),
            (
                Config {
                    concurrency: 257,
                    ..base()
                },
                "concurrency",
                "from 1 to 256",
            ),
            (
                Config {
                    response_body_limit: usize::MAX,
                    ..base()
                },
                "response_body_limit",
                "from 0 to 1048576",
            ),
            (
                Config {
                    cache_capacity_bytes: u64::MAX,
                    ..base()
                },
                "cache_capacity",
                "to 1099511627776",
            ),
            (
                Config {
                    flush_every: Duration::ZERO,
                    ..base()
                },
                "flush_every",
                "from 1 ms to 1 h",
            ),
            (
                Config {
                    sender_idle_timeout: Duration::MAX,
                    ..base()
                },
                "sender_idle_timeout",
                "from 0 s to 24 h",
            ),
            (
                Config {
                    user_agent: "bad\nagent".into(),
                    ..base()
                },
                "user_agent",
                "header value",
            ),
            (
                Config {
                    shutdown_timeout: Duration::MAX,
                    ..base()
                },
                "shutdown_timeout",
                "from 0 s to 24 h",
            ),
            (
                Config {
                    max_retry_after: Duration::from_secs(u64::MAX),
                    ..base()
                },
                "max_retry_after",
                "to 30 days",
            ),
            (
                Config {
                    pause_after: Some(0),
                    ..base()
                },
                "pause_after",
                "from 1 to 1000000",
            ),
            (
                Config {
                    retention: Some(Duration::MAX),
                    ..base()
                },
                "retention",
                "to 36525 days",
            ),
            (
                Config {
                    idempotency_window: Duration::MAX,
                    ..base()
                },
                "idempotency_window",
                "to 365 days",
            ),
            (
                Config {
                    janitor_interval: Duration::ZERO,
                    ..base()
                },
                "janitor_interval",
                "from 1 ms to 1 h",
            ),
        ];
        for (config, setting, range) in cases {
            let (named, reason) = refused(config);
            assert_eq!(named, setting);
            assert!(reason.contains(range), "{setting}: {reason}");
        }
    }

    #[test]
    fn range_ends_are_accepted() {
        let top = Config {
            max_payload_bytes: 64 * 1024 * 1024,
            max_attempts: 1000,
            retry_delays: vec![RETRY_DELAY.max; 100],
            retry_jitter: 1.0,
            timeout: TIMEOUT.max,
            connect_timeout: CONNECT_TIMEOUT.max,
            concurrency: 256,
            response_body_limit: 1024 * 1024,
            cache_capacity_bytes: CACHE_CAPACITY.max,
            flush_every: FLUSH_EVERY.max,
            sender_idle_timeout: SENDER_IDLE_TIMEOUT.max,
            user_agent: "a".repeat(1024),
            shutdown_timeout: SHUTDOWN_TIMEOUT.max,
            max_retry_after: MAX_RETRY_AFTER.max,
            pause_after: Some(1_000_000),
            retention: Some(RETENTION.max),
            idempotency_window: IDEMPOTENCY_WINDOW.max,
            janitor_interval: JANITOR_INTERVAL.max,
            ..Config::default()
        };
        top.validate().unwrap();
        let bottom = Config {
            max_payload_bytes: 1,
            max_attempts: 1,
            retry_delays: vec![Duration::ZERO],
            retry_jitter: 0.0,
            timeout: TIMEOUT.min,
            connect_timeout: CONNECT_TIMEOUT.min,
            concurrency: 1,
            response_body_limit: 0,
            cache_capacity_bytes: CACHE_CAPACITY.min,
            flush_every: FLUSH_EVERY.min,
            sender_idle_timeout: Duration::ZERO,
            user_agent: String::new(),
            shutdown_timeout: Duration::ZERO,
            max_retry_after: Duration::ZERO,
            pause_after: None,
            retention: Some(Duration::ZERO),
            idempotency_window: Duration::ZERO,
            janitor_interval: JANITOR_INTERVAL.min,
            ..Config::default()
        };
        bottom.validate().unwrap();
    }
}
