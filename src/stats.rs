//! Counters and snapshots: what [`Bus::stats`](crate::Bus::stats) and
//! [`Bus::endpoint_health`](crate::Bus::endpoint_health) report, and the
//! optional `metrics` feature, which emits the same through the `metrics`
//! facade. The metric names, units and labels are documented in the crate
//! docs (section "Metrics"); keep that table in step with this file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::endpoint::{EndpointId, EndpointStatus};
use crate::log::ErrorKind;

/// Per-endpoint counters since the bus opened, and the endpoint's series
/// in the `metrics` facade.
pub(crate) struct Counters {
    attempts: AtomicU64,
    retried: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    #[cfg(feature = "metrics")]
    series: Series,
}

impl Counters {
    /// `per_endpoint`: label this endpoint's series with its id (the
    /// builder's `per_endpoint_metrics`); otherwise they add up into
    /// bus-wide series.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(endpoint: EndpointId, per_endpoint: bool) -> Self {
        Counters {
            attempts: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            series: Series::new(per_endpoint.then(|| endpoint.to_string())),
        }
    }

    /// One attempt made (not a test send): its number, its HTTP status if
    /// an answer came, why it failed if it did, and how long it took.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn attempt(
        &self,
        number: u32,
        status: Option<u16>,
        error: Option<ErrorKind>,
        duration: Duration,
    ) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if number > 1 {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        self.series.attempt(status, error, duration);
    }

    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.series.delivered.increment(1);
    }

    pub(crate) fn exhausted(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.series.exhausted.increment(1);
    }

    /// The lane's depth changed: moves the gauges by the difference from
    /// what was last reported. Called with the lane's lock held, so reports
    /// of one lane never interleave. Adding differences (rather than
    /// setting values) lets every lane, and every bus in the process, share
    /// one unlabelled gauge whose value is their sum.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn depth(&self, queued: usize, in_flight: usize) {
        #[cfg(feature = "metrics")]
        self.series.depth(queued, in_flight);
    }
}

/// Status classes, so that a receiver's answers never make new series.
#[cfg(feature = "metrics")]
fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "none",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

/// An endpoint's handles in the `metrics` facade, registered once.
#[cfg(feature = "metrics")]
struct Series {
    /// The `endpoint` label, when per-endpoint metrics are on.
    endpoint: Option<String>,
    success: metrics::Counter,
    failure: metrics::Counter,
    delivered: metrics::Counter,
    exhausted: metrics::Counter,
    queued: metrics::Gauge,
    in_flight: metrics::Gauge,
    /// What the gauges were last moved to, for this lane.
    reported: parking_lot::Mutex<(usize, usize)>,
}

#[cfg(feature = "metrics")]
impl Series {
    fn new(endpoint: Option<String>) -> Self {
        let labels = |extra: Option<(&'static str, &'static str)>| {
            let mut l: Vec<metrics::Label> = Vec::new();
            if let Some((k, v)) = extra {
                l.push(metrics::Label::new(k, v));
            }
            if let Some(ep) = &endpoint {
                l.push(metrics::Label::new("endpoint", ep.clone()));
            }
            l
        };
        Series {
            success: metrics::counter!(
                "hookbus_attempts_total",
                labels(Some(("outcome", "success")))
            ),
            failure: metrics::counter!(
                "hookbus_attempts_total",
                labels(Some(("outcome", "failure")))
            ),
            delivered: metrics::counter!("hookbus_delivered_total", labels(None)),
            exhausted: metrics::counter!("hookbus_exhausted_total", labels(None)),
            queued: metrics::gauge!("hookbus_queue_depth", labels(None)),
            in_flight: metrics::gauge!("hookbus_in_flight", labels(None)),
            reported: parking_lot::Mutex::new((0, 0)),
            endpoint,
        }
    }

    fn attempt(&self, status: Option<u16>, error: Option<ErrorKind>, duration: Duration) {
        match error {
            None => self.success.increment(1),
            Some(_) => self.failure.increment(1),
        }
        let kind = error.map_or("none", ErrorKind::as_str);
        let class = status_class(status);
        let histogram = match &self.endpoint {
            None => metrics::histogram!(
                "hookbus_attempt_duration_seconds",
                "status_class" => class,
                "error_kind" => kind
            ),
            Some(ep) => metrics::histogram!(
                "hookbus_attempt_duration_seconds",
                "status_class" => class,
                "error_kind" => kind,
                "endpoint" => ep.clone()
            ),
        };
        histogram.record(duration.as_secs_f64());
    }

