//! Guards the shared sender pool and the retry clock: threads stay within
//! the configured maximum, a huge backlog does not delay another endpoint's
//! first delivery, hung endpoints hold at most half of the pool, waiting
//! retries hold no thread, and a rate limit spaces attempts without
//! spending any.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{AttemptQuery, EndpointConfig, Event};
use serde_json::json;

fn event(n: usize) -> Event {
    Event::new("a.b", &json!({ "n": n })).unwrap()
}

/// A receiver that takes `hold` to answer and records the most requests it
/// ever had open at once.
fn counting_receiver(hold: Duration) -> (Receiver, Arc<AtomicUsize>) {
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p) = (Arc::clone(&active), Arc::clone(&peak));
    let rx = Receiver::start(move |_, _| {
        let now = a.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(hold);
        a.fetch_sub(1, Ordering::SeqCst);
        Reply::Status(200)
    });
    (rx, peak)
}

#[test]
fn threads_never_exceed_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (rx, peak) = counting_receiver(Duration::from_millis(30));
    let bus = fast_bus(dir.path())
        .sender_threads(4)
        .concurrency(8)
        .open()
        .unwrap();
    for i in 0..40 {
        bus.add_endpoint(EndpointConfig::new(
            format!("ep{i}"),
            rx.url(&format!("/{i}")),
        ))
        .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampled = {
        let (bus, stop) = (bus.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut most = 0;
            while !stop.load(Ordering::SeqCst) {
                most = most.max(bus.stats().sender_threads);
                std::thread::sleep(Duration::from_millis(2));
            }
            most
        })
    };
    for n in 0..5 {
        bus.publish(event(n)).unwrap();
    }
    rx.wait_until(WAIT, "200 requests", |r| r.len() >= 200);
    stop.store(true, Ordering::SeqCst);
    let most_threads = sampled.join().unwrap();
    assert!(most_threads <= 4, "{most_threads} sender threads");
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "{} requests at once",
        peak.load(Ordering::SeqCst)
    );
    assert!(bus.stats().sender_threads_started >= 1);
    bus.shutdown().unwrap();
}

#[test]
fn a_backlog_does_not_delay_another_endpoints_first_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        if r.path == "/backlog" {
            std::thread::sleep(Duration::from_millis(2));
        }
        Reply::Status(200)
    });
    let bus = fast_bus(dir.path()).sender_threads(2).open().unwrap();
    let backlog = bus
        .add_endpoint(
            EndpointConfig::new("backlog", rx.url("/backlog"))
                .events(["bulk.*"])
                .concurrency(2),
        )
        .unwrap();
    let fresh = bus
        .add_endpoint(EndpointConfig::new("fresh", rx.url("/fresh")).events(["ping"]))
        .unwrap();
    // The backlog builds while paused, then flows.
    bus.pause_endpoint(backlog.id()).unwrap();
    for n in 0..2000 {
        bus.publish(Event::new("bulk.item", &json!({ "n": n })).unwrap())
            .unwrap();
    }
    bus.resume_endpoint(backlog.id()).unwrap();
    rx.wait_for("/backlog", 50, WAIT);
    let before = rx.requests_to("/backlog").len();
    bus.publish(Event::new("ping", &json!({})).unwrap())
        .unwrap();
    rx.wait_for("/fresh", 1, WAIT);
    let during = rx.requests_to("/backlog").len() - before;
    assert!(
        during <= 8,
        "{during} backlog deliveries went ahead of the fresh endpoint's first one"
    );
    assert!(
        rx.requests_to("/backlog").len() < 2000,
        "the backlog had drained"
    );
    let _ = fresh;
    bus.shutdown().unwrap();
}

