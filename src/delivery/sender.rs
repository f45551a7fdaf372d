//! One delivery attempt, from the stored state to the recorded outcome, and
//! what the outcome does to the endpoint (health, auto-pause, notices).
//!
//! The order of writes is what makes a crash safe:
//!
//! 1. Before any attempt after the first of a round, the delivery is stored
//!    as `InFlight { attempt }` and flushed. A restart therefore never sends
//!    a lower attempt number than one a receiver may already have seen; it
//!    resends the in-flight attempt with the same number. (The first attempt
//!    needs no such write: the stored or implied state already says it.)
//! 2. The request is built, signed with a fresh timestamp and sent.
//! 3. The attempt log entry, then the delivery's next state, then the
//!    endpoint's health are written, and made durable by the background
//!    flush (or at once on an ordered endpoint, before the next delivery
//!    may start). If the process dies first, the attempt is made again
//!    after open: delivery is at least once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Lane, Route, Shared};
use crate::endpoint::{PauseReason, Signing};
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::formats;
use crate::http::{HttpOutcome, HttpRequest};
use crate::log::{Attempt, ErrorKind, Trigger};
use crate::notice::Notice;
use crate::signing;
use crate::store::records::{AttemptRecord, DeliveryRecord, DeliveryState, EventRecord, Mode};
use crate::store::Stored;
use crate::time::{self, now_ms};

/// How long a delivery waits before being tried again after the store
/// itself failed (full disk, I/O error).
const STORAGE_RETRY: Duration = Duration::from_secs(1);

/// When a delivery goes back in its lane's queue after an attempt.
pub(crate) struct Requeue {
    pub(crate) due_ms: u64,
    pub(crate) implied: bool,
}

/// Makes one attempt (or finds there is nothing to do); returns when the
/// delivery must be queued again, if it must. The lane requeues it only
/// after it is no longer counted in flight.
pub(crate) fn deliver(
    shared: &Arc<Shared>,
    lane: &Arc<Lane>,
    event: EventId,
    implied: bool,
) -> Option<Requeue> {
    match try_deliver(shared, lane, event) {
        Ok(requeue) => requeue,
        Err(e) => {
            tracing::error!(endpoint = %lane.id, %event, error = %e, "storage failed around a delivery; will retry");
            Some(Requeue {
                due_ms: now_ms() + STORAGE_RETRY.as_millis() as u64,
                implied,
            })
        }
    }
}

