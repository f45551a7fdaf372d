//! Guards a panic that strikes after the request was sent and before its
//! outcome is stored: the request the receiver saw is still logged (kind
//! `other`, with its status), the attempt number advances, and the
//! delivery ends Failed after its last attempt.
//!
//! The panic comes from host code that runs at that moment: the host's
//! `tracing` subscriber, here one with a bug on the sender's "attempt
//! finished" event. It is the process-wide subscriber, so this file holds
//! one test only.

mod common;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::{eventually, fast_bus, Receiver, WAIT};
use hookbus::{DeliveryStatus, EndpointConfig, Error, ErrorKind, Event};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// A subscriber that panics on every "attempt finished" event.
struct PanicsAfterTheAnswer {
    next_span: AtomicU64,
}

struct Message(Option<String>);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for PanicsAfterTheAnswer {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(None);
        event.record(&mut message);
        if message.0.as_deref() == Some("attempt finished") {
            PANICS.fetch_add(1, Ordering::SeqCst);
            panic!("host tracing layer bug");
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_panic_after_the_post_still_logs_the_request() {
    tracing::subscriber::set_global_default(PanicsAfterTheAnswer {
        next_span: AtomicU64::new(1),
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| common::Reply::Status(500));
    let bus = fast_bus(dir.path())
        .retry_delays([Duration::from_millis(100)])
        .max_attempts(3)
        .pause_after(None)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    eventually(WAIT, "the delivery to fail", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Failed { attempts: 3 }
        )
    });
    let got: Vec<u64> = rx.requests_to("/ep").iter().map(|r| r.attempt()).collect();
    assert_eq!(got, [1, 2, 3], "one request per attempt, numbers advancing");
    let log = bus.attempts(id).unwrap();
    let numbers: Vec<u32> = log.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3], "every request logged: {log:?}");
    for a in &log {
        assert_eq!(a.error, Some(ErrorKind::Other), "{a:?}");
        assert_eq!(a.status, Some(500), "the answer is kept: {a:?}");
        let message = a.error_message.as_deref().unwrap_or_default();
        assert!(message.contains("host tracing layer bug"), "{message}");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 3);
    match bus.shutdown() {
        Err(Error::WorkerPanicked { count }) => assert_eq!(count, 3),
        other => panic!("shutdown should report the panics: {other:?}"),
    }
    assert_eq!(rx.requests_to("/ep").len(), 3, "nothing resent");
}
