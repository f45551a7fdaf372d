//! Guards durability while everything happens at once: a child process
//! publishes to three tenants from three threads (two to the default
//! tenant, one alternating between two others, every tenant with its own
//! endpoints and the same event type) while a fourth resends, recovers,
//! updates, pauses and resumes endpoints and rotates secrets, and is
//! SIGKILLed at a random moment (sometimes while it is still opening and
//! recovering). Two more threads fill a fourth tenant's ordered endpoint
//! while it is paused, until its backlog passes a lane's in-memory window
//! (1,024) and the janitor has moved the newest of it to storage; then it
//! is resumed and drains (reading the backlog back in windows) until it is
//! paused again, so kills land while a spilled backlog grows, sits and
//! drains, and opens read it back one window at a time. Its first backlog
//! is published by the parent before the first round and moved to storage
//! by that bus's shutdown, so every run, however short, has one.
//! After the last round the parent reopens the bus and checks:
//!
//! - every acknowledged event reached every endpoint of its tenant at
//!   least once;
//! - nothing that was never published arrived;
//! - no delivery ever reached another tenant's endpoint: every request
//!   arrived at an endpoint of the tenant its event was published to, no
//!   delivery is stored for another tenant's endpoint, and a resend to
//!   another tenant's endpoint is refused;
//! - attempt numbers per (event, endpoint) never decreased, and stayed
//!   within the maximum unless the delivery was resent by hand;
//! - every delivery ends delivered, with a log whose last attempt succeeded
//!   (none both succeeded and failed);
//! - the ordered endpoint received its deliveries in publish order, across
//!   the spills, refills and kills;
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
use hookbus::{
    Bus, DeliveryStatus, EndpointConfig, EndpointId, Error, Event, EventId, Secret, TenantId,
};
use serde_json::json;

const CHILD_DIR: &str = "HOOKBUS_MATRIX_CHILD_DIR";
const CHILD_URL: &str = "HOOKBUS_MATRIX_CHILD_URL";
const MAX_ATTEMPTS: u64 = 5;

/// The endpoints the child keeps, by tenant (`None`: the default tenant)
/// and path, which is also the endpoint's name.
const ENDPOINTS: &[(Option<&str>, &str)] = &[
    (None, "/a"),
    (None, "/b"),
    (Some("acme"), "/acme/a"),
    (Some("globex"), "/globex/a"),
    (Some("globex"), "/globex/b"),
    (Some("bulk"), BULK),
];
/// The third publisher's tenants, in turn.
const OTHER_TENANTS: [&str; 2] = ["acme", "globex"];
/// The ordered endpoint whose backlog is spilled; the operator leaves it
/// alone (a resend would break its order on purpose).
const BULK: &str = "/bulk/o";
/// The bulk endpoint is resumed once its backlog reaches this: past a
/// lane's in-memory window of 1,024.
const BULK_BACKLOG: usize = 1_200;
/// Publisher threads: two for the default tenant, one for the others, two
/// for the bulk tenant. Event numbers are `start + i * PUBLISHERS + thread`.
const PUBLISHERS: u64 = 5;
const JANITOR_INTERVAL: Duration = Duration::from_millis(50);

fn open(dir: &str) -> Bus {
    fast_bus(std::path::Path::new(dir))
        .retry_delays([std::time::Duration::from_millis(20)])
        .max_attempts(MAX_ATTEMPTS as u32)
        .pause_after(None)
        // Often enough that backlogs are spilled (and the checkpoint
        // moves) within a child's short life.
        .janitor_interval(JANITOR_INTERVAL)
        .open()
        .unwrap()
}

/// The tenant key an endpoint path belongs to.
fn tenant_of_path(path: &str) -> String {
    let (tenant, _) = ENDPOINTS
        .iter()
        .find(|(_, p)| *p == path)
        .expect("a known endpoint");
    tenant.map_or_else(
        || TenantId::default_tenant().as_str().to_string(),
        str::to_string,
    )
}

