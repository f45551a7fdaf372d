//! Guards every setting a host can give against extreme values: each is
//! either refused with a typed error naming it, or works, and nothing a host
//! sets can make hookbus panic or send a request it does not log.

mod common;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, SystemTime};

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{AttemptQuery, Bus, DeliveryStatus, EndpointConfig, Error, Event, EventId, Secret};
use serde_json::json;

/// Every request to `path` has a logged attempt with the same event and
/// number (waits for attempts finishing in the background).
fn assert_every_request_logged(bus: &Bus, rx: &Receiver, path: &str) {
    let unlogged = |bus: &Bus| -> Vec<(String, u64)> {
        let logged: BTreeSet<(String, u64)> = all_attempts(bus)
            .into_iter()
            .map(|(event, number)| (event.to_string(), u64::from(number)))
            .collect();
        rx.requests_to(path)
            .iter()
            .map(|r| (r.webhook_id(), r.attempt()))
            .filter(|key| !logged.contains(key))
            .collect()
    };
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let missing = unlogged(bus);
        if missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "requests received but never logged: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn all_attempts(bus: &Bus) -> Vec<(EventId, u32)> {
    let mut out = Vec::new();
    let mut query = AttemptQuery::new().limit(500);
    loop {
        let page = bus.query_attempts(query.clone()).unwrap();
        out.extend(page.attempts.iter().map(|a| (a.event, a.number)));
        match page.next {
            Some(cursor) => query = query.before(cursor),
            None => return out,
        }
    }
}

fn is_setting(result: &Result<Bus, Error>, name: &str) -> bool {
    matches!(result, Err(Error::InvalidConfig { setting, .. }) if *setting == name)
}

#[test]
fn huge_shutdown_timeout_is_refused_or_works_never_panics() {
    for t in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let dir = tempfile::tempdir().unwrap();
        let shut = catch_unwind(AssertUnwindSafe(|| {
            let opened = fast_bus(dir.path()).shutdown_timeout(t).open();
            if !is_setting(&opened, "shutdown_timeout") {
                opened.unwrap().shutdown().unwrap();
            }
        }));
        assert!(shut.is_ok(), "shutdown_timeout({t:?}) panicked");
        // Through Drop as well, with a clone outliving the first handle.
        let dropped = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(bus) = fast_bus(dir.path()).shutdown_timeout(t).open() {
                let clone = bus.clone();
                drop(bus);
                drop(clone);
            }
        }));
        assert!(
            dropped.is_ok(),
            "dropping with shutdown_timeout({t:?}) panicked"
        );
    }
}

#[test]
fn huge_rotation_grace_is_refused_or_works_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", "http://127.0.0.1:9/x").secret(Secret::generate().unwrap()),
        )
        .unwrap();
    for grace in [Duration::MAX, Duration::from_secs(u64::MAX / 4)] {
        let rotated = catch_unwind(AssertUnwindSafe(|| {
            bus.rotate_secret(ep.id(), Secret::generate().unwrap(), grace)
        }));
        match rotated {
            Ok(Ok(_)) => {}
            Ok(Err(Error::InvalidEndpoint { field: "grace", .. })) => {}
            Ok(Err(e)) => panic!("unexpected error for grace {grace:?}: {e}"),
            Err(_) => panic!("rotate_secret with grace {grace:?} panicked"),
        }
    }
    // The largest allowed grace works and is reported back.
    let year = Duration::from_secs(365 * 24 * 3600);
    let rotated = bus
        .rotate_secret(ep.id(), Secret::generate().unwrap(), year)
        .unwrap();
    let expires = rotated.previous_secrets_expire_at();
    assert_eq!(expires.len(), 1);
    assert!(expires[0] > SystemTime::now() + year - Duration::from_secs(60));
    bus.shutdown().unwrap();
}

#[test]
fn huge_endpoint_timeout_is_refused_or_works_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    for t in [Duration::MAX, Duration::from_secs(u64::MAX / 1000)] {
        let added = bus.add_endpoint(EndpointConfig::new("ep", rx.url("/t")).timeout(t));
        match added {
            Err(Error::InvalidEndpoint {
                field: "timeout", ..
            }) => {}
            Err(e) => panic!("unexpected error for timeout {t:?}: {e}"),
            Ok(ep) => {
                // test_send runs on this thread: a panic here is the host's.
                let sent = catch_unwind(AssertUnwindSafe(|| {
                    bus.test_send(ep.id(), Event::new("a.b", &json!({})).unwrap())
                }));
                assert!(sent.is_ok(), "test_send with timeout {t:?} panicked");
            }
        }
    }
    // And on the bus: refused at open.
    let dir2 = tempfile::tempdir().unwrap();
    let opened = fast_bus(dir2.path()).timeout(Duration::MAX).open();
    assert!(is_setting(&opened, "timeout"), "{opened:?}");
    bus.shutdown().unwrap();
}

#[test]
fn huge_retry_delay_is_refused_or_every_request_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(500));
    let opened = fast_bus(dir.path())
        .retry_delays([Duration::MAX])
        .max_attempts(3)
        .open();
    if is_setting(&opened, "retry_delays") {
        // Refused at open; the same delay on an endpoint is refused too.
        let bus = fast_bus(dir.path()).open().unwrap();
        let added = bus
            .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")).retry_delays([Duration::MAX]));
        assert!(
            matches!(
                added,
                Err(Error::InvalidEndpoint {
                    field: "retry_delays",
                    ..
                })
            ),
            "{added:?}"
        );
        bus.shutdown().unwrap();
        return;
    }
    let bus = opened.unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    rx.wait_for("/ep", 1, WAIT);
    eventually(WAIT, "the first attempt logged", || {
        !bus.attempts(id).unwrap().is_empty()
    });
    assert_every_request_logged(&bus, &rx, "/ep");
    assert!(matches!(
        bus.delivery(ep.id(), id).unwrap().unwrap().status,
        DeliveryStatus::Pending { .. }
    ));
    bus.shutdown().unwrap();
}
