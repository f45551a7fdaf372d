//! Whether an endpoint sends, and why it stopped.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Why an endpoint stopped sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PauseReason {
    /// The host paused it.
    Manual,
    /// This many deliveries in a row failed after their last attempt.
    ConsecutiveFailures(u32),
    /// The receiver answered 410 Gone.
    Gone,
}

/// Whether an endpoint receives and sends events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointStatus {
    /// Receives new events and sends them.
    Active,
    /// Receives no new events; its queued deliveries wait.
    Disabled,
    /// Receives new events and keeps them queued, in order, without
    /// sending, until [`Bus::resume_endpoint`](crate::Bus::resume_endpoint).
    Paused {
        /// Why.
        reason: PauseReason,
        /// Since when.
        since: SystemTime,
    },
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseReason::Manual => f.write_str("paused by hand"),
            PauseReason::ConsecutiveFailures(n) => write!(f, "{n} failed deliveries in a row"),
            PauseReason::Gone => f.write_str("the receiver answered 410 Gone"),
        }
    }
}

impl fmt::Display for EndpointStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointStatus::Active => f.write_str("active"),
            EndpointStatus::Disabled => f.write_str("disabled"),
            EndpointStatus::Paused { reason, .. } => write!(f, "paused ({reason})"),
        }
    }
}
