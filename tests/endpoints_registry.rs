//! Guards the endpoint registry: add, get, list, update, enable, disable and
//! delete, all persisted across reopen.

mod common;

use std::time::Duration;

use common::{fast_bus, Receiver, WAIT};
use hookbus::{EndpointConfig, Event};
use serde_json::json;

#[test]
fn registry_operations_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = {
        let bus = common::open_bus(dir.path()).unwrap();
        let a = bus
            .add_endpoint(
                EndpointConfig::new("crm", "https://crm.example.com/hook")
                    .events(["lead.*", "tag.attached"])
                    .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                    .header("x-team", "growth")
                    .max_attempts(5)
                    .retry_delays([Duration::from_secs(5), Duration::from_secs(60)])
                    .timeout(Duration::from_secs(3))
                    .concurrency(4),
            )
            .unwrap();
        let b = bus
            .add_endpoint(EndpointConfig::new("b", "http://b.example.com"))
            .unwrap();
        let c = bus
            .add_endpoint(EndpointConfig::new("c", "http://c.example.com"))
            .unwrap();
        assert_ne!(a.id(), b.id());
        bus.disable_endpoint(b.id()).unwrap();
        bus.update_endpoint(
            c.id(),
            EndpointConfig::new("c2", "http://c2.example.com").events(["x.y"]),
        )
        .unwrap();
        bus.delete_endpoint(a.id()).unwrap();
        let a = bus.add_endpoint(a.config().clone()).unwrap();
        (a, b, c)
    };

    let bus = common::open_bus(dir.path()).unwrap();
    let all = bus.endpoints(None, usize::MAX).items;
    assert_eq!(
        all.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [b.id(), c.id(), a.id()]
    );

    let a2 = bus.endpoint(a.id()).unwrap();
    assert_eq!(a2.name(), "crm");
    assert_eq!(a2.url(), "https://crm.example.com/hook");
    assert_eq!(a2.events(), ["lead.*", "tag.attached"]);
    assert!(a2.has_secret() && a2.is_enabled());
    assert_eq!(format!("{:?}", a2.config()), format!("{:?}", a.config()));

    assert!(!bus.endpoint(b.id()).unwrap().is_enabled());
    let c2 = bus.endpoint(c.id()).unwrap();
    assert_eq!((c2.name(), c2.url()), ("c2", "http://c2.example.com"));
    assert_eq!(c2.events(), ["x.y"]);
    assert_eq!(c2.created_at(), c.created_at());
}

#[test]
fn deleting_an_endpoint_drops_its_queue_but_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let first = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    rx.wait_for("/ep", 1, WAIT);
    common::eventually(WAIT, "logged", || !bus.attempts(first).unwrap().is_empty());

    bus.disable_endpoint(ep.id()).unwrap();
    bus.enable_endpoint(ep.id()).unwrap();
    bus.delete_endpoint(ep.id()).unwrap();
    assert_eq!(bus.queue_depth(ep.id()), None);
    // Its finished delivery and its log stay readable.
    assert!(matches!(
        bus.delivery(ep.id(), first).unwrap().unwrap().status,
        hookbus::DeliveryStatus::Delivered { attempts: 1 }
    ));
    assert_eq!(bus.attempts(first).unwrap().len(), 1, "the log stays");

    let second = bus.publish(Event::new("a.b", &json!(2)).unwrap()).unwrap();
    assert!(bus.deliveries(second).unwrap().is_empty());
}
