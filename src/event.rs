//! Events: what the host publishes, and the ids the bus gives them.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::time;

/// Longest accepted event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// The id the bus gives an event: unique, and sortable by publish time.
///
/// 128 bits laid out like a ULID: 48 bits of milliseconds since the Unix
/// epoch, then 80 bits that start random and count up within the same
/// millisecond, so ids from one bus are strictly increasing. Rendered as
/// `evt_` followed by 26 Crockford base-32 characters, which sort in the same
/// order as the numbers. It is sent as the `webhook-id` header and is the
/// receiver's deduplication key: it never changes across attempts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u128);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl EventId {
    /// The raw 128-bit value.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Rebuilds an id from its raw value.
    pub fn from_u128(v: u128) -> Self {
        EventId(v)
    }

    /// Milliseconds since the Unix epoch at which the id was generated.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i as u32;
            *c = CROCKFORD[((self.0 >> shift) & 0x1f) as usize];
        }
        // The alphabet is ASCII, so this cannot fail.
        f.write_str("evt_")?;
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The string is not an `evt_…` id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEventIdError;

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an event id (expected evt_ and 26 base-32 characters)")
    }
}

impl std::error::Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let body = s.strip_prefix("evt_").ok_or(ParseEventIdError)?;
        if body.len() != 26 {
            return Err(ParseEventIdError);
        }
        let mut v: u128 = 0;
        for (i, b) in body.bytes().enumerate() {
            let digit = CROCKFORD
                .iter()
                .position(|&c| c == b.to_ascii_uppercase())
                .ok_or(ParseEventIdError)? as u128;
            // The first character carries only 3 bits (26 * 5 = 130).
            if i == 0 && digit > 7 {
                return Err(ParseEventIdError);
            }
            v = (v << 5) | digit;
        }
        Ok(EventId(v))
    }
}

/// Hands out strictly increasing [`EventId`]s.
pub(crate) struct IdGenerator {
    last: Mutex<u128>,
    /// Within a millisecond, step up by a random amount instead of one:
    /// replicas that raise their floor to the same stored id then still
    /// make different ids (see [`IdGenerator::shared`]).
    spread: bool,
}

/// Largest random step between two ids of one millisecond on a shared
/// store: 2^40, so 2^40 ids fit in a millisecond and two replicas stepping
/// from one floor collide with odds of 2^-40.
const SPREAD_STEP: u64 = 1 << 40;

impl IdGenerator {
    /// `floor` is the largest id already stored; new ids are always above it,
    /// even if the wall clock went backwards since.
    pub(crate) fn new(floor: Option<EventId>) -> Self {
        IdGenerator {
            last: Mutex::new(floor.map_or(0, |id| id.0)),
            spread: false,
        }
    }

    /// For a store shared by replicas, which raise their floor to the ids
    /// the others store: within a millisecond, ids step up by a random
    /// amount, so two replicas stepping from one floor do not make the
    /// same id. (Should they still, the publish finds the id taken and
    /// fails rather than acknowledging an event it did not store.)
    #[cfg(feature = "postgres")]
    pub(crate) fn shared(floor: Option<EventId>) -> Self {
        IdGenerator {
            spread: true,
            ..IdGenerator::new(floor)
        }
    }

    /// A new id; `reserve` runs with it before any later id is handed out,
    /// so what it records is ordered like the ids.
    pub(crate) fn next_with(&self, reserve: impl FnOnce(EventId)) -> EventId {
        let ms = u128::from(time::now_ms() & ((1 << 48) - 1));
        let mut last = self.last.lock();
        // A new millisecond starts from fresh randomness; within the same
        // (or an earlier) millisecond, count up: ids stay increasing and
        // unique, and no random draw is needed.
        let id = if ms > *last >> 80 {
            (ms << 80) | random_80()
        } else if self.spread {
            *last + 1 + u128::from(fastrand::u64(..SPREAD_STEP))
        } else {
            *last + 1
        };
        *last = id;
        reserve(EventId(id));
        EventId(id)
    }

