//! Guards signature interoperability and robustness: what hookbus sends
//! verifies with the independent `standardwebhooks` crate, what that crate
//! signs verifies with ours, and for arbitrary bodies and secrets sign then
//! verify round-trips while any single-byte change fails.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{fast_bus, Receiver, WAIT};
use hookbus::signing::sign_standard;
use hookbus::verify::{Verifier, VerifyError};
use hookbus::{EndpointConfig, Event, Secret, Signing};
use proptest::prelude::*;
use serde_json::json;
use ureq::http::{HeaderMap, HeaderValue};

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            ureq::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn deliveries_verify_with_the_reference_library() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let secret = Secret::generate().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("s", rx.url("/s")).secret(&secret))
        .unwrap();
    for n in 0..5 {
        bus.publish(Event::new("a.b", &json!({"n": n, "text": "héllo \"quoted\""})).unwrap())
            .unwrap();
    }
    let reference = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    for req in rx.wait_for("/s", 5, WAIT) {
        let headers = header_map(&[
            ("webhook-id", req.header("webhook-id").unwrap()),
            (
                "webhook-timestamp",
                req.header("webhook-timestamp").unwrap(),
            ),
            (
                "webhook-signature",
                req.header("webhook-signature").unwrap(),
            ),
        ]);
        reference.verify(&req.body, &headers).unwrap();
        let mut tampered = req.body.clone();
        tampered[0] ^= 1;
        assert!(reference.verify(&tampered, &headers).is_err());
    }
}

#[test]
fn reference_signatures_verify_with_ours() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let reference = standardwebhooks::Webhook::new(secret).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = br#"{"type":"lead.create","data":{"id":7}}"#;
    let sig = reference.sign("msg_1", now as i64, body).unwrap();
    assert_eq!(sig, sign_standard(secret, "msg_1", now, body).unwrap());
    let ts = now.to_string();
    Verifier::new(Signing::StandardWebhooks)
        .secret(secret)
        .verify(
            [
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", ts.as_str()),
                ("webhook-signature", sig.as_str()),
            ],
            body,
        )
        .unwrap();
}

fn verify(secret: &str, id: &str, ts: u64, sig: &str, body: &[u8]) -> Result<(), VerifyError> {
    let ts_text = ts.to_string();
    Verifier::new(Signing::StandardWebhooks)
        .secret(secret)
        .now(UNIX_EPOCH + Duration::from_secs(ts))
        .verify(
            [
                ("webhook-id", id),
                ("webhook-timestamp", ts_text.as_str()),
                ("webhook-signature", sig),
            ],
            body,
        )
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        id in "[a-zA-Z0-9_]{1,40}",
        ts in 1_000_000_000u64..4_000_000_000,
    ) {
        use base64::Engine;
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let sig = sign_standard(&secret, &id, ts, &body).unwrap();
        prop_assert_eq!(verify(&secret, &id, ts, &sig, &body), Ok(()));
    }

    #[test]
    fn any_single_byte_change_fails(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        body in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        use base64::Engine;
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let sig = sign_standard(&secret, "msg_p", 1_700_000_000, &body).unwrap();
        let mut changed = body.clone();
        let i = at.index(changed.len());
        changed[i] ^= flip;
        prop_assert_eq!(
            verify(&secret, "msg_p", 1_700_000_000, &sig, &changed),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn hmac_hex_round_trips_and_detects_changes(
        secret in "[ -~]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 1..256),
        at in any::<proptest::sample::Index>(),
    ) {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let v = Verifier::new(Signing::HmacSha256Hex { header: "Signature".into() }).secret(secret.as_str());
        prop_assert_eq!(v.verify([("Signature", hex.as_str())], &body), Ok(()));
        let mut changed = body.clone();
        let i = at.index(changed.len());
        changed[i] = changed[i].wrapping_add(1);
        prop_assert_eq!(
            v.verify([("Signature", hex.as_str())], &changed),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}
