//! Counters and snapshots: what [`Bus::stats`](crate::Bus::stats) and
//! [`Bus::endpoint_health`](crate::Bus::endpoint_health) report, and the
//! optional `metrics` feature, which emits the same through the `metrics`
//! facade (`hookbus_published_total`, `hookbus_attempts_total{outcome}`,
//! `hookbus_delivered_total`, `hookbus_exhausted_total`,
//! `hookbus_queue_depth{endpoint}`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::endpoint::{EndpointId, EndpointStatus};

/// Per-endpoint counters since the bus opened.
#[derive(Default)]
pub(crate) struct Counters {
    attempts: AtomicU64,
    retried: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    pub(crate) fn attempt(&self, number: u32, succeeded: bool) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if number > 1 {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("hookbus_attempts_total", "outcome" => if succeeded { "success" } else { "failure" })
            .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = succeeded;
    }

    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("hookbus_delivered_total").increment(1);
    }

    pub(crate) fn exhausted(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("hookbus_exhausted_total").increment(1);
    }
}

pub(crate) fn published() {
    #[cfg(feature = "metrics")]
    metrics::counter!("hookbus_published_total").increment(1);
}

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn queue_depth(endpoint: EndpointId, depth: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("hookbus_queue_depth", "endpoint" => endpoint.to_string()).set(depth as f64);
}

/// One endpoint's numbers. `queued` and `in_flight` are current; the counts
/// are since the bus opened (a failed delivery later resent still counts as
/// failed once). For the deliveries failed now, list
/// [`DeliveryFilter::Failed`](crate::DeliveryFilter::Failed).
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A snapshot of the whole bus. Counts are since the bus opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events published.
    pub published: u64,
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
#[non_exhaustive]
pub struct EndpointHealth {
    /// Active, disabled or paused.
    pub status: EndpointStatus,
    /// The last successful attempt.
    pub last_success: Option<SystemTime>,
    /// The last failed attempt.
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
    /// When the oldest queued or in-flight delivery's event was published.
    pub oldest_pending: Option<SystemTime>,
}
