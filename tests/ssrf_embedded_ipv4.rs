//! Guards the SSRF defaults against IPv6 addresses that carry an IPv4
//! address: an endpoint URL such as `http://[::127.0.0.1]:PORT/` (IPv4-
//! compatible) or `http://[::ffff:0:127.0.0.1]:PORT/` (IPv4-translated) is
//! refused as `blocked` before any connection is made, through a test send
//! and through a real delivery, while a listener on 127.0.0.1:PORT sees no
//! connection at all.

mod common;

use std::io::ErrorKind as IoErrorKind;
use std::net::TcpListener;

use common::{eventually, WAIT};
use hookbus::{EndpointConfig, ErrorKind, Event};
use serde_json::json;

/// A plain listener on 127.0.0.1 that never accepts by itself: a
/// connection made to it waits in its backlog, where `connections` finds
/// it.
struct Listener(TcpListener);

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// Connections made so far.
    fn connections(&self) -> usize {
        let mut n = 0;
        loop {
            match self.0.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return n,
                Err(e) => panic!("accept failed: {e}"),
            }
        }
    }
}

/// Each form, as written in a URL, with the IPv4 address it carries to
/// 127.0.0.1. NAT64, 6to4 and Teredo are refused as IPv6 ranges already.
fn forms(port: u16) -> Vec<(&'static str, String)> {
    [
        ("compatible", "[::127.0.0.1]"),
        ("translated", "[::ffff:0:127.0.0.1]"),
        ("mapped", "[::ffff:127.0.0.1]"),
        ("nat64", "[64:ff9b::127.0.0.1]"),
        ("nat64-local", "[64:ff9b:1::127.0.0.1]"),
        ("6to4", "[2002:7f00:1::1]"),
        ("teredo", "[2001:0:4136:e378:8000:63bf:80ff:fffe]"),
    ]
    .into_iter()
    .map(|(name, host)| (name, format!("http://{host}:{port}/{name}")))
    .collect()
}

#[test]
fn test_send_refuses_every_embedded_ipv4_form() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::start();
    let bus = common::open_bus(dir.path()).unwrap();
    for (name, url) in forms(listener.port()) {
        let endpoint = bus.add_endpoint(EndpointConfig::new(name, &url)).unwrap();
        let attempt = bus
            .test_send(endpoint.id(), Event::new("a.b", &json!({"n": 1})).unwrap())
            .unwrap();
        assert_eq!(
            attempt.error,
            Some(ErrorKind::Blocked),
            "{url}: {attempt:?}"
        );
        assert_eq!(attempt.status, None, "{url}");
        let message = attempt.error_message.unwrap_or_default();
        assert!(message.contains("allow_network"), "{url}: {message}");
        // The two forms the guard used to let through name what they carry.
        if ["compatible", "translated"].contains(&name) {
            assert!(
                message.contains("carries the IPv4 address 127.0.0.1"),
                "{url}: {message}"
            );
        }
    }
    bus.shutdown().unwrap();
    assert_eq!(
        listener.connections(),
        0,
        "a refused form reached the listener"
    );
}

#[test]
fn deliveries_to_compatible_and_translated_forms_are_logged_as_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::start();
    let bus = common::bus_builder(dir.path())
        .max_attempts(1)
        .open()
        .unwrap();
    let port = listener.port();
    bus.add_endpoint(EndpointConfig::new(
        "compatible",
        format!("http://[::127.0.0.1]:{port}/hook"),
    ))
    .unwrap();
    bus.add_endpoint(EndpointConfig::new(
        "translated",
        format!("http://[::ffff:0:127.0.0.1]:{port}/hook"),
    ))
    .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    eventually(WAIT, "two attempts", || {
        bus.attempts(id).unwrap().len() == 2
    });
    for a in bus.attempts(id).unwrap() {
        assert_eq!(a.error, Some(ErrorKind::Blocked), "{a:?}");
        assert_eq!(a.status, None, "{a:?}");
    }
    bus.shutdown().unwrap();
    assert_eq!(
        listener.connections(),
        0,
        "a refused form reached the listener"
    );
}

#[test]
fn the_allow_list_still_opens_plain_ipv4_and_not_other_embedded_addresses() {
    // The allow-list keeps its meaning: 127.0.0.0/8 opens 127.0.0.1, and a
    // real delivery to it arrives; the compatible form of another refused
    // address stays refused.
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::start();
    let bus = common::bus_builder(dir.path())
        .allow_network("127.0.0.0/8")
        .open()
        .unwrap();
    let port = listener.port();
    let plain = bus
        .add_endpoint(EndpointConfig::new(
            "plain",
            format!("http://127.0.0.1:{port}/hook"),
        ))
        .unwrap()
        .id();
    let private = bus
        .add_endpoint(EndpointConfig::new(
            "private",
            format!("http://[::10.0.0.1]:{port}/hook"),
        ))
        .unwrap()
        .id();
    let refused = bus
        .test_send(private, Event::new("a.b", &json!(1)).unwrap())
        .unwrap();
    assert_eq!(refused.error, Some(ErrorKind::Blocked), "{refused:?}");
    assert_eq!(listener.connections(), 0);
    // The listener never answers; the attempt's connection is what counts.
    let bus2 = bus.clone();
    let sent = std::thread::spawn(move || {
        bus2.test_send(plain, Event::new("a.b", &json!(1)).unwrap())
            .unwrap()
    });
    eventually(WAIT, "a connection to the allowed address", || {
        listener.connections() > 0
    });
    drop(listener);
    let attempt = sent.join().unwrap();
    assert_ne!(attempt.error, Some(ErrorKind::Blocked), "{attempt:?}");
    bus.shutdown().unwrap();
}
