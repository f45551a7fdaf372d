//! Guards auto-pause: an endpoint whose deliveries keep failing is paused
//! after the configured number of failed deliveries (410 Gone at once);
//! events published while it is paused are kept, and delivered in order
//! when it resumes; notices tell the host.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{EndpointConfig, EndpointStatus, Event, Notice, PauseReason};
use serde_json::json;

#[test]
fn paused_after_failures_then_resume_delivers_the_backlog_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = Arc::new(AtomicBool::new(false));
    let rx = {
        let healthy = healthy.clone();
        Receiver::start(move |_, _| {
            Reply::Status(if healthy.load(Ordering::SeqCst) {
                200
            } else {
                500
            })
        })
    };
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .pause_after(Some(3))
        .open()
        .unwrap();
    let notices = bus.notices();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")).ordered(true))
        .unwrap();
    for n in 0..3 {
        bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
            .unwrap();
    }
    eventually(WAIT, "paused", || {
        bus.endpoint(ep.id()).unwrap().is_paused()
    });
    match bus.endpoint(ep.id()).unwrap().status() {
        EndpointStatus::Paused { reason, .. } => {
            assert_eq!(reason, PauseReason::ConsecutiveFailures(3))
        }
        other => panic!("{other:?}"),
    }
    let mut seen = Vec::new();
    while let Ok(n) = notices.recv_timeout(Duration::from_millis(500)) {
        seen.push(n);
        if seen
            .iter()
            .any(|n| matches!(n, Notice::EndpointPaused { .. }))
        {
            break;
        }
    }
    let exhausted = seen
        .iter()
        .filter(|n| matches!(n, Notice::DeliveryExhausted { .. }))
        .count();
    assert_eq!(exhausted, 3, "{seen:?}");
    assert!(seen.contains(&Notice::EndpointPaused {
        endpoint: ep.id(),
        reason: PauseReason::ConsecutiveFailures(3)
    }));

    // Published while paused: kept, not sent.
    let backlog: Vec<_> = (10..20)
        .map(|n| {
            bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.requests().len(), 3, "nothing sent while paused");
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), 10);

    healthy.store(true, Ordering::SeqCst);
    bus.resume_endpoint(ep.id()).unwrap();
    let got = rx.wait_for("/ep", 13, WAIT);
    let order: Vec<String> = got[3..].iter().map(|r| r.webhook_id()).collect();
    let expected: Vec<String> = backlog.iter().map(|id| id.to_string()).collect();
    assert_eq!(order, expected, "the backlog arrives in publish order");
    let recovered = notices.recv_timeout(WAIT).unwrap();
    assert_eq!(recovered, Notice::EndpointRecovered { endpoint: ep.id() });
    assert_eq!(
        bus.endpoint_health(ep.id())
            .unwrap()
            .consecutive_failed_deliveries,
        0
    );
}

#[test]
fn gone_pauses_at_once_and_the_pause_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(410));
    let id = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let notices = bus.notices();
        let ep = bus
            .add_endpoint(EndpointConfig::new("gone", rx.url("/gone")))
            .unwrap();
        let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
        let n = notices.recv_timeout(WAIT).unwrap();
        assert_eq!(
            n,
            Notice::EndpointPaused {
                endpoint: ep.id(),
                reason: PauseReason::Gone
            }
        );
        assert!(bus.endpoint(ep.id()).unwrap().is_paused());
        // The delivery is kept, waiting for its retry.
        assert!(matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            hookbus::DeliveryStatus::Queued {
                next_attempt: 2,
                ..
            }
        ));
        bus.shutdown().unwrap();
        id
    };
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus.endpoints(None, usize::MAX).items.pop().unwrap();
    assert!(ep.is_paused(), "paused state is stored");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        rx.requests().len(),
        1,
        "a paused endpoint sends nothing after reopen"
    );
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), 1);
    let _ = id;
}

#[test]
fn pause_after_none_never_pauses_and_manual_pause_holds_events() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| Reply::Status(if r.path == "/bad" { 500 } else { 200 }));
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    let bad = bus
        .add_endpoint(EndpointConfig::new("bad", rx.url("/bad")).pause_after(None))
        .unwrap();
    let good = bus
        .add_endpoint(EndpointConfig::new("good", rx.url("/good")))
        .unwrap();
    bus.pause_endpoint(good.id()).unwrap();
    for n in 0..15 {
        bus.publish(Event::new("a.b", &json!(n)).unwrap()).unwrap();
    }
    rx.wait_for("/bad", 15, WAIT);
    assert!(!bus.endpoint(bad.id()).unwrap().is_paused());
    assert!(rx.requests_to("/good").is_empty());
    bus.resume_endpoint(good.id()).unwrap();
    rx.wait_for("/good", 15, WAIT);
}
