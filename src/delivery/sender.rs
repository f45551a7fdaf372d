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
//!
//! On PostgreSQL, where replicas share the queue, step 1 happens before
//! every attempt and is fenced: the row is marked in flight only if this
//! replica still holds the endpoint's lease and the row is as it was read,
//! otherwise the delivery is dropped from this replica's lane (another one
//! serves it). Step 3 is one transaction, written only if the lease is
//! still ours; if it is not, the outcome is dropped and the new owner makes
//! the attempt again with the number the row holds.
//!
//! A panic anywhere in an attempt (a host's custom envelope or `tracing`
//! subscriber, a bug of ours) is caught here and treated as a failed
//! attempt, written in the same order: once the attempt's number is known,
//! step 3 records it with kind `other` and the panic's message (and the
//! status, if an answer had arrived), and the delivery moves on by its
//! retry schedule, to Failed after its last attempt. So a request a
//! receiver saw is always logged, and the stored state after a crash is
//! the one the steps above describe. A panic after step 3 leaves the
//! stored outcome as it is. A panic before the attempt's number is known
//! (reading the stored state) sent nothing; the delivery is looked at again
//! after [`PANIC_RETRY`]. Every panic is counted, and reported by
//! [`Bus::shutdown`](crate::Bus::shutdown) as
//! [`Error::WorkerPanicked`](crate::Error::WorkerPanicked).

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{kept, Engine, Lane, Route};
use crate::endpoint::PauseReason;
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::formats;
use crate::http::{HttpOutcome, HttpRequest};
use crate::log::{Attempt, ErrorKind, Trigger};
use crate::notice::Notice;
use crate::signing;
use crate::signing::Signing;
#[cfg(feature = "postgres")]
use crate::store::queue::Window;
use crate::store::records::{AttemptRecord, DeliveryRecord, DeliveryState, EventRecord, Mode};
use crate::store::Stored;
use crate::time::{self, now_ms};

/// How long a delivery waits before being tried again after the store
/// itself failed (full disk, I/O error).
const STORAGE_RETRY: Duration = Duration::from_secs(1);

/// How long a delivery waits after a panic that left no attempt to record:
/// one that struck before the attempt's number was known, or one in the
/// recording itself. Long, so a bug that panics every time costs a log
/// line a minute, not a busy loop.
pub(crate) const PANIC_RETRY: Duration = Duration::from_secs(60);

/// When a delivery goes back in its lane's queue after an attempt.
#[derive(Clone, Copy)]
pub(crate) struct Requeue {
    pub(crate) due_ms: u64,
    pub(crate) implied: bool,
    /// An attempt of the delivery's current round has been made: on an
    /// ordered endpoint it stays first in line until it ends (see
    /// [`DeliveryRecord::begun`]). `false` says nothing new: the lane keeps
    /// what it knew.
    pub(crate) begun: bool,
}

impl Requeue {
    pub(crate) fn after(wait: Duration, implied: bool) -> Option<Requeue> {
        Some(Requeue {
            due_ms: now_ms().saturating_add(time::duration_ms(wait)),
            implied,
            begun: false,
        })
    }
}

/// How far an attempt got: what a panic must still record.
#[derive(Default)]
struct Progress {
    /// Set once the attempt's number is known and its in-flight state
    /// written: from here on a panic is logged as this attempt.
    started: Option<Started>,
    /// The status of the answer, once one arrived.
    status: Option<u16>,
    /// Set once the outcome and the next state are written.
    recorded: Option<Option<Requeue>>,
}

struct Started {
    attempt: u32,
    delivery: DeliveryRecord,
    stored: Stored,
    route: Arc<Route>,
    started_ms: u64,
}