    pub(crate) fn next(&self) -> EventId {
        self.next_with(|_| {})
    }

    /// Ids handed out from now on are above `id` (one another process
    /// stored: on a shared store, so that a publish that begins after
    /// another replica's returned gets the larger id whatever the clocks).
    #[cfg(feature = "postgres")]
    pub(crate) fn raise_floor(&self, id: EventId) {
        let mut last = self.last.lock();
        *last = (*last).max(id.0);
    }

    /// Runs `f` with the last id handed out, while no new one can be.
    pub(crate) fn with_last<R>(&self, f: impl FnOnce(u128) -> R) -> R {
        f(*self.last.lock())
    }
}

/// 80 random bits with the top bit clear, leaving room to count up within a
/// millisecond without spilling into the timestamp.
fn random_80() -> u128 {
    let mut buf = [0u8; 16];
    if getrandom::fill(&mut buf[6..]).is_err() {
        // No OS randomness: fall back to a non-cryptographic source; ids stay
        // unique because the generator counts up past the last stored id.
        buf[6..].copy_from_slice(&fastrand::u128(..).to_be_bytes()[6..]);
    }
    buf[6] &= 0x7f;
    u128::from_be_bytes(buf)
}

/// An event to publish: a type, a JSON payload and the time it happened.
///
/// ```
/// # use hookbus::Event;
/// let event = Event::new("lead.create", &serde_json::json!({"id": 42}))?
///     .attribute("campaign", "spring");
/// # Ok::<_, hookbus::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "an event does nothing until passed to Bus::publish"]
pub struct Event {
    pub(crate) event_type: String,
    pub(crate) payload: Box<[u8]>,
    /// Microseconds since the Unix epoch, if the host set it.
    pub(crate) occurred_at_us: Option<u64>,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) idempotency_key: Option<String>,
    /// The tenant key as given; `None` is the default tenant.
    pub(crate) tenant: Option<String>,
}

impl Event {
    /// An event whose payload is `payload` serialized to JSON.
    ///
    /// Fails with [`Error::InvalidPayload`] when serialization fails. The
    /// event type is checked when the event is published.
    pub fn new<T: Serialize + ?Sized>(event_type: impl Into<String>, payload: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(payload).map_err(Error::InvalidPayload)?;
        Ok(Self::with_checked_json(event_type.into(), bytes))
    }

    /// An event whose payload is already-encoded JSON.
    ///
    /// Fails with [`Error::InvalidPayload`] when the bytes are not one valid
    /// JSON value.
    pub fn from_json_bytes(
        event_type: impl Into<String>,
        json: impl Into<Vec<u8>>,
    ) -> Result<Self> {
        let bytes = json.into();
        // A full parse, not just a grammar check: numbers out of range and
        // lone surrogates are refused here rather than failing every
        // attempt of a format that reads the payload.
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(Error::InvalidPayload)?;
        Ok(Self::with_checked_json(event_type.into(), bytes))
    }

    fn with_checked_json(event_type: String, payload: Vec<u8>) -> Self {
        Event {
            event_type,
            payload: payload.into_boxed_slice(),
            occurred_at_us: None,
            attributes: Vec::new(),
            idempotency_key: None,
            tenant: None,
        }
    }

    /// Publishing again with the same key within the bus's
    /// `idempotency_window` (24 h by default) stores nothing and returns the
    /// first event's id (Genesy's idempotency by event key). 1 to 256 bytes.
    /// Keys are per tenant: the same key in two tenants names two events.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The tenant (customer) the event belongs to: it reaches that tenant's
    /// matching endpoints and no other. The key is checked at publish
    /// ([`Error::InvalidTenant`]). Defaults to the default tenant.
    pub fn tenant(mut self, key: impl AsRef<str>) -> Self {
        self.tenant = Some(key.as_ref().to_string());
        self
    }

    /// When the event happened. Defaults to the moment of `publish`.
    ///
    /// Kept to the microsecond (finer parts are dropped; times before 1970
    /// read as 1970). Formats that print milliseconds truncate it; Growth-X
    /// prints all six digits.
    pub fn occurred_at(mut self, at: SystemTime) -> Self {
        self.occurred_at_us = Some(time::to_us(at));
        self
    }