    fn depth(&self, queued: usize, in_flight: usize) {
        // Uncontended: the lane's own lock is held by the caller.
        let mut last = self.reported.lock();
        move_gauge(&self.queued, last.0, queued);
        move_gauge(&self.in_flight, last.1, in_flight);
        *last = (queued, in_flight);
    }
}

#[cfg(feature = "metrics")]
fn move_gauge(gauge: &metrics::Gauge, from: usize, to: usize) {
    if to > from {
        gauge.increment((to - from) as f64);
    } else if from > to {
        gauge.decrement((from - to) as f64);
    }
}

pub(crate) fn published() {
    #[cfg(feature = "metrics")]
    metrics::counter!("hookbus_published_total").increment(1);
}

/// One endpoint's numbers. `queued` and `in_flight` are current; the counts
/// are since the bus opened, in this process (a failed delivery later
/// resent still counts as failed once; on PostgreSQL, only the attempts
/// this replica made). For the deliveries failed now, list
/// [`DeliveryFilter::Failed`](crate::DeliveryFilter::Failed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct EndpointStats {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Active, disabled or paused.
    pub status: EndpointStatus,
    /// Deliveries queued or waiting for a retry.
    pub queued: usize,
    /// Deliveries being attempted now.
    pub in_flight: usize,
    /// Attempts made.
    pub attempts: u64,
    /// Attempts that were retries (number 2 and up).
    pub retried: u64,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Deliveries whose last attempt failed.
    pub failed: u64,
}

/// A snapshot of the whole bus. Counts are since the bus opened, in this
/// process: on PostgreSQL each replica counts the publishes and attempts
/// it made itself (sum them across replicas, as a metrics system does with
/// the `metrics` feature's counters), while `queued` and `in_flight` are
/// read from the shared queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// Events published.
    pub published: u64,
    /// Storage flushes made for publishes and changes. Concurrent
    /// publishes share flushes (group commit), so under load this grows
    /// more slowly than `published`; it never grows for reads or for
    /// [`Bus::test_send`](crate::Bus::test_send).
    pub commit_flushes: u64,
    /// Sum over endpoints of deliveries queued or waiting for a retry.
    pub queued: usize,
    /// Sum over endpoints of deliveries being attempted.
    pub in_flight: usize,
    /// Attempts made.
    pub attempts: u64,
    /// Retries made.
    pub retried: u64,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Deliveries whose last attempt failed.
    pub failed: u64,
    /// Endpoints paused.
    pub paused_endpoints: usize,
    /// Sender threads alive now (at most the builder's `sender_threads`).
    pub sender_threads: usize,
    /// Sender threads started since the bus opened.
    pub sender_threads_started: u64,
    /// Every endpoint, in id order.
    pub endpoints: Vec<EndpointStats>,
}

impl Stats {
    pub(crate) fn add(&mut self, e: EndpointStats) {
        self.queued += e.queued;
        self.in_flight += e.in_flight;
        self.attempts += e.attempts;
        self.retried += e.retried;
        self.delivered += e.delivered;
        self.failed += e.failed;
        if matches!(e.status, EndpointStatus::Paused { .. }) {
            self.paused_endpoints += 1;
        }
        self.endpoints.push(e);
    }
}

pub(crate) fn endpoint_stats(
    endpoint: EndpointId,
    status: EndpointStatus,
    (queued, in_flight): (usize, usize),
    c: &Counters,
) -> EndpointStats {
    EndpointStats {
        endpoint,
        status,
        queued,
        in_flight,
        attempts: c.attempts.load(Ordering::Relaxed),
        retried: c.retried.load(Ordering::Relaxed),
        delivered: c.delivered.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
    }
}

/// How an endpoint is doing: what an admin page shows next to it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct EndpointHealth {
    /// Active, disabled or paused.
    pub status: EndpointStatus,
    /// The last successful attempt.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::opt_unix_ms"))]
    pub last_success: Option<SystemTime>,
    /// The last failed attempt.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::opt_unix_ms"))]
    pub last_failure: Option<SystemTime>,
    /// Failed attempts since the last success.
    pub consecutive_failed_attempts: u32,
    /// Deliveries that failed their last attempt since the last success
    /// (auto-pause counts these).
    pub consecutive_failed_deliveries: u32,
    /// Deliveries queued or waiting for a retry.
    pub queued: usize,
    /// Deliveries being attempted now.
    pub in_flight: usize,
    /// When the oldest unfinished (queued or in-flight) delivery's event
    /// was published.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::opt_unix_ms"))]
    pub oldest_unfinished: Option<SystemTime>,
}