/// Makes one attempt (or finds there is nothing to do); returns when the
/// delivery must be queued again, if it must. The lane requeues it only
/// after it is no longer counted in flight. Never unwinds: a panic inside
/// becomes a failed attempt (see the module docs).
pub(crate) fn deliver(
    engine: &Arc<Engine>,
    lane: &Arc<Lane>,
    event: EventId,
    implied: bool,
) -> Option<Requeue> {
    let mut progress = Progress::default();
    let ran = panic::catch_unwind(AssertUnwindSafe(|| {
        try_deliver(engine, lane, event, &mut progress)
    }));
    // Once an attempt began (its request may be out), the delivery stays
    // first on an ordered endpoint whatever cut the attempt short.
    let began = progress.started.is_some();
    let mark = |r: Option<Requeue>| {
        r.map(|r| Requeue {
            begun: r.begun || began,
            ..r
        })
    };
    let payload = match ran {
        Ok(Ok(requeue)) => return mark(requeue),
        Ok(Err(e)) => return mark(storage_failed(lane, event, implied, &e)),
        Err(payload) => payload,
    };
    engine.runtime.note_panic();
    let why = panic_message(payload.as_ref());
    let recovered = panic::catch_unwind(AssertUnwindSafe(|| {
        tracing::error!(endpoint = %lane.id, %event, panic = %why, "a delivery attempt panicked; it is recorded as failed");
        after_panic(engine, lane, event, implied, progress, why)
    }));
    mark(match recovered {
        Ok(Ok(requeue)) => requeue,
        Ok(Err(e)) => storage_failed(lane, event, implied, &e),
        Err(again) => {
            // Recording the panic panicked too: leave the stored state as
            // it is and look again much later.
            engine.runtime.note_panic();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                let why = panic_message(again.as_ref());
                tracing::error!(endpoint = %lane.id, %event, panic = %why, "recording a panicked attempt panicked");
            }));
            Requeue::after(PANIC_RETRY, implied)
        }
    })
}

fn storage_failed(lane: &Lane, event: EventId, implied: bool, e: &Error) -> Option<Requeue> {
    tracing::error!(endpoint = %lane.id, %event, error = %e, "storage failed around a delivery; will retry");
    Requeue::after(STORAGE_RETRY, implied)
}

/// The text a panic was raised with, if it was text.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Records what a panic interrupted, as far as the attempt got.
fn after_panic(
    engine: &Arc<Engine>,
    lane: &Arc<Lane>,
    event: EventId,
    implied: bool,
    progress: Progress,
    why: String,
) -> Result<Option<Requeue>> {
    if let Some(requeue) = progress.recorded {
        // The outcome is stored; only bookkeeping after it was cut short.
        return Ok(requeue);
    }
    let Some(started) = progress.started else {
        // Nothing was sent and no attempt number is known.
        return Ok(Requeue::after(PANIC_RETRY, implied));
    };
    let mut outcome = HttpOutcome::failed(ErrorKind::Other, format!("the attempt panicked: {why}"));
    outcome.status = progress.status;
    let elapsed = now_ms().saturating_sub(started.started_ms);
    outcome.duration = Duration::from_millis(elapsed);
    finish(engine, lane, event, &started, &outcome, &mut None)
}

