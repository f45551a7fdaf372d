//! The error API: a failed publish hands its event back; "already open" is
//! told apart from other I/O failures by the lock itself, also across
//! processes; failures outside the storage engine are `Error::Io`; storage
//! errors are opaque, with the cause as their source and not repeated in
//! their Display.

mod common;

use std::error::Error as _;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use common::fast_bus;
use hookbus::{Bus, Error, Event, PublishError};
use serde_json::json;

const HOLD_DIR: &str = "HOOKBUS_TEST_HOLD_DIR";

/// Not a test on its own: the child of
/// `a_bus_open_in_another_process_is_already_open`. Opens the bus, says so,
/// and holds it until its stdin closes.
#[test]
fn child_holds_a_bus_open() {
    let Some(dir) = std::env::var_os(HOLD_DIR) else {
        return;
    };
    let bus = Bus::open(&dir).unwrap();
    println!("open");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    bus.shutdown().unwrap();
}

#[test]
fn a_bus_open_in_another_process_is_already_open() {
    if common::skip_on_postgres(
        "sled's directory lock (a PostgreSQL schema is shared by many replicas)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_holds_a_bus_open", "--nocapture"])
        .env(HOLD_DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let opened = (&mut stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "open");
    assert!(opened, "the child opened the bus");
    match Bus::open(dir.path()) {
        Err(Error::AlreadyOpen(path)) => assert!(path.contains(&*dir.path().to_string_lossy())),
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    // Closing its stdin lets the child shut down; then the lock is free.
    drop(child.stdin.take());
    // Read the rest of its output, so that it is never stopped by a closed pipe.
    std::io::copy(&mut stdout, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
    Bus::open(dir.path()).unwrap().shutdown().unwrap();
}

#[test]
fn an_io_failure_that_is_not_the_lock_is_a_storage_error() {
    if common::skip_on_postgres("replaces sled's data file with a directory") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    Bus::open(dir.path()).unwrap().shutdown().unwrap();
    // The data file replaced by a directory: opening it fails with an I/O
    // error that is not a held lock.
    let data = dir.path().join("db");
    std::fs::remove_file(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    let err = Bus::open(dir.path()).unwrap_err();
    let Error::Storage(storage) = &err else {
        panic!("expected a storage error, got {err:?}");
    };
    assert_eq!(
        storage.io_error_kind(),
        Some(std::io::ErrorKind::IsADirectory)
    );
    // The cause is the source, once; the Display does not repeat it.
    let cause = err.source().expect("the I/O error is the source");
    assert!(cause.downcast_ref::<std::io::Error>().is_some());
    assert!(
        !err.to_string().contains(&cause.to_string()),
        "{err} / {cause}"
    );
}

#[test]
fn directory_failures_are_io_errors() {
    if common::skip_on_postgres("failures of sled's database directory") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // A path through a regular file cannot be read as a directory.
    match Bus::open(file.join("bus")) {
        Err(Error::Io { action, source }) => {
            assert_eq!(action, "reading the database directory");
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    // No one, root included, may create directories in /proc.
    if std::path::Path::new("/proc/self").exists() {
        match Bus::open("/proc/hookbus-test/bus") {
            Err(Error::Io { action, .. }) => {
                assert_eq!(action, "creating the database directory")
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }
}

/// An event with every part set, to check that what comes back is whole.
fn full_event(payload: &serde_json::Value) -> Event {
    Event::new("order.paid", payload)
        .unwrap()
        .occurred_at(UNIX_EPOCH + Duration::from_micros(1_737_736_239_698_042))
        .attribute("tenant", "acme")
        .idempotency_key("order.paid:7")
}

fn assert_whole(event: &Event, payload: &serde_json::Value) {
    assert_eq!(event.event_type(), "order.paid");
    assert_eq!(event.payload(), serde_json::to_vec(payload).unwrap());
}

#[test]
fn a_failed_publish_hands_the_event_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).max_payload_bytes(64).open().unwrap();

    let big = json!({"blob": "x".repeat(100)});
    let failed: PublishError = bus.publish(full_event(&big)).unwrap_err();
    assert!(matches!(
        failed.error(),
        Error::PayloadTooLarge { limit: 64, .. }
    ));
    assert_whole(failed.event(), &big);
    assert_eq!(failed.to_string(), failed.error().to_string());

    let bad_type = Event::new("has space", &json!(1)).unwrap();
    let (error, event) = bus.publish(bad_type).unwrap_err().into_parts();
    assert!(matches!(error, Error::InvalidEventType { .. }));
    assert_eq!(event.event_type(), "has space");

    let bad_key = Event::new("a.b", &json!(1)).unwrap().idempotency_key("");
    let failed = bus.publish(bad_key).unwrap_err();
    assert!(matches!(
        failed.error(),
        Error::InvalidIdempotencyKey { .. }
    ));

    // After a shutdown, the event comes back and can be published to
    // another bus, with its time, attributes and key intact.
    let small = json!({"order": 7});
    bus.shutdown().unwrap();
    let failed = bus.publish(full_event(&small)).unwrap_err();
    assert!(matches!(failed.error(), Error::ShutDown));
    let event = failed.into_event();
    assert_whole(&event, &small);

    let other_dir = tempfile::tempdir().unwrap();
    let other = fast_bus(other_dir.path()).open().unwrap();
    let id = other.publish(event).unwrap();
    let stored = other.event(id).unwrap().unwrap();
    assert_eq!(stored.event_type, "order.paid");
    assert_eq!(stored.payload, serde_json::to_vec(&small).unwrap());
    assert_eq!(stored.attributes, [("tenant".into(), "acme".into())]);
    assert_eq!(
        stored.occurred_at,
        UNIX_EPOCH + Duration::from_micros(1_737_736_239_698_042)
    );
    // The key came back too: publishing it again is deduplicated.
    let again = other.publish(full_event(&small)).unwrap();
    assert_eq!(again, id);
}

/// `?` on publish in a host function returning `hookbus::Result`.
fn host_code(bus: &Bus) -> hookbus::Result<hookbus::EventId> {
    let id = bus.publish(Event::new("a.b", &json!(1))?)?;
    Ok(id)
}

#[test]
fn question_mark_on_publish_gives_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    assert!(host_code(&bus).is_ok());
    bus.shutdown().unwrap();
    assert!(matches!(host_code(&bus), Err(Error::ShutDown)));
}
