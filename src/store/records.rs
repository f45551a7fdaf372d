//! The records kept in the database. Public types convert from these; only
//! the store reads and writes them.
//!
//! Every enum in a record is stored through [`tags`](super::tags) with an
//! explicit, frozen tag (`#[serde(with = "tags")]`), never by its
//! declaration order. The record versions and the layout of each version
//! are pinned by the fixtures in `tests/fixtures/records/`.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use super::codec::Record;
use super::tags;
use crate::endpoint::{Overrides, PauseReason};
use crate::formats::Format;
use crate::signing::Signing;
use crate::time;

/// An endpoint's settings, as given by the host.
///
/// Stored with a frozen layout (see [`EndpointRecord`]'s `Serialize`): the
/// fields of versions 1 and 2 in the order they were first written, the
/// delivery settings among them where they have always been.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EndpointRecord {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) secret: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) format: Format,
    pub(crate) signing: Signing,
    pub(crate) attribute_filters: Vec<(String, Vec<String>)>,
    /// The delivery settings, kept whole.
    pub(crate) settings: Overrides,
    /// Secrets replaced by a rotation, with the time they stop signing.
    pub(crate) previous_secrets: Vec<(String, u64)>,
    pub(crate) created_ms: u64,
}

/// The number of fields in the stored layout of [`EndpointRecord`].
const ENDPOINT_FIELDS: usize = 18;

/// The stored layout, one element after another as bincode lays out a
/// struct (so the bytes are those of the derived encoding this replaced).
/// Durations are whole milliseconds. `rate_limit` came with version 2, at
/// the end. A new setting goes at the end too, with a new record version:
/// the destructuring below does not compile until it is placed.
impl Serialize for EndpointRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Overrides {
            max_attempts,
            retry_delays,
            timeout,
            concurrency,
            rate_limit,
            success,
            ordered,
            pause_after,
        } = &self.settings;
        let ms = |d: &Duration| time::duration_ms(*d);
        let mut t = s.serialize_tuple(ENDPOINT_FIELDS)?;
        t.serialize_element(&self.name)?;
        t.serialize_element(&self.url)?;
        t.serialize_element(&self.events)?;
        t.serialize_element(&self.secret)?;
        t.serialize_element(&self.headers)?;
        t.serialize_element(max_attempts)?;
        t.serialize_element(
            &retry_delays
                .as_ref()
                .map(|v| v.iter().map(ms).collect::<Vec<u64>>()),
        )?;
        t.serialize_element(&timeout.as_ref().map(ms))?;
        t.serialize_element(concurrency)?;
        t.serialize_element(&tags::ByTag(&self.format))?;
        t.serialize_element(&tags::ByTag(&self.signing))?;
        t.serialize_element(&tags::ByTag(success))?;
        t.serialize_element(&self.attribute_filters)?;
        t.serialize_element(ordered)?;
        t.serialize_element(pause_after)?;
        t.serialize_element(&self.previous_secrets)?;
        t.serialize_element(&self.created_ms)?;
        t.serialize_element(&rate_limit.map(NonZeroU32::get))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for EndpointRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_tuple(ENDPOINT_FIELDS, EndpointVisitor)
    }
}

struct EndpointVisitor;

impl<'de> Visitor<'de> for EndpointVisitor {
    type Value = EndpointRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an endpoint record")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EndpointRecord, A::Error> {
        fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
            seq.next_element()?
                .ok_or_else(|| de::Error::custom("endpoint record ends early"))
        }
        let name = next(&mut seq)?;
        let url = next(&mut seq)?;
        let events = next(&mut seq)?;
        let secret = next(&mut seq)?;
        let headers = next(&mut seq)?;
        let max_attempts = next(&mut seq)?;
        let retry_delays_ms: Option<Vec<u64>> = next(&mut seq)?;
        let timeout_ms: Option<u64> = next(&mut seq)?;
        let concurrency = next(&mut seq)?;
        let tags::FromTag(format) = next(&mut seq)?;
        let tags::FromTag(signing) = next(&mut seq)?;
        let tags::FromTag(success) = next(&mut seq)?;
        let attribute_filters = next(&mut seq)?;
        let ordered = next(&mut seq)?;
        let pause_after = next(&mut seq)?;
        let previous_secrets = next(&mut seq)?;
        let created_ms = next(&mut seq)?;
        let rate_limit: Option<u32> = next(&mut seq)?;
        Ok(EndpointRecord {
            name,
            url,
            events,
            secret,
            headers,
            format,
            signing,
            attribute_filters,
            settings: Overrides {
                max_attempts,
                retry_delays: retry_delays_ms
                    .map(|v| v.into_iter().map(Duration::from_millis).collect()),
                timeout: timeout_ms.map(Duration::from_millis),
                concurrency,
                // Never stored as 0 (that is no limit, stored as none).
                rate_limit: rate_limit.and_then(NonZeroU32::new),
                success,
                ordered,
                pause_after,
            },
            previous_secrets,
            created_ms,
        })
    }
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
    /// Whether an attempt of the current round has begun: on an ordered
    /// endpoint such a delivery goes before any other still queued, even
    /// one with a lower id that another replica's overlapping publish
    /// stored after it began.
    pub(crate) fn begun(&self) -> bool {
        match self.state {
            DeliveryState::InFlight { .. } => true,
            DeliveryState::Waiting { next_attempt, .. } => next_attempt > self.round_start,
            DeliveryState::Delivered { .. } | DeliveryState::Failed { .. } => false,
        }
    }

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
    // Record version 2 appended the request as sent and the response's
    // headers; version 1 attempts read with all four empty.
    /// The request's headers, signatures and secrets redacted.
    pub(crate) request_headers: Vec<(String, String)>,
    /// The start of the request body, secrets redacted.
    #[serde(with = "serde_bytes")]
    pub(crate) request_body: Vec<u8>,
    pub(crate) request_truncated: bool,
    pub(crate) response_headers: Vec<(String, String)>,
}

/// Version 2 appended the request as sent and the response's headers.
/// bincode lays a struct's fields end to end, so a version 1 body followed
/// by the encoding of the new fields' empty values is a version 2 body.
impl Record for AttemptRecord {
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, String>> {
        let empty_headers: Vec<(String, String)> = Vec::new();
        (version == 1).then(|| {
            super::codec::body_with_defaults(
                body,
                &(
                    &empty_headers,
                    serde_bytes::Bytes::new(&[]),
                    false,
                    &empty_headers,
                ),
            )
        })
    }
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
impl Record for IdempotencyRecord {}
