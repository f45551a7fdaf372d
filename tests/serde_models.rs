//! The `serde` feature: the read models a host exposes serialize to the
//! documented JSON shapes and read back to equal values.
//!
//! Run with `cargo test --features serde --test serde_models`.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{
    Attempt, Delivery, DeliveryStatus, EndpointConfig, EndpointHealth, EndpointId, EndpointStatus,
    ErrorKind, Event, EventId, Notice, Page, PauseReason, Stats,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Serializes, reads back, and checks that nothing changed on the way.
fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> (Value, T) {
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), json);
    (json, back)
}

#[test]
fn read_models_serialize_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| Reply::Status(if r.path == "/bad" { 500 } else { 200 }));
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .pause_after(Some(1))
        .open()
        .unwrap();
    let notices = bus.notices();
    let good = bus
        .add_endpoint(EndpointConfig::new("good", rx.url("/good")))
        .unwrap();
    let bad = bus
        .add_endpoint(EndpointConfig::new("bad", rx.url("/bad")))
        .unwrap();
    let id = bus
        .publish(Event::new("a.b", &json!({"n": 1})).unwrap())
        .unwrap();
    eventually(WAIT, "both attempts logged", || {
        bus.attempts(id).unwrap().len() == 2
    });

    // Ids as their text forms.
    let (json, back) = round_trip(&id);
    assert_eq!(json, json!(id.to_string()));
    assert_eq!(back, id);
    let (json, back) = round_trip(&good.id());
    assert_eq!(json, json!(good.id().to_string()));
    assert_eq!(back, good.id());
    assert!(serde_json::from_value::<EventId>(json!("evt_nope")).is_err());
    assert!(serde_json::from_value::<EndpointId>(json!(3)).is_err());

    // A delivery and its status, times in Unix milliseconds.
    let delivered = bus.delivery(good.id(), id).unwrap().unwrap();
    let (json, back) = round_trip(&delivered);
    assert_eq!(json["endpoint"], json!(good.id().to_string()));
    assert_eq!(json["status"], json!({"state": "delivered", "attempts": 1}));
    assert!(json["created_at"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(back.status, delivered.status);
    assert_eq!(back.created_at, delivered.created_at);
    let queued = DeliveryStatus::Queued {
        next_attempt: 2,
        due: std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
    };
    let (json, back) = round_trip(&queued);
    assert_eq!(
        json,
        json!({"state": "queued", "next_attempt": 2, "due": 1_700_000_000_123u64})
    );
    assert_eq!(back, queued);

    // Attempts: the failed one carries its error kind in snake_case and
    // its duration in microseconds.
    let attempts = bus.attempts(id).unwrap();
    let failed = attempts.iter().find(|a| a.endpoint == bad.id()).unwrap();
    let (json, back) = round_trip(failed);
    assert_eq!(json["error"], json!("status"));
    assert_eq!(json["status"], json!(500));
    assert_eq!(json["trigger"], json!("scheduled"));
    assert_eq!(json["duration"], json!(failed.duration.as_micros() as u64));
    assert_eq!(back.error, Some(ErrorKind::Status));
    assert_eq!(back.duration, failed.duration);

    // A page of them, with its cursor as text.
    let page = bus.endpoint_attempts(good.id(), None, 1).unwrap();
    let (json, back): (Value, Page<Attempt>) = round_trip(&page);
    assert_eq!(json["next"], json!(page.next.unwrap().to_string()));
    assert_eq!(back.next, page.next);
    assert_eq!(back.items.len(), 1);

    // The bad endpoint paused itself after one failed delivery: its status,
    // health and the notices say so.
    eventually(WAIT, "paused", || {
        matches!(
            bus.endpoint(bad.id()).unwrap().status(),
            EndpointStatus::Paused { .. }
        )
    });
    let status = bus.endpoint(bad.id()).unwrap().status();
    let (json, back) = round_trip(&status);
    assert_eq!(json["status"], json!("paused"));
    assert_eq!(
        json["reason"],
        json!({"kind": "consecutive_failures", "count": 1})
    );
    assert_eq!(back, status);
    let health: EndpointHealth = bus.endpoint_health(bad.id()).unwrap();
    let (json, back) = round_trip(&health);
    assert_eq!(json["last_success"], Value::Null);
    assert_eq!(back, health);
    let stats: Stats = bus.stats();
    let (json, back) = round_trip(&stats);
    assert_eq!(json["published"], json!(1));
    assert_eq!(json["paused_endpoints"], json!(1));
    assert_eq!(back, stats);

    let mut seen = Vec::new();
    while let Ok(n) = notices.recv_timeout(Duration::from_millis(200)) {
        seen.push(n);
    }
    let paused = seen
        .iter()
        .find(|n| matches!(n, Notice::EndpointPaused { .. }))
        .unwrap();
    let (json, back) = round_trip(paused);
    assert_eq!(
        json,
        json!({
            "type": "endpoint_paused",
            "endpoint": bad.id().to_string(),
            "reason": {"kind": "consecutive_failures", "count": 1}
        })
    );
    assert_eq!(&back, paused);
    assert!(matches!(
        back,
        Notice::EndpointPaused {
            reason: PauseReason::ConsecutiveFailures(1),
            ..
        }
    ));
    let _: Delivery = delivered;
}
