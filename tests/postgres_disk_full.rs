//! A full disk on the PostgreSQL server: publishes fail with a typed
//! error (`StorageFull`), nothing acknowledged is lost, nothing panics, and
//! once space is freed the bus publishes and delivers again — everything
//! it acknowledged before, during and after.
//!
//! The full disk is real: the bus's tables live in a tablespace on a small
//! filesystem (the connection string's `options` set `default_tablespace`),
//! which the test fills with its own events. `.ci/postgres` mounts an 8 MiB
//! tmpfs, creates the tablespace and names it in
//! `HOOKBUS_TEST_PG_FULL_TABLESPACE`; without that variable the test says
//! it was skipped and why.

mod common;
#[path = "postgres_support/mod.rs"]
mod pg;

use std::io::ErrorKind;
use std::time::Duration;

use common::Receiver;
use hookbus::{Bus, EndpointConfig, Error, Event};
use serde_json::json;

const TABLESPACE_VAR: &str = "HOOKBUS_TEST_PG_FULL_TABLESPACE";

/// `url` with `-c default_tablespace=<ts>` in its options.
fn in_tablespace(url: &str, tablespace: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20default_tablespace%3D{tablespace}")
}

/// 64 KiB of hex that does not compress, so every event takes its room.
fn filler(n: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(n);
    (0..32 * 1024)
        .map(|_| format!("{:02x}", rng.u8(..)))
        .collect()
}

#[test]
fn a_full_disk_refuses_publishes_with_a_typed_error_and_loses_nothing() {
    let Some(url) = pg::url("a_full_disk_refuses_publishes_with_a_typed_error_and_loses_nothing")
    else {
        return;
    };
    let Ok(tablespace) = std::env::var(TABLESPACE_VAR) else {
        eprintln!(
            "a_full_disk_refuses_publishes_with_a_typed_error_and_loses_nothing skipped: \
             {TABLESPACE_VAR} is not set (a tablespace on a small filesystem; .ci/postgres makes one)"
        );
        return;
    };
    let schema = pg::fresh_schema(&url, "disk_full");
    let mut admin = pg::client(&url);
    // Room the test frees once the disk is full: a table of its own in the
    // same tablespace, made first.
    let spare = format!("\"{schema}_spare\"");
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{spare};
             CREATE TABLE public.{spare} TABLESPACE \"{tablespace}\" AS
                 SELECT md5(random()::text) || md5(random()::text) AS pad
                 FROM generate_series(1, 30000);"
        ))
        .unwrap_or_else(|e| panic!("{TABLESPACE_VAR}={tablespace} is not usable: {e}"));

    let receiver = Receiver::ok();
    let bus = Bus::postgres(in_tablespace(&url, &tablespace))
        .postgres_schema(&schema)
        .retry_delays([Duration::from_millis(100)])
        .allow_private_networks(true)
        .open()
        .unwrap();
    let table_space: String = admin
        .query_one(
            "SELECT COALESCE(t.spcname, '') FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
             WHERE n.nspname = $1 AND c.relname = 'events'",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        table_space, tablespace,
        "the bus's tables are on the small disk"
    );
    let ep = bus
        .add_endpoint(EndpointConfig::new("hook", receiver.url("/hook")))
        .unwrap();
    // Held, so the queue grows with the events instead of draining.
    bus.pause_endpoint(ep.id()).unwrap();

    let mut acked = Vec::new();
    let mut full = None;
    for n in 0..2_000u64 {
        let event = Event::new("blob.stored", &json!({ "n": n, "pad": filler(n) })).unwrap();
        match bus.publish(event) {
            Ok(id) => acked.push(id),
            Err(e) => {
                full = Some((n, e.into_error()));
                break;
            }
        }
    }
    let (at, error) = full.expect("8 MiB filled up within 2000 events of 64 KiB");
    match &error {
        Error::Storage(s) => assert_eq!(
            s.io_error_kind(),
            Some(ErrorKind::StorageFull),
            "a full disk is StorageFull: {error}"
        ),
        other => panic!("a full disk is a storage error, got {other:?}"),
    }
    eprintln!(
        "disk full after {} acknowledged events (publish {at}): {error}",
        acked.len()
    );
    assert!(
        !acked.is_empty(),
        "some events fitted before the disk filled"
    );
    // Still full: refused again, the same way, and the bus stays usable
    // for reads.
    let again = bus
        .publish(Event::new("blob.stored", &json!({ "pad": filler(u64::MAX) })).unwrap())
        .unwrap_err()
        .into_error();
    assert!(
        matches!(&again, Error::Storage(s) if s.io_error_kind() == Some(ErrorKind::StorageFull)),
        "{again}"
    );
    for id in &acked {
        assert!(
            bus.event(*id).unwrap().is_some(),
            "acknowledged {id} is stored"
        );
    }

    // Space freed: publishing works again, and every acknowledged event is
    // delivered once the endpoint resumes.
    admin
        .batch_execute(&format!("DROP TABLE public.{spare}"))
        .unwrap();
    let after = bus
        .publish(Event::new("blob.stored", &json!({ "after": true })).unwrap())
        .expect("a publish succeeds once space is free");
    acked.push(after);
    bus.resume_endpoint(ep.id()).unwrap();
    let got = receiver.wait_for("/hook", acked.len(), common::WAIT * 4);
    let ids: std::collections::BTreeSet<String> = got.iter().map(|r| r.webhook_id()).collect();
    for id in &acked {
        assert!(ids.contains(&id.to_string()), "{id} was delivered");
    }
    bus.shutdown().unwrap();
    pg::client(&url)
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
}
