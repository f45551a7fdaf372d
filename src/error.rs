//! The one error type of hookbus.

use std::fmt;

use crate::endpoint::EndpointId;

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
    /// Another bus, in this process or another, has the directory open.
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
    /// The storage engine failed (I/O error, full disk, corruption found by sled).
    Storage(sled::Error),
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
            Error::Storage(e) => write!(f, "storage error: {e}"),
            Error::ShutDown => write!(f, "the bus has been shut down"),
            Error::WorkerPanicked { count } => write!(f, "{count} background thread(s) panicked"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidPayload(e) => Some(e),
            Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e)
    }
}

/// Shorthand for results of hookbus calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        // Errors travel through every publish; keep them cheap to move.
        assert!(
            std::mem::size_of::<Error>() <= 64,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
