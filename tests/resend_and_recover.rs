//! Guards manual operations: resend sends one delivery again as a new round
//! of attempts logged as manual, recover re-sends exactly the failed
//! deliveries of an endpoint since a time, and both are durable.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{DeliveryFilter, DeliveryStatus, EndpointConfig, Error, Event, Trigger};
use serde_json::json;

fn flaky() -> (Receiver, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let rx = Receiver::start(move |_, _| {
        Reply::Status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            500
        })
    });
    (rx, healthy)
}

#[test]
fn resend_is_a_manual_round_with_continued_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (rx, healthy) = flaky();
    let bus = fast_bus(dir.path()).max_attempts(2).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    eventually(WAIT, "failed", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Failed { attempts: 2 }
        )
    });

    healthy.store(true, Ordering::SeqCst);
    bus.resend(id, ep.id()).unwrap();
    let got = rx.wait_for("/ep", 3, WAIT);
    assert_eq!(
        got.iter().map(|r| r.attempt()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    eventually(WAIT, "delivered", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Delivered { attempts: 3 }
        )
    });
    let log = bus.attempts(id).unwrap();
    let triggers: Vec<_> = log.iter().map(|a| (a.number, a.trigger)).collect();
    assert_eq!(
        triggers,
        [
            (1, Trigger::Scheduled),
            (2, Trigger::Scheduled),
            (3, Trigger::Manual)
        ]
    );
    assert!(bus.delivery(ep.id(), id).unwrap().unwrap().manual);

    // A delivered one can be resent too; one in progress cannot.
    bus.pause_endpoint(ep.id()).unwrap();
    bus.resend(id, ep.id()).unwrap();
    assert!(matches!(
        bus.resend(id, ep.id()),
        Err(Error::DeliveryInProgress { .. })
    ));
    assert!(matches!(
        bus.resend(hookbus::EventId::from_u128(7), ep.id()),
        Err(Error::EventNotFound(_))
    ));
}

#[test]
fn resend_reaches_an_endpoint_added_after_the_event_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (id, late) = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
        let late = bus
            .add_endpoint(EndpointConfig::new("late", rx.url("/late")))
            .unwrap();
        assert!(bus.delivery(late.id(), id).unwrap().is_none());
        // Paused, so the resend is stored but not sent before the restart.
        bus.pause_endpoint(late.id()).unwrap();
        bus.resend(id, late.id()).unwrap();
        bus.shutdown().unwrap();
        (id, late)
    };
    assert!(rx.requests().is_empty());
    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(bus.queue_depth(late.id()).unwrap(), 1);
    bus.resume_endpoint(late.id()).unwrap();
    let got = rx.wait_for("/late", 1, WAIT);
    assert_eq!(got[0].webhook_id(), id.to_string());
    assert_eq!(got[0].attempt(), 1);
}

#[test]
fn recover_resends_exactly_the_failed_ones_since_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        // Odd events fail their first attempt; any later attempt succeeds.
        let n = r.json()["data"]["n"].as_u64().unwrap();
        Reply::Status(if n % 2 == 1 && r.attempt() <= 1 {
            500
        } else {
            200
        })
    });
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .pause_after(None)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let early = bus
        .publish(Event::new("a.b", &json!({"n": 1})).unwrap())
        .unwrap();
    eventually(WAIT, "early failed", || {
        matches!(
            bus.delivery(ep.id(), early).unwrap().unwrap().status,
            DeliveryStatus::Failed { .. }
        )
    });
    std::thread::sleep(Duration::from_millis(20));
    let since = SystemTime::now();
    let ids: Vec<_> = (2..8)
        .map(|n| {
            bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                .unwrap()
        })
        .collect();
    rx.wait_for("/ep", 7, WAIT);
    eventually(WAIT, "all finished", || {
        bus.queue_depth(ep.id()).unwrap() == 0 && bus.stats().in_flight == 0
    });
    let failed = bus
        .endpoint_deliveries(ep.id(), DeliveryFilter::Failed, None, 100)
        .unwrap()
        .items;
    assert_eq!(failed.len(), 4, "n = 1, 3, 5, 7");

    let requeued = bus.recover(ep.id(), since).unwrap();
    assert_eq!(requeued, 3, "3, 5 and 7 failed after `since`; 1 before");
    let got = rx.wait_for("/ep", 10, WAIT);
    let mut resent: Vec<u64> = got[7..]
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    resent.sort_unstable();
    assert_eq!(resent, [3, 5, 7]);
    assert!(got[7..].iter().all(|r| r.attempt() == 2));
    eventually(WAIT, "recovered", || {
        ids.iter().all(|id| {
            matches!(
                bus.delivery(ep.id(), *id).unwrap().unwrap().status,
                DeliveryStatus::Delivered { .. }
            )
        })
    });
    assert!(matches!(
        bus.delivery(ep.id(), early).unwrap().unwrap().status,
        DeliveryStatus::Failed { attempts: 1 }
    ));
}
