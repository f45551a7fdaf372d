//! # hookbus: durable webhooks inside your process
//!
//! hookbus gives an application a production-grade webhook feature with no
//! infrastructure: no Postgres, no Redis, no broker. Link the crate, register
//! your customers' endpoints, each in its customer's [tenant](TenantId),
//! call [`Bus::publish`]; hookbus stores the event in an embedded
//! [sled] database before it returns, fans it out to the subscribed
//! endpoints of the event's tenant (never another tenant's), and delivers
//! every endpoint's queue from one bounded pool of sender threads with
//! numbered attempts, retries, signatures and a delivery log.
//!
//! ```no_run
//! use hookbus::{Bus, EndpointConfig, Event};
//! use serde_json::json;
//!
//! let bus = Bus::open("/var/lib/myapp/webhooks")?;
//! let endpoint = bus.add_endpoint(
//!     EndpointConfig::new("customer-crm", "https://crm.example.com/hooks")
//!         .tenant("acme")
//!         .events(["lead.*"])
//!         .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
//! )?;
//! let id = bus.publish(Event::new("lead.create", &json!({"lead_id": 42}))?.tenant("acme"))?;
//! // `id` is durable now; delivery happens in the background.
//! for attempt in bus.attempts(id)? {
//!     println!("{} attempt {} -> {:?}", attempt.endpoint, attempt.number, attempt.status);
//! }
//! bus.shutdown()?;
//! # Ok::<_, hookbus::Error>(())
//! ```
//!
//! # Tenants
//!
//! A tenant is one customer of the host, named by a key the host chooses
//! (its own customer id; see [`TenantId`] for the charset). Every endpoint
//! belongs to one tenant ([`EndpointConfig::tenant`]) and every event is
//! published to one ([`Event::tenant`]); an event reaches only its tenant's
//! matching endpoints. Matching goes through an in-memory index per tenant
//! by exact type, prefix wildcard and `*`, so its cost does not grow with
//! the number of tenants or endpoints. Endpoints and events that name no
//! tenant are in the default tenant (`~default`), so a host with one
//! audience never names one. Per tenant: [`Bus::tenant_endpoints`],
//! [`Bus::tenant_deliveries`], [`AttemptQuery::tenant`],
//! [`Bus::tenant_stats`], [`Bus::tenant_health`], [`Bus::tenant_event`],
//! metadata ([`Bus::put_tenant`], [`Bus::tenant`], [`Bus::tenants`]) and
//! [`Bus::delete_tenant`], which stops its endpoints at once and ends their
//! queued deliveries as [`DeliveryStatus::Cancelled`], crash-safely.
//!
//! # Guarantees
//!
//! - **Durable publish.** `publish` returns `Ok` only after the event and
//!   its deliveries are flushed by sled: they survive a kill -9 of the host
//!   process. On Linux sled's flush uses `sync_file_range`, which survives a
//!   process crash but not necessarily a power cut; sled's background
//!   flusher (every `flush_every`, default 500 ms) issues a full sync.
//!   Concurrent publishes share flushes (group commit).
//! - **At least once.** Every delivery is attempted until one attempt
//!   succeeds or the endpoint's attempts run out; after a crash, queued and
//!   in-flight deliveries resume on the next open. A receiver
//!   may see the same `webhook-id` twice (after a crash, or when an answer
//!   is lost), never zero times: deduplicate on `webhook-id`.
//! - **Attempt numbers never go backwards**, not even across crashes, and
//!   never exceed the maximum. An attempt whose outcome was lost in a crash
//!   is repeated with the same number.
//! - **Nothing is dropped silently.** A delivery whose last attempt fails is
//!   kept as [`DeliveryStatus::Failed`] (and can be resent or recovered);
//!   events published while an endpoint is paused are kept and sent, in
//!   order, when it resumes; deliveries queued for a disabled endpoint wait,
//!   stored, until it is enabled again.
//! - **Ordered endpoints** ([`EndpointConfig::ordered`]) receive deliveries
//!   strictly in publish order, across crashes too: a delivery waiting for
//!   its retry holds back the ones behind it (and older ones resent
//!   meanwhile: deliveries are never interleaved). Other endpoints get
//!   deliveries oldest first, but retries and concurrency reorder them.
//! - Not exactly once.
//!
//! # Attempts and retries
//!
//! An attempt succeeds on a 2xx answer within the timeout (default 15 s,
//! connect 5 s). Any other status, a 3xx (redirects are never followed), a
//! timeout, or a connection, DNS or TLS error fails it, and the next attempt
//! is scheduled after the retry delay: by default 3 attempts in all, with
//! 30 s, 5 min and 50 min delays (the last repeats if more attempts are
//! configured), ±10 % jitter. While one delivery waits for its retry, later
//! deliveries to the same endpoint keep flowing. Every attempt is logged:
//! see [`Bus::attempts`] and [`Bus::endpoint_attempts`]; at most 4096 bytes
//! of each response body are read and kept.
//!
//! # Wire format
//!
//! By default, a `POST` with `content-type: application/json` and the body
//! `{"id", "type", "occurred_at", "attempt", "data"}`, plus the [Standard
//! Webhooks] headers `webhook-id` (the event id, stable across attempts),
//! `webhook-timestamp` (Unix seconds at each attempt) and, when the endpoint
//! has a secret, `webhook-signature` (`v1,<base64 HMAC-SHA256>`, one entry
//! per active secret during a [rotation](Bus::rotate_secret)). Every attempt
//! is built and signed afresh.
//!
//! Whatever the format, every request also carries `webhook-event-type`
//! (the event type), `webhook-attempt` (the attempt number, from 1) and
//! `webhook-occurred-at` (the event time, RFC 3339 UTC with milliseconds),
//! beside `webhook-id`, so a receiver can tell events apart even when the
//! body does not say (a flat contact object, the raw payload, a host's
//! envelope). Endpoint headers cannot override any of these.
//!
//! Each endpoint may choose another [`Format`] (the raw payload, a
//! host-defined [`Envelope`], or one of the product [`presets`]: Growth-X,
//! the lead CRM, Snitcher, Grow), another [`Signing`] scheme (hex HMAC in a header, the
//! secret in a header or in the body, none), a [`SuccessPolicy`] (any 2xx
//! or exactly 200), and attribute filters on top of event types. The
//! README shows the configuration that reproduces each product.
//! Receivers check deliveries with [`verify::Verifier`], for every scheme.
//!
//! # Operating it
//!
//! What a team exposes to its own users, all on [`Bus`]:
//!
//! - **Pause and resume.** After 10 deliveries in a row fail their last
//!   attempt (configurable, or never), or at once on a 410 Gone, an endpoint
//!   is paused; [`Bus::resume_endpoint`] sends what it kept, in order.
//!   [`Bus::pause_endpoint`] and [`Bus::disable_endpoint`] do it by hand.
//! - **`Retry-After`** on a 429 or 503 delays the next attempt at least as
//!   asked, up to 1 hour (`max_retry_after`).
//! - **Resend and recover**: [`Bus::resend`] one delivery,
//!   [`Bus::recover`] every failure of an endpoint since a time; both are
//!   durable and logged as [`Trigger::Manual`].
//! - **Test send**: [`Bus::test_send`] posts a sample now and returns the
//!   outcome, leaving the queue alone.
//! - **Idempotent publish**: [`Event::idempotency_key`].
//! - **Visibility**: [`Bus::query_attempts`] (by endpoint, event, outcome,
//!   time; stable pages), [`Bus::endpoint_deliveries`],
//!   [`Bus::endpoint_health`], [`Bus::stats`], and [`Bus::notices`] for
//!   deliveries exhausted and endpoints paused or recovered. `tracing`
//!   spans and events carry ids and outcomes, never payloads or secrets;
//!   the `metrics` feature exports counters, gauges and a histogram (see
//!   [Metrics](#metrics)).
//! - **Attempt detail**: each [`Attempt`] keeps the request as sent
//!   (headers with every signature, the secret and credential headers
//!   redacted; the start of the body) and the response's headers, status
//!   and the start of its body.
//! - **Event-type catalog**: [`BusBuilder::event_type`] declares the
//!   [`EventType`]s the host emits (description, example, JSON Schema);
//!   with the `schema` feature, [`BusBuilder::validate_payloads`] refuses
//!   a publish whose payload breaks its type's schema
//!   ([`Error::PayloadMismatch`]).
//! - **Consumer portal** (feature `portal`): `hookbus::portal` is a
//!   management API and a web page for a host's customers, one handler
//!   over `http` requests, opened by signed per-tenant sessions
//!   (`Bus::portal_session`).
//! - **Retention**: delivered events and their attempts are deleted after
//!   7 days (configurable); unfinished and failed ones are kept whatever their
//!   age.
//!
//! # Reading: conventions
//!
//! - **Words.** A delivery is *queued* from its creation until an attempt
//!   starts, and again between a failed attempt and its retry
//!   ([`DeliveryStatus::Queued`], [`Stats::queued`], [`Bus::queue_depth`]);
//!   it is *in flight* while an attempt runs; queued and in-flight
//!   deliveries are the *unfinished* ones ([`DeliveryFilter::Unfinished`],
//!   [`EndpointHealth::oldest_unfinished`]); the others are *delivered* or
//!   *failed*.
//! - **Not found is `None`.** A read that names one thing returns `None`
//!   when it does not exist ([`Bus::endpoint`], [`Bus::endpoint_health`],
//!   [`Bus::queue_depth`]; `Ok(None)` for those that read storage:
//!   [`Bus::event`], [`Bus::delivery`]), and a listing returns no items. An
//!   action on something that does not exist (update, pause, resend,
//!   recover, test send…) fails with [`Error::EndpointNotFound`] or
//!   [`Error::EventNotFound`], since it cannot do what was asked.
//! - **Listings are paged by cursor.** Every listing that can grow without
//!   bound ([`Bus::endpoints`], [`Bus::endpoint_deliveries`],
//!   [`Bus::query_attempts`], [`Bus::endpoint_attempts`]) takes
//!   `after: Option<Cursor<T>>` and `limit` and returns a [`Page`]; pass
//!   [`Page::next`] back for the following page. The sets that belong to
//!   one event ([`Bus::deliveries`], [`Bus::attempts`]) are small and come
//!   whole.
//! - **Ids and cursors have a text form** that parses back:
//!   [`EndpointId`] (`ep_3`), [`EventId`] (`evt_` and 26 base-32
//!   characters) and [`Cursor`] implement `Display` and `FromStr`.
//! - **`serde`** (a cargo feature, off by default) derives `Serialize` and
//!   `Deserialize` on the read models a host may expose in its own API:
//!   ids, cursors and pages, [`Delivery`], [`Attempt`], [`DeliveryStatus`],
//!   [`ErrorKind`], [`Trigger`], [`DeliveryFilter`], [`EndpointStatus`],
//!   [`Stats`], [`EndpointStats`], [`EndpointHealth`] and [`Notice`]. Ids and
//!   cursors serialize as their text form, times as Unix milliseconds,
//!   durations as microseconds, enums in `snake_case` (tagged by `state`,
//!   `status`, `kind` or `type` where they have fields). Nothing that can
//!   hold a secret ([`EndpointConfig`], [`Endpoint`], [`Secret`]) does.
//!
//! # Metrics
//!
//! With the `metrics` feature, hookbus records through the [`metrics`]
//! facade (install any recorder, such as a Prometheus exporter):
//!
//! | name | kind | unit | labels | what |
//! |---|---|---|---|---|
//! | `hookbus_published_total` | counter | events | | events published |
//! | `hookbus_attempts_total` | counter | attempts | `outcome` (`success`, `failure`) | attempts made (test sends excluded) |
//! | `hookbus_attempt_duration_seconds` | histogram | seconds | `status_class` (`1xx`…`5xx`, `other`, `none` when no answer), `error_kind` ([`ErrorKind::as_str`], `none` on success) | from the start of a request to its outcome |
//! | `hookbus_delivered_total` | counter | deliveries | | deliveries that succeeded |
//! | `hookbus_exhausted_total` | counter | deliveries | | deliveries whose last attempt failed |
//! | `hookbus_queue_depth` | gauge | deliveries | | deliveries queued, as [`Bus::queue_depth`] |
//! | `hookbus_in_flight` | gauge | deliveries | | attempts running now |
//!
//! The gauges are kept current by the bus itself (each time a queue
//! changes), not only when [`Bus::stats`] is called; a bus that shuts down
//! (or an endpoint deleted) takes its deliveries out of them. By default
//! every series is a total over every endpoint (and over every bus in the
//! process), so no label grows with the number of endpoints, and no label
//! holds what a receiver chose (a status is reduced to its class).
//! [`BusBuilder::per_endpoint_metrics`] adds an `endpoint` label (the
//! endpoint's id, `ep_3`) to every series but `hookbus_published_total`,
//! for hosts with few endpoints.
//!
//! [`metrics`]: https://docs.rs/metrics/0.24
//!
//! # Threads
//!
//! One pool of sender threads serves every endpoint: at most
//! `sender_threads` (64 by default), started when there is work and ended
//! after `sender_idle_timeout` (10 s) without, so an idle bus has no sender
//! thread however many endpoints it has. Endpoints take turns round-robin,
//! one delivery per turn, within their `concurrency` (2 by default; 1 when
//! ordered) and optional `rate_limit`: a backlog of a million deliveries at
//! one endpoint delays another endpoint's first delivery by at most one
//! turn of each endpoint with work.
//!
//! One clock thread wakes endpoints when a retry, a `Retry-After` or a
//! rate limit falls due: no thread sleeps on behalf of a waiting delivery.
//!
//! **Hung endpoints are contained.** An endpoint that has not answered
//! quickly yet (new since the bus opened) or whose last attempt timed out
//! or took over 5 s gets one attempt in flight at a time, and all such
//! endpoints together get at most half of the pool. However many endpoints
//! hang, the other half keeps serving the endpoints that answer. The
//! limit: an endpoint that has never answered since the bus opened shares
//! the slow half, so while many endpoints hang its first delivery can wait
//! up to one attempt `timeout`.
//!
//! **Backlogs live on disk.** Each endpoint keeps at most 1,024 queued
//! deliveries in memory; the rest stays in the database and is read back
//! in windows as the queue drains, so an endpoint that is down or paused
//! for a day costs memory for 1,024 deliveries, not for its backlog, and
//! `open` reads one window per endpoint before the first delivery goes.
//!
//! One janitor thread wakes every 2 s to move the queue checkpoint (which
//! bounds the work of the next open), move backlogs out of memory and
//! apply retention.
//!
//! # Shutdown
//!
//! [`Bus::shutdown`] (or dropping the last clone of the bus) refuses new
//! publishes, lets attempts in flight finish (waiting at most
//! `shutdown_timeout`, 15 s), joins every thread and flushes. Queued and
//! scheduled deliveries stay stored and resume on the next open; an attempt
//! whose outcome had not been recorded is made again. Every
//! [`Bus::notices`] receiver then disconnects, so a host's
//! `for notice in bus.notices()` loop ends, even while other clones of the
//! bus are alive; a receiver asked for after shutdown is disconnected
//! from the start.
//!
//! # PostgreSQL
//!
//! With the `postgres` feature, [`Bus::postgres`] opens the same bus on a
//! PostgreSQL database instead of sled, with the same API. Choose it when
//! the host runs several replicas behind a load balancer: any number of
//! processes open the bus on one schema and share one queue, and the
//! queue outlives any one machine. sled stays the default: no server to
//! run, and faster on one machine (every PostgreSQL write is a round trip).
//!
//! What replicas guarantee:
//!
//! - Any replica may publish; `publish` returns after the transaction
//!   that wrote the event and one delivery row per matching endpoint
//!   committed. [`Bus::publish_in`] writes them in the host's own
//!   transaction instead (the transactional outbox).
//! - Each endpoint is served by one replica at a time, the holder of its
//!   lease (`postgres_lease`, 30 s, renewed every third of it): an
//!   attempt starts, and its outcome is recorded, only under the lease, so
//!   no delivery is attempted by two replicas at once, and an endpoint's
//!   `concurrency`, rate limit and order hold across replicas. Replicas
//!   spread the endpoints evenly; a replica that joins gets idle endpoints
//!   given up by the others.
//! - A replica that dies (kill -9) stops renewing; another takes its
//!   endpoints over within the lease plus a third of it, and resends what
//!   was in flight with the same attempt number (at least once; attempt
//!   numbers never go backwards).
//! - Endpoint changes (add, update, disable, delete, pause, resume) made
//!   through one replica reach the others at once through LISTEN/NOTIFY,
//!   and within `postgres_poll_interval` (1 s) if a notification is lost.
//!   A replica with nothing to do reads the database once per poll
//!   interval, never in a busy loop.
//! - Retention runs on one replica at a time (an advisory lock).
//! - Order on an ordered endpoint is event-id order as the serving replica
//!   reads it: events published at the same moment through different
//!   replicas (or committed late by [`Bus::publish_in`]) may go out in
//!   commit order instead.
//!
//! The schema (`postgres_schema`, `hookbus` by default) is created and
//! migrated on open; its tables are described in `docs/postgres-schema.md`.
//! Failures come back typed: a malformed connection string is
//! [`Error::InvalidConfig`]; an unreachable server, a lost connection, the
//! statement timeout and a full disk are [`Error::Storage`] with the I/O
//! kinds `ConnectionRefused`, `ConnectionAborted`, `TimedOut` and
//! `StorageFull`. Writes that lost their connection before committing are
//! retried on a fresh one.
//!
//! # Security
//!
//! Secrets never appear in `Debug` output, logs, errors or the delivery log;
//! signatures are compared in constant time. Proxies from the environment
//! are ignored.
//!
//! Endpoints cannot reach private networks by default: every address DNS
//! returns for an endpoint's host is checked, and loopback, private
//! (RFC 1918, IPv6 unique-local), link-local (including cloud metadata at
//! 169.254.169.254), carrier-grade NAT, unspecified, multicast, benchmarking,
//! documentation and other reserved ranges are refused. IPv6 addresses that
//! carry an IPv4 address are checked on both: IPv4-mapped ones
//! (`::ffff:a.b.c.d`) as the IPv4 address they are; IPv4-compatible
//! (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), NAT64
//! (`64:ff9b::/96`, `64:ff9b:1::/48`, read with the /96 layout), 6to4
//! (`2002::/16`) and Teredo (`2001::/32`, the client address) are refused
//! as IPv6 ranges and, if the host allows such a range, still refused when
//! the IPv4 address they carry is. A refused attempt is logged as [`ErrorKind::Blocked`] and
//! retried like any failure. [`BusBuilder::allow_network`] re-opens subnets
//! the host trusts, [`BusBuilder::allow_private_networks`] all of them (for
//! development), and [`BusBuilder::https_only`] refuses plain `http://`.
//!
//! [sled]: https://docs.rs/sled/0.34
//! [Standard Webhooks]: https://www.standardwebhooks.com/

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bounds;
mod bus;
mod catalog;
mod config;
mod delivery;
mod endpoint;
mod error;
mod event;
mod formats;
// Entry points for fuzz/ and the property tests; only built with the
// `fuzzing` feature, so a host's build never compiles it.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_api;
mod http;
mod janitor;
mod log;
mod notice;
mod page;
#[cfg(feature = "portal")]
pub mod portal;
mod routing;
mod runtime;
#[cfg(feature = "serde")]
mod serde_support;
pub mod signing;
mod stats;
mod store;
mod tenant;
mod time;
pub mod verify;