/// Adds whichever of [`ENDPOINTS`] is missing (a kill may have cut a first
/// run short), the bulk endpoint paused; returns the bulk endpoint.
fn ensure_endpoints(bus: &Bus, url: &str) -> EndpointId {
    let find = |path: &str| {
        bus.endpoints(None, usize::MAX)
            .items
            .into_iter()
            .find(|e| e.name() == path)
    };
    for (tenant, path) in ENDPOINTS {
        if find(path).is_some() {
            continue;
        }
        let mut cfg = EndpointConfig::new(*path, format!("{url}{path}"));
        if let Some(t) = tenant {
            cfg = cfg.tenant(t);
        }
        if *path == BULK {
            cfg = cfg.ordered(true);
        }
        let added = bus.add_endpoint(cfg).unwrap();
        if *path == BULK {
            bus.pause_endpoint(added.id()).unwrap();
        }
    }
    find(BULK).unwrap().id()
}

/// Whether the receiver fails this request: the first attempt of every
/// third event; on the ordered bulk endpoint, where each such retry holds
/// the whole queue back for the retry delay, of every thirtieth.
fn fails(n: u64, attempt: u64, path: &str) -> bool {
    let every = if path == BULK { 30 } else { 3 };
    n % every == 0 && attempt == 1
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
    let bulk = ensure_endpoints(&bus, &url);
    let find = |path: &str| {
        bus.endpoints(None, usize::MAX)
            .items
            .into_iter()
            .find(|e| e.name() == path)
    };
    // The operator's endpoints, with their tenants.
    let endpoints: Vec<(EndpointId, String)> = ENDPOINTS
        .iter()
        .filter(|(_, p)| *p != BULK)
        .map(|(_, p)| (find(p).unwrap().id(), tenant_of_path(p)))
        .collect();
    let acked = Arc::new(parking_lot::Mutex::new(
        BTreeMap::<String, Vec<EventId>>::new(),
    ));
    let mut threads = Vec::new();
    for t in 0..PUBLISHERS {
        let (bus, acked) = (bus.clone(), acked.clone());
        threads.push(std::thread::spawn(move || {
            let default_key = TenantId::default_tenant();
            for i in 0u64.. {
                let n = start + i * PUBLISHERS + t;
                let tenant = match t {
                    0 | 1 => None,
                    2 => Some(OTHER_TENANTS[(i % 2) as usize]),
                    _ => {
                        // Fills the paused bulk endpoint up to the backlog.
                        while bus.endpoint(bulk).is_some_and(|e| !e.is_paused())
                            || bus.queue_depth(bulk).unwrap_or(0) >= BULK_BACKLOG
                        {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Some("bulk")
                    }
                };
                let key = tenant.unwrap_or(default_key.as_str());
                say(format!("TRY {n} {key}"));
                let mut event = Event::new("a.b", &json!({"n": n})).unwrap();
                if let Some(tenant) = tenant {
                    event = event.tenant(tenant);
                }
                let id = bus.publish(event).unwrap();
                say(format!("ACK {n} {id}"));
                acked.lock().entry(key.to_string()).or_default().push(id);
                std::thread::sleep(Duration::from_millis(3));
            }
        }));
    }
    // The operator: one operation every few milliseconds, and the bulk
    // endpoint resumed once its backlog has been spilled (the janitor ran
    // a few times since it passed the window), paused again once drained.
    let mut full_since: Option<std::time::Instant> = None;
    for round in 0u64.. {
        std::thread::sleep(Duration::from_millis(7));
        let depth = bus.queue_depth(bulk).unwrap();
        if bus.endpoint(bulk).unwrap().is_paused() {
            if depth >= BULK_BACKLOG {
                let since = *full_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= JANITOR_INTERVAL * 4 {
                    say(format!("BULK_RESUMED {depth}"));
                    bus.resume_endpoint(bulk).unwrap();
                    full_since = None;
                }
            }
        } else if depth == 0 {
            bus.pause_endpoint(bulk).unwrap();
        }
        let (ep, tenant) = endpoints[(round % endpoints.len() as u64) as usize].clone();
        let pick = |of: &str| {
            let acked = acked.lock();
            let list = acked.get(of).map_or(&[][..], |l| &l[..]);
            list.get((round * 7919) as usize % list.len().max(1))
                .copied()
        };
        match round % 6 {
            0 | 1 => {
                if let Some(event) = pick(&tenant) {
                    match bus.resend(event, ep) {
                        Ok(()) => say(format!("RESENT {event} {ep}")),
                        Err(Error::DeliveryInProgress { .. }) => {}
                        Err(e) => panic!("resend: {e}"),
                    }
                }
                // Another tenant's event is refused, and nothing is sent.
                let other = OTHER_TENANTS
                    .iter()
                    .copied()
                    .chain(["bulk"])
                    .find(|t| *t != tenant);
                if let Some(event) = other.and_then(pick) {
                    match bus.resend(event, ep) {
                        Err(Error::EventNotFound(e)) if e == event => say("CROSS_REFUSED".into()),
                        other => panic!("resend across tenants: {other:?}"),
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
    /// Event numbers tried, with the tenant each was published to.
    tried: BTreeMap<u64, String>,
    acked: BTreeMap<EventId, u64>,
    /// (event, endpoint) pairs resent by hand; any endpoint when `None`.
    manual: BTreeSet<String>,
    recovered: BTreeSet<String>,
    corrupt_opens: usize,
    opens: usize,
    /// The bulk endpoint's backlog each time it was resumed.
    bulk_resumed: Vec<usize>,
    cross_refused: usize,
}

#[test]
fn operations_survive_sigkill() {
    if common::skip_on_postgres("kills a child process holding a sled directory; the PostgreSQL crash guarantees are guarded by tests/postgres_replicas_crash.rs") {
        return;
    }
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
        let fail = fails(n, r.attempt(), &r.path);
        // Answers take a little while, so attempts are in flight when the
        // kills land; on the bulk endpoint, whose queue goes one at a time,
        // no longer than the round trip, so that it drains in a few seconds.
        let wait = if r.path == BULK { 0 } else { 2 };
        Reply::After(Duration::from_millis(wait), if fail { 500 } else { 200 })
    });
    let exe = std::env::current_exe().unwrap();
    let mut h = History::default();
    // The bulk endpoint's first backlog, past the window, published here
    // (from several threads, so their flushes are shared) and moved to
    // storage by shutdown's last checkpoint: the first child's open reads
    // it back one window at a time and resumes it once the janitor ran.
    // Later backlogs are the children's own.
    {
        let seeding = std::time::Instant::now();
        let bus = open(&dir_text);
        let url = rx.url("");
        ensure_endpoints(&bus, &url);
        let seeded: Vec<(u64, EventId)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8u64)
                .map(|t| {
                    let bus = &bus;
                    scope.spawn(move || {
                        (t..BULK_BACKLOG as u64)
                            .step_by(8)
                            .map(|n| {
                                let event =
                                    Event::new("a.b", &json!({"n": n})).unwrap().tenant("bulk");
                                (n, bus.publish(event).unwrap())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        for (n, id) in seeded {
            h.tried.insert(n, "bulk".to_string());
            h.acked.insert(id, n);
        }
        bus.shutdown().unwrap();
        println!(
            "crash matrix: bulk backlog seeded in {:?}",
            seeding.elapsed()
        );
    }
    let mut next_start = BULK_BACKLOG as u64 + 1_000;
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
                ["TRY", n, tenant] => {
                    h.tried.insert(n.parse().unwrap(), tenant.to_string());
                }
                ["BULK_RESUMED", depth] => h.bulk_resumed.push(depth.parse().unwrap()),
                ["CROSS_REFUSED"] => h.cross_refused += 1,
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
        next_start = h.tried.keys().next_back().map_or(0, |n| n + 1) + 1_000;
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
    let tenant_of_event = |n: u64| h.tried[&n].as_str();
    // Each acknowledged event's own tenant's endpoints, still to be seen
    // delivered.
    let mut left: Vec<(EventId, &hookbus::Endpoint)> = h
        .acked
        .iter()
        .flat_map(|(id, n)| {
            endpoints
                .iter()
                .filter(move |ep| ep.tenant().as_str() == tenant_of_event(*n))
                .map(move |ep| (*id, ep))
        })
        .collect();
    let pairs_expected = left.len();
    // Bounded by a queue that stops moving (no delivery for 60 s), not by
    // the drain's total time, which grows with the rounds.
    let mut moved_at = std::time::Instant::now();
    let mut progress = Vec::new();
    loop {
        let before = left.len();
        left.retain(|(id, ep)| {
            !matches!(
                bus.delivery(ep.id(), *id).unwrap().map(|d| d.status),
                Some(DeliveryStatus::Delivered { .. })
            )
        });
        if left.is_empty() {
            break;
        }
        if left.len() < before {
            moved_at = std::time::Instant::now();
        }
        progress.push(left.len());
        if moved_at.elapsed() > Duration::from_secs(60) {
            let depths: Vec<_> = endpoints
                .iter()
                .map(|ep| (ep.name().to_string(), bus.queue_depth(ep.id())))
                .collect();
            let first: Vec<String> = left
                .iter()
                .take(10)
                .map(|(id, ep)| {
                    let status = bus.delivery(ep.id(), *id).unwrap().map(|d| d.status);
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
                    format!("{id} to {}: {status:?} {log:?}", ep.name())
                })
                .collect();
            panic!(
                "{} acknowledged deliveries not delivered, none for 60 s (queue depths {depths:?}; left after each poll: {progress:?}); first ones: {first:#?}",
                left.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let requests = rx.requests();
    let mut per_pair: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    let mut bulk_arrivals: Vec<EventId> = Vec::new();
    let mut number_of: BTreeMap<String, u64> = BTreeMap::new();
    for r in &requests {
        let n = r.json()["data"]["n"].as_u64().unwrap();
        number_of.insert(r.webhook_id(), n);
        let Some(tenant) = h.tried.get(&n) else {
            panic!("event {n} arrived but was never published");
        };
        assert_eq!(
            *tenant,
            tenant_of_path(&r.path),
            "event {n} of tenant {tenant} reached {}, another tenant's endpoint",
            r.path
        );
        if r.path == BULK {
            bulk_arrivals.push(r.webhook_id().parse().unwrap());
        }
        per_pair
            .entry((r.webhook_id(), r.path.clone()))
            .or_default()
            .push(r.attempt());
    }
    for (id, n) in &h.acked {
        let tenant = tenant_of_event(*n);
        assert_eq!(
            bus.event(*id).unwrap().expect("stored").tenant.as_str(),
            tenant,
            "{id} stored under another tenant"
        );
        for ep in &endpoints {
            if ep.tenant().as_str() != tenant {
                assert!(
                    bus.delivery(ep.id(), *id).unwrap().is_none(),
                    "{id} of tenant {tenant} has a delivery to {}, another tenant's endpoint",
                    ep.name()
                );
                continue;
            }
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
    for pair in bulk_arrivals.windows(2) {
        assert!(
            pair[0] <= pair[1],
            "ordered endpoint out of order: {} arrived after {}",
            pair[1],
            pair[0]
        );
    }
    let mut duplicates = 0;
    let mut redundant = 0;
    let mut highest = 0;
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
            highest = highest.max(numbers.iter().copied().max().unwrap_or(0));
        }
        duplicates += numbers.len().saturating_sub(1);
        // Requests the receiver accepted beyond the first: crash re-sends
        // and resends by hand, never a lost delivery.
        let n = number_of[id];
        let accepted = numbers.iter().filter(|a| !fails(n, **a, path)).count();
        redundant += accepted.saturating_sub(1);
    }
    let per_tenant = |t: &str| {
        h.acked
            .values()
            .filter(|n| tenant_of_event(**n) == t)
            .count()
    };
    let default_key = TenantId::default_tenant();
    println!(
        "crash matrix: {rounds} rounds ({} opens seen), {} tried, {} acknowledged ({} default tenant, {} acme, {} globex, {} bulk), {} (event, endpoint) deliveries expected and all delivered, 0 lost, {} requests, {} (event, endpoint) pairs, {duplicates} repeated requests (retries, resends, crash re-sends), {redundant} accepted more than once, highest attempt number without a resend {highest}, {} resends, {} cross-tenant resends refused, bulk endpoint resumed {} times with backlogs {:?}, {} ordered arrivals in order",
        h.opens,
        h.tried.len(),
        h.acked.len(),
        per_tenant(default_key.as_str()),
        per_tenant("acme"),
        per_tenant("globex"),
        per_tenant("bulk"),
        pairs_expected,
        requests.len(),
        per_pair.len(),
        h.manual.len(),
        h.cross_refused,
        h.bulk_resumed.len(),
        h.bulk_resumed,
        bulk_arrivals.len(),
    );
    bus.shutdown().unwrap();
}