fn try_deliver(
    engine: &Arc<Engine>,
    lane: &Arc<Lane>,
    event_id: EventId,
    progress: &mut Progress,
) -> Result<Option<Requeue>> {
    let store = &engine.runtime.store;
    let Some((delivery, stored, known_event)) = store.delivery_and_event(lane.id, event_id)? else {
        // Removed with its endpoint, or its event is gone.
        return Ok(None);
    };
    let route = lane.route();
    let now = now_ms();
    #[cfg(feature = "postgres")]
    if route.settings.ordered && !delivery.begun() {
        if let Some(pg) = store.shared() {
            // Another replica's publish (or one of this replica's that
            // committed while it began serving the endpoint) may have an
            // older event whose row this lane has not read yet: it goes
            // first. One indexed query per attempt on an ordered endpoint.
            // (A row that cannot be read is skipped here as everywhere;
            // the queue reads report it.)
            let older: Vec<_> = pg
                .unfinished_before(lane.id, event_id, super::LANE_WINDOW, |e| lane.contains(e))?
                .into_iter()
                .filter(Result::is_ok)
                .collect();
            // An older one the lane holds already (read by notification
            // since this one was taken) goes first too.
            if !older.is_empty() || lane.queues_older(event_id) {
                lane.load_stored(
                    engine,
                    Window {
                        found: older,
                        next: None,
                    },
                    false,
                );
                return Ok(Some(Requeue {
                    due_ms: now,
                    implied: stored == Stored::Implied,
                    begun: false,
                }));
            }
        }
    }
    let attempt = match delivery.state {
        DeliveryState::Waiting {
            next_attempt,
            due_ms,
        } => {
            if due_ms > now {
                return Ok(Some(Requeue {
                    due_ms,
                    implied: stored == Stored::Implied,
                    begun: delivery.begun(),
                }));
            }
            next_attempt
        }
        DeliveryState::InFlight { attempt } => attempt,
        DeliveryState::Delivered { .. } | DeliveryState::Failed { .. } => return Ok(None),
    };
    let last_allowed = last_attempt(&delivery, route.settings.max_attempts);
    let mut stored = stored;
    if attempt > last_allowed {
        // max_attempts was lowered below what this delivery already used.
        let state = DeliveryState::Failed {
            attempts: attempt.saturating_sub(1),
        };
        store.put_delivery(lane.id, event_id, &updated(&delivery, state, now), stored)?;
        return Ok(None);
    }
    let needed =
        attempt > delivery.round_start && delivery.state != (DeliveryState::InFlight { attempt });
    let in_flight = updated(&delivery, DeliveryState::InFlight { attempt }, now);
    if !store.begin_attempt(lane.id, event_id, (&delivery, stored), &in_flight, needed)? {
        // Another replica serves the endpoint now, or the row changed
        // under us: it is not ours to attempt.
        return Ok(None);
    }
    if needed || store.is_shared() {
        stored = Stored::Pending;
    }
    let started = &*progress.started.insert(Started {
        attempt,
        delivery,
        stored,
        route,
        started_ms: now,
    });
    let (delivery, route) = (&started.delivery, &started.route);

    let read = match known_event {
        Some(event) => Ok(Some(event)),
        None => store.event(event_id),
    };
    let event = match read {
        Ok(Some(event)) => event,
        Ok(None) => {
            return give_up(
                engine,
                lane,
                event_id,
                delivery,
                stored,
                attempt,
                "event record missing".into(),
            )
        }
        Err(Error::Corrupt { detail, .. }) => {
            let why = format!("event record corrupt: {detail}");
            return give_up(engine, lane, event_id, delivery, stored, attempt, why);
        }
        Err(e) => return Err(e),
    };
    #[cfg(feature = "postgres")]
    if let Some(pg) = store.shared() {
        if !pg.leases_fresh() {
            // This replica may have lost the lease without knowing yet (it
            // stalled): not a request until it knows. The row stays marked
            // in flight with this attempt's number, for whoever serves it.
            tracing::warn!(endpoint = %lane.id, event = %event_id, attempt, "endpoint leases not renewed recently; holding the attempt");
            return Ok(Requeue::after(pg.lease / 10, false));
        }
    }
    let _span =
        tracing::debug_span!("attempt", endpoint = %lane.id, event = %event_id, attempt).entered();
    let mut outcome = send(engine, lane.id, route, event_id, &event, attempt);
    lane.observe(&outcome);
    progress.status = outcome.status;
    judge(route, &mut outcome);
    tracing::debug!(
        status = outcome.status,
        error = outcome.error.as_ref().map(|(k, _)| k.as_str()),
        duration_ms = time::duration_ms(outcome.duration),
        "attempt finished"
    );
    finish(
        engine,
        lane,
        event_id,
        started,
        &outcome,
        &mut progress.recorded,
    )
}

