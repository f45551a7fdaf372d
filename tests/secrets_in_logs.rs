//! Secrets never reach the logs, whichever thread logs: every `tracing`
//! event and span of the process (publishing threads and sender threads
//! alike) is captured while an endpoint with a signing secret and a
//! credential header is created, rotated, sent to, answered with failures
//! and timeouts by a receiver that echoes what it got, and test-sent to.

mod common;

use std::time::Duration;

use common::logs::process_logs;
use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{EndpointConfig, Event, Secret};
use serde_json::json;

#[test]
fn no_secret_reaches_the_logs_of_any_thread() {
    let logs = process_logs();
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path())
        .timeout(Duration::from_millis(300))
        .retry_delays([Duration::from_millis(20)])
        .open()
        .unwrap();
    // Echoes every request header back, in a header and in the body; fails
    // the first two requests of each path and times the third out.
    let receiver = Receiver::start(|req, n| {
        let echoed: String = req
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        let auth = req.header("authorization").unwrap_or("").to_string();
        match n {
            0 | 1 => Reply::Full(500, vec![("x-echo".into(), auth)], echoed.into_bytes()),
            2 => Reply::After(Duration::from_secs(1), 200),
            _ => Reply::Full(200, vec![("x-echo".into(), auth)], echoed.into_bytes()),
        }
    });
    let first = Secret::generate().unwrap();
    let second = Secret::generate().unwrap();
    let credential = "Bearer cred-7Qx2LmZ9pW4vK8sT";
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("echo", receiver.url("/echo"))
                .secret(first.clone())
                .header("Authorization", credential)
                .max_attempts(5),
        )
        .unwrap();
    bus.publish(Event::new("thing.done", &json!({ "n": 1 })).unwrap())
        .unwrap();
    receiver.wait_for("/echo", 2, WAIT);
    bus.rotate_secret(ep.id(), second.clone(), Duration::from_secs(3600))
        .unwrap();
    bus.publish(Event::new("thing.done", &json!({ "n": 2 })).unwrap())
        .unwrap();
    bus.test_send(
        ep.id(),
        Event::new("thing.done", &json!({ "n": 3 })).unwrap(),
    )
    .unwrap();
    // Both events delivered in the end (after failures and a timeout).
    eventually(WAIT, "both events delivered", || bus.stats().delivered >= 2);
    bus.shutdown().unwrap();

    let text = logs.lock().clone();
    // The capture saw the sender threads' work, failures included.
    assert!(
        text.contains("attempt") && text.contains("endpoint="),
        "the capture saw no attempt:\n{text}"
    );
    let key = |s: &Secret| s.expose().trim_start_matches("whsec_").to_string();
    for (what, secret) in [
        ("the first secret", key(&first)),
        ("the rotated secret", key(&second)),
        ("the credential header", "cred-7Qx2LmZ9pW4vK8sT".to_string()),
    ] {
        assert!(!text.contains(&secret), "the logs show {what}:\n{text}");
    }
}
