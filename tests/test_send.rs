//! Guards test sends: the outcome comes back synchronously, in the
//! endpoint's format and signed, and nothing is stored or queued.

mod common;

use common::{fast_bus, Receiver, Reply, WAIT};
use hookbus::{EndpointConfig, ErrorKind, Event, Format, Trigger};
use serde_json::json;

#[test]
fn test_send_returns_the_outcome_and_leaves_the_queue_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| {
        if r.path == "/broken" {
            Reply::Full(502, vec![], b"upstream down".to_vec())
        } else {
            Reply::Full(200, vec![], b"thanks".to_vec())
        }
    });
    let bus = fast_bus(dir.path()).open().unwrap();
    let ok = bus
        .add_endpoint(
            EndpointConfig::new("grow", rx.url("/ok"))
                .format(Format::Grow)
                .secret(hookbus::Secret::generate().unwrap()),
        )
        .unwrap();
    let broken = bus
        .add_endpoint(EndpointConfig::new("b", rx.url("/broken")))
        .unwrap();
    bus.pause_endpoint(broken.id()).unwrap();
    let flushes = bus.stats().commit_flushes;

    // The caller edits the sample, as in Grow's "Test connection".
    let sample = Event::new(
        "contact.subscribed",
        &json!({"msisdn": 5599999999999u64, "ecom_email": "test@gmail.com"}),
    )
    .unwrap();
    let outcome = bus.test_send(ok.id(), sample.clone()).unwrap();
    assert!(outcome.succeeded);
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.response_text(), "thanks");
    assert_eq!(outcome.trigger, Trigger::Test);
    let req = &rx.wait_for("/ok", 1, WAIT)[0];
    assert_eq!(
        req.json(),
        json!({"msisdn": 5599999999999u64, "ecom_email": "test@gmail.com"})
    );
    assert!(req.header("webhook-signature").is_some());

    // Works on a paused endpoint, and reports failures.
    let failed = bus.test_send(broken.id(), sample).unwrap();
    assert!(!failed.succeeded);
    assert_eq!(failed.status, Some(502));
    assert_eq!(failed.error, Some(ErrorKind::Status));
    assert_eq!(failed.response_text(), "upstream down");

    // Nothing stored, nothing queued.
    assert!(bus.event(outcome.event).unwrap().is_none());
    assert!(bus.attempts(outcome.event).unwrap().is_empty());
    assert_eq!(bus.queue_depth(ok.id()).unwrap(), 0);
    assert_eq!(bus.stats().attempts, 0);
    assert_eq!(bus.stats().commit_flushes, flushes);
}
