//! Guards idempotent publish: a key seen within the window returns the
//! first event's id and queues nothing new, across restarts too.

mod common;

use std::time::Duration;

use common::{fast_bus, Receiver, WAIT};
use hookbus::{EndpointConfig, Error, Event};
use serde_json::json;

#[test]
fn the_same_key_publishes_once() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let first = {
        let bus = fast_bus(dir.path()).open().unwrap();
        bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
            .unwrap();
        let event = || {
            Event::new("MESSAGE_REPLIED", &json!({"contact": 7}))
                .unwrap()
                .idempotency_key("MESSAGE_REPLIED:7:2026-11-22T10:00")
        };
        let first = bus.publish(event()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let bus = bus.clone();
                let event = event();
                std::thread::spawn(move || bus.publish(event).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), first);
        }
        let other = bus
            .publish(
                Event::new("MESSAGE_REPLIED", &json!({"contact": 8}))
                    .unwrap()
                    .idempotency_key("other"),
            )
            .unwrap();
        assert_ne!(other, first);
        rx.wait_for("/ep", 2, WAIT);
        bus.shutdown().unwrap();
        first
    };
    let bus = fast_bus(dir.path()).open().unwrap();
    let again = bus
        .publish(
            Event::new("MESSAGE_REPLIED", &json!({"contact": 7}))
                .unwrap()
                .idempotency_key("MESSAGE_REPLIED:7:2026-11-22T10:00"),
        )
        .unwrap();
    assert_eq!(again, first, "remembered across a restart");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rx.requests().len(), 2, "no duplicate deliveries");
    assert!(matches!(
        bus.publish(Event::new("a.b", &json!(1)).unwrap().idempotency_key(""))
            .map_err(Error::from),
        Err(Error::InvalidIdempotencyKey { .. })
    ));
}

#[test]
fn a_key_is_forgotten_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path())
        .idempotency_window(Duration::from_millis(200))
        .open()
        .unwrap();
    let first = bus
        .publish(Event::new("a.b", &json!(1)).unwrap().idempotency_key("k"))
        .unwrap();
    assert_eq!(
        bus.publish(Event::new("a.b", &json!(1)).unwrap().idempotency_key("k"))
            .unwrap(),
        first
    );
    std::thread::sleep(Duration::from_millis(300));
    let second = bus
        .publish(Event::new("a.b", &json!(1)).unwrap().idempotency_key("k"))
        .unwrap();
    assert_ne!(second, first);
}
