//! Tenant deletion across kill -9: a child process queues thousands of
//! deliveries for a tenant (on a paused endpoint and on one waiting for
//! retries), starts deleting the tenant and is SIGKILLed at a random moment
//! of the deletion. The parent reopens the database and checks that the
//! tenant is either untouched (the kill came before the deletion was
//! recorded) or wholly deleted: no endpoint of it loaded, every one of its
//! deliveries cancelled, none pending, and nothing sent to it after the
//! reopen. Another tenant is never affected.
//!
//! `HOOKBUS_TENANT_CRASH_ROUNDS` sets the rounds (default 6). The counts
//! are printed so they can be quoted.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fast_bus, Receiver, Reply, WAIT};
use hookbus::{Bus, DeliveryStatus, EndpointConfig, EndpointId, Event, EventId, TenantId};
use serde_json::json;

const CHILD_DIR: &str = "HOOKBUS_TENANT_CRASH_DIR";
const CHILD_URL: &str = "HOOKBUS_TENANT_CRASH_URL";
const EVENTS: usize = 1500;

fn open(dir: &Path) -> Bus {
    fast_bus(dir)
        .retry_delays([Duration::from_secs(3600)])
        .open()
        .unwrap()
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[test]
#[ignore = "run by tenant_deletion_survives_sigkill as a child process"]
fn tenant_crash_child_entry() {
    let (Some(dir), Some(url)) = (std::env::var(CHILD_DIR).ok(), std::env::var(CHILD_URL).ok())
    else {
        return;
    };
    let bus = open(Path::new(&dir));
    let add = |name: &str, tenant: &str| {
        bus.add_endpoint(EndpointConfig::new(name, format!("{url}/{name}")).tenant(tenant))
            .unwrap()
            .id()
    };
    let paused = add("paused", "acme");
    let retrying = add("retrying", "acme");
    let other = add("other", "globex");
    bus.pause_endpoint(paused).unwrap();
    say(format!(
        "ENDPOINTS {} {} {}",
        paused.as_u64(),
        retrying.as_u64(),
        other.as_u64()
    ));
    // Published from several threads so group commit keeps it quick.
    std::thread::scope(|s| {
        for t in 0..8 {
            let bus = &bus;
            s.spawn(move || {
                for n in (t..EVENTS).step_by(8) {
                    let id = bus
                        .publish(Event::new("x", &json!({"n": n})).unwrap().tenant("acme"))
                        .unwrap();
                    say(format!("EVENT {id}"));
                }
            });
        }
    });
    let g = bus
        .publish(Event::new("x", &json!({})).unwrap().tenant("globex"))
        .unwrap();
    say(format!("OTHER {g}"));
    say("DELETING".into());
    let report = bus.delete_tenant(&"acme".parse().unwrap()).unwrap();
    say(format!("DELETED {}", report.cancelled));
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn tenant_deletion_survives_sigkill() {
    if common::skip_on_postgres("kills a child process holding a sled directory; the PostgreSQL crash guarantees are guarded by tests/postgres_replicas_crash.rs") {
        return;
    }
    let rounds: u64 = std::env::var("HOOKBUS_TENANT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let rx = Receiver::start(|r, _| {
        if r.path == "/retrying" {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let exe = std::env::current_exe().unwrap();
    let (mut untouched, mut interrupted, mut completed) = (0, 0, 0);
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "tenant_crash_child_entry",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_URL, rx.url(""))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut endpoints = Vec::new();
        let mut events: Vec<EventId> = Vec::new();
        let mut other_event = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("ENDPOINTS ") {
                endpoints = rest
                    .split(' ')
                    .map(|n| EndpointId::from_u64(n.parse().unwrap()))
                    .collect();
            } else if let Some(id) = line.strip_prefix("EVENT ") {
                events.push(id.parse().unwrap());
            } else if let Some(id) = line.strip_prefix("OTHER ") {
                other_event = Some(id.parse::<EventId>().unwrap());
            } else if line == "DELETING" {
                break;
            }
        }
        // Spread the kill over the deletion: at once on the first round,
        // then anywhere in its first 300 ms.
        if round > 0 {
            std::thread::sleep(Duration::from_micros(fastrand::u64(..300_000)));
        }
        child.kill().unwrap();
        let finished = lines.any(|l| l.is_ok_and(|l| l.starts_with("DELETED")));
        child.wait().unwrap();
        assert_eq!(events.len(), EVENTS, "round {round}");
        let (paused, retrying, other) = (endpoints[0], endpoints[1], endpoints[2]);

        let before_reopen = rx.requests().len();
        let bus = open(dir.path());
        assert_eq!(bus.recovery().corrupt_records, 0);
        let acme: TenantId = "acme".parse().unwrap();
        let left = bus.tenant_endpoints(&acme).len();
        let statuses = |ep| {
            events
                .iter()
                .map(|e| bus.delivery(ep, *e).unwrap().map(|d| d.status))
                .collect::<Vec<_>>()
        };
        let all_cancelled = |v: &[Option<DeliveryStatus>]| {
            v.iter()
                .all(|s| matches!(s, Some(DeliveryStatus::Cancelled { .. })))
        };
        let none_cancelled = |v: &[Option<DeliveryStatus>]| {
            v.iter()
                .all(|s| !matches!(s, Some(DeliveryStatus::Cancelled { .. })))
        };
        match left {
            2 => {
                assert!(
                    !finished,
                    "round {round}: deleted, yet its endpoints are back"
                );
                assert!(none_cancelled(&statuses(paused)), "round {round}");
                untouched += 1;
            }
            0 => {
                assert!(all_cancelled(&statuses(paused)), "round {round}: paused");
                assert!(
                    all_cancelled(&statuses(retrying)),
                    "round {round}: retrying"
                );
                assert!(bus.endpoint(paused).is_none() && bus.endpoint(retrying).is_none());
                if finished {
                    completed += 1;
                } else {
                    interrupted += 1;
                }
            }
            n => panic!("round {round}: {n} of the tenant's 2 endpoints are left"),
        }
        // The other tenant is whole and delivers.
        assert_eq!(bus.endpoint(other).unwrap().tenant().as_str(), "globex");
        let g = bus
            .publish(Event::new("x", &json!({})).unwrap().tenant("globex"))
            .unwrap();
        rx.wait_until(WAIT, "the other tenant's events", |r| {
            let ids: Vec<String> = r.iter().map(|x| x.webhook_id()).collect();
            ids.contains(&g.to_string()) && ids.contains(&other_event.unwrap().to_string())
        });
        if left == 0 {
            // Nothing went to the deleted tenant after the reopen.
            let since: Vec<String> = rx.requests()[before_reopen..]
                .iter()
                .map(|r| r.path.clone())
                .filter(|p| p != "/other")
                .collect();
            assert!(since.is_empty(), "round {round}: {since:?}");
        }
        bus.shutdown().unwrap();
    }
    println!(
        "tenant deletion under kill -9: {rounds} rounds, {untouched} killed before the deletion was recorded, {interrupted} interrupted and finished at open, {completed} completed before the kill"
    );
    assert_eq!(untouched + interrupted + completed, rounds);
}
