//! Guards retention: delivered events and their attempts are purged after
//! the retention period; pending and failed ones are kept, whatever their
//! age.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{DeliveryStatus, EndpointConfig, Event};
use serde_json::json;

#[test]
fn delivered_events_are_purged_and_failed_or_pending_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| Reply::Status(if r.path == "/bad" { 500 } else { 200 }));
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .pause_after(None)
        .retention(Some(Duration::from_millis(300)))
        .janitor_interval(Duration::from_millis(100))
        .open()
        .unwrap();
    let good = bus
        .add_endpoint(EndpointConfig::new("good", rx.url("/good")).events(["ok.*"]))
        .unwrap();
    let bad = bus
        .add_endpoint(EndpointConfig::new("bad", rx.url("/bad")).events(["bad.*"]))
        .unwrap();
    let held = bus
        .add_endpoint(EndpointConfig::new("held", rx.url("/held")).events(["held.*"]))
        .unwrap();
    bus.pause_endpoint(held.id()).unwrap();

    let delivered = bus.publish(Event::new("ok.x", &json!(1)).unwrap()).unwrap();
    let failed = bus
        .publish(Event::new("bad.x", &json!(2)).unwrap())
        .unwrap();
    let pending = bus
        .publish(Event::new("held.x", &json!(3)).unwrap())
        .unwrap();
    eventually(WAIT, "the delivered one is purged", || {
        bus.event(delivered).unwrap().is_none()
    });
    assert!(
        bus.attempts(delivered).unwrap().is_empty(),
        "its attempts go too"
    );
    assert!(bus.delivery(good.id(), delivered).unwrap().is_none());

    // Well past the retention, the others stay.
    std::thread::sleep(Duration::from_millis(600));
    assert!(bus.event(failed).unwrap().is_some());
    assert!(matches!(
        bus.delivery(bad.id(), failed).unwrap().unwrap().status,
        DeliveryStatus::Failed { attempts: 1 }
    ));
    assert_eq!(bus.attempts(failed).unwrap().len(), 1);
    assert!(bus.event(pending).unwrap().is_some());
    assert_eq!(bus.queue_depth(held.id()).unwrap(), 1);

    // Once the held one is delivered, it ages out too.
    bus.resume_endpoint(held.id()).unwrap();
    rx.wait_for("/held", 1, WAIT);
    eventually(WAIT, "purged after delivery", || {
        bus.event(pending).unwrap().is_none()
    });
}
