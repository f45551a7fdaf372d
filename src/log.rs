//! The delivery log as the host reads it: deliveries and their attempts.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::endpoint::EndpointId;
use crate::event::EventId;

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ErrorKind {
    /// No complete answer within the attempt's timeout.
    Timeout,
    /// The connection could not be opened, or was reset or closed early.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The receiver answered 3xx. Redirects are never followed.
    Redirect,
    /// The receiver answered a status other than 2xx or 3xx.
    Status,
    /// Refused by the SSRF guard: the host resolved to a private or
    /// reserved address the bus does not allow, or the URL is `http://`
    /// on an https-only bus. Nothing was sent.
    Blocked,
    /// Anything else, such as an answer that is not HTTP.
    Other,
}

impl ErrorKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            ErrorKind::Timeout => 1,
            ErrorKind::Connect => 2,
            ErrorKind::Dns => 3,
            ErrorKind::Tls => 4,
            ErrorKind::Redirect => 5,
            ErrorKind::Status => 6,
            ErrorKind::Other => 7,
            ErrorKind::Blocked => 8,
        }
    }

    pub(crate) fn from_code(code: u8) -> ErrorKind {
        match code {
            1 => ErrorKind::Timeout,
            2 => ErrorKind::Connect,
            3 => ErrorKind::Dns,
            4 => ErrorKind::Tls,
            5 => ErrorKind::Redirect,
            6 => ErrorKind::Status,
            8 => ErrorKind::Blocked,
            _ => ErrorKind::Other,
        }
    }

    /// A short stable name: `timeout`, `connect`, `dns`, `tls`, `redirect`,
    /// `status`, `blocked` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Status => "status",
            ErrorKind::Blocked => "blocked",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Trigger {
    /// The delivery's own schedule: the first attempt or a retry.
    Scheduled,
    /// A [`Bus::resend`](crate::Bus::resend) or
    /// [`Bus::recover`](crate::Bus::recover).
    Manual,
    /// A [`Bus::test_send`](crate::Bus::test_send); never stored.
    Test,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Test => "test",
        })
    }
}

/// One recorded attempt to deliver an event to an endpoint.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Attempt {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The event.
    pub event: EventId,
    /// Attempt number, starting at 1. A resend continues the numbering.
    pub number: u32,
    /// What started it.
    pub trigger: Trigger,
    /// When the request started.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::unix_ms"))]
    pub started_at: SystemTime,
    /// How long it took, until the response was read or the attempt failed.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::micros"))]
    pub duration: Duration,
    /// The HTTP status, if an answer arrived.
    pub status: Option<u16>,
    /// Whether the attempt counts as delivered.
    pub succeeded: bool,
    /// Why it failed, if it did.
    pub error: Option<ErrorKind>,
    /// A description of the failure (never contains secrets).
    pub error_message: Option<String>,
    /// The start of the response body, at most the bus's
    /// `response_body_limit` bytes.
    pub response_body: Vec<u8>,
    /// Whether the body was longer than what was kept.
    pub response_truncated: bool,
    /// The response's headers as received (at most 64, each value cut at
    /// 1 KiB). Empty when no answer arrived, and for attempts recorded
    /// before hookbus kept them.
    pub response_headers: Vec<(String, String)>,
    /// The request's headers as sent, with every signature, the secret and
    /// credential headers (`Authorization`, `Cookie`, API keys) replaced by
    /// `[redacted]`. Empty when nothing was sent, and for attempts recorded
    /// before hookbus kept them.
    pub request_headers: Vec<(String, String)>,
    /// The start of the request body as sent, at most the bus's
    /// `response_body_limit` bytes, with any secret in it replaced by
    /// `[redacted]`.
    pub request_body: Vec<u8>,
    /// Whether the request body was longer than what was kept.
    pub request_truncated: bool,
}

impl Attempt {
    /// The kept response body as text (invalid UTF-8 replaced).
    pub fn response_text(&self) -> String {
        String::from_utf8_lossy(&self.response_body).into_owned()
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("endpoint", &self.endpoint)
            .field("event", &self.event)
            .field("number", &self.number)
            .field("trigger", &self.trigger)
            .field("duration", &self.duration)
            .field("status", &self.status)
            .field("succeeded", &self.succeeded)
            .field("error", &self.error)
            .field("error_message", &self.error_message)
            .field("response_bytes", &self.response_body.len())
            .field("request_bytes", &self.request_body.len())
            .finish()
    }
}