/// Step 3 for an attempt with this outcome: the log entry, the delivery's
/// next state by the retry schedule, then health and notices. Sets
/// `recorded` once the first two are written.
fn finish(
    engine: &Arc<Engine>,
    lane: &Arc<Lane>,
    event_id: EventId,
    started: &Started,
    outcome: &HttpOutcome,
    recorded: &mut Option<Option<Requeue>>,
) -> Result<Option<Requeue>> {
    let Started {
        attempt,
        ref delivery,
        stored,
        ref route,
        started_ms,
    } = *started;
    let succeeded = outcome.error.is_none();
    let mut next = route.retry.after_attempt(
        attempt
            .saturating_sub(delivery.round_start)
            .saturating_add(1),
        succeeded,
        route.settings.max_attempts,
        now_ms(),
    );
    // after_attempt counts within the round; store absolute numbers.
    next = match next {
        DeliveryState::Waiting { due_ms, .. } => DeliveryState::Waiting {
            next_attempt: attempt.saturating_add(1),
            due_ms: honour_retry_after(engine, outcome, now_ms(), due_ms),
        },
        DeliveryState::Delivered { .. } => DeliveryState::Delivered { attempts: attempt },
        DeliveryState::Failed { .. } | DeliveryState::InFlight { .. } => {
            DeliveryState::Failed { attempts: attempt }
        }
    };
    let record = attempt_record(
        lane.id,
        event_id,
        attempt,
        delivery.manual,
        started_ms,
        outcome,
    );
    // Recording the outcome and what it does to the endpoint (health,
    // pause, notices) is a stage of its own, with the ids repeated so a
    // subscriber that shows only the innermost span still has them.
    let _outcome = tracing::debug_span!(
        "outcome",
        endpoint = %lane.id,
        event = %event_id,
        attempt,
        succeeded
    )
    .entered();
    let written =
        engine
            .runtime
            .store
            .record_attempt(&record, &updated(delivery, next, now_ms()), stored)?;
    if !written {
        // The lease moved to another replica while the attempt ran: its
        // outcome is not ours to record, and the new owner sends again.
        tracing::warn!(endpoint = %lane.id, event = %event_id, attempt, "endpoint lease lost during an attempt; its outcome is dropped");
        *recorded = Some(None);
        return Ok(None);
    }
    if route.settings.ordered {
        // The next delivery may only go once this outcome survives a
        // crash; otherwise a restart could resend this one after it.
        engine.runtime.store.commit()?;
    }
    let requeue = match next {
        DeliveryState::Waiting { due_ms, .. } => Some(Requeue {
            due_ms,
            implied: false,
            begun: true,
        }),
        _ => None,
    };
    *recorded = Some(requeue);
    lane.counters.attempt(
        attempt,
        outcome.status,
        outcome.error.as_ref().map(|(k, _)| *k),
        outcome.duration,
    );
    after_outcome(
        engine,
        lane,
        route.settings.pause_after,
        event_id,
        outcome,
        next,
    )?;
    Ok(requeue)
}

/// The number of the last attempt the delivery's current round allows.
fn last_attempt(delivery: &DeliveryRecord, max_attempts: u32) -> u32 {
    delivery.round_start.saturating_add(max_attempts.max(1) - 1)
}

/// A 429 or 503 with `Retry-After` waits at least that long, within the
/// bus's `max_retry_after`; never less than the scheduled delay.
fn honour_retry_after(engine: &Engine, outcome: &HttpOutcome, now: u64, scheduled_due: u64) -> u64 {
    let Some(asked) = outcome.retry_after else {
        return scheduled_due;
    };
    if !matches!(outcome.status, Some(429 | 503)) {
        return scheduled_due;
    }
    let asked = time::duration_ms(asked.min(engine.runtime.config.max_retry_after));
    scheduled_due.max(now.saturating_add(asked))
}

