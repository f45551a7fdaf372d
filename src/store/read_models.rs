//! The delivery log's records as the public read models of [`crate::log`]:
//! the one place that maps one to the other, so the log's types know
//! nothing of how they are stored.

use std::time::Duration;

use super::records::{AttemptRecord, DeliveryRecord, DeliveryState};
use crate::endpoint::EndpointId;
use crate::event::EventId;
use crate::log::{Attempt, AttemptQuery, Delivery, DeliveryStatus, ErrorKind, Trigger};
use crate::time;

impl From<AttemptRecord> for Attempt {
    fn from(r: AttemptRecord) -> Self {
        Attempt {
            endpoint: EndpointId(r.endpoint),
            event: EventId::from_u128(r.event),
            number: r.attempt,
            trigger: if r.manual {
                Trigger::Manual
            } else {
                Trigger::Scheduled
            },
            started_at: time::from_ms(r.started_ms),
            duration: Duration::from_micros(r.duration_us),
            status: r.status,
            succeeded: r.succeeded,
            error: r.error_kind.map(ErrorKind::from_code),
            error_message: r.error_message,
            response_body: r.response_body,
            response_truncated: r.response_truncated,
            request_headers: r.request_headers,
            request_body: r.request_body,
            request_truncated: r.request_truncated,
            response_headers: r.response_headers,
        }
    }
}

impl AttemptRecord {
    /// Whether `query` keeps this attempt, its tenant aside (the store
    /// does not know which endpoint belongs to which tenant).
    pub(crate) fn matches(&self, query: &AttemptQuery) -> bool {
        query.event.is_none_or(|e| e.as_u128() == self.event)
            && query.endpoint.is_none_or(|e| e.as_u64() == self.endpoint)
            && query.outcome.is_none_or(|s| s == self.succeeded)
            && query
                .since
                .is_none_or(|t| self.started_ms >= time::to_ms(t))
            && query.until.is_none_or(|t| self.started_ms < time::to_ms(t))
    }
}

impl DeliveryRecord {
    /// The delivery of `event` to `endpoint` as the host reads it.
    pub(crate) fn to_delivery(&self, endpoint: EndpointId, event: EventId) -> Delivery {
        let status = match self.state {
            DeliveryState::Waiting {
                next_attempt,
                due_ms,
            } => DeliveryStatus::Queued {
                next_attempt,
                due: time::from_ms(due_ms),
            },
            DeliveryState::InFlight { attempt } => DeliveryStatus::InFlight { attempt },
            DeliveryState::Delivered { attempts } => DeliveryStatus::Delivered { attempts },
            DeliveryState::Failed { attempts } => DeliveryStatus::Failed { attempts },
        };
        Delivery {
            endpoint,
            event,
            status,
            created_at: time::from_ms(self.created_ms),
            updated_at: time::from_ms(self.updated_ms),
            manual: self.manual,
        }
    }
}
