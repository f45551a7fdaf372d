//! The transactional outbox: `Bus::publish_in` writes the event and its
//! deliveries through the host's own PostgreSQL transaction, so a
//! rollback leaves no event, no delivery and no request, and a commit
//! delivers.

mod common;
#[path = "postgres_support/mod.rs"]
mod pg;

use std::time::Duration;

use common::{Receiver, WAIT};
use hookbus::{Bus, EndpointConfig, Error, Event};
use serde_json::json;

fn bus(url: &str, schema: &str) -> Bus {
    Bus::postgres(url)
        .postgres_schema(schema)
        .postgres_poll_interval(Duration::from_millis(100))
        .allow_private_networks(true)
        .open()
        .expect("open a bus on PostgreSQL")
}

#[test]
fn rolled_back_host_transaction_leaves_no_event_no_delivery_no_request() {
    let Some(url) = pg::url("rolled_back_host_transaction_leaves_no_event_no_delivery_no_request")
    else {
        return;
    };
    let schema = pg::fresh_schema(&url, "outbox_rollback");
    let receiver = Receiver::ok();
    let bus = bus(&url, &schema);
    bus.add_endpoint(EndpointConfig::new("orders", receiver.url("/orders")))
        .unwrap();
    let mut host = pg::client(&url);
    host.batch_execute(&format!(
        "CREATE TABLE \"{schema}\".orders (id bigint PRIMARY KEY, paid boolean NOT NULL)"
    ))
    .unwrap();

    // The host's change and the event, rolled back together.
    let mut tx = host.transaction().unwrap();
    tx.execute(
        &format!("INSERT INTO \"{schema}\".orders VALUES (1, true)"),
        &[],
    )
    .unwrap();
    let lost = bus
        .publish_in(
            &mut tx,
            Event::new("order.paid", &json!({"id": 1})).unwrap(),
        )
        .unwrap();
    tx.rollback().unwrap();

    // Then one committed the same way.
    let mut tx = host.transaction().unwrap();
    tx.execute(
        &format!("INSERT INTO \"{schema}\".orders VALUES (2, true)"),
        &[],
    )
    .unwrap();
    let kept = bus
        .publish_in(
            &mut tx,
            Event::new("order.paid", &json!({"id": 2})).unwrap(),
        )
        .unwrap();
    // Nothing is sent before the host commits.
    assert!(bus.event(kept).unwrap().is_none(), "visible before commit");
    tx.commit().unwrap();

    let got = receiver.wait_for("/orders", 1, WAIT);
    assert_eq!(got[0].webhook_id(), kept.to_string());
    assert_eq!(got[0].json()["data"]["id"], 2);
    assert!(bus.event(kept).unwrap().is_some());
    // The committed one went out: had the rolled-back one been stored, it
    // would have gone out first (it is older, and the endpoint is idle).
    assert!(
        bus.event(lost).unwrap().is_none(),
        "rolled-back event stored"
    );
    assert!(bus.deliveries(lost).unwrap().is_empty());
    assert!(bus.attempts(lost).unwrap().is_empty());
    assert_eq!(receiver.requests().len(), 1, "a rolled-back event was sent");
    let orders: i64 = host
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".orders"), &[])
        .unwrap()
        .get(0);
    assert_eq!(orders, 1);
    bus.shutdown().unwrap();
}

#[test]
fn publish_in_keeps_idempotency_keys_within_the_host_transaction() {
    let Some(url) = pg::url("publish_in_keeps_idempotency_keys_within_the_host_transaction") else {
        return;
    };
    let schema = pg::fresh_schema(&url, "outbox_idempotency");
    let receiver = Receiver::ok();
    let bus = bus(&url, &schema);
    bus.add_endpoint(EndpointConfig::new("o", receiver.url("/o")))
        .unwrap();
    let event = || {
        Event::new("order.paid", &json!({"id": 3}))
            .unwrap()
            .idempotency_key("order-3")
    };
    let mut host = pg::client(&url);
    let mut tx = host.transaction().unwrap();
    let first = bus.publish_in(&mut tx, event()).unwrap();
    let again = bus.publish_in(&mut tx, event()).unwrap();
    assert_eq!(first, again, "the key is seen within the same transaction");
    tx.commit().unwrap();
    // And through the bus's own publish after the commit.
    assert_eq!(bus.publish(event()).unwrap(), first);
    receiver.wait_for("/o", 1, WAIT);
    bus.shutdown().unwrap();
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn publish_in_on_a_sled_bus_is_refused() {
    let Some(url) = pg::url("publish_in_on_a_sled_bus_is_refused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).unwrap();
    let mut host = pg::client(&url);
    let mut tx = host.transaction().unwrap();
    let failed = bus
        .publish_in(&mut tx, Event::new("a.b", &json!({})).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            failed.error(),
            Error::InvalidConfig {
                setting: "backend",
                ..
            }
        ),
        "{:?}",
        failed.error()
    );
    assert_eq!(failed.into_event().event_type(), "a.b");
}
