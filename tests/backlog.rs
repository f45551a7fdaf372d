//! Guards backlogs larger than what a lane keeps in memory: the janitor
//! moves the newest queued deliveries out to storage, the lane reads them
//! back in windows as it drains, strict order holds throughout, a reopen
//! reads one window instead of the whole queue, and queries and resends
//! see the part of the queue that lives in storage.

mod common;

use std::time::Duration;

use common::{eventually, fast_bus, Receiver, WAIT};
use hookbus::{DeliveryFilter, EndpointConfig, Error, Event, EventId};
use serde_json::json;

/// Several times a lane's in-memory window (1,024).
const BACKLOG: usize = 3_000;

fn publish_backlog(bus: &hookbus::Bus) -> Vec<EventId> {
    (0..BACKLOG)
        .map(|n| {
            bus.publish(Event::new("bulk.item", &json!({ "n": n })).unwrap())
                .unwrap()
        })
        .collect()
}

fn ids_received(rx: &Receiver, path: &str) -> Vec<String> {
    rx.requests_to(path)
        .iter()
        .map(|r| r.webhook_id())
        .collect()
}

#[test]
fn a_backlog_beyond_the_window_drains_in_publish_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .janitor_interval(Duration::from_millis(50))
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ordered", rx.url("/o")).ordered(true))
        .unwrap();
    bus.pause_endpoint(ep.id()).unwrap();
    let ids = publish_backlog(&bus);
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), BACKLOG);
    // Let the janitor move most of it out of memory.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), BACKLOG);
    // A queued delivery that lives in storage now is still "in progress".
    let last = *ids.last().unwrap();
    assert!(matches!(
        bus.resend(last, ep.id()),
        Err(Error::DeliveryInProgress { .. })
    ));
    // Listing the queue pages through memory and storage alike.
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = bus
            .endpoint_deliveries(ep.id(), DeliveryFilter::Unfinished, after, 500)
            .unwrap();
        listed.extend(page.items.iter().map(|d| d.event));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, ids);

    bus.resume_endpoint(ep.id()).unwrap();
    rx.wait_for("/o", BACKLOG, Duration::from_secs(60));
    let expected: Vec<String> = ids.iter().map(|e| e.to_string()).collect();
    assert_eq!(ids_received(&rx, "/o"), expected, "strict publish order");
    eventually(WAIT, "the queue drained", || {
        bus.queue_depth(ep.id()).unwrap() == 0
    });
    bus.shutdown().unwrap();
}

#[test]
fn reopen_reads_a_spilled_queue_in_windows() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (ep, ids) = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let ep = bus
            .add_endpoint(EndpointConfig::new("ordered", rx.url("/o")).ordered(true))
            .unwrap();
        bus.pause_endpoint(ep.id()).unwrap();
        let ids = publish_backlog(&bus);
        // Shutdown's last checkpoint moves the backlog to storage.
        bus.shutdown().unwrap();
        (ep, ids)
    };
    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(bus.recovery().resumed, BACKLOG);
    assert_eq!(bus.queue_depth(ep.id()).unwrap(), BACKLOG);
    bus.resume_endpoint(ep.id()).unwrap();
    // New events join behind the stored backlog.
    let newer: Vec<EventId> = (0..5)
        .map(|n| bus.publish(Event::new("late", &json!(n)).unwrap()).unwrap())
        .collect();
    rx.wait_for("/o", BACKLOG + 5, Duration::from_secs(60));
    let expected: Vec<String> = ids.iter().chain(&newer).map(|e| e.to_string()).collect();
    assert_eq!(ids_received(&rx, "/o"), expected);
    bus.shutdown().unwrap();
}

#[test]
fn an_unordered_backlog_beyond_the_window_is_delivered_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .janitor_interval(Duration::from_millis(50))
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("bulk", rx.url("/b")).concurrency(4))
        .unwrap();
    bus.pause_endpoint(ep.id()).unwrap();
    let ids = publish_backlog(&bus);
    std::thread::sleep(Duration::from_millis(300));
    bus.resume_endpoint(ep.id()).unwrap();
    rx.wait_for("/b", BACKLOG, Duration::from_secs(60));
    let mut got = ids_received(&rx, "/b");
    got.sort();
    let mut expected: Vec<String> = ids.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(got, expected, "each exactly once");
    bus.shutdown().unwrap();
}
