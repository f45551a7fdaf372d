//! Not part of the API; entry points for fuzz targets and property tests.
//!
//! Thin wrappers over crate internals (record encoding, event filters,
//! envelopes, verification) that take plain parameters, so that code outside
//! the crate (`fuzz/`, `tests/properties.rs`) can drive them. Every function
//! here must never panic, whatever its input: a panic found through one of
//! them is a bug in the internals it wraps. Nothing here is covered by
//! semver; it may change in any release. Compiled only with the `fuzzing`
//! feature: `fuzz/Cargo.toml` enables it, and so does the crate's
//! dev-dependency on itself, for the tests and benches.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::endpoint::{EndpointConfig, EndpointId, PauseReason};
use crate::event::EventId;
use crate::formats::{self, Envelopes};
use crate::formats::{presets, Format};
use crate::signing::{self, Secret, Signing, SigningKey};
use crate::store::records::{
    AttemptRecord, DeliveryRecord, DeliveryState, EndpointRecord, EndpointStateRecord, EventRecord,
    IdempotencyRecord, Mode,
};
use crate::verify::Verifier;

use crate::store::codec::{self, Record};

/// An endpoint's delivery settings (attempts, delays, timeout, concurrency,
/// rate limit, success policy, order, auto-pause), as its record keeps
/// them; durations are stored in whole milliseconds.
pub use crate::endpoint::settings::Overrides as EndpointSettings;

/// Record kind for [`decode_record`]: an endpoint's settings.
pub const KIND_ENDPOINT: u8 = 0;
/// Record kind: an endpoint's state (mode and health).
pub const KIND_ENDPOINT_STATE: u8 = 1;
/// Record kind: a published event.
pub const KIND_EVENT: u8 = 2;
/// Record kind: one delivery's state.
pub const KIND_DELIVERY: u8 = 3;
/// Record kind: one logged attempt.
pub const KIND_ATTEMPT: u8 = 4;
/// Record kind: an idempotency key.
pub const KIND_IDEMPOTENCY: u8 = 5;
/// How many record kinds there are; `kind % RECORD_KINDS` selects one.
pub const RECORD_KINDS: u8 = 6;

/// Decodes `bytes` (version byte and bincode, as stored) as the record type
/// selected by `kind % RECORD_KINDS`; returns whether it decoded.
pub fn decode_record(kind: u8, bytes: &[u8]) -> bool {
    reencode_record(kind, bytes).is_some()
}

/// Decodes `bytes` as [`decode_record`] does and, when they decode, returns
/// the decoded record encoded again. Those bytes, decoded and encoded once
/// more, must come back unchanged.
pub fn reencode_record(kind: u8, bytes: &[u8]) -> Option<Vec<u8>> {
    fn again<T: Record>(what: &'static str, bytes: &[u8]) -> Option<Vec<u8>> {
        codec::decode::<T>(what, bytes)
            .ok()
            .map(|v| codec::encode(&v))
    }
    match kind % RECORD_KINDS {
        KIND_ENDPOINT => again::<EndpointRecord>("endpoint", bytes),
        KIND_ENDPOINT_STATE => again::<EndpointStateRecord>("endpoint state", bytes),
        KIND_EVENT => again::<EventRecord>("event", bytes),
        KIND_DELIVERY => again::<DeliveryRecord>("delivery", bytes),
        KIND_ATTEMPT => again::<AttemptRecord>("attempt", bytes),
        _ => again::<IdempotencyRecord>("idempotency", bytes),
    }
}

/// A record of any kind, built from plain values: the records themselves
/// are private to the crate.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum RecordFields {
    Endpoint(EndpointFields),
    EndpointState(EndpointStateFields),
    Event(EventFields),
    Delivery(DeliveryFields),
    Attempt(AttemptFields),
    Idempotency { event: u128, created_ms: u64 },
}

/// The fields of an endpoint record, as plain values.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct EndpointFields {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<String>,
    pub headers: Vec<(String, String)>,
    pub format: Format,
    pub signing: Signing,
    pub attribute_filters: Vec<(String, Vec<String>)>,
    /// The delivery settings, as the endpoint record keeps them.
    pub settings: EndpointSettings,
    pub previous_secrets: Vec<(String, u64)>,
    pub created_ms: u64,
}

/// An endpoint's mode, as plain values.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum ModeFields {
    Active,
    Disabled,
    Paused { reason: PauseReason, since_ms: u64 },
}

/// The fields of an endpoint state record, as plain values.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct EndpointStateFields {
    pub mode: ModeFields,
    pub consecutive_failed_attempts: u32,
    pub consecutive_failed_deliveries: u32,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
}

