//! Guards `Retry-After`: a 429 or 503 that asks for more time gets it (at
//! least the scheduled delay, at most `max_retry_after`).

mod common;

use std::time::Duration;

use common::{fast_bus, Receiver, Reply, WAIT};
use hookbus::{EndpointConfig, Event};
use serde_json::json;

fn asking(status: u16, seconds: &'static str) -> Receiver {
    Receiver::start(move |_, nth| {
        if nth == 0 {
            Reply::Full(status, vec![("Retry-After".into(), seconds.into())], vec![])
        } else {
            Reply::Status(200)
        }
    })
}

#[test]
fn retry_after_on_429_delays_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let rx = asking(429, "2");
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let got = rx.wait_for("/ep", 2, WAIT);
    let gap = got[1].at - got[0].at;
    // The scheduled delay is 50 ms; the receiver asked for 2 s.
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
}

#[test]
fn retry_after_on_503_is_capped_by_max_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let rx = asking(503, "3600");
    let bus = fast_bus(dir.path())
        .max_retry_after(Duration::from_millis(600))
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let got = rx.wait_for("/ep", 2, WAIT);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(550), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(5), "the cap was ignored: {gap:?}");
}

#[test]
fn retry_after_on_other_statuses_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let rx = asking(500, "3600");
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let got = rx.wait_for("/ep", 2, WAIT);
    assert!(got[1].at - got[0].at < Duration::from_secs(2));
}