/// Health bookkeeping after an attempt: counters, auto-pause, notices.
fn after_outcome(
    engine: &Arc<Engine>,
    lane: &Arc<Lane>,
    pause_after: Option<u32>,
    event: EventId,
    outcome: &HttpOutcome,
    next: DeliveryState,
) -> Result<()> {
    let now = now_ms();
    let mut notices = Vec::new();
    lane.update_health(engine, |h| {
        // Run again on a fresher record if another replica wrote it
        // meanwhile: only the last run's notices count.
        notices.clear();
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
                h.consecutive_failed_attempts = h.consecutive_failed_attempts.saturating_add(1);
                h.last_failure_ms = Some(now);
                if let DeliveryState::Failed { attempts } = next {
                    h.consecutive_failed_deliveries =
                        h.consecutive_failed_deliveries.saturating_add(1);
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
        engine.runtime.store.commit()?;
    }
    for notice in notices {
        engine.runtime.notices.emit(notice);
    }
    Ok(())
}

/// Builds, signs and posts one attempt.
fn send(
    engine: &Engine,
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
    let body = match formats::build(&route.format, &engine.runtime.config.envelopes, &input) {
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
    let signature = signing::headers(&route.signing, &keys, &msg_id, timestamp, &body.bytes);
    let signature_headers: Vec<String> = signature.iter().map(|(n, _)| n.clone()).collect();
    headers.extend(signature);
    headers.extend(body.headers);
    headers.extend(route.headers.iter().cloned());
    let mut outcome = engine.runtime.http.post(&HttpRequest {
        url: &route.url,
        headers: &headers,
        body: &body.bytes,
        timeout: route.settings.timeout,
    });
    // Every secret the endpoint has had and still keeps, not only those
    // signing now: a previous one past its grace period may still be
    // trusted by a receiver that has not switched yet.
    let secrets: Vec<&str> = route.secrets.iter().map(|(k, _)| k.text.as_str()).collect();
    outcome.request = kept::kept_request(
        &headers,
        &signature_headers,
        &secrets,
        &body.bytes,
        engine.runtime.config.response_body_limit,
    );
    kept::redact_response(
        &mut outcome.headers,
        &mut outcome.body,
        outcome.truncated,
        &secrets,
    );
    outcome
}

/// Sends one event to an endpoint now, the way a real attempt would be
/// sent, and reports the outcome without storing anything.
pub(crate) fn test_send(
    engine: &Engine,
    lane: &Lane,
    event_id: EventId,
    event: &EventRecord,
) -> Attempt {
    let route = lane.route();
    let started = now_ms();
    // This runs on the host's thread: a panic in the host's own envelope
    // comes back as the attempt's error, like on a sender thread.
    let sent = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut outcome = send(engine, lane.id, &route, event_id, event, 1);
        judge(&route, &mut outcome);
        outcome
    }));
    let outcome = sent.unwrap_or_else(|payload| {
        let why = panic_message(payload.as_ref());
        tracing::error!(endpoint = %lane.id, panic = %why, "a test send panicked");
        HttpOutcome::failed(ErrorKind::Other, format!("the attempt panicked: {why}"))
    });
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
    } else if !route.settings.success.accepts(status) {
        outcome.error = Some((ErrorKind::Status, format!("status {status}")));
    }
}

/// Marks a delivery failed without sending: its event cannot be read.
fn give_up(
    engine: &Engine,
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
    engine
        .runtime
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
        request_headers: outcome.request.headers.clone(),
        request_body: outcome.request.body.clone(),
        request_truncated: outcome.request.truncated,
        response_headers: outcome.headers.clone(),
    }
}

fn updated(delivery: &DeliveryRecord, state: DeliveryState, now: u64) -> DeliveryRecord {
    DeliveryRecord {
        state,
        updated_ms: now,
        ..delivery.clone()
    }
}