/// The fields of an event record, as plain values.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct EventFields {
    pub event_type: String,
    pub payload: Vec<u8>,
    /// Microseconds since the Unix epoch.
    pub occurred_us: u64,
    pub attributes: Vec<(String, String)>,
    pub targets: Vec<u64>,
    pub created_ms: u64,
    pub idempotency_key: Option<String>,
}

/// A delivery's state, as plain values.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum DeliveryStateFields {
    Waiting { next_attempt: u32, due_ms: u64 },
    InFlight { attempt: u32 },
    Delivered { attempts: u32 },
    Failed { attempts: u32 },
}

/// The fields of a delivery record, as plain values.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct DeliveryFields {
    pub state: DeliveryStateFields,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub round_start: u32,
    pub manual: bool,
}

/// The fields of an attempt record, as plain values.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct AttemptFields {
    pub endpoint: u64,
    pub event: u128,
    pub attempt: u32,
    pub manual: bool,
    pub started_ms: u64,
    pub duration_us: u64,
    pub status: Option<u16>,
    pub succeeded: bool,
    pub error_kind: Option<u8>,
    pub error_message: Option<String>,
    pub response_body: Vec<u8>,
    pub response_truncated: bool,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub request_truncated: bool,
    pub response_headers: Vec<(String, String)>,
}

impl RecordFields {
    /// The record kind, for [`decode_record`].
    pub fn kind(&self) -> u8 {
        match self {
            RecordFields::Endpoint(_) => KIND_ENDPOINT,
            RecordFields::EndpointState(_) => KIND_ENDPOINT_STATE,
            RecordFields::Event(_) => KIND_EVENT,
            RecordFields::Delivery(_) => KIND_DELIVERY,
            RecordFields::Attempt(_) => KIND_ATTEMPT,
            RecordFields::Idempotency { .. } => KIND_IDEMPOTENCY,
        }
    }

    /// Builds the crate's record and hands it to `op`.
    fn with_record<O: RecordOp>(&self, op: O) -> O::Out {
        match self {
            RecordFields::Endpoint(f) => op.run(
                "endpoint",
                &EndpointRecord {
                    name: f.name.clone(),
                    url: f.url.clone(),
                    events: f.events.clone(),
                    secret: f.secret.clone(),
                    headers: f.headers.clone(),
                    format: f.format.clone(),
                    signing: f.signing.clone(),
                    attribute_filters: f.attribute_filters.clone(),
                    settings: f.settings.clone(),
                    previous_secrets: f.previous_secrets.clone(),
                    created_ms: f.created_ms,
                },
            ),
            RecordFields::EndpointState(f) => op.run(
                "endpoint state",
                &EndpointStateRecord {
                    mode: match f.mode {
                        ModeFields::Active => Mode::Active,
                        ModeFields::Disabled => Mode::Disabled,
                        ModeFields::Paused { reason, since_ms } => {
                            Mode::Paused { reason, since_ms }
                        }
                    },
                    consecutive_failed_attempts: f.consecutive_failed_attempts,
                    consecutive_failed_deliveries: f.consecutive_failed_deliveries,
                    last_success_ms: f.last_success_ms,
                    last_failure_ms: f.last_failure_ms,
                },
            ),
            RecordFields::Event(f) => op.run(
                "event",
                &EventRecord {
                    event_type: f.event_type.clone(),
                    payload: f.payload.clone(),
                    occurred_us: f.occurred_us,
                    attributes: f.attributes.clone(),
                    targets: f.targets.clone(),
                    created_ms: f.created_ms,
                    idempotency_key: f.idempotency_key.clone(),
                    tenant: None,
                },
            ),
            RecordFields::Delivery(f) => op.run(
                "delivery",
                &DeliveryRecord {
                    state: match f.state {
                        DeliveryStateFields::Waiting {
                            next_attempt,
                            due_ms,
                        } => DeliveryState::Waiting {
                            next_attempt,
                            due_ms,
                        },
                        DeliveryStateFields::InFlight { attempt } => {
                            DeliveryState::InFlight { attempt }
                        }
                        DeliveryStateFields::Delivered { attempts } => {
                            DeliveryState::Delivered { attempts }
                        }
                        DeliveryStateFields::Failed { attempts } => {
                            DeliveryState::Failed { attempts }
                        }
                    },
                    created_ms: f.created_ms,
                    updated_ms: f.updated_ms,
                    round_start: f.round_start,
                    manual: f.manual,
                },
            ),
            RecordFields::Attempt(f) => op.run(
                "attempt",
                &AttemptRecord {
                    endpoint: f.endpoint,
                    event: f.event,
                    attempt: f.attempt,
                    manual: f.manual,
                    started_ms: f.started_ms,
                    duration_us: f.duration_us,
                    status: f.status,
                    succeeded: f.succeeded,
                    error_kind: f.error_kind,
                    error_message: f.error_message.clone(),
                    response_body: f.response_body.clone(),
                    response_truncated: f.response_truncated,
                    request_headers: f.request_headers.clone(),
                    request_body: f.request_body.clone(),
                    request_truncated: f.request_truncated,
                    response_headers: f.response_headers.clone(),
                },
            ),
            RecordFields::Idempotency { event, created_ms } => op.run(
                "idempotency",
                &IdempotencyRecord {
                    event: *event,
                    created_ms: *created_ms,
                },
            ),
        }
    }
}