fn try_deliver(
    shared: &Arc<Shared>,
    lane: &Arc<Lane>,
    event_id: EventId,
) -> Result<Option<Requeue>> {
    let store = &shared.store;
    let Some((delivery, stored, known_event)) = store.delivery_and_event(lane.id, event_id)? else {
        // Removed with its endpoint, or its event is gone.
        return Ok(None);
    };
    let route = lane.route();
    let now = now_ms();
    let attempt = match delivery.state {
        DeliveryState::Waiting {
            next_attempt,
            due_ms,
        } => {
            if due_ms > now {
                return Ok(Some(Requeue {
                    due_ms,
                    implied: stored == Stored::Implied,
                }));
            }
            next_attempt
        }
        DeliveryState::InFlight { attempt } => attempt,
        DeliveryState::Delivered { .. } | DeliveryState::Failed { .. } => return Ok(None),
    };
    let last_allowed = last_attempt(&delivery, route.max_attempts);
    let mut stored = stored;
    if attempt > last_allowed {
        // max_attempts was lowered below what this delivery already used.
        let state = DeliveryState::Failed {
            attempts: attempt - 1,
        };
        store.put_delivery(lane.id, event_id, &updated(&delivery, state, now), stored)?;
        return Ok(None);
    }
    if attempt > delivery.round_start && delivery.state != (DeliveryState::InFlight { attempt }) {
        let state = DeliveryState::InFlight { attempt };
        store.put_delivery(lane.id, event_id, &updated(&delivery, state, now), stored)?;
        store.commit()?;
        stored = Stored::Pending;
    }

    let read = match known_event {
        Some(event) => Ok(Some(event)),
        None => store.event(event_id),
    };
    let event = match read {
        Ok(Some(event)) => event,
        Ok(None) => {
            return give_up(
                shared,
                lane,
                event_id,
                &delivery,
                stored,
                attempt,
                "event record missing".into(),
            )
        }
        Err(Error::Corrupt { detail, .. }) => {
            let why = format!("event record corrupt: {detail}");
            return give_up(shared, lane, event_id, &delivery, stored, attempt, why);
        }
        Err(e) => return Err(e),
    };
    let _span =
        tracing::debug_span!("attempt", endpoint = %lane.id, event = %event_id, attempt).entered();
    let mut outcome = send(shared, lane.id, &route, event_id, &event, attempt);
    lane.observe(&outcome);
    judge(&route, &mut outcome);
    let succeeded = outcome.error.is_none();
    let mut next = route.retry.after_attempt(
        attempt.saturating_sub(delivery.round_start) + 1,
        succeeded,
        route.max_attempts,
        now_ms(),
    );
    // after_attempt counts within the round; store absolute numbers.
    next = match next {
        DeliveryState::Waiting { due_ms, .. } => DeliveryState::Waiting {
            next_attempt: attempt + 1,
            due_ms: honour_retry_after(shared, &outcome, now_ms(), due_ms),
        },
        DeliveryState::Delivered { .. } => DeliveryState::Delivered { attempts: attempt },
        DeliveryState::Failed { .. } | DeliveryState::InFlight { .. } => {
            DeliveryState::Failed { attempts: attempt }
        }
    };
    tracing::debug!(
        status = outcome.status,
        error = outcome.error.as_ref().map(|(k, _)| k.as_str()),
        duration_ms = outcome.duration.as_millis() as u64,
        "attempt finished"
    );
    let record = attempt_record(lane.id, event_id, attempt, delivery.manual, now, &outcome);
    store.record_attempt(&record, &updated(&delivery, next, now_ms()), stored)?;
    if route.ordered {
        // The next delivery may only go once this outcome survives a
        // crash; otherwise a restart could resend this one after it.
        store.commit()?;
    }
    lane.counters.attempt(attempt, succeeded);
    after_outcome(shared, lane, route.pause_after, event_id, &outcome, next)?;
    Ok(match next {
        DeliveryState::Waiting { due_ms, .. } => Some(Requeue {
            due_ms,
            implied: false,
        }),
        _ => None,
    })
}

/// The number of the last attempt the delivery's current round allows.
fn last_attempt(delivery: &DeliveryRecord, max_attempts: u32) -> u32 {
    delivery.round_start.saturating_add(max_attempts.max(1) - 1)
}

/// A 429 or 503 with `Retry-After` waits at least that long, within the
/// bus's `max_retry_after`; never less than the scheduled delay.
fn honour_retry_after(shared: &Shared, outcome: &HttpOutcome, now: u64, scheduled_due: u64) -> u64 {
    let Some(asked) = outcome.retry_after else {
        return scheduled_due;
    };
    if !matches!(outcome.status, Some(429 | 503)) {
        return scheduled_due;
    }
    let asked = asked.min(shared.config.max_retry_after).as_millis() as u64;
    scheduled_due.max(now.saturating_add(asked))
}

