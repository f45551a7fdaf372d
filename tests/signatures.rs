//! Guards signing: deliveries to an endpoint with a secret carry a Standard
//! Webhooks signature that verifies over the exact body received, and every
//! attempt is signed afresh.

mod common;

use std::time::{Duration, SystemTime};

use common::{fast_bus, Receiver, Reply, WAIT};
use hookbus::signing::{VerifyError, DEFAULT_TOLERANCE};
use hookbus::verify::verify_standard;
use hookbus::{EndpointConfig, Event, Secret};
use serde_json::json;

fn verify(secret: &str, r: &common::Received) -> Result<(), VerifyError> {
    verify_standard(
        secret,
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
        r.header("webhook-signature").unwrap(),
        &r.body,
        SystemTime::now(),
        DEFAULT_TOLERANCE,
    )
}

#[test]
fn signatures_verify_and_each_attempt_is_resigned() {
    let dir = tempfile::tempdir().unwrap();
    let secret = Secret::generate().unwrap();
    let rx = Receiver::start(|_, nth| Reply::Status(if nth == 0 { 500 } else { 200 }));
    let bus = fast_bus(dir.path())
        .retry_delays([Duration::from_millis(1100)])
        .open()
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("signed", rx.url("/s")).secret(secret.expose()))
        .unwrap();
    bus.publish(Event::new("lead.create", &json!({"name": "Ada"})).unwrap())
        .unwrap();
    let got = rx.wait_for("/s", 2, WAIT);
    for r in &got {
        verify(secret.expose(), r).unwrap();
        assert!(r.header("webhook-signature").unwrap().starts_with("v1,"));
    }
    // Different attempt number and (1.1 s later) a different timestamp:
    // a new signature, not a replay of the first.
    assert_ne!(
        got[0].header("webhook-timestamp"),
        got[1].header("webhook-timestamp")
    );
    assert_ne!(
        got[0].header("webhook-signature"),
        got[1].header("webhook-signature")
    );

    // A wrong secret or a changed body does not verify.
    let other = Secret::generate().unwrap();
    assert_eq!(
        verify(other.expose(), &got[1]),
        Err(VerifyError::NoMatchingSignature)
    );
    let mut tampered = got[1].clone();
    tampered.body.push(b' ');
    assert_eq!(
        verify(secret.expose(), &tampered),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn standard_webhooks_secrets_must_be_base64() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let err = bus
        .add_endpoint(EndpointConfig::new("p", "https://example.com").secret("not base64 !"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            hookbus::Error::InvalidEndpoint {
                field: "secret",
                ..
            }
        ),
        "{err:?}"
    );
    // Without the whsec_ prefix, base64 is read the way the reference
    // libraries read it.
    bus.add_endpoint(
        EndpointConfig::new("p", "https://example.com").secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    )
    .unwrap();
}
