//! Guards the end of notice subscriptions: shutting the bus down
//! disconnects every `notices()` receiver, so a host's
//! `for notice in bus.notices()` loop ends (after reading what was sent
//! before) even while another clone of the bus is alive, and a receiver
//! asked for after shutdown is disconnected from the start.

mod common;

use std::thread;

use common::{fast_bus, Receiver, Reply, WAIT};
use hookbus::crossbeam_channel::{self, RecvTimeoutError};
use hookbus::{EndpointConfig, Event, Notice};
use serde_json::json;

#[test]
fn a_notices_loop_ends_at_shutdown_while_a_clone_lives() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(500));
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    let endpoint = bus
        .add_endpoint(EndpointConfig::new("failing", rx.url("/fail")))
        .unwrap();

    // The host's loop, on its own thread; it reports each notice as it
    // comes and, once, that the loop ended.
    let notices = bus.notices();
    let (seen_tx, seen_rx) = crossbeam_channel::unbounded();
    let (ended_tx, ended_rx) = crossbeam_channel::bounded(1);
    let host = thread::spawn(move || {
        let mut count = 0;
        for notice in notices {
            seen_tx.send(notice).unwrap();
            count += 1;
        }
        ended_tx.send(count).unwrap();
    });

    let event = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
    let first = seen_rx
        .recv_timeout(WAIT)
        .expect("a notice before shutdown");
    assert_eq!(
        first,
        Notice::DeliveryExhausted {
            endpoint: endpoint.id(),
            event,
            attempts: 1,
        }
    );
    assert_eq!(
        ended_rx.try_recv(),
        Err(crossbeam_channel::TryRecvError::Empty),
        "the loop ended before shutdown"
    );

    let clone = bus.clone();
    bus.shutdown().unwrap();
    let count = ended_rx
        .recv_timeout(WAIT)
        .expect("the notices loop did not end after shutdown");
    assert_eq!(count, 1);
    host.join().unwrap();

    // The clone is still alive; a receiver asked for now is disconnected.
    let late = clone.notices();
    assert_eq!(late.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected));
    drop(clone);
}

#[test]
fn dropping_the_last_clone_ends_the_loop_too() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let notices = bus.notices();
    let (ended_tx, ended_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        for _ in notices {}
        ended_tx.send(()).unwrap();
    });
    let clone = bus.clone();
    drop(bus);
    assert_eq!(
        ended_rx.try_recv(),
        Err(crossbeam_channel::TryRecvError::Empty),
        "a live clone keeps the bus, and its notices, running"
    );
    drop(clone);
    ended_rx
        .recv_timeout(WAIT)
        .expect("the notices loop did not end when the last clone was dropped");
}