/// Health bookkeeping after an attempt: counters, auto-pause, notices.
fn after_outcome(
    shared: &Arc<Shared>,
    lane: &Arc<Lane>,
    pause_after: Option<u32>,
    event: EventId,
    outcome: &HttpOutcome,
    next: DeliveryState,
) -> Result<()> {
    let now = now_ms();
    let mut notices = Vec::new();
    lane.update_health(shared, |h| {
        match next {
            DeliveryState::Delivered { .. } => {
                if h.consecutive_failed_attempts > 0 || h.consecutive_failed_deliveries > 0 {
                    notices.push(Notice::EndpointRecovered { endpoint: lane.id });
                }
                h.consecutive_failed_attempts = 0;
                h.consecutive_failed_deliveries = 0;
                h.last_success_ms = Some(now);
            }
            _ => {
                h.consecutive_failed_attempts += 1;
                h.last_failure_ms = Some(now);
                if let DeliveryState::Failed { attempts } = next {
                    h.consecutive_failed_deliveries += 1;
                    notices.push(Notice::DeliveryExhausted {
                        endpoint: lane.id,
                        event,
                        attempts,
                    });
                }
            }
        }
        if h.mode == Mode::Active {
            let reason = if outcome.status == Some(410) {
                Some(PauseReason::Gone)
            } else {
                pause_after
                    .filter(|n| h.consecutive_failed_deliveries >= *n)
                    .map(PauseReason::ConsecutiveFailures)
            };
            if let Some(reason) = reason {
                h.mode = Mode::Paused {
                    reason,
                    since_ms: now,
                };
                notices.push(Notice::EndpointPaused {
                    endpoint: lane.id,
                    reason,
                });
            }
        }
    })?;
    match next {
        DeliveryState::Delivered { .. } => lane.counters.delivered(),
        DeliveryState::Failed { attempts } => {
            lane.counters.exhausted();
            tracing::warn!(endpoint = %lane.id, %event, attempts, "delivery failed after its last attempt");
        }
        _ => {}
    }
    if notices
        .iter()
        .any(|n| matches!(n, Notice::EndpointPaused { .. }))
    {
        // A pause must survive a crash like any endpoint change.
        shared.store.commit()?;
    }
    for notice in notices {
        shared.notices.emit(notice);
    }
    Ok(())
}

/// Builds, signs and posts one attempt.
fn send(
    shared: &Shared,
    endpoint: crate::endpoint::EndpointId,
    route: &Route,
    event_id: EventId,
    event: &EventRecord,
    attempt: u32,
) -> HttpOutcome {
    let now = SystemTime::now();
    let keys = route.active_keys(time::to_ms(now));
    let secret_for_body = match route.signing {
        Signing::SecretInBody => keys.first().map(|k| k.text.as_str()),
        _ => None,
    };
    let input = formats::input(event_id, event, attempt, endpoint, secret_for_body);
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

/// Sends one event to an endpoint now, the way a real attempt would be
/// sent, and reports the outcome without storing anything.
pub(crate) fn test_send(
    shared: &Shared,
    lane: &Lane,
    event_id: EventId,
    event: &EventRecord,
) -> Attempt {
    let route = lane.route();
    let started = now_ms();
    let mut outcome = send(shared, lane.id, &route, event_id, event, 1);
    judge(&route, &mut outcome);
    let mut attempt = Attempt::from(attempt_record(
        lane.id, event_id, 1, true, started, &outcome,
    ));
    attempt.trigger = Trigger::Test;
    attempt
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
    stored: Stored,
    attempt: u32,
    why: String,
) -> Result<Option<Requeue>> {
    tracing::error!(endpoint = %lane.id, event = %event_id, reason = %why, "delivery abandoned");
    let now = now_ms();
    let outcome = HttpOutcome::failed(ErrorKind::Other, why);
    let record = attempt_record(lane.id, event_id, attempt, delivery.manual, now, &outcome);
    let state = DeliveryState::Failed { attempts: attempt };
    shared
        .store
        .record_attempt(&record, &updated(delivery, state, now), stored)?;
    Ok(None)
}

fn attempt_record(
    endpoint: crate::endpoint::EndpointId,
    event_id: EventId,
    attempt: u32,
    manual: bool,
    started_ms: u64,
    outcome: &HttpOutcome,
) -> AttemptRecord {
    AttemptRecord {
        endpoint: endpoint.as_u64(),
        event: event_id.as_u128(),
        attempt,
        manual,
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
        updated_ms: now,
        ..delivery.clone()
    }
}
