//! The records kept in the database. Public types convert from these; only
//! the store reads and writes them.

use serde::{Deserialize, Serialize};

use crate::endpoint::{Format, Signing, SuccessPolicy};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndpointRecord {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) secret: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry_delays_ms: Option<Vec<u64>>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) concurrency: Option<u32>,
    pub(crate) format: Format,
    pub(crate) signing: Signing,
    pub(crate) success: SuccessPolicy,
    pub(crate) attribute_filters: Vec<(String, Vec<String>)>,
    /// Secrets replaced by a rotation, with the time they stop signing.
    pub(crate) previous_secrets: Vec<(String, u64)>,
    pub(crate) enabled: bool,
    pub(crate) created_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub(crate) event_type: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) occurred_ms: u64,
    pub(crate) attributes: Vec<(String, String)>,
}

/// Where one (endpoint, event) delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DeliveryState {
    /// Attempt `next_attempt` may start at `due_ms`.
    Waiting { next_attempt: u32, due_ms: u64 },
    /// Attempt `attempt` was started and its outcome is not recorded. Written
    /// and flushed before every attempt after the first, so that a restart
    /// never sends a lower attempt number than one already sent.
    InFlight { attempt: u32 },
    /// Attempt `attempts` succeeded.
    Delivered { attempts: u32 },
    /// All `attempts` attempts failed.
    Failed { attempts: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub(crate) state: DeliveryState,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AttemptRecord {
    pub(crate) endpoint: u64,
    pub(crate) event: u128,
    pub(crate) attempt: u32,
    pub(crate) started_ms: u64,
    pub(crate) duration_us: u64,
    pub(crate) status: Option<u16>,
    pub(crate) succeeded: bool,
    /// `ErrorKind` as its stable code.
    pub(crate) error_kind: Option<u8>,
    pub(crate) error_message: Option<String>,
    pub(crate) response_body: Vec<u8>,
    pub(crate) response_truncated: bool,
}
