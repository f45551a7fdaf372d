//! Guards the numbers a host shows its users: stats that match what the
//! receiver saw, endpoint health, and delivery-log queries whose pages stay
//! correct while new attempts arrive.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{AttemptQuery, DeliveryFilter, EndpointConfig, EndpointStatus, Event};
use serde_json::json;

#[test]
fn stats_match_what_the_receiver_saw() {
    let dir = tempfile::tempdir().unwrap();
    // /a: every 3rd event fails once then succeeds. /b: always 500.
    let rx = Receiver::start(|r, _| {
        let n = r.json()["data"]["n"].as_u64().unwrap();
        let ok = r.path == "/a" && (n % 3 != 0 || r.attempt() > 1);
        Reply::Status(if ok { 200 } else { 500 })
    });
    let bus = fast_bus(dir.path())
        .max_attempts(2)
        .pause_after(None)
        .open()
        .unwrap();
    let a = bus
        .add_endpoint(EndpointConfig::new("a", rx.url("/a")))
        .unwrap();
    let b = bus
        .add_endpoint(EndpointConfig::new("b", rx.url("/b")))
        .unwrap();
    for n in 0..30 {
        bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
            .unwrap();
    }
    rx.wait_for("/a", 40, WAIT);
    rx.wait_for("/b", 60, WAIT);
    eventually(WAIT, "settled", || {
        let s = bus.stats();
        s.queued == 0 && s.in_flight == 0 && s.delivered + s.failed == 60
    });
    let s = bus.stats();
    assert_eq!(s.published, 30);
    assert_eq!(s.attempts, rx.requests().len() as u64);
    assert_eq!(s.attempts, 100);
    assert_eq!(s.delivered, 30);
    assert_eq!(s.failed, 30);
    assert_eq!(s.retried, 10 + 30);
    let sa = s.endpoints.iter().find(|e| e.endpoint == a.id()).unwrap();
    assert_eq!(
        (sa.attempts, sa.delivered, sa.failed, sa.retried),
        (40, 30, 0, 10)
    );
    assert_eq!(sa.status, EndpointStatus::Active);

    let ha = bus.endpoint_health(a.id()).unwrap();
    assert!(ha.last_success.is_some());
    assert_eq!(ha.consecutive_failed_deliveries, 0);
    let hb = bus.endpoint_health(b.id()).unwrap();
    assert!(hb.last_success.is_none() && hb.last_failure.is_some());
    assert_eq!(hb.consecutive_failed_deliveries, 30);
    assert_eq!(hb.consecutive_failed_attempts, 60);
    assert_eq!(
        (hb.queued, hb.in_flight, hb.oldest_unfinished),
        (0, 0, None)
    );

    let failed = bus
        .endpoint_deliveries(b.id(), DeliveryFilter::Failed, None, 100)
        .unwrap()
        .items;
    assert_eq!(failed.len(), 30);
    let first_page = bus
        .endpoint_deliveries(a.id(), DeliveryFilter::Delivered, None, 10)
        .unwrap();
    let delivered = &first_page.items;
    assert_eq!(delivered.len(), 10);
    let next = bus
        .endpoint_deliveries(a.id(), DeliveryFilter::Delivered, first_page.next, 100)
        .unwrap()
        .items;
    assert_eq!(next.len(), 20, "pages do not overlap");
    assert!(next.iter().all(|d| d.event < delivered[9].event));
}

#[test]
fn attempt_queries_filter_and_page_while_attempts_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| Reply::Status(if r.path == "/bad" { 500 } else { 200 }));
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .pause_after(None)
        .open()
        .unwrap();
    let good = bus
        .add_endpoint(EndpointConfig::new("good", rx.url("/good")))
        .unwrap();
    let bad = bus
        .add_endpoint(EndpointConfig::new("bad", rx.url("/bad")))
        .unwrap();
    let t0 = SystemTime::now();
    let ids: Vec<_> = (0..20)
        .map(|n| {
            bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                .unwrap()
        })
        .collect();
    eventually(WAIT, "40 attempts", || bus.stats().attempts == 40);

    let all = bus.query_attempts(AttemptQuery::new(), None, 100).unwrap();
    assert_eq!(all.items.len(), 40);
    assert!(all.next.is_none());
    let failed = bus
        .query_attempts(AttemptQuery::new().succeeded(false), None, 100)
        .unwrap();
    assert_eq!(failed.items.len(), 20);
    assert!(failed.items.iter().all(|a| a.endpoint == bad.id()));
    let one_event = bus
        .query_attempts(AttemptQuery::new().event(ids[3]), None, 50)
        .unwrap();
    assert_eq!(one_event.items.len(), 2);
    let none_yet = bus
        .query_attempts(AttemptQuery::new().until(t0), None, 50)
        .unwrap();
    assert!(none_yet.items.is_empty());
    let since = bus
        .query_attempts(AttemptQuery::new().since(t0), None, 100)
        .unwrap();
    assert_eq!(since.items.len(), 40);

    // Page through the good endpoint's log 7 at a time while new attempts
    // keep arriving: no attempt is seen twice or skipped.
    let mut seen = HashSet::new();
    let query = AttemptQuery::new().endpoint(good.id());
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = bus.query_attempts(query.clone(), after, 7).unwrap();
        if pages == 0 {
            for n in 100..110 {
                bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        pages += 1;
        for a in &page.items {
            assert!(seen.insert(a.event), "{} seen twice", a.event);
        }
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        20,
        "exactly the attempts that existed when paging began"
    );
    assert!(ids.iter().all(|id| seen.contains(id)));
}
