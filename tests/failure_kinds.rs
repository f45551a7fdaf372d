//! Guards what counts as a failed attempt and how it is logged: 3xx (never
//! followed), non-2xx, timeouts and refused connections each get their own
//! error kind; response bodies are kept truncated.

mod common;

use std::time::{Duration, Instant};

use common::{fast_bus, first_attempt, Receiver, Reply};
use hookbus::{EndpointConfig, ErrorKind, Event};
use serde_json::json;

#[test]
fn redirect_is_a_failure_and_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        if r.path == "/moved" {
            Reply::Full(301, vec![("Location".into(), "/target".into())], vec![])
        } else {
            Reply::Status(200)
        }
    });
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/moved")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let a = first_attempt(&bus, id);
    assert_eq!(a.status, Some(301));
    assert_eq!(a.error, Some(ErrorKind::Redirect));
    assert!(!a.succeeded);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        rx.requests_to("/target").is_empty(),
        "redirect was followed"
    );
}

#[test]
fn timeout_is_a_failure_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::After(Duration::from_secs(5), 200));
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("slow", rx.url("/slow")).timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let started = Instant::now();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let a = first_attempt(&bus, id);
    assert_eq!(a.error, Some(ErrorKind::Timeout), "{a:?}");
    assert_eq!(a.status, None);
    assert!(a.duration < Duration::from_secs(3), "{:?}", a.duration);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn refused_connection_is_a_connect_failure() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    bus.add_endpoint(EndpointConfig::new(
        "gone",
        format!("http://127.0.0.1:{port}/x"),
    ))
    .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let a = first_attempt(&bus, id);
    assert_eq!(a.error, Some(ErrorKind::Connect), "{a:?}");
    assert_eq!(a.status, None);
}

#[test]
fn unresolvable_host_is_a_dns_failure() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    // .invalid never resolves (RFC 2606).
    bus.add_endpoint(EndpointConfig::new("nx", "http://no-such-host.invalid/x"))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let a = first_attempt(&bus, id);
    assert_eq!(a.error, Some(ErrorKind::Dns), "{a:?}");
}

#[test]
fn client_errors_are_failures_and_bodies_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'x'; 100_000];
    let rx = Receiver::start(move |_, _| Reply::Full(404, vec![], big.clone()));
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .response_body_limit(100)
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let a = first_attempt(&bus, id);
    assert_eq!(a.status, Some(404));
    assert_eq!(a.error, Some(ErrorKind::Status));
    assert_eq!(a.response_body.len(), 100);
    assert!(a.response_truncated);
}

#[test]
fn any_2xx_is_success() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(204));
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let a = first_attempt(&bus, id);
    assert!(a.succeeded);
    assert_eq!(a.status, Some(204));
    assert_eq!(a.error, None);
}
