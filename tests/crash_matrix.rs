//! Guards durability while everything happens at once: a child process
//! publishes from two threads while a third resends, recovers, updates,
//! pauses and resumes endpoints and rotates secrets, and is SIGKILLed at a
//! random moment (sometimes while it is still opening and recovering).
//! After the last round the parent reopens the bus and checks:
//!
//! - every acknowledged event reached every endpoint at least once;
//! - nothing that was never published arrived;
//! - attempt numbers per (event, endpoint) never decreased, and stayed
//!   within the maximum unless the delivery was resent by hand;
//! - every delivery ends delivered, with a log whose last attempt succeeded
//!   (none both succeeded and failed);
//! - every open found no corrupt record.
//!
//! `HOOKBUS_CRASH_MATRIX_ROUNDS` sets the rounds (default 12; use 200+ for
//! a long run). The counts are printed so they can be quoted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{fast_bus, Receiver, Reply};
use hookbus::{Bus, DeliveryStatus, EndpointConfig, Error, Event, EventId, Secret};
use serde_json::json;

const CHILD_DIR: &str = "HOOKBUS_MATRIX_CHILD_DIR";
const CHILD_URL: &str = "HOOKBUS_MATRIX_CHILD_URL";
const MAX_ATTEMPTS: u64 = 5;

