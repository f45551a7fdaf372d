//! Guards fan-out: one publish reaches every enabled endpoint whose patterns
//! match the event type (exact, prefix wildcard, `*`), and no other.

mod common;

use std::collections::BTreeSet;

use common::{fast_bus, Receiver, WAIT};
use hookbus::{EndpointConfig, Event};
use serde_json::json;

#[test]
fn each_event_reaches_exactly_the_matching_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("all", rx.url("/all")))
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("leads", rx.url("/leads")).events(["lead.*"]))
        .unwrap();
    bus.add_endpoint(
        EndpointConfig::new("exact", rx.url("/exact")).events(["tag.attached", "lead.create"]),
    )
    .unwrap();

    let types = [
        "lead.create",
        "lead.note.add",
        "tag.attached",
        "tag.detached",
        "leads.x",
    ];
    for t in types {
        bus.publish(Event::new(t, &json!({"t": t})).unwrap())
            .unwrap();
    }

    let expect = |path: &str, want: &[&str]| {
        let got = rx.wait_for(path, want.len(), WAIT);
        let got: BTreeSet<String> = got
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "deliveries to {path}");
    };
    expect("/all", &types);
    expect("/leads", &["lead.create", "lead.note.add"]);
    expect("/exact", &["tag.attached", "lead.create"]);

    // Nothing more arrives once the queues are drained.
    bus.shutdown().unwrap();
    assert_eq!(rx.requests().len(), types.len() + 2 + 2);
}

#[test]
fn an_event_nobody_subscribes_to_is_stored_without_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("leads", rx.url("/leads")).events(["lead.*"]))
        .unwrap();
    let id = bus
        .publish(Event::new("invoice.paid", &json!({})).unwrap())
        .unwrap();
    assert!(bus.event(id).unwrap().is_some());
    assert!(bus.deliveries(id).unwrap().is_empty());
}

#[test]
fn the_envelope_carries_id_type_time_attempt_and_payload() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("all", rx.url("/all")))
        .unwrap();
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
    let id = bus
        .publish(
            Event::from_json_bytes("lead.create", br#"{"name":"Ada","tags":[1,2]}"#.to_vec())
                .unwrap()
                .occurred_at(at),
        )
        .unwrap();
    let req = &rx.wait_for("/all", 1, WAIT)[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("webhook-id"), Some(id.to_string().as_str()));
    assert_eq!(
        req.json(),
        json!({
            "id": id.to_string(),
            "type": "lead.create",
            "occurred_at": "2023-11-14T22:13:20.123Z",
            "attempt": 1,
            "data": {"name": "Ada", "tags": [1, 2]},
        })
    );
    let ts: u64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts) < 60, "timestamp is in seconds and fresh");
    // No secret: no signature header.
    assert_eq!(req.header("webhook-signature"), None);
}

#[test]
fn extra_headers_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("h", rx.url("/h")).header("X-Api-Key", "k-123"))
        .unwrap();
    bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let req = &rx.wait_for("/h", 1, WAIT)[0];
    assert_eq!(req.header("x-api-key"), Some("k-123"));
}
