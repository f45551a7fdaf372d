//! The records kept in the database. Public types convert from these; only
//! the store reads and writes them.
//!
//! Every enum in a record is stored through [`tags`](super::tags) with an
//! explicit, frozen tag (`#[serde(with = "tags")]`), never by its
//! declaration order. The record versions and the layout of each version
//! are pinned by the fixtures in `tests/fixtures/records/`.

use serde::{Deserialize, Serialize};

use super::codec::Record;
use super::tags;
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
    #[serde(with = "tags")]
    pub(crate) format: Format,
    #[serde(with = "tags")]
    pub(crate) signing: Signing,
    #[serde(with = "tags")]
    pub(crate) success: SuccessPolicy,
    pub(crate) attribute_filters: Vec<(String, Vec<String>)>,
    pub(crate) ordered: bool,
    pub(crate) pause_after: Option<Option<u32>>,
    /// Secrets replaced by a rotation, with the time they stop signing.
    pub(crate) previous_secrets: Vec<(String, u64)>,
    pub(crate) created_ms: u64,
    /// Attempts started per second at most (version 2).
    pub(crate) rate_limit: Option<u32>,
}

/// Whether an endpoint sends, and how it has been doing. Written by the host
/// (enable, disable, pause, resume) and by its senders (health, auto-pause),
/// always under the lane's state lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndpointStateRecord {
    #[serde(with = "tags")]
    pub(crate) mode: Mode,
    pub(crate) consecutive_failed_attempts: u32,
    pub(crate) consecutive_failed_deliveries: u32,
    pub(crate) last_success_ms: Option<u64>,
    pub(crate) last_failure_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
///
/// Record version 3; version 2 ([`EventRecordV2`]) had no tenant, and
/// version 1 ([`EventRecordV1`]) also had the occurrence time in
/// milliseconds. Events of both are the default tenant's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub(crate) event_type: String,
    // Same bytes on disk as a plain Vec<u8>, encoded in one copy instead of
    // byte by byte (measured 11-13x faster).
    #[serde(with = "serde_bytes")]
    pub(crate) payload: Vec<u8>,
    /// When the event happened, in microseconds since the Unix epoch.
    pub(crate) occurred_us: u64,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) targets: Vec<u64>,
    pub(crate) created_ms: u64,
    pub(crate) idempotency_key: Option<String>,
    /// The tenant it was published to; `None` is the default tenant.
    pub(crate) tenant: Option<String>,
}

impl Record for EventRecord {
    const VERSION: u8 = 3;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, String>> {
        match version {
            1 => Some(super::codec::body::<EventRecordV1>(body).map(Into::into)),
            2 => Some(super::codec::body::<EventRecordV2>(body).map(Into::into)),
            _ => None,
        }
    }
}

/// An event record as written by record version 2: no tenant. Read only;
/// frozen.
#[derive(Deserialize)]
struct EventRecordV2 {
    event_type: String,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    occurred_us: u64,
    attributes: Vec<(String, String)>,
    targets: Vec<u64>,
    created_ms: u64,
    idempotency_key: Option<String>,
}

impl From<EventRecordV2> for EventRecord {
    fn from(v2: EventRecordV2) -> Self {
        EventRecord {
            event_type: v2.event_type,
            payload: v2.payload,
            occurred_us: v2.occurred_us,
            attributes: v2.attributes,
            targets: v2.targets,
            created_ms: v2.created_ms,
            idempotency_key: v2.idempotency_key,
            tenant: None,
        }
    }
}

/// An event record as written by record version 1: the occurrence time in
/// milliseconds. Read only; frozen.
#[derive(Deserialize)]
struct EventRecordV1 {
    event_type: String,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    occurred_ms: u64,
    attributes: Vec<(String, String)>,
    targets: Vec<u64>,
    created_ms: u64,
    idempotency_key: Option<String>,
}

impl From<EventRecordV1> for EventRecord {
    fn from(v1: EventRecordV1) -> Self {
        EventRecord {
            event_type: v1.event_type,
            payload: v1.payload,
            // Saturating: a damaged record must not panic; real times are
            // far below u64::MAX microseconds (year 586,000).
            occurred_us: v1.occurred_ms.saturating_mul(1000),
            attributes: v1.attributes,
            targets: v1.targets,
            created_ms: v1.created_ms,
            idempotency_key: v1.idempotency_key,
            tenant: None,
        }
    }
}

/// Where one (endpoint, event) delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    #[serde(with = "tags")]
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

/// Version 2 added `rate_limit` at the end. bincode lays a struct's fields
/// end to end, so a version 1 body followed by the encoding of the new
/// fields' defaults is a version 2 body.
impl Record for EndpointRecord {
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, String>> {
        (version == 1).then(|| super::codec::body_with_defaults(body, &(None::<u32>,)))
    }
}

// Record version 1, unchanged since the first release.
impl Record for EndpointStateRecord {}
impl Record for DeliveryRecord {}
impl Record for AttemptRecord {}
impl Record for IdempotencyRecord {}