pub use bus::{Bus, RecoveryReport, MAX_IDEMPOTENCY_KEY_LEN};
pub use catalog::{EventType, PayloadMismatch, MAX_EVENT_TYPE_DESCRIPTION_LEN};
pub use config::BusBuilder;
/// The channel crate [`Bus::notices`] receivers come from, re-exported so
/// hosts can name its types without depending on it themselves.
pub use crossbeam_channel;
pub use endpoint::{
    Endpoint, EndpointConfig, EndpointId, EndpointStatus, ParseEndpointIdError, PauseReason,
    SuccessPolicy,
};
pub use error::{Error, PublishError, Result, StorageError};
pub use event::{Event, EventId, ParseEventIdError, StoredEvent, MAX_EVENT_TYPE_LEN};
pub use formats::{presets, Envelope, EnvelopeInput, Format};
pub use log::{
    Attempt, AttemptQuery, Delivery, DeliveryFilter, DeliveryStatus, ErrorKind, Trigger,
};
pub use notice::{Notice, NOTICE_BUFFER};
pub use page::{Cursor, Page, ParseCursorError};
/// The PostgreSQL client crate the `postgres` feature uses, re-exported so
/// that a host's transactions given to [`Bus::publish_in`] are of the same
/// version.
#[cfg(feature = "postgres")]
pub use postgres;
pub use signing::{Secret, Signing};
pub use stats::{EndpointHealth, EndpointStats, Stats};
pub use tenant::{
    Tenant, TenantConfig, TenantDeletion, TenantId, TenantPage, DEFAULT_TENANT_KEY,
    MAX_TENANT_KEY_LEN,
};

// Compiles the README's code so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
