//! Guards input checking: bad endpoints, events and directories get a typed
//! error, and nothing is written.

mod common;

use std::time::Duration;

use common::fast_bus;
use hookbus::{Bus, EndpointConfig, Error, Event};
use serde_json::json;

/// A bad endpoint and a check that its error has the expected variant.
type Case = (EndpointConfig, fn(&Error) -> bool);

#[test]
fn invalid_endpoints_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ok = || EndpointConfig::new("ok", "https://example.com/hook");
    let cases: Vec<Case> = vec![
        (EndpointConfig::new("", "https://example.com"), |e| {
            matches!(e, Error::InvalidEndpoint { field: "name", .. })
        }),
        (EndpointConfig::new("a", "not a url"), |e| {
            matches!(e, Error::InvalidUrl { .. })
        }),
        (EndpointConfig::new("a", "ftp://example.com/x"), |e| {
            matches!(e, Error::InvalidUrl { .. })
        }),
        (EndpointConfig::new("a", "example.com/x"), |e| {
            matches!(e, Error::InvalidUrl { .. })
        }),
        (ok().events(["lead.*.create"]), |e| {
            matches!(e, Error::InvalidEventPattern { .. })
        }),
        (ok().events(["*lead"]), |e| {
            matches!(e, Error::InvalidEventPattern { .. })
        }),
        (ok().events(Vec::<String>::new()), |e| {
            matches!(e, Error::InvalidEventPattern { .. })
        }),
        (ok().header("bad name", "v"), |e| {
            matches!(
                e,
                Error::InvalidEndpoint {
                    field: "header",
                    ..
                }
            )
        }),
        (ok().header("x-v", "a\r\nb"), |e| {
            matches!(
                e,
                Error::InvalidEndpoint {
                    field: "header",
                    ..
                }
            )
        }),
        (ok().secret("whsec_%%%"), |e| {
            matches!(
                e,
                Error::InvalidEndpoint {
                    field: "secret",
                    ..
                }
            )
        }),
        (ok().max_attempts(0), |e| {
            matches!(
                e,
                Error::InvalidEndpoint {
                    field: "max_attempts",
                    ..
                }
            )
        }),
        (ok().timeout(Duration::ZERO), |e| {
            matches!(
                e,
                Error::InvalidEndpoint {
                    field: "timeout",
                    ..
                }
            )
        }),
    ];
    for (cfg, expected) in cases {
        let shown = format!("{cfg:?}");
        let err = bus.add_endpoint(cfg).expect_err(&shown);
        assert!(expected(&err), "{shown} gave {err:?}");
        // Every error explains itself.
        assert!(!err.to_string().is_empty());
    }
    assert!(bus.endpoints(None, usize::MAX).items.is_empty());

    // An invalid update leaves the endpoint as it was.
    let ep = bus.add_endpoint(ok()).unwrap();
    let err = bus
        .update_endpoint(ep.id(), EndpointConfig::new("ok", "gopher://x"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }));
    assert_eq!(
        bus.endpoint(ep.id()).unwrap().url(),
        "https://example.com/hook"
    );
    bus.shutdown().unwrap();
    // A sled directory stays locked until the last handle is dropped (a
    // PostgreSQL schema is shared by design: many replicas open it).
    if common::backend() == common::Backend::Sled {
        assert!(matches!(Bus::open(dir.path()), Err(Error::AlreadyOpen(_))));
    }
    drop(bus);

    // And nothing of the rejected ones was persisted.
    let bus = common::open_bus(dir.path()).unwrap();
    assert_eq!(bus.endpoints(None, usize::MAX).items.len(), 1);
}

#[test]
fn unknown_endpoints_are_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("a", "https://example.com"))
        .unwrap();
    bus.delete_endpoint(ep.id()).unwrap();
    // Reads answer `None` for what does not exist (the crate's not-found
    // convention); actions on it are a typed error.
    assert!(bus.endpoint(ep.id()).is_none());
    assert!(bus.endpoint_health(ep.id()).is_none());
    assert!(bus.queue_depth(ep.id()).is_none());
    assert!(matches!(
        bus.update_endpoint(ep.id(), EndpointConfig::new("a", "https://example.com")),
        Err(Error::EndpointNotFound(id)) if id == ep.id()
    ));
    assert!(matches!(
        bus.disable_endpoint(ep.id()),
        Err(Error::EndpointNotFound(_))
    ));
    assert!(matches!(
        bus.delete_endpoint(ep.id()),
        Err(Error::EndpointNotFound(_))
    ));
}

