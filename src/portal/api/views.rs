//! The JSON shapes of the API's objects (listed in the OpenAPI document):
//! the read models as a client sees them. Times are Unix milliseconds in
//! fields ending in `_ms`; no secret is ever in one of them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::catalog::EventType;
use crate::delivery::{is_credential_header, REDACTED};
use crate::endpoint::{Endpoint, EndpointStatus, PauseReason};
use crate::log::{Attempt, Delivery, DeliveryStatus, ErrorKind, Trigger};
use crate::stats::EndpointHealth;
use crate::tenant::Tenant;
use crate::time::to_ms;

pub(crate) fn endpoint(
    e: &Endpoint,
    health: Option<&EndpointHealth>,
    description: Option<&str>,
) -> Value {
    let c = e.config();
    let (status, reason, since) = status(e.status());
    json!({
        "id": e.id().to_string(),
        "tenant": e.tenant().as_str(),
        "name": c.name,
        "description": description,
        "url": c.url,
        "events": c.events,
        "headers": header_list(c.headers.iter().map(|(n, v)| {
            let shown = if is_credential_header(n) { REDACTED } else { v.as_str() };
            (n.as_str(), shown)
        })),
        "filters": c.attribute_filters.iter().map(|(k, values)| json!({"key": k, "values": values})).collect::<Vec<_>>(),
        "has_secret": c.secret.is_some(),
        "status": status,
        "paused_reason": reason,
        "paused_since_ms": since,
        "created_ms": to_ms(e.created_at()),
        "previous_secrets_expire_ms": e.previous_secrets_expire_at().into_iter().map(to_ms).collect::<Vec<_>>(),
        "health": health.map(self::health),
    })
}

fn status(s: EndpointStatus) -> (&'static str, Option<&'static str>, Option<u64>) {
    match s {
        EndpointStatus::Active => ("active", None, None),
        EndpointStatus::Disabled => ("disabled", None, None),
        EndpointStatus::Paused { reason, since } => {
            let reason = match reason {
                PauseReason::Manual => "manual",
                PauseReason::ConsecutiveFailures(_) => "consecutive_failures",
                PauseReason::Gone => "gone",
            };
            ("paused", Some(reason), Some(to_ms(since)))
        }
    }
}

pub(crate) fn endpoint_status(s: EndpointStatus) -> &'static str {
    status(s).0
}

pub(crate) fn health(h: &EndpointHealth) -> Value {
    json!({
        "queued": h.queued,
        "in_flight": h.in_flight,
        "last_success_ms": h.last_success.map(to_ms),
        "last_failure_ms": h.last_failure.map(to_ms),
        "consecutive_failed_attempts": h.consecutive_failed_attempts,
        "consecutive_failed_deliveries": h.consecutive_failed_deliveries,
        "oldest_unfinished_ms": h.oldest_unfinished.map(to_ms),
    })
}

pub(crate) fn header_list<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Array(
        headers
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

/// A kept body: as text when it is UTF-8, else as base64.
pub(crate) fn body(bytes: &[u8], truncated: bool) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({"text": text, "base64": null, "truncated": truncated}),
        Err(_) => json!({"text": null, "base64": STANDARD.encode(bytes), "truncated": truncated}),
    }
}

pub(crate) fn delivery(d: &Delivery, event_type: Option<&str>) -> Value {
    let (state, attempts, next) = match d.status {
        DeliveryStatus::Queued { next_attempt, due } => {
            ("queued", next_attempt.saturating_sub(1), Some(to_ms(due)))
        }
        DeliveryStatus::InFlight { attempt } => ("in_flight", attempt, None),
        DeliveryStatus::Delivered { attempts } => ("delivered", attempts, None),
        DeliveryStatus::Failed { attempts } => ("failed", attempts, None),
        DeliveryStatus::Cancelled { attempts, .. } => ("cancelled", attempts, None),
    };
    json!({
        "endpoint": d.endpoint.to_string(),
        "event": d.event.to_string(),
        "event_type": event_type,
        "state": state,
        "attempts": attempts,
        "next_attempt_ms": next,
        "created_ms": to_ms(d.created_at),
        "updated_ms": to_ms(d.updated_at),
        "manual": d.manual,
    })
}

/// An attempt's id: endpoint, event and number, which name it uniquely
/// (a resend continues the numbering).
pub(crate) fn attempt_id(a: &Attempt) -> String {
    format!("{}.{}.{}", a.endpoint, a.event, a.number)
}

pub(crate) fn attempt(a: &Attempt, event_type: Option<&str>) -> Value {
    json!({
        "id": attempt_id(a),
        "endpoint": a.endpoint.to_string(),
        "event": a.event.to_string(),
        "event_type": event_type,
        "number": a.number,
        "trigger": match a.trigger {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Test => "test",
        },
        "started_ms": to_ms(a.started_at),
        "duration_us": u64::try_from(a.duration.as_micros()).unwrap_or(u64::MAX),
        "status_code": a.status,
        "succeeded": a.succeeded,
        "error_kind": a.error.map(ErrorKind::as_str),
        "error_message": a.error_message,
    })
}

/// An attempt with the request as sent (secrets already redacted by the
/// log) and the response as received.
pub(crate) fn attempt_detail(a: &Attempt, event_type: Option<&str>) -> Value {
    let mut v = attempt(a, event_type);
    let pairs = |h: &'_ [(String, String)]| {
        header_list(
            h.iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect::<Vec<_>>()
                .into_iter(),
        )
    };
    v["request"] = json!({
        "headers": pairs(&a.request_headers),
        "body": body(&a.request_body, a.request_truncated),
    });
    v["response"] = json!({
        "status_code": a.status,
        "headers": pairs(&a.response_headers),
        "body": body(&a.response_body, a.response_truncated),
    });
    v
}

pub(crate) fn tenant(t: &Tenant) -> Value {
    json!({
        "id": t.id.as_str(),
        "display_name": t.display_name,
        "labels": t.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "endpoints": t.endpoints,
        "updated_ms": t.updated_at.map(to_ms),
    })
}

pub(crate) fn event_type(t: &EventType) -> Value {
    json!({
        "name": t.name,
        "description": t.description,
        "example": t.example,
        "schema": t.schema,
    })
}
