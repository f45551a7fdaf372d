//! The records kept in the database. Public types convert from these; only
//! the store reads and writes them.

use serde::{Deserialize, Serialize};

use crate::endpoint::{Format, PauseReason, Signing, SuccessPolicy};

/// An endpoint's settings, as given by the host.
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
    pub(crate) ordered: bool,
    pub(crate) pause_after: Option<Option<u32>>,
    /// Secrets replaced by a rotation, with the time they stop signing.
    pub(crate) previous_secrets: Vec<(String, u64)>,
    pub(crate) created_ms: u64,
}

/// Whether an endpoint sends, and how it has been doing. Written by the host
/// (enable, disable, pause, resume) and by its senders (health, auto-pause),
/// always under the lane's state lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndpointStateRecord {
    pub(crate) mode: Mode,
    pub(crate) consecutive_failed_attempts: u32,
    pub(crate) consecutive_failed_deliveries: u32,
    pub(crate) last_success_ms: Option<u64>,
    pub(crate) last_failure_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    Active,
    Disabled,
    Paused { reason: PauseReason, since_ms: u64 },
}

impl Default for EndpointStateRecord {
    fn default() -> Self {
        EndpointStateRecord {
            mode: Mode::Active,
            consecutive_failed_attempts: 0,
            consecutive_failed_deliveries: 0,
            last_success_ms: None,
            last_failure_ms: None,
        }
    }
}

/// A published event. `targets` are the endpoints it was queued for: the
/// first delivery to each is implied by this record alone, so a publish is
/// one write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub(crate) event_type: String,
    // Same bytes on disk as a plain Vec<u8>, encoded in one copy instead of
    // byte by byte (measured 11-13x faster).
    #[serde(with = "serde_bytes")]
    pub(crate) payload: Vec<u8>,
    pub(crate) occurred_ms: u64,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) targets: Vec<u64>,
    pub(crate) created_ms: u64,
    pub(crate) idempotency_key: Option<String>,
    /// The tenant it was published to; `None` is the default tenant.
    /// Added last, so records written before tenants (which end before
    /// it) still decode: see `store::tenants::decode_event`.
    pub(crate) tenant: Option<String>,
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
    /// The number of the first attempt of the current round: 1, or the
    /// attempt a resend or recover started at. A round has the endpoint's
    /// `max_attempts` attempts.
    pub(crate) round_start: u32,
    /// The current round was started by a resend or recover.
    pub(crate) manual: bool,
}

impl DeliveryRecord {
    /// The state of a delivery that exists only as an event's target.
    pub(crate) fn implied(created_ms: u64) -> Self {
        DeliveryRecord {
            state: DeliveryState::Waiting {
                next_attempt: 1,
                due_ms: created_ms,
            },
            created_ms,
            updated_ms: created_ms,
            round_start: 1,
            manual: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AttemptRecord {
    pub(crate) endpoint: u64,
    pub(crate) event: u128,
    pub(crate) attempt: u32,
    pub(crate) manual: bool,
    pub(crate) started_ms: u64,
    pub(crate) duration_us: u64,
    pub(crate) status: Option<u16>,
    pub(crate) succeeded: bool,
    /// `ErrorKind` as its stable code.
    pub(crate) error_kind: Option<u8>,
    pub(crate) error_message: Option<String>,
    #[serde(with = "serde_bytes")]
    pub(crate) response_body: Vec<u8>,
    pub(crate) response_truncated: bool,
}

/// An idempotency key seen at publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub(crate) event: u128,
    pub(crate) created_ms: u64,
}