#[test]
fn invalid_events_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).max_payload_bytes(1000).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("a", "https://example.com"))
        .unwrap();
    let flushes = bus.stats().commit_flushes;

    let too_big = Event::new("a.b", &"x".repeat(2000)).unwrap();
    assert!(matches!(
        bus.publish(too_big).map_err(Error::from),
        Err(Error::PayloadTooLarge {
            size: 2002,
            limit: 1000
        })
    ));
    for t in ["", "lead.*", "has space", "ümlaut"] {
        let e = Error::from(bus.publish(Event::new(t, &json!(1)).unwrap()).unwrap_err());
        assert!(matches!(e, Error::InvalidEventType { .. }), "{t:?}: {e:?}");
    }
    assert!(matches!(
        Event::from_json_bytes("a.b", b"{not json".to_vec()),
        Err(Error::InvalidPayload(_))
    ));
    assert_eq!(bus.stats().commit_flushes, flushes, "nothing was written");
}

#[test]
fn a_shut_down_bus_refuses_work() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.shutdown().unwrap();
    bus.shutdown().unwrap();
    assert!(matches!(
        bus.publish(Event::new("a.b", &json!(1)).unwrap())
            .map_err(Error::from),
        Err(Error::ShutDown)
    ));
    assert!(matches!(
        bus.add_endpoint(EndpointConfig::new("a", "https://example.com")),
        Err(Error::ShutDown)
    ));
}

#[test]
fn a_first_open_cut_short_is_not_a_foreign_directory() {
    if common::skip_on_postgres("sled's files left by a cut-short first open") {
        return;
    }
    // A kill while sled created its files leaves some of them and no
    // `conf`: the next open must go on, not refuse the directory forever.
    for leftovers in [&["db"][..], &["blobs"][..], &["db", "blobs"][..]] {
        let dir = tempfile::tempdir().unwrap();
        for name in leftovers {
            if *name == "blobs" {
                std::fs::create_dir(dir.path().join(name)).unwrap();
            } else {
                std::fs::write(dir.path().join(name), b"").unwrap();
            }
        }
        let bus = Bus::open(dir.path())
            .unwrap_or_else(|e| panic!("{leftovers:?} left by a cut-short open: {e}"));
        bus.shutdown().unwrap();
    }
    // Anything else beside them is still someone else's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db"), b"").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert!(matches!(
        Bus::open(dir.path()),
        Err(Error::ForeignDirectory(_))
    ));
}

#[test]
fn foreign_and_damaged_directories_are_typed_errors() {
    if common::skip_on_postgres("foreign and damaged sled directories") {
        return;
    }
    // A directory holding someone else's files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert!(matches!(
        Bus::open(dir.path()),
        Err(Error::ForeignDirectory(_))
    ));

    // A file instead of a directory.
    let file = dir.path().join("notes.txt");
    assert!(matches!(Bus::open(&file), Err(Error::ForeignDirectory(_))));

    // A sled database that is not ours.
    let other = tempfile::tempdir().unwrap();
    {
        let db = sled::open(other.path()).unwrap();
        db.insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Bus::open(other.path()),
        Err(Error::ForeignDirectory(_))
    ));

    // Our database with its files overwritten by garbage: an error, no panic.
    let damaged = tempfile::tempdir().unwrap();
    {
        let bus = Bus::open(damaged.path()).unwrap();
        bus.add_endpoint(EndpointConfig::new("a", "https://example.com"))
            .unwrap();
        bus.shutdown().unwrap();
    }
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(damaged.path().join("db"), &garbage).unwrap();
    std::fs::write(damaged.path().join("conf"), &garbage[..64]).unwrap();
    match Bus::open(damaged.path()) {
        Err(Error::Corrupt { .. } | Error::Storage(_) | Error::ForeignDirectory(_)) => {}
        Err(e) => panic!("unexpected error kind {e:?}"),
        Ok(_) => panic!("garbage opened as a database"),
    }
}

#[test]
fn invalid_bus_settings_fail_open() {
    let dir = tempfile::tempdir().unwrap();
    let builder = || common::bus_builder(dir.path());
    let cases = [
        builder().max_attempts(0),
        builder().retry_delays([]),
        builder().concurrency(0),
        builder().timeout(Duration::ZERO),
    ];
    for builder in cases {
        let shown = format!("{builder:?}");
        assert!(
            matches!(builder.open(), Err(Error::InvalidConfig { .. })),
            "{shown}"
        );
    }
}