#[test]
fn hung_endpoints_hold_at_most_half_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hung.incoming() {
            held.push(conn);
        }
    });
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .sender_threads(4)
        .timeout(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_millis(100))
        .open()
        .unwrap();
    let healthy = bus
        .add_endpoint(EndpointConfig::new("healthy", rx.url("/ok")).events(["ok"]))
        .unwrap();
    // One quick answer makes the healthy endpoint proven.
    bus.publish(Event::new("ok", &json!(0)).unwrap()).unwrap();
    rx.wait_for("/ok", 1, WAIT);
    for i in 0..20 {
        bus.add_endpoint(
            EndpointConfig::new(
                format!("hung{i}"),
                format!("http://127.0.0.1:{hung_port}/{i}"),
            )
            .events(["hang"]),
        )
        .unwrap();
    }
    bus.publish(Event::new("hang", &json!(1)).unwrap()).unwrap();
    eventually(WAIT, "hung attempts in flight", || {
        bus.stats().in_flight >= 2
    });
    for n in 1..=50 {
        bus.publish(Event::new("ok", &json!(n)).unwrap()).unwrap();
    }
    rx.wait_for("/ok", 51, WAIT);
    let stats = bus.stats();
    let hung_in_flight: usize = stats
        .endpoints
        .iter()
        .filter(|e| e.endpoint != healthy.id())
        .map(|e| e.in_flight)
        .sum();
    assert_eq!(hung_in_flight, 2, "hung endpoints hold half of 4 threads");
    // None of them has finished an attempt: they are all still hanging.
    let logged = bus
        .query_attempts(AttemptQuery::new().succeeded(false), None, 100)
        .unwrap();
    assert!(logged.items.is_empty());
    assert!(stats.sender_threads <= 4);
    // Attempts still hanging are left behind by shutdown, not waited for.
    bus.shutdown().unwrap();
}

#[test]
fn waiting_retries_hold_no_thread() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(500));
    let bus = fast_bus(dir.path())
        .retry_delays([Duration::from_secs(600)])
        .sender_idle_timeout(Duration::from_millis(100))
        .open()
        .unwrap();
    for i in 0..100 {
        bus.add_endpoint(EndpointConfig::new(
            format!("ep{i}"),
            rx.url(&format!("/{i}")),
        ))
        .unwrap();
    }
    bus.publish(event(0)).unwrap();
    rx.wait_until(WAIT, "100 requests", |r| r.len() >= 100);
    eventually(WAIT, "every first attempt logged", || {
        bus.stats().attempts == 100
    });
    eventually(WAIT, "the pool retired its threads", || {
        bus.stats().sender_threads == 0
    });
    let stats = bus.stats();
    assert_eq!(stats.queued, 100, "every delivery waits for its retry");
    bus.shutdown().unwrap();
}

#[test]
fn a_rate_limit_spaces_attempts_and_spends_none() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("limited", rx.url("/limited"))
                .concurrency(4)
                .rate_limit(20),
        )
        .unwrap();
    for n in 0..30 {
        bus.publish(event(n)).unwrap();
    }
    rx.wait_for("/limited", 30, WAIT);
    eventually(WAIT, "30 attempts logged", || bus.stats().attempts == 30);
    let page = bus
        .query_attempts(AttemptQuery::new().endpoint(ep.id()), None, 100)
        .unwrap();
    assert_eq!(page.items.len(), 30, "one attempt each, none spent waiting");
    assert!(page.items.iter().all(|a| a.number == 1 && a.succeeded));
    let mut starts: Vec<_> = page.items.iter().map(|a| a.started_at).collect();
    starts.sort();
    // 20 per second: starts 50 ms apart. The logged start is taken a few
    // milliseconds after the pool's decision, so single gaps jitter; any
    // 11 consecutive starts still span 10 intervals.
    for run in starts.windows(11) {
        let span = run[10].duration_since(run[0]).unwrap();
        assert!(
            span >= Duration::from_millis(480),
            "11 attempts within {span:?}"
        );
    }
    let all = starts[29].duration_since(starts[0]).unwrap();
    assert!(
        all >= Duration::from_millis(1430),
        "30 attempts within {all:?}"
    );
    bus.shutdown().unwrap();
}

#[test]
fn a_rate_limit_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let ep = bus
            .add_endpoint(EndpointConfig::new("limited", "http://127.0.0.1:9/").rate_limit(7))
            .unwrap();
        bus.shutdown().unwrap();
        ep.id()
    };
    let bus = fast_bus(dir.path()).open().unwrap();
    let stored = format!("{:?}", bus.endpoint(id).unwrap().config());
    assert!(stored.contains("rate_limit: Some(7)"), "{stored}");
    bus.shutdown().unwrap();
}

#[test]
fn a_rate_limit_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let err = bus
        .add_endpoint(EndpointConfig::new("x", "http://127.0.0.1:9/").rate_limit(1_000_000))
        .unwrap_err();
    assert!(
        matches!(
            err,
            hookbus::Error::InvalidEndpoint {
                field: "rate_limit",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(bus.endpoints(None, 10).items.is_empty());
    let err = common::bus_builder(&dir.path().join("other"))
        .sender_threads(0)
        .open()
        .unwrap_err();
    assert!(
        matches!(
            err,
            hookbus::Error::InvalidConfig {
                setting: "sender_threads",
                ..
            }
        ),
        "{err:?}"
    );
}
