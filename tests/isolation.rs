//! Guards endpoint isolation: an endpoint that hangs never delays delivery
//! to another one.

mod common;

use std::time::{Duration, Instant};

use common::{fast_bus, Receiver, Reply};
use hookbus::{EndpointConfig, Event};
use serde_json::json;

#[test]
fn hung_endpoint_does_not_delay_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        if r.path == "/hung" {
            Reply::After(Duration::from_secs(30), 200)
        } else {
            Reply::Status(200)
        }
    });
    let bus = fast_bus(dir.path())
        .timeout(Duration::from_secs(4))
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("hung", rx.url("/hung")))
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("healthy", rx.url("/healthy")))
        .unwrap();

    let started = Instant::now();
    for n in 0..50 {
        bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
            .unwrap();
    }
    // Every hung-endpoint sender is stuck on a request that takes 4 s to
    // time out; the healthy endpoint must get all 50 before that.
    rx.wait_for("/healthy", 50, Duration::from_secs(4));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "healthy endpoint took {took:?}"
    );
    // The hung endpoint did get its first requests: it really was hanging,
    // and none of them has been answered.
    let hung = rx.requests_to("/hung");
    assert!(!hung.is_empty());
    assert!(bus
        .attempts(hung[0].webhook_id().parse().unwrap())
        .unwrap()
        .iter()
        .all(|a| a.endpoint != bus.endpoints(None, usize::MAX).items[0].id()));
    // Shutdown waits for the hung attempts to time out, then returns.
    bus.shutdown().unwrap();
}

#[test]
fn shutdown_waits_at_most_its_timeout_for_a_hung_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::After(Duration::from_secs(20), 200));
    let bus = fast_bus(dir.path())
        .timeout(Duration::from_secs(15))
        .shutdown_timeout(Duration::from_millis(300))
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("hung", rx.url("/hung")))
        .unwrap();
    bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    rx.wait_for("/hung", 1, Duration::from_secs(5));
    let started = Instant::now();
    bus.shutdown().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
