//! The error types of hookbus: [`Error`] for every call, [`PublishError`]
//! for `publish` (the error and the event back), [`StorageError`] for the
//! storage engine behind both.

use std::fmt;
use std::io;

use crate::endpoint::EndpointId;
use crate::event::Event;

/// Everything that can go wrong in a hookbus call.
///
/// Variants are typed so that a caller can react to the ones it can handle
/// (bad input, an unknown endpoint, a shut-down bus) and report the rest.
/// Secrets never appear in an error or its `Display` output.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint URL that does not parse, or is not `http`/`https`.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An endpoint field other than the URL is invalid (empty name, bad
    /// header name or value, zero attempts, zero timeout, malformed secret…).
    InvalidEndpoint {
        /// The field that was refused.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An event-type pattern of an endpoint subscription is malformed.
    ///
    /// Valid patterns are an exact type (`lead.create`), a prefix wildcard
    /// (`lead.*`) or `*` for every type.
    InvalidEventPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An event type that is empty, too long or uses characters outside
    /// `A-Z a-z 0-9 . _ - :`.
    InvalidEventType {
        /// The event type as given.
        event_type: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The payload could not be serialized, or raw bytes are not valid JSON.
    InvalidPayload(serde_json::Error),
    /// The payload does not match the JSON Schema of its event type in the
    /// catalog ([`BusBuilder::validate_payloads`](crate::BusBuilder::validate_payloads),
    /// feature `schema`). Nothing was stored.
    PayloadMismatch(Box<crate::catalog::PayloadMismatch>),
    /// The payload is larger than the bus's configured limit.
    PayloadTooLarge {
        /// Size of the serialized payload in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A bus setting is invalid (for example a malformed allowed network).
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An idempotency key that is empty or too long.
    InvalidIdempotencyKey {
        /// Why it was refused.
        reason: &'static str,
    },
    /// A tenant key that is empty, too long or uses characters outside
    /// `A-Z a-z 0-9 - _ . : @` (see [`TenantId`](crate::TenantId)), or
    /// tenant metadata out of bounds. Nothing was written.
    InvalidTenant {
        /// The key as given (cut at 136 characters).
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No tenant with this key has endpoints or saved metadata.
    TenantNotFound(crate::tenant::TenantId),
    /// No event with this id is stored (never published, or purged by
    /// retention).
    EventNotFound(crate::event::EventId),
    /// The delivery is still queued or being attempted, so it cannot be
    /// resent yet.
    DeliveryInProgress {
        /// The endpoint.
        endpoint: EndpointId,
        /// The event.
        event: crate::event::EventId,
    },
    /// No endpoint with this id exists.
    EndpointNotFound(EndpointId),
    /// The directory holds something that is not a hookbus database.
    ForeignDirectory(String),
    /// Another bus, in this process or another, has the directory open
    /// (after a wait of up to 1 s at open for a handle just dropped to
    /// let go of it).
    AlreadyOpen(String),
    /// The database was written by a newer, incompatible hookbus.
    IncompatibleFormat {
        /// The format version found on disk.
        found: u8,
        /// The newest format version this build understands.
        supported: u8,
    },
    /// A stored record failed to decode: the database is damaged.
    Corrupt {
        /// What kind of record it was.
        what: &'static str,
        /// Details of the failure.
        detail: String,
    },
    /// The storage engine failed (I/O error, full disk, corruption found by
    /// the engine). Opaque: see [`StorageError`] for what it tells.
    Storage(StorageError),
    /// An I/O operation outside the storage engine failed: creating or
    /// reading the database directory, starting a background thread.
    Io {
        /// What hookbus was doing, for example `"starting the janitor thread"`.
        action: &'static str,
        /// The operating system's error; also returned by
        /// [`source`](std::error::Error::source).
        source: io::Error,
    },
    /// The bus has been shut down; no more publishes or changes are accepted.
    ShutDown,
    /// One or more background threads panicked; reported by [`Bus::shutdown`](crate::Bus::shutdown).
    WorkerPanicked {
        /// How many threads panicked.
        count: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => {
                write!(f, "invalid endpoint url {url:?}: {reason}")
            }
            Error::InvalidEndpoint { field, reason } => {
                write!(f, "invalid endpoint {field}: {reason}")
            }
            Error::InvalidEventPattern { pattern, reason } => {
                write!(f, "invalid event pattern {pattern:?}: {reason}")
            }
            Error::InvalidEventType { event_type, reason } => {
                write!(f, "invalid event type {event_type:?}: {reason}")
            }
            Error::InvalidPayload(e) => write!(f, "invalid JSON payload: {e}"),
            Error::PayloadMismatch(m) => write!(
                f,
                "payload does not match the schema of {:?} at {:?}: {}",
                m.event_type, m.path, m.reason
            ),
            Error::PayloadTooLarge { size, limit } => {
                write!(
                    f,
                    "payload of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            Error::InvalidConfig { setting, reason } => {
                write!(f, "invalid setting {setting}: {reason}")
            }
            Error::InvalidIdempotencyKey { reason } => {
                write!(f, "invalid idempotency key: {reason}")
            }
            Error::InvalidTenant { key, reason } => {
                write!(f, "invalid tenant {key:?}: {reason}")
            }
            Error::TenantNotFound(id) => write!(f, "tenant {id} not found"),
            Error::EventNotFound(id) => write!(f, "event {id} not found"),
            Error::DeliveryInProgress { endpoint, event } => {
                write!(
                    f,
                    "the delivery of {event} to {endpoint} is still in progress"
                )
            }
            Error::EndpointNotFound(id) => write!(f, "endpoint {id} not found"),
            Error::ForeignDirectory(why) => write!(f, "not a hookbus database: {why}"),
            Error::AlreadyOpen(path) => write!(f, "{path} is already open in another bus"),
            Error::IncompatibleFormat { found, supported } => write!(
                f,
                "database format version {found} is newer than the supported version {supported}"
            ),
            Error::Corrupt { what, detail } => write!(f, "corrupt {what} record: {detail}"),
            // Transparent: the storage error says what failed; its cause
            // is this error's source.
            Error::Storage(e) => fmt::Display::fmt(e, f),
            Error::Io { action, .. } => write!(f, "I/O failed while {action}"),
            Error::ShutDown => write!(f, "the bus has been shut down"),
            Error::WorkerPanicked { count } => write!(f, "{count} background thread(s) panicked"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidPayload(e) => Some(e),
            Error::Storage(e) => e.source(),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}

/// The storage engine failed.
///
/// Opaque on purpose: the engine behind hookbus (sled today) is not part of
/// the API. [`Display`](fmt::Display) says what kind of failure it was;
/// [`source`](std::error::Error::source) is the cause (the operating
/// system's [`io::Error`] for I/O failures, the engine's report otherwise).
pub struct StorageError {
    // Boxed: errors travel through every call and stay one word here.
    cause: Box<Cause>,
}

enum Cause {
    Io(io::Error),
    Engine(EngineError),
}

/// A failure the engine reports in words only (a bug it detected, a damaged
/// file): the cause of a [`StorageError`] that is not an I/O failure.
#[derive(Debug)]
struct EngineError(String);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

impl StorageError {
    /// An I/O failure of the engine.
    pub(crate) fn io(e: io::Error) -> Self {
        StorageError {
            cause: Box::new(Cause::Io(e)),
        }
    }

    /// Any other failure of the engine, as the engine describes it.
    pub(crate) fn engine(report: String) -> Self {
        StorageError {
            cause: Box::new(Cause::Engine(EngineError(report))),
        }
    }

    /// The operating system's error, if the engine failed on I/O (a full
    /// disk, a permission, a vanished file).
    pub fn io_error(&self) -> Option<&io::Error> {
        match &*self.cause {
            Cause::Io(e) => Some(e),
            Cause::Engine(_) => None,
        }
    }

    /// The kind of the I/O failure ([`io::ErrorKind::StorageFull`] for a
    /// full disk, for example); `None` if the failure was not I/O.
    pub fn io_error_kind(&self) -> Option<io::ErrorKind> {
        self.io_error().map(io::Error::kind)
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause is the source, not repeated here; the I/O kind is a
        // classification that keeps one-line logs useful.
        match &*self.cause {
            Cause::Io(e) => write!(f, "storage I/O failed ({})", e.kind()),
            Cause::Engine(_) => f.write_str("the storage engine failed"),
        }
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StorageError");
        match &*self.cause {
            Cause::Io(e) => d.field("io", e),
            Cause::Engine(e) => d.field("engine", &e.0),
        };
        d.finish()
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.cause {
            Cause::Io(e) => Some(e),
            Cause::Engine(e) => Some(e),
        }
    }
}

/// A failed [`Bus::publish`](crate::Bus::publish): the error, and the event
/// handed back so that it can be published again without a copy kept
/// beforehand (as crossbeam's `SendError<T>` hands back its message).
///
/// `?` turns it into an [`Error`] in a function returning
/// [`hookbus::Result`](crate::Result). Display and source are the error's.
///
/// ```no_run
/// # use hookbus::{Bus, Event};
/// # fn demo(bus: &Bus, event: Event) -> hookbus::Result<()> {
/// match bus.publish(event) {
///     Ok(id) => println!("stored {id}"),
///     Err(failed) if matches!(failed.error(), hookbus::Error::Storage(_)) => {
///         // Keep it for a later try (give events an idempotency key so a
///         // retry after an uncertain failure cannot store them twice).
///         let _event = failed.into_event();
///     }
///     Err(failed) => return Err(failed.into()),
/// }
/// # Ok(()) }
/// ```
pub struct PublishError {
    // Boxed: an event is ~100 bytes and publish is the hot path; the
    // result stays small when the publish succeeds.
    parts: Box<(Error, Event)>,
}

impl PublishError {
    pub(crate) fn new(error: Error, event: Event) -> Self {
        PublishError {
            parts: Box::new((error, event)),
        }
    }

    /// Why the publish failed.
    pub fn error(&self) -> &Error {
        &self.parts.0
    }

    /// The event that was not published (or, after a storage failure, may
    /// or may not have been stored; see [`Bus::publish`](crate::Bus::publish)).
    pub fn event(&self) -> &Event {
        &self.parts.1
    }

    /// The event back, dropping the error.
    pub fn into_event(self) -> Event {
        self.parts.1
    }

    /// The error, dropping the event.
    pub fn into_error(self) -> Error {
        self.parts.0
    }

    /// The error and the event.
    pub fn into_parts(self) -> (Error, Event) {
        *self.parts
    }
}

impl fmt::Debug for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The event's Debug shows no payload bytes.
        f.debug_struct("PublishError")
            .field("error", self.error())
            .field("event", self.event())
            .finish()
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.error(), f)
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error().source()
    }
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        e.into_error()
    }
}

/// Shorthand for results of hookbus calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    use std::error::Error as _;

    #[test]
    fn error_stays_small() {
        // Errors travel through every publish; keep them cheap to move.
        assert!(
            std::mem::size_of::<Error>() <= 64,
            "{}",
            std::mem::size_of::<Error>()
        );
        assert_eq!(
            std::mem::size_of::<StorageError>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<PublishError>(),
            std::mem::size_of::<usize>()
        );
        // publish's result: the event id it returns (16 bytes, aligned to
        // 16) and room for a tag, not an error and an event inline.
        assert!(
            std::mem::size_of::<Result<crate::EventId, PublishError>>()
                <= 2 * std::mem::size_of::<crate::EventId>()
        );
    }

    #[test]
    fn storage_causes_are_sources_not_repeated_in_display() {
        let full = Error::Storage(StorageError::io(io::Error::new(
            io::ErrorKind::StorageFull,
            "No space left on device (os error 28)",
        )));
        let shown = full.to_string();
        let cause = full.source().expect("the I/O error is the source");
        assert_eq!(cause.to_string(), "No space left on device (os error 28)");
        assert!(!shown.contains("No space left"), "{shown}");
        assert!(cause.source().is_none());
        let Error::Storage(se) = &full else {
            unreachable!()
        };
        assert_eq!(se.io_error_kind(), Some(io::ErrorKind::StorageFull));

        let bug = StorageError::engine("Unexpected bug has happened: x".into());
        assert_eq!(bug.to_string(), "the storage engine failed");
        assert_eq!(
            bug.source().map(|c| c.to_string()),
            Some("Unexpected bug has happened: x".to_string())
        );
        assert!(bug.io_error().is_none());

        let io = Error::Io {
            action: "starting the janitor thread",
            source: io::Error::new(io::ErrorKind::OutOfMemory, "cannot allocate"),
        };
        assert_eq!(
            io.to_string(),
            "I/O failed while starting the janitor thread"
        );
        assert_eq!(io.source().unwrap().to_string(), "cannot allocate");
    }

    #[test]
    fn publish_errors_hand_the_event_back() {
        let event = Event::new("a.b", &1).unwrap().idempotency_key("k");
        let failed = PublishError::new(Error::ShutDown, event);
        assert_eq!(failed.to_string(), Error::ShutDown.to_string());
        assert!(matches!(failed.error(), Error::ShutDown));
        assert_eq!(failed.event().event_type(), "a.b");
        let (error, back) = failed.into_parts();
        assert!(matches!(error, Error::ShutDown));
        assert_eq!(back.payload(), b"1");
        // `?` in a function returning hookbus::Result.
        fn host(r: std::result::Result<(), PublishError>) -> Result<()> {
            r?;
            Ok(())
        }
        let again = PublishError::new(Error::ShutDown, back);
        assert!(matches!(host(Err(again)), Err(Error::ShutDown)));
        // And into a boxed error, for hosts that use those.
        fn boxed(
            r: std::result::Result<(), PublishError>,
        ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
            r?;
            Ok(())
        }
        let event = Event::new("a.b", &2).unwrap();
        assert!(boxed(Err(PublishError::new(Error::ShutDown, event))).is_err());
    }
}
