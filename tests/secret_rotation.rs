//! Guards secret rotation: after a rotation both the new and the old secret
//! sign (one `v1,` entry each) until the grace period ends, then only the
//! new one; the rotation survives a restart; secrets never show in Debug.

mod common;

use std::time::{Duration, SystemTime};

use common::{fast_bus, Receiver, WAIT};
use hookbus::verify::{Verifier, VerifyError};
use hookbus::{EndpointConfig, Event, Secret, Signing};
use serde_json::json;

fn check(secret: &Secret, r: &common::Received) -> Result<(), VerifyError> {
    Verifier::new(Signing::StandardWebhooks)
        .secret(secret.expose())
        .verify(
            [
                ("webhook-id", r.header("webhook-id").unwrap()),
                ("webhook-timestamp", r.header("webhook-timestamp").unwrap()),
                ("webhook-signature", r.header("webhook-signature").unwrap()),
            ],
            &r.body,
        )
}

#[test]
fn old_and_new_secrets_both_sign_during_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (old, new, newest) = (
        Secret::generate().unwrap(),
        Secret::generate().unwrap(),
        Secret::generate().unwrap(),
    );
    let ep = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let ep = bus
            .add_endpoint(EndpointConfig::new("r", rx.url("/r")).secret(&old))
            .unwrap();
        let rotated = bus
            .rotate_secret(ep.id(), new.expose(), Duration::from_secs(3600))
            .unwrap();
        assert_eq!(rotated.previous_secrets_expire_at().len(), 1);
        assert!(!format!("{rotated:?}").contains(&old.expose()[6..]));
        bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
        let got = rx.wait_for("/r", 1, WAIT);
        assert_eq!(
            got[0]
                .header("webhook-signature")
                .unwrap()
                .split(' ')
                .count(),
            2
        );
        check(&old, &got[0]).unwrap();
        check(&new, &got[0]).unwrap();
        ep
    };

    // The rotation is stored: after a restart both still sign.
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.publish(Event::new("a.b", &json!(2)).unwrap()).unwrap();
    let got = rx.wait_for("/r", 2, WAIT);
    check(&old, &got[1]).unwrap();
    check(&new, &got[1]).unwrap();

    // Rotating again with no grace drops the replaced secret (`new`) at
    // once; `old` keeps the rest of its hour.
    let after = bus
        .rotate_secret(ep.id(), newest.expose(), Duration::ZERO)
        .unwrap();
    assert_eq!(after.previous_secrets_expire_at().len(), 1);
    bus.publish(Event::new("a.b", &json!(3)).unwrap()).unwrap();
    let got = rx.wait_for("/r", 3, WAIT);
    check(&newest, &got[2]).unwrap();
    assert_eq!(check(&new, &got[2]), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn an_expired_secret_stops_signing() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let (old, new) = (Secret::generate().unwrap(), Secret::generate().unwrap());
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("r", rx.url("/r")).secret(&old))
        .unwrap();
    bus.rotate_secret(ep.id(), new.expose(), Duration::from_millis(200))
        .unwrap();
    let expires = bus.endpoint(ep.id()).unwrap().previous_secrets_expire_at()[0];
    // Wait out the grace period (an absence cannot be awaited).
    std::thread::sleep(
        expires
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            + Duration::from_millis(50),
    );
    bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let got = rx.wait_for("/r", 1, WAIT);
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    check(&new, &got[0]).unwrap();
    assert_eq!(check(&old, &got[0]), Err(VerifyError::NoMatchingSignature));
    assert!(bus
        .endpoint(ep.id())
        .unwrap()
        .previous_secrets_expire_at()
        .is_empty());
}

#[test]
fn a_rotation_to_a_malformed_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("r", "https://example.com").secret(Secret::generate().unwrap()),
        )
        .unwrap();
    assert!(bus
        .rotate_secret(ep.id(), "not base64!", Duration::from_secs(1))
        .is_err());
}
