//! Guards tenant isolation on the manual paths: an event can be resent (or
//! recovered) only to an endpoint of the tenant it was published to; asked
//! for another tenant's endpoint, `resend` answers as for an unknown event
//! and nothing is sent or stored.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, WAIT};
use hookbus::{EndpointConfig, Error, Event};
use serde_json::json;

#[test]
fn resend_never_sends_an_event_to_another_tenants_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let mine = bus
        .add_endpoint(EndpointConfig::new("hooks", rx.url("/acme")).tenant("acme"))
        .unwrap();
    let theirs = bus
        .add_endpoint(EndpointConfig::new("hooks", rx.url("/globex")).tenant("globex"))
        .unwrap();
    let id = bus
        .publish(
            Event::new("invoice.paid", &json!({"secret": "acme only"}))
                .unwrap()
                .tenant("acme"),
        )
        .unwrap();
    rx.wait_for("/acme", 1, WAIT);
    eventually(WAIT, "the delivery recorded", || {
        bus.delivery(mine.id(), id)
            .unwrap()
            .is_some_and(|d| matches!(d.status, hookbus::DeliveryStatus::Delivered { .. }))
    });

    let refused = bus.resend(id, theirs.id());
    assert!(
        matches!(refused, Err(Error::EventNotFound(e)) if e == id),
        "resend to another tenant's endpoint: {refused:?}"
    );
    // Resending to its own tenant's endpoint still works.
    // The log says Delivered a moment before the sender lets go of the
    // delivery; until then a resend is refused as in progress.
    eventually(WAIT, "the resend accepted", || {
        match bus.resend(id, mine.id()) {
            Ok(()) => true,
            Err(Error::DeliveryInProgress { .. }) => false,
            Err(e) => panic!("resend to its own tenant's endpoint: {e:?}"),
        }
    });
    rx.wait_for("/acme", 2, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.requests_to("/globex").is_empty(), "sent across tenants");
    assert!(bus.delivery(theirs.id(), id).unwrap().is_none());
    bus.shutdown().unwrap();
}