fn open(dir: &str) -> Bus {
    fast_bus(std::path::Path::new(dir))
        .retry_delays([std::time::Duration::from_millis(20)])
        .max_attempts(MAX_ATTEMPTS as u32)
        .pause_after(None)
        .open()
        .unwrap()
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[test]
#[ignore = "run by operations_survive_sigkill as a child process"]
fn matrix_child_entry() {
    let (Some(dir), Some(url)) = (std::env::var(CHILD_DIR).ok(), std::env::var(CHILD_URL).ok())
    else {
        return;
    };
    let start: u64 = std::env::var("HOOKBUS_MATRIX_START")
        .unwrap()
        .parse()
        .unwrap();
    say("OPENING".into());
    let bus = Arc::new(open(&dir));
    say(format!("OPENED corrupt={}", bus.recovery().corrupt_records));
    if bus.endpoints(None, usize::MAX).items.is_empty() {
        for path in ["/a", "/b"] {
            bus.add_endpoint(EndpointConfig::new(path, format!("{url}{path}")))
                .unwrap();
        }
    }
    let endpoints: Vec<_> = bus
        .endpoints(None, usize::MAX)
        .items
        .iter()
        .map(|e| e.id())
        .collect();
    let acked = Arc::new(parking_lot::Mutex::new(Vec::<EventId>::new()));
    let mut threads = Vec::new();
    for t in 0..2u64 {
        let (bus, acked) = (bus.clone(), acked.clone());
        threads.push(std::thread::spawn(move || {
            for i in 0u64.. {
                let n = start + i * 2 + t;
                say(format!("TRY {n}"));
                let id = bus
                    .publish(Event::new("a.b", &json!({"n": n})).unwrap())
                    .unwrap();
                say(format!("ACK {n} {id}"));
                acked.lock().push(id);
                std::thread::sleep(Duration::from_millis(3));
            }
        }));
    }
    // The operator: one operation every few milliseconds.
    for round in 0u64.. {
        std::thread::sleep(Duration::from_millis(7));
        let ep = endpoints[(round % 2) as usize];
        let pick = {
            let acked = acked.lock();
            acked
                .get((round * 7919) as usize % acked.len().max(1))
                .copied()
        };
        match round % 6 {
            0 | 1 => {
                if let Some(event) = pick {
                    match bus.resend(event, ep) {
                        Ok(()) => say(format!("RESENT {event} {ep}")),
                        Err(Error::DeliveryInProgress { .. }) => {}
                        Err(e) => panic!("resend: {e}"),
                    }
                }
            }
            2 => {
                // Announce first: the kill may land inside recover.
                say(format!("RECOVER {ep}"));
                bus.recover(ep, std::time::UNIX_EPOCH).unwrap();
            }
            3 => {
                // Changes what the lanes schedule by (concurrency) and how
                // they send (timeout) while deliveries are in flight. (Not
                // a header: `header` appends, and a header per update
                // would pile up past what the receiver parses.)
                let current = bus.endpoint(ep).unwrap();
                let cfg = current
                    .config()
                    .clone()
                    .concurrency(1 + (round / 6 % 4) as u32)
                    .timeout(Duration::from_millis(2_000 + round % 500));
                bus.update_endpoint(ep, cfg).unwrap();
            }
            4 => {
                bus.pause_endpoint(ep).unwrap();
                std::thread::sleep(Duration::from_millis(5));
                bus.resume_endpoint(ep).unwrap();
            }
            _ => {
                bus.rotate_secret(ep, Secret::generate().unwrap(), Duration::from_secs(60))
                    .unwrap();
            }
        }
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[derive(Default)]
struct History {
    tried: BTreeSet<u64>,
    acked: BTreeMap<EventId, u64>,
    /// (event, endpoint) pairs resent by hand; any endpoint when `None`.
    manual: BTreeSet<String>,
    recovered: BTreeSet<String>,
    corrupt_opens: usize,
    opens: usize,
}

#[test]
fn operations_survive_sigkill() {
    let rounds: u64 = std::env::var("HOOKBUS_CRASH_MATRIX_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_string();
    // Every first attempt of a third of the deliveries fails, so retries are
    // scheduled or in flight when the kills land.
    let rx = Receiver::start(|r, _| {
        let n = r.json()["data"]["n"].as_u64().unwrap_or(0);
        let fail = n % 3 == 0 && r.attempt() == 1;
        Reply::After(Duration::from_millis(2), if fail { 500 } else { 200 })
    });
    let exe = std::env::current_exe().unwrap();
    let mut h = History::default();
    let mut next_start = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "matrix_child_entry",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, &dir_text)
            .env(CHILD_URL, rx.url(""))
            .env("HOOKBUS_MATRIX_START", next_start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // One round in five is killed while opening; the rest after a
        // random stretch of work.
        let mut all = Vec::new();
        if round % 5 == 4 {
            let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
            all.push(first);
            std::thread::sleep(Duration::from_micros(seed % 3000));
        } else {
            std::thread::sleep(Duration::from_millis(100 + seed % 400));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        all.extend(lines.try_iter());
        for line in all {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["TRY", n] => {
                    h.tried.insert(n.parse().unwrap());
                }
                ["ACK", n, id] => {
                    h.acked.insert(id.parse().unwrap(), n.parse().unwrap());
                }
                ["RESENT", event, ep] => {
                    h.manual.insert(format!("{event} {ep}"));
                }
                ["RECOVER", ep] => {
                    h.recovered.insert(ep.to_string());
                }
                ["OPENED", corrupt] => {
                    h.opens += 1;
                    if *corrupt != "corrupt=0" {
                        h.corrupt_opens += 1;
                    }
                }
                _ => {}
            }
        }
        next_start = h.tried.iter().next_back().map_or(0, |n| n + 1) + 1_000;
    }

    // The last, clean run: resume everything and let it drain.
    let bus = open(&dir_text);
    assert_eq!(bus.recovery().corrupt_records, 0);
    assert_eq!(
        h.corrupt_opens, 0,
        "an open during the run found corrupt records"
    );
    for ep in bus.endpoints(None, usize::MAX).items {
        bus.resume_endpoint(ep.id()).unwrap();
    }
    let endpoints = bus.endpoints(None, usize::MAX).items;
    let undelivered = || {
        let mut left = Vec::new();
        for id in h.acked.keys() {
            for ep in &endpoints {
                let status = bus.delivery(ep.id(), *id).unwrap().map(|d| d.status);
                if !matches!(status, Some(DeliveryStatus::Delivered { .. })) {
                    let log: Vec<String> = bus
                        .attempts(*id)
                        .unwrap()
                        .into_iter()
                        .filter(|a| a.endpoint == ep.id())
                        .map(|a| {
                            format!(
                                "#{} {:?} {:?} {:?}",
                                a.number, a.status, a.error, a.error_message
                            )
                        })
                        .collect();
                    left.push(format!("{id} to {}: {status:?} {log:?}", ep.name()));
                }
            }
        }
        left
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let left = undelivered();
        if left.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let depths: Vec<_> = endpoints
                .iter()
                .map(|ep| (ep.name().to_string(), bus.queue_depth(ep.id())))
                .collect();
            panic!(
                "{} acknowledged deliveries not delivered after 90 s (queue depths {depths:?}); first ones: {:#?}",
                left.len(),
                &left[..left.len().min(10)]
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let requests = rx.requests();
    let mut per_pair: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in &requests {
        let n = r.json()["data"]["n"].as_u64().unwrap();
        assert!(
            h.tried.contains(&n),
            "event {n} arrived but was never published"
        );
        per_pair
            .entry((r.webhook_id(), r.path.clone()))
            .or_default()
            .push(r.attempt());
    }
    for ep in &endpoints {
        for id in h.acked.keys() {
            let key = (id.to_string(), ep.name().to_string());
            assert!(
                per_pair.contains_key(&key),
                "{id} never reached {}",
                ep.name()
            );
            // The log agrees: its last attempt to this endpoint succeeded.
            let last = bus
                .attempts(*id)
                .unwrap()
                .into_iter()
                .rev()
                .find(|a| a.endpoint == ep.id())
                .expect("logged");
            assert!(
                last.succeeded,
                "{id} to {} ends in a failed attempt but is delivered",
                ep.name()
            );
        }
    }
    let mut duplicates = 0;
    for ((id, path), numbers) in &per_pair {
        for pair in numbers.windows(2) {
            assert!(
                pair[0] <= pair[1],
                "attempt numbers went backwards for {id} on {path}: {numbers:?}"
            );
        }
        let ep = endpoints.iter().find(|e| e.name() == path).unwrap();
        let by_hand = h.manual.contains(&format!("{id} {}", ep.id()))
            || h.recovered.contains(&ep.id().to_string());
        if !by_hand {
            assert!(
                numbers.iter().all(|n| *n <= MAX_ATTEMPTS),
                "{id} on {path} exceeded {MAX_ATTEMPTS} attempts: {numbers:?}"
            );
        }
        duplicates += numbers.len().saturating_sub(1);
    }
    println!(
        "crash matrix: {rounds} rounds ({} opens seen), {} tried, {} acknowledged, {} requests, {} (event, endpoint) pairs, {duplicates} repeated requests (retries, resends, crash re-sends), {} resends",
        h.opens,
        h.tried.len(),
        h.acked.len(),
        requests.len(),
        per_pair.len(),
        h.manual.len()
    );
    bus.shutdown().unwrap();
}
