//! One delivery attempt, from the stored state to the recorded outcome.
//!
//! The order of writes is what makes a crash safe:
//!
//! 1. Before any attempt after the first, the delivery is stored as
//!    `InFlight { attempt }` and flushed. A restart therefore never sends a
//!    lower attempt number than one a receiver may already have seen; it
//!    resends the in-flight attempt with the same number. (Attempt 1 needs
//!    no such write: the stored state already says 1.)
//! 2. The request is built, signed with a fresh timestamp and sent.
//! 3. The attempt log entry and the next delivery state are written in one
//!    atomic batch, made durable by the background flush. If the process
//!    dies before that, the attempt is made again after restart: delivery is
//!    at least once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Lane, Route, Shared};
use crate::endpoint::Signing;
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::formats;
use crate::http::{HttpOutcome, HttpRequest};
use crate::log::ErrorKind;
use crate::signing;
use crate::store::records::{AttemptRecord, DeliveryRecord, DeliveryState, EventRecord};
use crate::time::now_ms;

/// How long a delivery waits before being tried again after the store
/// itself failed (full disk, I/O error).
const STORAGE_RETRY: Duration = Duration::from_secs(1);

pub(crate) fn deliver(shared: &Arc<Shared>, lane: &Arc<Lane>, event: EventId) {
    if let Err(e) = try_deliver(shared, lane, event) {
        tracing::error!(endpoint = %lane.id, %event, error = %e, "storage failed around a delivery; will retry");
        let due = now_ms() + STORAGE_RETRY.as_millis() as u64;
        lane.schedule(shared, due, event);
    }
}

fn try_deliver(shared: &Arc<Shared>, lane: &Arc<Lane>, event_id: EventId) -> Result<()> {
    let store = &shared.store;
    let Some(delivery) = store.delivery(lane.id, event_id)? else {
        // Removed with its endpoint.
        return Ok(());
    };
    let route = lane.route();
    let now = now_ms();
    let attempt = match delivery.state {
        DeliveryState::Waiting {
            next_attempt,
            due_ms,
        } => {
            if due_ms > now {
                lane.schedule(shared, due_ms, event_id);
                return Ok(());
            }
            next_attempt
        }
        DeliveryState::InFlight { attempt } => attempt,
        DeliveryState::Delivered { .. } | DeliveryState::Failed { .. } => return Ok(()),
    };
    if attempt > route.max_attempts {
        // max_attempts was lowered below what this delivery already used.
        let state = DeliveryState::Failed {
            attempts: attempt - 1,
        };
        store.put_delivery(lane.id, event_id, &updated(&delivery, state, now))?;
        return Ok(());
    }
    if attempt > 1 && delivery.state != (DeliveryState::InFlight { attempt }) {
        let state = DeliveryState::InFlight { attempt };
        store.put_delivery(lane.id, event_id, &updated(&delivery, state, now))?;
        store.commit()?;
    }

    let event = match store.event(event_id) {
        Ok(Some(event)) => event,
        Ok(None) => {
            return give_up(
                shared,
                lane,
                event_id,
                &delivery,
                attempt,
                "event record missing".into(),
            )
        }
        Err(Error::Corrupt { detail, .. }) => {
            return give_up(
                shared,
                lane,
                event_id,
                &delivery,
                attempt,
                format!("event record corrupt: {detail}"),
            )
        }
        Err(e) => return Err(e),
    };
    let mut outcome = send(shared, lane, &route, event_id, &event, attempt);
    judge(&route, &mut outcome);
    let succeeded = outcome.error.is_none();
    let next = route
        .retry
        .after_attempt(attempt, succeeded, route.max_attempts, now_ms());
    tracing::debug!(
        endpoint = %lane.id,
        event = %event_id,
        attempt,
        status = outcome.status,
        error = outcome.error.as_ref().map(|(k, _)| k.as_str()),
        duration_ms = outcome.duration.as_millis() as u64,
        "attempt finished"
    );
    if let DeliveryState::Failed { attempts } = next {
        tracing::warn!(endpoint = %lane.id, event = %event_id, attempts, "delivery failed after its last attempt");
    }
    let record = attempt_record(lane, event_id, attempt, now, &outcome);
    store.record_attempt(&record, &updated(&delivery, next, now_ms()))?;
    if let DeliveryState::Waiting { due_ms, .. } = next {
        lane.schedule(shared, due_ms, event_id);
    }
    Ok(())
}

