//! Guards the attempt loop: numbered attempts starting at 1, retries after
//! failures, exhaustion after the maximum (kept as Failed, not dropped), and
//! later deliveries flowing while one waits for its retry.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{DeliveryStatus, EndpointConfig, ErrorKind, Event};
use serde_json::json;

#[test]
fn retry_then_success_sends_attempts_1_2_3() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, nth| Reply::Status(if nth < 2 { 503 } else { 200 }));
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus
        .publish(Event::new("a.b", &json!({"k": 1})).unwrap())
        .unwrap();

    let got = rx.wait_for("/ep", 3, WAIT);
    let numbers: Vec<u64> = got.iter().map(|r| r.attempt()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    // The id is the dedup key: the same on every attempt.
    assert!(got.iter().all(|r| r.webhook_id() == id.to_string()));

    eventually(WAIT, "delivered", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Delivered { attempts: 3 }
        )
    });
    let log = bus.attempts(id).unwrap();
    let summary: Vec<(u32, Option<u16>, bool)> = log
        .iter()
        .map(|a| (a.number, a.status, a.succeeded))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Some(503), false),
            (2, Some(503), false),
            (3, Some(200), true)
        ]
    );
    assert_eq!(log[0].error, Some(ErrorKind::Status));
    assert_eq!(log[2].error, None);
}

#[test]
fn exhausted_delivery_is_marked_failed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Full(500, vec![], b"boom".to_vec()));
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();

    eventually(WAIT, "failed", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Failed { attempts: 3 }
        )
    });
    // Default maximum: 3 attempts, and no fourth.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.requests_to("/ep").len(), 3);
    let log = bus.endpoint_attempts(ep.id(), None, 10).unwrap().items;
    assert_eq!(log.len(), 3);
    // Newest first.
    assert_eq!(log.iter().map(|a| a.number).collect::<Vec<_>>(), [3, 2, 1]);
    assert!(log
        .iter()
        .all(|a| a.response_text() == "boom" && !a.succeeded));
}

#[test]
fn per_endpoint_max_attempts_and_delays_override_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(500));
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", rx.url("/ep"))
                .max_attempts(5)
                .retry_delays([Duration::from_millis(10), Duration::from_millis(20)]),
        )
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let got = rx.wait_for("/ep", 5, WAIT);
    assert_eq!(
        got.iter().map(|r| r.attempt()).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    eventually(WAIT, "failed", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Failed { attempts: 5 }
        )
    });
}

#[test]
fn later_events_flow_while_one_waits_for_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    // Event 0 fails its first attempt; the rest succeed.
    let rx = Receiver::start(|r, _| {
        let first_try_of_zero = r.json()["data"]["n"] == 0 && r.json()["attempt"] == 1;
        Reply::Status(if first_try_of_zero { 500 } else { 200 })
    });
    let bus = fast_bus(dir.path())
        .retry_delays([Duration::from_secs(2)])
        .concurrency(1)
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    for n in 0..5 {
        bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
            .unwrap();
    }
    // Events 1..4 arrive long before event 0's retry is due.
    let got = rx.wait_for("/ep", 5, Duration::from_millis(1500));
    let ns: Vec<u64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 2, 3, 4]);
    let got = rx.wait_for("/ep", 6, WAIT);
    assert_eq!(got[5].json()["data"]["n"], 0);
    assert_eq!(got[5].attempt(), 2);
}