/// Something done with a record of any type.
trait RecordOp {
    type Out;
    fn run<T>(self, what: &'static str, rec: &T) -> Self::Out
    where
        T: Record + PartialEq;
}

struct Encode;

impl RecordOp for Encode {
    type Out = Vec<u8>;
    fn run<T>(self, _: &'static str, rec: &T) -> Vec<u8>
    where
        T: Record + PartialEq,
    {
        codec::encode(rec)
    }
}

/// Decoding the encoding gives the record back, and the encoding with one
/// byte less or one byte more does not decode.
struct RoundTrip;

impl RecordOp for RoundTrip {
    type Out = bool;
    fn run<T>(self, what: &'static str, rec: &T) -> bool
    where
        T: Record + PartialEq,
    {
        let bytes = codec::encode(rec);
        let mut longer = bytes.clone();
        longer.push(0);
        matches!(codec::decode::<T>(what, &bytes), Ok(ref back) if back == rec)
            && codec::decode::<T>(what, &bytes[..bytes.len() - 1]).is_err()
            && codec::decode::<T>(what, &longer).is_err()
    }
}

/// The record's stored bytes: version byte and bincode.
pub fn encode_record(record: &RecordFields) -> Vec<u8> {
    record.with_record(Encode)
}

/// Whether the record survives encode → decode unchanged, and its encoding
/// cut by one byte or extended by one byte is refused.
pub fn roundtrip_record(record: &RecordFields) -> bool {
    record.with_record(RoundTrip)
}

/// [`roundtrip_record`] for an event record.
pub fn roundtrip_event(fields: &EventFields) -> bool {
    roundtrip_record(&RecordFields::Event(fields.clone()))
}

/// Compiles an endpoint's event patterns and attribute filters as
/// [`Bus::add_endpoint`](crate::Bus::add_endpoint) does and matches one
/// event against them. `Err` (the validation message) when the patterns or
/// filters are invalid.
pub fn filter_matches(
    patterns: &[String],
    attribute_filters: &[(String, Vec<String>)],
    event_type: &str,
    attributes: &[(String, String)],
) -> Result<bool, String> {
    let mut config =
        EndpointConfig::new("fuzz", "https://example.com/hook").events(patterns.iter().cloned());
    // Set directly: `filter_attribute` would merge repeated keys.
    config.attribute_filters = attribute_filters.to_vec();
    let filter = config.validate().map_err(|e| e.to_string())?;
    Ok(filter.matches(event_type, attributes))
}

/// How many built-in formats [`build_envelope`] selects from.
pub const BUILTIN_FORMATS: u8 = 6;

/// The built-in format selected by `selector % BUILTIN_FORMATS`: Standard,
/// Growth-X (`client` = `param`), LeadCrm (`id_space` = `param`), Snitcher,
/// Grow, Raw.
pub fn builtin_format(selector: u8, param: &str) -> Format {
    match selector % BUILTIN_FORMATS {
        0 => Format::Standard,
        1 => presets::GrowthX::new(param).into(),
        2 => presets::LeadCrm::new(param).into(),
        3 => presets::Snitcher.into(),
        4 => presets::Grow.into(),
        _ => Format::Raw,
    }
}

/// Everything an envelope is built from, as plain values.
#[derive(Clone, Debug)]
pub struct EnvelopeArgs<'a> {
    /// Selects the format: see [`builtin_format`].
    pub format: u8,
    /// The format's parameter (Growth-X client, LeadCrm id space).
    pub param: &'a str,
    /// The stored payload (JSON, unless the store was damaged).
    pub payload: &'a [u8],
    /// The event type.
    pub event_type: &'a str,
    /// The attempt number.
    pub attempt: u32,
    /// The event id.
    pub event_id: u128,
    /// When the event happened, in Unix milliseconds.
    pub occurred_ms: u64,
    /// The event's attributes.
    pub attributes: &'a [(String, String)],
    /// The secret LeadCrm puts in the body.
    pub secret_for_body: Option<&'a str>,
}

/// Builds the body of one attempt in a built-in format (see
/// [`builtin_format`]) with a fixed event id, time and endpoint.
pub fn build_envelope(
    format: u8,
    param: &str,
    payload: &[u8],
    event_type: &str,
    attempt: u32,
) -> Result<Vec<u8>, String> {
    build_envelope_with(&EnvelopeArgs {
        format,
        param,
        payload,
        event_type,
        attempt,
        event_id: 0x0190_0000_0000_0000_0000_0000_0000_002a,
        occurred_ms: 1_700_000_000_123,
        attributes: &[],
        secret_for_body: None,
    })
}

/// Builds the body of one attempt from every input an envelope sees.
pub fn build_envelope_with(args: &EnvelopeArgs<'_>) -> Result<Vec<u8>, String> {
    let format = builtin_format(args.format, args.param);
    let event = EventRecord {
        event_type: args.event_type.to_string(),
        payload: args.payload.to_vec(),
        occurred_us: args.occurred_ms.saturating_mul(1000),
        attributes: args.attributes.to_vec(),
        targets: Vec::new(),
        created_ms: 0,
        idempotency_key: None,
        tenant: None,
    };
    let input = formats::input(
        EventId::from_u128(args.event_id),
        &event,
        args.attempt,
        EndpointId(1),
        args.secret_for_body,
    );
    formats::build(&format, &Envelopes::default(), &input).map(|body| body.bytes)
}

/// How many signing schemes [`verify`] selects from.
pub const SIGNING_SCHEMES: u8 = 5;

/// The header [`signing_scheme`] uses for `HmacSha256Hex`.
pub const HEX_HEADER: &str = "Signature";
/// The header [`signing_scheme`] uses for `SecretHeader`.
pub const SECRET_HEADER: &str = "X-Webhook-Secret";

/// The scheme selected by `selector % SIGNING_SCHEMES`: Standard Webhooks,
/// hex HMAC in [`HEX_HEADER`], the secret in [`SECRET_HEADER`], the secret
/// in the body, none.
pub fn signing_scheme(selector: u8) -> Signing {
    match selector % SIGNING_SCHEMES {
        0 => Signing::StandardWebhooks,
        1 => Signing::HmacSha256Hex {
            header: HEX_HEADER.to_string(),
        },
        2 => Signing::SecretHeader {
            header: SECRET_HEADER.to_string(),
        },
        3 => Signing::SecretInBody,
        _ => Signing::None,
    }
}

/// The receiver's clock [`verify`] uses, in Unix seconds, so that results do
/// not depend on when they run.
pub const VERIFY_NOW: u64 = 1_700_000_000;

/// Checks a request with [`Verifier`] for the scheme selected by `scheme`
/// (see [`signing_scheme`]) and these secrets, at [`VERIFY_NOW`] with the
/// default tolerance.
pub fn verify(scheme: u8, secrets: &[String], headers: &[(String, String)], body: &[u8]) -> bool {
    verify_at(scheme, secrets, headers, body, VERIFY_NOW).is_ok()
}

/// [`verify`] at `now` (Unix seconds), with the reason of a refusal.
pub fn verify_at(
    scheme: u8,
    secrets: &[String],
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
) -> Result<(), crate::verify::VerifyError> {
    let now = UNIX_EPOCH
        .checked_add(Duration::from_secs(now))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let verifier = secrets
        .iter()
        .fold(Verifier::new(signing_scheme(scheme)), |v, s| v.secret(s))
        .now(now);
    verifier.verify(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())), body)
}

/// The signature headers hookbus sends for `body` with the scheme selected
/// by `scheme` and these secrets (the current one first), for message
/// `msg_id` at `timestamp`; `None` when a secret is malformed for the
/// scheme. Standard Webhooks also gets its `webhook-id` and
/// `webhook-timestamp` headers, as the sender adds them.
pub fn sign(
    scheme: u8,
    secrets: &[String],
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let signing = signing_scheme(scheme);
    let keys = secrets
        .iter()
        .map(|s| SigningKey::new(&Secret::new(s.as_str()), &signing))
        .collect::<Option<Vec<_>>>()?;
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let mut headers = signing::headers(&signing, &refs, msg_id, timestamp, body);
    if matches!(signing, Signing::StandardWebhooks) {
        headers.push(("webhook-id".to_string(), msg_id.to_string()));
        headers.push(("webhook-timestamp".to_string(), timestamp.to_string()));
    }
    Some(headers)
}
