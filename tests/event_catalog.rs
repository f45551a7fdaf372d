//! Guards the event-type catalog's JSON Schema validation (feature
//! `schema`): with `validate_payloads`, a payload that does not match its
//! type's schema fails the publish with a typed error and nothing is
//! stored; declared types without a schema and undeclared types pass; a
//! catalog whose example does not match its schema does not open.

mod common;

use common::bus_builder;
use hookbus::{Error, Event, EventType};
use serde_json::json;

fn paid() -> EventType {
    EventType::new("order.paid")
        .description("An order was paid.")
        .example(json!({"order": "o_1", "amount": 42}))
        .schema(json!({
            "type": "object",
            "required": ["order", "amount"],
            "properties": {"order": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}}
        }))
}

#[test]
fn a_payload_that_breaks_its_schema_is_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let bus = bus_builder(dir.path())
        .event_type(paid())
        .event_type(EventType::new("note.added"))
        .validate_payloads(true)
        .open()
        .unwrap();
    assert_eq!(bus.event_types().len(), 2);
    assert_eq!(
        bus.event_type("order.paid").unwrap().description,
        "An order was paid."
    );
    bus.publish(Event::new("order.paid", &json!({"order": "o_2", "amount": 1})).unwrap())
        .unwrap();
    let refused = bus
        .publish(Event::new("order.paid", &json!({"order": "o_3", "amount": -5})).unwrap())
        .unwrap_err();
    match refused.error() {
        Error::PayloadMismatch(m) => {
            assert_eq!(m.event_type, "order.paid");
            assert_eq!(m.path, "/amount");
            assert!(!m.reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    bus.publish(Event::new("note.added", &json!("anything")).unwrap())
        .unwrap();
    bus.publish(Event::new("undeclared.kind", &json!([1])).unwrap())
        .unwrap();
    assert_eq!(bus.stats().published, 3, "the refused event was not stored");
    bus.shutdown().unwrap();
}

#[test]
fn without_validation_the_schema_only_documents() {
    let dir = tempfile::tempdir().unwrap();
    let bus = bus_builder(dir.path()).event_type(paid()).open().unwrap();
    bus.publish(Event::new("order.paid", &json!({"amount": "lots"})).unwrap())
        .unwrap();
    bus.shutdown().unwrap();
}

#[test]
fn a_catalog_that_contradicts_itself_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let bad = paid().example(json!({"order": 5}));
    match bus_builder(dir.path()).event_type(bad).open() {
        Err(Error::InvalidConfig { setting, .. }) => assert_eq!(setting, "event_type"),
        other => panic!("{other:?}"),
    }
    let broken = EventType::new("x").schema(json!({"type": "no-such-type"}));
    assert!(bus_builder(dir.path()).event_type(broken).open().is_err());
    let twice = bus_builder(dir.path())
        .event_type(EventType::new("a"))
        .event_type(EventType::new("a"))
        .open();
    assert!(matches!(twice, Err(Error::InvalidConfig { .. })));
}