/// Builds, signs and posts one attempt.
fn send(
    shared: &Shared,
    lane: &Lane,
    route: &Route,
    event_id: EventId,
    event: &EventRecord,
    attempt: u32,
) -> HttpOutcome {
    let now = SystemTime::now();
    let keys = route.active_keys(crate::time::to_ms(now));
    let secret_for_body = match route.signing {
        Signing::SecretInBody => keys.first().map(|k| k.text.as_str()),
        _ => None,
    };
    let input = formats::input(event_id, event, attempt, lane.id, secret_for_body);
    let body = match formats::build(&route.format, &shared.config.envelopes, &input) {
        Ok(body) => body,
        Err(why) => {
            return HttpOutcome::failed(ErrorKind::Other, format!("cannot build the body: {why}"))
        }
    };
    let msg_id = event_id.to_string();
    let timestamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut headers = Vec::with_capacity(route.headers.len() + body.headers.len() + 4);
    headers.push(("content-type".to_string(), body.content_type));
    headers.push(("webhook-id".to_string(), msg_id.clone()));
    headers.push(("webhook-timestamp".to_string(), timestamp.to_string()));
    headers.extend(signing::headers(
        &route.signing,
        &keys,
        &msg_id,
        timestamp,
        &body.bytes,
    ));
    headers.extend(body.headers);
    headers.extend(route.headers.iter().cloned());
    shared.http.post(&HttpRequest {
        url: &route.url,
        headers: &headers,
        body: &body.bytes,
        timeout: route.timeout,
    })
}

/// Decides whether an answer counts as delivered: the endpoint's success
/// policy for 2xx, and always a failure for 3xx (redirects are never
/// followed) and anything else.
fn judge(route: &Route, outcome: &mut HttpOutcome) {
    let Some(status) = outcome.status else { return };
    if outcome.error.is_some() {
        return;
    }
    if (300..400).contains(&status) {
        outcome.error = Some((
            ErrorKind::Redirect,
            format!("redirect {status} not followed"),
        ));
    } else if !route.success.accepts(status) {
        outcome.error = Some((ErrorKind::Status, format!("status {status}")));
    }
}

/// Marks a delivery failed without sending: its event cannot be read.
fn give_up(
    shared: &Shared,
    lane: &Lane,
    event_id: EventId,
    delivery: &DeliveryRecord,
    attempt: u32,
    why: String,
) -> Result<()> {
    tracing::error!(endpoint = %lane.id, event = %event_id, reason = %why, "delivery abandoned");
    let now = now_ms();
    let outcome = HttpOutcome::failed(ErrorKind::Other, why);
    let record = attempt_record(lane, event_id, attempt, now, &outcome);
    let state = DeliveryState::Failed { attempts: attempt };
    shared
        .store
        .record_attempt(&record, &updated(delivery, state, now))
}

fn attempt_record(
    lane: &Lane,
    event_id: EventId,
    attempt: u32,
    started_ms: u64,
    outcome: &HttpOutcome,
) -> AttemptRecord {
    AttemptRecord {
        endpoint: lane.id.as_u64(),
        event: event_id.as_u128(),
        attempt,
        started_ms,
        duration_us: outcome.duration.as_micros().min(u64::MAX as u128) as u64,
        status: outcome.status,
        succeeded: outcome.error.is_none(),
        error_kind: outcome.error.as_ref().map(|(k, _)| k.code()),
        error_message: outcome.error.as_ref().map(|(_, m)| m.clone()),
        response_body: outcome.body.clone(),
        response_truncated: outcome.truncated,
    }
}

fn updated(delivery: &DeliveryRecord, state: DeliveryState, now: u64) -> DeliveryRecord {
    DeliveryRecord {
        state,
        created_ms: delivery.created_ms,
        updated_ms: now,
    }
}
