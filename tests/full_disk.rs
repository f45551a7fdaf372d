//! Guards behaviour on bad storage: on a full disk `publish` returns a
//! typed error instead of panicking, and every event it acknowledged before
//! the disk filled is still there when the database is opened again
//! elsewhere; a truncated or read-only database gives a typed error on
//! open (or, truncated, a working bus over what sled recovered).
//!
//! Needs a small filesystem of its own: the test mounts a 4 MiB tmpfs,
//! which takes root (as on CI and the development machines here). Where
//! mounting is not allowed it says so and checks nothing.

mod common;

use std::path::Path;
use std::process::Command;

use hookbus::{Bus, EndpointConfig, Error, Event};
use serde_json::json;

/// A tmpfs of its own, unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    /// Mounts a tmpfs of `size` at `at`; `None`, said on stderr, where the
    /// machine does not allow it.
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("full_disk: cannot mount a tmpfs here (not root?): nothing checked");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_full_disk_fails_publish_cleanly_and_loses_nothing_acknowledged() {
    if common::skip_on_postgres("fills a tmpfs holding a sled directory") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(mounted) = Mount::tmpfs(&scratch.path().join("small"), "4m") else {
        return;
    };
    let mnt = mounted.0.clone();
    let dir = mnt.join("bus");
    let mut acked = Vec::new();
    let mut failure = None;
    {
        let bus = common::fast_bus(&dir)
            .cache_capacity(1 << 20)
            .open()
            .unwrap();
        // An endpoint that is paused: every event stays queued, nothing is
        // sent, and the database only grows.
        let ep = bus
            .add_endpoint(EndpointConfig::new("ep", "https://example.com/hook"))
            .unwrap();
        bus.pause_endpoint(ep.id()).unwrap();
        let blob = "x".repeat(8 * 1024);
        for n in 0..10_000 {
            match bus.publish(Event::new("a.b", &json!({"n": n, "blob": blob})).unwrap()) {
                Ok(id) => acked.push(id),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // Shutting down on a full disk may itself fail to flush: it must
        // say so, not panic.
        let _ = bus.shutdown();
    }
    let failure = failure.expect("4 MiB filled up");
    // The event comes back for a later try, whole.
    assert_eq!(failure.event().event_type(), "a.b");
    assert!(failure.event().payload().len() > 8 * 1024);
    let failure = Error::from(failure);
    assert!(matches!(failure, Error::Storage(_)), "{failure:?}");
    // Typed down to the operating system's kind, without naming the engine.
    if let Error::Storage(e) = &failure {
        assert_eq!(
            e.io_error_kind(),
            Some(std::io::ErrorKind::StorageFull),
            "{e:?}"
        );
    }
    println!(
        "disk full after {} acknowledged publishes: {failure}",
        acked.len()
    );
    assert!(!acked.is_empty());

    // Everything acknowledged is in the files: open a copy with room to spare.
    let copy = scratch.path().join("copy");
    copy_dir(&dir, &copy);
    let bus = Bus::builder(&copy).open().unwrap();
    for id in &acked {
        assert!(bus.event(*id).unwrap().is_some(), "acknowledged {id} lost");
    }
    let ep = bus.endpoints(None, usize::MAX).items.pop().unwrap();
    assert!(bus.queue_depth(ep.id()).unwrap() >= acked.len());
}

#[test]
fn a_read_only_or_truncated_database_is_a_typed_error() {
    if common::skip_on_postgres("read-only and truncated sled files") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(mounted) = Mount::tmpfs(&scratch.path().join("ro"), "16m") else {
        return;
    };
    let mnt = mounted.0.clone();
    let dir = mnt.join("bus");
    {
        let bus = Bus::open(&dir).unwrap();
        for n in 0..50 {
            bus.publish(Event::new("a.b", &json!({"n": n})).unwrap())
                .unwrap();
        }
        bus.shutdown().unwrap();
    }
    // A truncated copy: half of the data file is gone.
    let truncated = scratch.path().join("truncated");
    copy_dir(&dir, &truncated);
    let db_file = truncated.join("db");
    let len = std::fs::metadata(&db_file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db_file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    match Bus::open(&truncated) {
        // sled may recover a prefix of its log: then it must be a working bus.
        Ok(bus) => {
            println!("truncated database opened: {:?}", bus.recovery());
            bus.publish(Event::new("a.b", &json!("after")).unwrap())
                .unwrap();
        }
        Err(e) => assert!(
            matches!(e, Error::Corrupt { .. } | Error::Storage(_)),
            "{e:?}"
        ),
    }

    // Read-only: root ignores file permissions, so remount the filesystem.
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(remounted, "remount read-only");
    match Bus::open(&dir) {
        Err(Error::Storage(_)) => {}
        Err(other) => panic!("unexpected error kind: {other:?}"),
        Ok(_) => panic!("opened a database on a read-only filesystem"),
    }
}
