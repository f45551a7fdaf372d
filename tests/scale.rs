//! Guards scale: many publishing threads share flushes (group commit), and a
//! bus with 1,000 endpoints delivers to all of them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fast_bus, Receiver};
use hookbus::{EndpointConfig, Event};
use serde_json::json;

#[test]
fn concurrent_publishes_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = Arc::new(fast_bus(dir.path()).open().unwrap());
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let before = bus.stats().commit_flushes;
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for n in 0..50 {
                    bus.publish(Event::new("a.b", &json!({"t": t, "n": n})).unwrap())
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = bus.stats().commit_flushes - before;
    println!("800 publishes from 16 threads took {flushes} flushes");
    assert!(
        flushes < 800,
        "every publish paid its own flush ({flushes})"
    );
    rx.wait_for("/ep", 800, Duration::from_secs(60));
}

#[test]
fn a_thousand_endpoints_all_receive() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .timeout(Duration::from_secs(10))
        .sender_idle_timeout(Duration::from_millis(200))
        .open()
        .unwrap();
    for i in 0..1000 {
        bus.add_endpoint(EndpointConfig::new(
            format!("ep{i}"),
            rx.url(&format!("/ep/{i}")),
        ))
        .unwrap();
    }
    bus.publish(Event::new("a.b", &json!("hello")).unwrap())
        .unwrap();
    // A thousand connections at once on a loaded machine may need a retry
    // or two: wait for every endpoint, not for a count of requests.
    let distinct = |r: &[common::Received]| {
        let mut paths: Vec<&str> = r.iter().map(|x| x.path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        paths.len()
    };
    let got = rx.wait_until(Duration::from_secs(60), "all 1000 endpoints", |r| {
        distinct(r) == 1000
    });
    assert_eq!(distinct(&got), 1000);
    bus.shutdown().unwrap();
}