/// Where a delivery of one event to one endpoint stands.
///
/// A delivery is *queued* from the moment it is created until an attempt
/// starts, and again between a failed attempt and its retry; queued and
/// in-flight deliveries together are the *unfinished* ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "state", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Queued for its next attempt (the first, or a retry).
    Queued {
        /// The number the next attempt will carry.
        next_attempt: u32,
        /// When it may start.
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::unix_ms"))]
        due: SystemTime,
    },
    /// An attempt was started and has no recorded outcome yet.
    InFlight {
        /// Its number.
        attempt: u32,
    },
    /// Delivered: an attempt succeeded.
    Delivered {
        /// The number of the attempt that succeeded.
        attempts: u32,
    },
    /// Every allowed attempt failed. Kept for inspection.
    Failed {
        /// How many attempts were made.
        attempts: u32,
    },
    /// Its tenant was deleted ([`Bus::delete_tenant`](crate::Bus::delete_tenant))
    /// before it was delivered: it is never sent (again).
    Cancelled {
        /// Attempts made, or started, before it was cancelled.
        attempts: u32,
        /// When.
        at: SystemTime,
    },
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryStatus::Queued { next_attempt, .. } => {
                write!(f, "queued (attempt {next_attempt} next)")
            }
            DeliveryStatus::InFlight { attempt } => write!(f, "attempt {attempt} in flight"),
            DeliveryStatus::Delivered { attempts } => write!(f, "delivered (attempt {attempts})"),
            DeliveryStatus::Failed { attempts } => write!(f, "failed after {attempts} attempts"),
            DeliveryStatus::Cancelled { attempts, .. } => {
                write!(f, "cancelled after {attempts} attempts")
            }
        }
    }
}

/// A delivery: one event to one endpoint.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Delivery {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The event.
    pub event: EventId,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When it was created (at publish).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::unix_ms"))]
    pub created_at: SystemTime,
    /// When its state last changed.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_support::unix_ms"))]
    pub updated_at: SystemTime,
    /// Its current round of attempts was started by a resend or recover.
    pub manual: bool,
}

/// Which attempts [`Bus::query_attempts`](crate::Bus::query_attempts)
/// returns: newest first (in the order their outcomes were logged, which
/// for overlapping attempts can differ from the order they started),
/// filtered. Paging is [`Bus::query_attempts`](crate::Bus::query_attempts)'s
/// `after` and `limit`, as for every listing (see [`Page`](crate::Page)).
#[derive(Clone, Debug, Default)]
#[must_use = "a query does nothing until passed to Bus::query_attempts"]
pub struct AttemptQuery {
    pub(crate) endpoint: Option<EndpointId>,
    pub(crate) event: Option<EventId>,
    pub(crate) outcome: Option<bool>,
    pub(crate) tenant: Option<crate::tenant::TenantId>,
    pub(crate) since: Option<SystemTime>,
    pub(crate) until: Option<SystemTime>,
}

impl AttemptQuery {
    /// Every attempt.
    pub fn new() -> Self {
        AttemptQuery::default()
    }
    /// Only attempts to this endpoint.
    pub fn endpoint(mut self, endpoint: EndpointId) -> Self {
        self.endpoint = Some(endpoint);
        self
    }
    /// Only attempts of this event.
    pub fn event(mut self, event: EventId) -> Self {
        self.event = Some(event);
        self
    }
    /// Only attempts to this tenant's endpoints (deleted ones included).
    pub fn tenant(mut self, tenant: &crate::tenant::TenantId) -> Self {
        self.tenant = Some(tenant.clone());
        self
    }
    /// Only successful (`true`) or failed (`false`) attempts.
    pub fn succeeded(mut self, succeeded: bool) -> Self {
        self.outcome = Some(succeeded);
        self
    }
    /// Only attempts started at or after `t`.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }
    /// Only attempts started before `t`.
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }
}

/// Which deliveries of an endpoint [`Bus::endpoint_deliveries`](crate::Bus::endpoint_deliveries) lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DeliveryFilter {
    /// Unfinished: queued (for a first attempt or a retry) or in flight,
    /// oldest first.
    Unfinished,
    /// Delivered: newest first.
    Delivered,
    /// Failed after their last attempt: newest first.
    Failed,
}