    /// Attaches a key/value attribute (a tenant, a campaign id…), stored with
    /// the event for filters and custom envelopes.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The payload as JSON bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads can hold personal data: show only their size.
        f.debug_struct("Event")
            .field("event_type", &self.event_type)
            .field("payload_bytes", &self.payload.len())
            .field("occurred_at_us", &self.occurred_at_us)
            .field("attributes", &self.attributes)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// Checks an event type: 1 to 128 bytes of `A-Z a-z 0-9 . _ - :`.
pub(crate) fn validate_event_type(t: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidEventType {
            event_type: t.to_string(),
            reason,
        })
    };
    if t.is_empty() {
        return bad("empty");
    }
    if t.len() > MAX_EVENT_TYPE_LEN {
        return bad("longer than 128 bytes");
    }
    if !t.bytes().all(is_type_byte) {
        return bad("only A-Z a-z 0-9 . _ - : are allowed");
    }
    Ok(())
}

pub(crate) fn is_type_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':')
}

/// An event as stored by the bus.
#[derive(Clone)]
pub struct StoredEvent {
    /// The event's id.
    pub id: EventId,
    /// The event type.
    pub event_type: String,
    /// The payload, JSON bytes.
    pub payload: Vec<u8>,
    /// When it happened, to the microsecond (to the millisecond for events
    /// stored before hookbus kept microseconds).
    pub occurred_at: SystemTime,
    /// Attributes given at publish.
    pub attributes: Vec<(String, String)>,
    /// The tenant it was published to.
    pub tenant: crate::tenant::TenantId,
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEvent")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("payload_bytes", &self.payload.len())
            .field("occurred_at", &self.occurred_at)
            .field("tenant", &self.tenant)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_as_text() {
        let gen = IdGenerator::new(None);
        let ids: Vec<EventId> = (0..1000).map(|_| gen.next()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
        }
        for id in &ids {
            assert_eq!(id.to_string().parse::<EventId>().unwrap(), *id);
        }
        let max = EventId(u128::MAX);
        assert_eq!(max.to_string().parse::<EventId>().unwrap(), max);
    }

    #[test]
    fn ids_stay_above_the_stored_floor() {
        let floor = EventId(u128::MAX - 10);
        let gen = IdGenerator::new(Some(floor));
        assert!(gen.next() > floor);
    }

    #[test]
    fn bad_ids_are_rejected() {
        for s in [
            "",
            "evt_",
            "evt_123",
            "xyz_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "evt_01ARZ3NDEKTSV4RRFFQ69G5FA!",
            "evt_81ARZ3NDEKTSV4RRFFQ69G5FAV",
        ] {
            assert!(s.parse::<EventId>().is_err(), "{s}");
        }
    }

    #[test]
    fn event_types_are_checked() {
        assert!(validate_event_type("lead.create").is_ok());
        assert!(validate_event_type("contact_revealed").is_ok());
        for t in ["", "lead.*", "a b", &"x".repeat(129)] {
            assert!(
                matches!(validate_event_type(t), Err(Error::InvalidEventType { .. })),
                "{t}"
            );
        }
    }

    #[test]
    fn raw_payload_must_be_json() {
        assert!(Event::from_json_bytes("a", b"{\"x\":1}".to_vec()).is_ok());
        assert!(matches!(
            Event::from_json_bytes("a", b"{x".to_vec()),
            Err(Error::InvalidPayload(_))
        ));
        assert!(matches!(
            Event::from_json_bytes("a", b"1 2".to_vec()),
            Err(Error::InvalidPayload(_))
        ));
        // Grammatical, but no strict parser accepts them.
        for strict in [&b"1e400"[..], br#""\ud800""#] {
            assert!(
                Event::from_json_bytes("a", strict.to_vec()).is_err(),
                "{strict:?}"
            );
        }
    }
}
