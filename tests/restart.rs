//! Guards persistence across a clean restart: endpoints come back, and
//! deliveries that were pending or waiting for a retry resume with attempt
//! numbers that continue where they stopped.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{DeliveryStatus, EndpointConfig, Event};
use serde_json::json;

#[test]
fn restart_resumes_pending_and_in_flight_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        if r.path == "/hang" {
            Reply::After(Duration::from_secs(5), 200)
        } else {
            Reply::Status(200)
        }
    });
    let ids = {
        let bus = fast_bus(dir.path())
            .timeout(Duration::from_millis(500))
            .concurrency(1)
            .open()
            .unwrap();
        let ep = bus
            .add_endpoint(EndpointConfig::new("ep", rx.url("/hang")))
            .unwrap();
        let ids: Vec<_> = (0..5)
            .map(|n| {
                bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                    .unwrap()
            })
            .collect();
        // The first delivery is in flight (hanging); the rest are queued.
        rx.wait_for("/hang", 1, WAIT);
        // Disabling keeps the queue, stored, and stops the sender from
        // starting anything new after the hanging attempt times out.
        bus.disable_endpoint(ep.id()).unwrap();
        bus.shutdown().unwrap();
        ids
    };
    assert_eq!(rx.requests_to("/hang").len(), 1);

    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(bus.recovery().endpoints, 1);
    assert_eq!(bus.recovery().resumed, 5);
    let ep = bus.endpoints(None, usize::MAX).items.pop().unwrap();
    assert!(!ep.is_enabled(), "the enabled switch persists");
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), 5);
    bus.update_endpoint(ep.id(), EndpointConfig::new("ep", rx.url("/ok")))
        .unwrap();
    bus.enable_endpoint(ep.id()).unwrap();

    let got = rx.wait_for("/ok", 5, WAIT);
    for (n, id) in ids.iter().enumerate() {
        let r = got
            .iter()
            .find(|r| r.webhook_id() == id.to_string())
            .unwrap();
        // The timed-out first attempt counts: event 0 continues at 2.
        assert_eq!(r.attempt(), if n == 0 { 2 } else { 1 });
    }
    eventually(WAIT, "all delivered", || {
        ids.iter().all(|id| {
            matches!(
                bus.delivery(ep.id(), *id).unwrap().unwrap().status,
                DeliveryStatus::Delivered { .. }
            )
        })
    });
}

#[test]
fn deliveries_queued_at_shutdown_are_sent_after_reopen_with_continuing_attempt_numbers() {
    let dir = tempfile::tempdir().unwrap();
    // Attempt 1 fails for every event; later ones succeed.
    let rx = Receiver::start(|r, _| Reply::Status(if r.attempt() == 1 { 500 } else { 200 }));
    let ids = {
        let bus = fast_bus(dir.path())
            .retry_delays([Duration::from_millis(1500)])
            .open()
            .unwrap();
        bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
            .unwrap();
        let ids: Vec<_> = (0..5)
            .map(|n| {
                bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                    .unwrap()
            })
            .collect();
        rx.wait_for("/ep", 5, WAIT);
        bus.shutdown().unwrap();
        ids
    };
    // Second run: the retries are restored with their due time and sent as
    // attempt 2.
    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(bus.recovery().resumed, 5);
    let got = rx.wait_for("/ep", 10, WAIT);
    let retried: Vec<_> = got[5..]
        .iter()
        .map(|r| (r.webhook_id(), r.attempt()))
        .collect();
    for id in &ids {
        assert!(
            retried.contains(&(id.to_string(), 2)),
            "{id} retried as attempt 2"
        );
    }
    let ep = bus.endpoints(None, usize::MAX).items.pop().unwrap();
    eventually(WAIT, "all delivered", || {
        ids.iter().all(|id| {
            matches!(
                bus.delivery(ep.id(), *id).unwrap().unwrap().status,
                DeliveryStatus::Delivered { attempts: 2 }
            )
        })
    });
}
