//! Guards the metadata headers: whatever the body format, a receiver reads
//! the event type in `webhook-event-type` and the event id in `webhook-id`
//! (with `webhook-attempt` and `webhook-occurred-at` beside them), so that,
//! say, a Grow receiver whose body is the contact's flat attributes can tell
//! a subscribe from an unsubscribe.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{fast_bus, Receiver, Reply, WAIT};
use hookbus::presets::{Grow, GrowthX, LeadCrm, Snitcher};
use hookbus::{EndpointConfig, Envelope, EnvelopeInput, Event, Format, Signing};
use serde_json::json;

/// A host envelope that keeps nothing but the payload.
struct PayloadOnly;

impl Envelope for PayloadOnly {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        Ok(input.payload.to_vec())
    }
}

fn formats() -> Vec<(&'static str, Format)> {
    vec![
        ("standard", Format::Standard),
        ("growth-x", GrowthX::new("c@x.com").into()),
        ("lead-crm", LeadCrm::new("sp").into()),
        ("snitcher", Snitcher.into()),
        ("grow", Grow.into()),
        ("raw", Format::Raw),
        ("custom", Format::Custom("payload-only".into())),
    ]
}

#[test]
fn every_format_tells_the_receiver_the_event_type_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .envelope("payload-only", PayloadOnly)
        .open()
        .unwrap();
    for (name, format) in formats() {
        bus.add_endpoint(
            EndpointConfig::new(name, rx.url(&format!("/{name}")))
                .format(format)
                .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .signing(Signing::StandardWebhooks),
        )
        .unwrap();
    }
    let at = UNIX_EPOCH + Duration::from_millis(1_737_736_239_698);
    let subscribe = bus
        .publish(
            Event::new("contact.subscribe", &json!({"msisdn": 27820000000u64}))
                .unwrap()
                .occurred_at(at),
        )
        .unwrap();
    let unsubscribe = bus
        .publish(
            Event::new("contact.unsubscribe", &json!({"msisdn": 27820000000u64}))
                .unwrap()
                .occurred_at(at),
        )
        .unwrap();
    for (name, _) in formats() {
        let got = rx.wait_for(&format!("/{name}"), 2, WAIT);
        let mut seen: Vec<(String, String)> = got
            .iter()
            .map(|r| {
                assert_eq!(r.header("webhook-attempt"), Some("1"), "{name}");
                assert_eq!(
                    r.header("webhook-occurred-at"),
                    Some("2025-01-24T16:30:39.698Z"),
                    "{name}"
                );
                (
                    r.header("webhook-event-type")
                        .unwrap_or_else(|| panic!("{name}: no webhook-event-type"))
                        .to_string(),
                    r.webhook_id(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("contact.subscribe".to_string(), subscribe.to_string()),
                ("contact.unsubscribe".to_string(), unsubscribe.to_string()),
            ],
            "{name}"
        );
    }
    bus.shutdown().unwrap();
}

#[test]
fn grow_bodies_are_identical_and_the_header_tells_them_apart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(200));
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("grow", rx.url("/grow")).format(Grow))
        .unwrap();
    let contact = json!({"msisdn": 1, "geo": {"city": "Cape Town"}});
    for t in ["contact.subscribe", "contact.unsubscribe"] {
        bus.publish(Event::new(t, &contact).unwrap()).unwrap();
    }
    let got = rx.wait_for("/grow", 2, WAIT);
    assert_eq!(got[0].body, got[1].body, "the flat object carries no type");
    let mut types: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-event-type").unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["contact.subscribe", "contact.unsubscribe"]);
}

#[test]
fn a_test_send_carries_the_headers_too() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("grow", rx.url("/grow")).format(Grow))
        .unwrap();
    let attempt = bus
        .test_send(
            ep.id(),
            Event::new("contact.subscribe", &json!({"a": 1})).unwrap(),
        )
        .unwrap();
    assert_eq!(attempt.status, Some(200));
    let got = rx.wait_for("/grow", 1, WAIT);
    assert_eq!(
        got[0].header("webhook-event-type"),
        Some("contact.subscribe")
    );
    assert_eq!(got[0].webhook_id(), attempt.event.to_string());
}
