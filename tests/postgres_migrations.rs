//! The schema is created and migrated on open, once, however many replicas
//! open at the same moment (they take turns on an advisory lock).

#[path = "postgres_support/mod.rs"]
mod pg;

use std::sync::{Arc, Barrier};
use std::thread;

use hookbus::Bus;

#[test]
fn replicas_opening_at_once_migrate_the_schema_once() {
    let Some(url) = pg::url("replicas_opening_at_once_migrate_the_schema_once") else {
        return;
    };
    let schema = pg::fresh_schema(&url, "migrations_race");
    let n = 6;
    let start = Arc::new(Barrier::new(n));
    let opened: Vec<_> = (0..n)
        .map(|_| {
            let (url, schema, start) = (url.clone(), schema.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                Bus::postgres(url).postgres_schema(schema).open()
            })
        })
        .collect();
    let buses: Vec<Bus> = opened
        .into_iter()
        .map(|t| t.join().unwrap().expect("every replica opens"))
        .collect();
    let mut client = pg::client(&url);
    let history = |client: &mut hookbus::postgres::Client| -> (i64, i64) {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), count(DISTINCT version) FROM \"{schema}\".refinery_schema_history"
                ),
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let (applied, versions) = history(&mut client);
    assert!(applied >= 1);
    assert_eq!(applied, versions, "a version was applied twice");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert!(tables >= 13, "only {tables} tables");
    for bus in buses {
        bus.shutdown().unwrap();
    }
    // Opening again finds the schema current and changes nothing.
    Bus::postgres(url.clone())
        .postgres_schema(schema.clone())
        .open()
        .unwrap()
        .shutdown()
        .unwrap();
    assert_eq!(history(&mut client), (applied, versions));
}
