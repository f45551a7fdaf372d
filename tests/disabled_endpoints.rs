//! Guards the enable switch: a disabled endpoint gets nothing new, and what
//! was already queued for it waits (stored, not dropped) until it is enabled.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, WAIT};
use hookbus::{DeliveryStatus, EndpointConfig, Event};
use serde_json::json;

#[test]
fn disabled_endpoint_receives_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let on = bus
        .add_endpoint(EndpointConfig::new("on", rx.url("/on")))
        .unwrap();
    let off = bus
        .add_endpoint(EndpointConfig::new("off", rx.url("/off")))
        .unwrap();
    bus.disable_endpoint(off.id()).unwrap();
    assert!(!bus.endpoint(off.id()).unwrap().is_enabled());

    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    rx.wait_for("/on", 1, WAIT);
    assert!(
        bus.delivery(off.id(), id).unwrap().is_none(),
        "no delivery queued"
    );
    assert!(bus.delivery(on.id(), id).unwrap().is_some());

    // Enabling later does not bring back events published while disabled.
    bus.enable_endpoint(off.id()).unwrap();
    let later = bus.publish(Event::new("a.b", &json!(2)).unwrap()).unwrap();
    let got = rx.wait_for("/off", 1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].webhook_id(), later.to_string());
}

#[test]
fn queued_deliveries_wait_while_disabled_and_flow_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    // The first attempt fails, so the delivery is waiting for a retry when
    // the endpoint is disabled.
    let rx = Receiver::start(|_, nth| common::Reply::Status(if nth == 0 { 500 } else { 200 }));
    let bus = fast_bus(dir.path())
        .retry_delays([Duration::from_millis(300)])
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    rx.wait_for("/ep", 1, WAIT);
    bus.disable_endpoint(ep.id()).unwrap();

    // Well past the retry delay, nothing more has been sent, and the
    // delivery is still pending.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(rx.requests_to("/ep").len(), 1);
    assert!(matches!(
        bus.delivery(ep.id(), id).unwrap().unwrap().status,
        DeliveryStatus::Queued {
            next_attempt: 2,
            ..
        }
    ));

    bus.enable_endpoint(ep.id()).unwrap();
    let got = rx.wait_for("/ep", 2, WAIT);
    assert_eq!(got[1].attempt(), 2);
    eventually(WAIT, "delivered", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            DeliveryStatus::Delivered { attempts: 2 }
        )
    });
}
