//! Guards what a panic inside an attempt does: the attempt is logged (kind
//! `other`, with the panic's message), the delivery follows its normal retry
//! schedule and ends Failed after its last attempt, the panic is counted and
//! reported by `shutdown`, and nothing is retried every second.
//!
//! The panics come from host code hookbus runs on its sender threads: a
//! custom envelope with a bug.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_bus, Receiver, WAIT};
use hookbus::{
    DeliveryStatus, EndpointConfig, Envelope, EnvelopeInput, Error, ErrorKind, Event, Format,
};
use serde_json::json;

/// A host envelope with a bug: panics on the attempts listed, builds a
/// plain body otherwise. Counts its calls.
struct Buggy {
    panics_on: Vec<u32>,
    calls: Arc<AtomicUsize>,
}

impl Envelope for Buggy {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.panics_on.contains(&input.attempt) {
            panic!("host envelope bug on attempt {}", input.attempt);
        }
        Ok(format!("{{\"attempt\":{}}}", input.attempt).into_bytes())
    }
}

fn buggy(panics_on: &[u32]) -> (Buggy, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    (
        Buggy {
            panics_on: panics_on.to_vec(),
            calls: calls.clone(),
        },
        calls,
    )
}

#[test]
fn a_panicking_attempt_is_logged_and_follows_the_retry_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (envelope, calls) = buggy(&[1, 2, 3, 4, 5]);
    let bus = fast_bus(dir.path())
        .retry_delays([Duration::from_millis(100)])
        .max_attempts(3)
        .pause_after(None)
        .envelope("buggy", envelope)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", rx.url("/ep")).format(Format::Custom("buggy".into())),
        )
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();

    eventually(WAIT, "the delivery to fail", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Failed { attempts: 3 }
        )
    });
    let log = bus.attempts(id).unwrap();
    let numbers: Vec<u32> = log.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3], "{log:?}");
    for a in &log {
        assert!(!a.succeeded);
        assert_eq!(a.error, Some(ErrorKind::Other), "{a:?}");
        assert_eq!(a.status, None, "nothing was sent: {a:?}");
        let message = a.error_message.as_deref().unwrap_or_default();
        assert!(message.contains("panicked"), "{message}");
        assert!(
            message.contains(&format!("host envelope bug on attempt {}", a.number)),
            "{message}"
        );
    }
    // Retries kept their schedule: at least the retry delay apart, not a
    // tight loop and not the old once-a-second resend.
    for pair in log.windows(2) {
        let gap = pair[1]
            .started_at
            .duration_since(pair[0].started_at)
            .unwrap_or_default();
        assert!(gap >= Duration::from_millis(90), "{gap:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one build per attempt");
    assert!(rx.requests().is_empty(), "the panic came before the POST");
    let health = bus.endpoint_health(ep.id()).unwrap();
    assert_eq!(health.consecutive_failed_deliveries, 1);
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), 0);

    // Failed means done: no further attempt is made.
    let stats = bus.stats();
    assert_eq!(stats.attempts, 3);
    match bus.shutdown() {
        Err(Error::WorkerPanicked { count }) => assert_eq!(count, 3),
        other => panic!("shutdown should report the panics: {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(bus.attempts(id).unwrap().len(), 3);
}

#[test]
fn a_delivery_recovers_after_a_panicking_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (envelope, _) = buggy(&[1]);
    let bus = fast_bus(dir.path())
        .max_attempts(3)
        .envelope("buggy", envelope)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", rx.url("/ep")).format(Format::Custom("buggy".into())),
        )
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    eventually(WAIT, "delivered", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Delivered { attempts: 2 }
        )
    });
    let log = bus.attempts(id).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].error, Some(ErrorKind::Other));
    assert!(log[1].succeeded);
    let got = rx.requests_to("/ep");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["attempt"], 2);

    // A test send runs the envelope on the host's own thread: the panic
    // comes back as the outcome, not as an unwind into the caller.
    let tested = bus
        .test_send(ep.id(), Event::new("a.b", &json!({})).unwrap())
        .unwrap();
    assert!(!tested.succeeded);
    assert_eq!(tested.error, Some(ErrorKind::Other));
    assert!(tested
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("host envelope bug on attempt 1")));
    assert_eq!(rx.requests_to("/ep").len(), 1, "nothing was sent");
    assert!(matches!(
        bus.shutdown(),
        Err(Error::WorkerPanicked { count: 1 })
    ));
}

#[test]
fn an_ordered_endpoint_moves_past_a_delivery_whose_attempts_panic() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let calls = Arc::new(AtomicUsize::new(0));
    // Panics on every attempt of the first event only.
    struct FirstEventBug(Arc<AtomicUsize>);
    impl Envelope for FirstEventBug {
        fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if input.event_type == "first.event" {
                panic!("cannot build {}", input.event_type);
            }
            Ok(b"{}".to_vec())
        }
    }
    let bus = fast_bus(dir.path())
        .max_attempts(2)
        .pause_after(None)
        .envelope("bug", FirstEventBug(calls.clone()))
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", rx.url("/ep"))
                .format(Format::Custom("bug".into()))
                .ordered(true),
        )
        .unwrap();
    let first = bus
        .publish(Event::new("first.event", &json!({})).unwrap())
        .unwrap();
    let second = bus
        .publish(Event::new("second.event", &json!({})).unwrap())
        .unwrap();
    eventually(WAIT, "the second event delivered", || {
        matches!(
            bus.delivery(ep.id(), second).unwrap().unwrap().status,
            DeliveryStatus::Delivered { attempts: 1 }
        )
    });
    assert!(matches!(
        bus.delivery(ep.id(), first).unwrap().unwrap().status,
        DeliveryStatus::Failed { attempts: 2 }
    ));
    assert_eq!(rx.requests_to("/ep").len(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(matches!(
        bus.shutdown(),
        Err(Error::WorkerPanicked { count: 2 })
    ));
}

#[test]
fn attempt_numbers_survive_a_restart_after_panics() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (envelope, _) = buggy(&[1, 2]);
    let bus = fast_bus(dir.path())
        // Long enough that attempt 3 is still waiting when the bus closes.
        .retry_delays([Duration::from_millis(50), Duration::from_secs(3600)])
        .max_attempts(5)
        .envelope("buggy", envelope)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", rx.url("/ep")).format(Format::Custom("buggy".into())),
        )
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    eventually(WAIT, "two panicked attempts", || {
        bus.attempts(id).unwrap().len() == 2
    });
    assert!(matches!(
        bus.delivery(ep.id(), id).unwrap().unwrap().status,
        DeliveryStatus::Queued {
            next_attempt: 3,
            ..
        }
    ));
    assert!(matches!(
        bus.shutdown(),
        Err(Error::WorkerPanicked { count: 2 })
    ));
    drop(bus);

    // Reopened with the bug fixed and a short schedule: the stored state
    // says attempt 3 is next, and it is due at its stored time.
    let (fixed, _) = buggy(&[]);
    let bus = fast_bus(dir.path())
        .max_attempts(5)
        .envelope("buggy", fixed)
        .open()
        .unwrap();
    assert_eq!(bus.recovery().resumed, 1);
    bus.resend(id, ep.id()).unwrap_err();
    assert!(matches!(
        bus.delivery(ep.id(), id).unwrap().unwrap().status,
        DeliveryStatus::Queued {
            next_attempt: 3,
            ..
        }
    ));
    let numbers: Vec<u32> = bus.attempts(id).unwrap().iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(rx.requests().is_empty());
    bus.shutdown().unwrap();
}
