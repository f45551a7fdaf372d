//! Guards what the delivery log keeps of each attempt for its detail view:
//! the request as it was sent (headers and the start of the body), with
//! every signature, the secret and credential headers redacted, and the
//! response's headers; a test send reports the same.

mod common;

use common::{fast_bus, first_attempt, Receiver, Reply};
use hookbus::presets::LeadCrm;
use hookbus::{EndpointConfig, Event, Secret, Signing};
use serde_json::json;

#[test]
fn the_request_as_sent_is_kept_with_signatures_and_credentials_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| {
        Reply::Full(
            503,
            vec![("X-Reason".into(), "maintenance <b>".into())],
            b"busy".to_vec(),
        )
    });
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    let secret = Secret::generate().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("r", rx.url("/r"))
            .secret(&secret)
            .header("Authorization", "Bearer host-credential")
            .header("X-Plain", "visible"),
    )
    .unwrap();
    let id = bus
        .publish(Event::new("order.paid", &json!({"n": 1})).unwrap())
        .unwrap();
    let a = first_attempt(&bus, id);
    let sent = &rx.requests()[0];
    let kept = |name: &str| {
        a.request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(kept("webhook-signature"), Some("[redacted]"));
    assert_eq!(kept("authorization"), Some("[redacted]"));
    assert_eq!(kept("x-plain"), Some("visible"));
    assert_eq!(kept("webhook-id"), sent.header("webhook-id"));
    assert_eq!(a.request_body, sent.body, "the body as it was sent");
    assert!(!a.request_truncated);
    let debug = format!("{a:?}");
    let logged = format!("{:?}{debug}", a.request_headers);
    assert!(!logged.contains(&secret.expose()[6..]));
    assert!(!logged.contains("host-credential"));
    assert!(!logged.contains(sent.header("webhook-signature").unwrap()));
    assert!(a
        .response_headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("x-reason") && v == "maintenance <b>"));
    assert_eq!(a.response_body, b"busy");
    bus.shutdown().unwrap();
}

#[test]
fn a_secret_in_the_body_is_redacted_and_the_body_is_cut_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).response_body_limit(64).open().unwrap();
    let secret = Secret::generate().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("crm", rx.url("/crm"))
                .format(LeadCrm::new("space-1"))
                .signing(Signing::SecretInBody)
                .secret(&secret),
        )
        .unwrap();
    let id = bus
        .publish(Event::new("lead.create", &json!({"id": 7})).unwrap())
        .unwrap();
    let a = first_attempt(&bus, id);
    let sent = String::from_utf8(rx.requests()[0].body.clone()).unwrap();
    assert!(
        sent.contains(secret.expose()),
        "the receiver gets the secret"
    );
    let kept = String::from_utf8_lossy(&a.request_body);
    assert!(!kept.contains(&secret.expose()[6..]), "{kept}");
    assert!(a.request_truncated, "{} bytes sent", sent.len());
    assert_eq!(a.request_body.len(), 64);

    // A test send reports the request the same way.
    let t = bus
        .test_send(
            ep.id(),
            Event::new("lead.create", &json!({"id": 8})).unwrap(),
        )
        .unwrap();
    assert!(!t.request_headers.is_empty());
    assert!(!String::from_utf8_lossy(&t.request_body).contains(&secret.expose()[6..]));
    bus.shutdown().unwrap();
}
