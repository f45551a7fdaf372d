//! Guards the SSRF defaults: endpoints cannot reach loopback or private
//! addresses, by literal or by a name that resolves to one, unless the host
//! allows it; refused attempts are logged as `blocked` and nothing is sent.

mod common;

use common::{eventually, first_attempt, Receiver, WAIT};
use hookbus::{EndpointConfig, Error, ErrorKind, Event};
use serde_json::json;

#[test]
fn loopback_is_refused_by_default_by_literal_and_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = common::bus_builder(dir.path())
        .max_attempts(1)
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("literal", rx.url("/literal")))
        .unwrap();
    // localhost resolves to 127.0.0.1 (or ::1): refused on what DNS returned.
    bus.add_endpoint(EndpointConfig::new(
        "name",
        format!("http://localhost:{}/name", rx.port()),
    ))
    .unwrap();
    bus.add_endpoint(EndpointConfig::new(
        "mapped",
        format!("http://[::ffff:127.0.0.1]:{}/mapped", rx.port()),
    ))
    .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    eventually(WAIT, "three attempts", || {
        bus.attempts(id).unwrap().len() == 3
    });
    for a in bus.attempts(id).unwrap() {
        assert_eq!(a.error, Some(ErrorKind::Blocked), "{a:?}");
        assert_eq!(a.status, None);
        assert!(a.error_message.unwrap().contains("allow_network"));
    }
    bus.shutdown().unwrap();
    assert!(rx.requests().is_empty(), "nothing reached the receiver");
}

#[test]
fn an_allowed_network_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = common::bus_builder(dir.path())
        .allow_network("127.0.0.0/8")
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("ok", rx.url("/ok")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    rx.wait_for("/ok", 1, WAIT);
    assert!(first_attempt(&bus, id).succeeded);
}

#[test]
fn https_only_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus_builder(dir.path())
        .https_only(true)
        .open()
        .unwrap();
    let err = bus
        .add_endpoint(EndpointConfig::new("plain", "http://example.com/hook"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    bus.add_endpoint(EndpointConfig::new("tls", "https://example.com/hook"))
        .unwrap();
}

#[test]
fn a_malformed_allowed_network_fails_open_before_touching_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus");
    let err = common::bus_builder(&path)
        .allow_network("10.0.0.0/40")
        .open()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                setting: "allow_network",
                ..
            }
        ),
        "{err:?}"
    );
    // On sled the directory is the database; on PostgreSQL the test's
    // marker file (tests/common/backend.rs) is written before the open.
    if common::backend() == common::Backend::Sled {
        assert!(!path.exists());
    }
}
