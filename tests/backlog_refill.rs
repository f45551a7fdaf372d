//! Guards the refill of a backlog spilled to storage: deliveries that are
//! due now and live in storage go out even while the part of the queue
//! kept in memory only waits for retries scheduled far ahead.

mod common;

use std::time::Duration;

use common::{fast_bus, Receiver, Reply};
use hookbus::{EndpointConfig, Event, EventId};
use serde_json::json;

/// Deliveries whose first attempt fails and whose retry is an hour away:
/// more than a quarter of a lane's window (1,024), fewer than all of it.
const RETRYING: u64 = 300;
/// Deliveries published while the endpoint is paused: with the retrying
/// ones, more than the window, so the newest are moved to storage.
const FRESH: u64 = 1_500;

#[test]
fn spilled_deliveries_due_now_do_not_wait_for_far_retries_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    // The first RETRYING events fail once; everything else is accepted.
    let rx = Receiver::start(|r, _| {
        let n = r.json()["data"]["n"].as_u64().unwrap();
        Reply::Status(if n < RETRYING && r.attempt() == 1 {
            500
        } else {
            200
        })
    });
    let bus = fast_bus(dir.path())
        .janitor_interval(Duration::from_millis(50))
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("bulk", rx.url("/b"))
                .retry_delays([Duration::from_secs(3600)])
                .max_attempts(2),
        )
        .unwrap();
    let publish = |n: u64| -> EventId {
        bus.publish(Event::new("bulk.item", &json!({ "n": n })).unwrap())
            .unwrap()
    };
    for n in 0..RETRYING {
        publish(n);
    }
    // Every one has failed its first attempt and waits an hour.
    rx.wait_for("/b", RETRYING as usize, Duration::from_secs(30));
    bus.pause_endpoint(ep.id()).unwrap();
    for n in RETRYING..RETRYING + FRESH {
        publish(n);
    }
    // Let the janitor move the newest of them out of memory.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        bus.queue_depth(ep.id()).unwrap(),
        (RETRYING + FRESH) as usize
    );
    bus.resume_endpoint(ep.id()).unwrap();
    // Every fresh delivery is due now and the receiver accepts it at once.
    let arrived = rx.wait_for("/b", (RETRYING + FRESH) as usize, Duration::from_secs(30));
    let mut fresh: Vec<u64> = arrived
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .filter(|n| *n >= RETRYING)
        .collect();
    fresh.sort_unstable();
    assert_eq!(
        fresh,
        (RETRYING..RETRYING + FRESH).collect::<Vec<_>>(),
        "each fresh delivery exactly once, none left waiting behind the retries"
    );
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), RETRYING as usize);
    bus.shutdown().unwrap();
}
