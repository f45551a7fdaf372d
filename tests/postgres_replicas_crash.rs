//! Many replicas, one queue, under `kill -9`: three processes open the bus
//! on one PostgreSQL schema, all publish and all deliver, and are SIGKILLed
//! at random moments and restarted, round after round.
//!
//! The test re-runs its own binary as the replicas (the ignored test
//! `replica_child_entry`, which does nothing unless
//! `HOOKBUS_PGCRASH_SCHEMA` is set). The parent registers three endpoints on
//! a loopback receiver it runs (`/all` for `*`, `/orders` for `order.*`,
//! `/ordered` for `order.*`, ordered) and closes its own bus; the replicas
//! then publish numbered events from two threads each into a journal file
//! they share (O_APPEND, one `write` per line): `TRY <tag> <µs>` before
//! `publish`, `ACK <tag> <event id> <µs>` after it returned `Ok` (then
//! `fsync`), `ERR <tag>` after it failed. Each replica sends with the user
//! agent `replica-<n>.<generation>`, so the receiver knows which process
//! made each attempt. The receiver fails the first attempt of every 5th
//! event and the second of every 15th, and takes 2–15 ms per answer, so
//! retries are pending and attempts in flight when the kills land.
//!
//! Each round kills one replica (one round in five: all three) after 20 ms
//! to 1.5 s and restarts it at once. After the last round the parent kills
//! them all, opens a bus of its own (`replica-final`) and lets it drain,
//! then checks:
//! - every acknowledged event reached every endpoint it matches with a 2xx
//!   answer, under the id its publish returned;
//! - nothing unpublished arrived: every request carries the tag of a
//!   publish some replica attempted, one tag never came under two ids, and
//!   an event whose publish was not acknowledged (killed or failed) arrived
//!   only if it is committed (the final bus finds it);
//! - no request reached an endpoint its event does not match;
//! - per delivery (endpoint, `webhook-id`), the attempt numbers in arrival
//!   order never decrease and never exceed the maximum;
//! - no delivery was attempted by two replicas at once: two requests of one
//!   delivery from different processes never overlap at the receiver
//!   (arrival to answer), unless the first sender had been killed before
//!   the second request arrived (its request was orphaned); and after a
//!   kill, no other process attempted a delivery that the killed one had in
//!   flight sooner than a third of the lease later (its lease was renewed
//!   at most a third of the lease before the kill, so it ran on for at
//!   least two thirds; the other third is room for a late renewal);
//! - the ordered endpoint is in order: a delivery that arrived never comes
//!   back after a later one did, and an event whose publish returned before
//!   another's began was answered 2xx before the other's first request.
//!
//! Skipped with a message when `HOOKBUS_TEST_POSTGRES_URL` is unset; fails
//! loudly when it is set and the server is unreachable.
//!
//! Default run (12 rounds, about a minute in a debug build):
//! `HOOKBUS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo test --features postgres --test postgres_replicas_crash -- --nocapture`
//! Long run: `HOOKBUS_LONG=1` (150 rounds) or `HOOKBUS_PG_CRASH_ROUNDS=<n>`,
//! optionally with `HOOKBUS_PG_CRASH_SEED=<seed>` to replay a kill schedule.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Receiver, Reply, POSTGRES_URL_VAR};
use hookbus::{Bus, BusBuilder, EndpointConfig, Event, EventId};
use parking_lot::Mutex;
use serde_json::json;

/// Set in the child: the schema the replicas share. Its presence makes
/// `replica_child_entry` run.
const CHILD_SCHEMA: &str = "HOOKBUS_PGCRASH_SCHEMA";
/// Set in the child: `<replica>.<generation>`, its identity.
const CHILD_NAME: &str = "HOOKBUS_PGCRASH_NAME";
/// Set in the child: the shared journal file.
const CHILD_JOURNAL: &str = "HOOKBUS_PGCRASH_JOURNAL";

const REPLICAS: usize = 3;
const PUBLISHERS: usize = 2;
const DEFAULT_ROUNDS: u64 = 12;
const LONG_ROUNDS: u64 = 150;
const MAX_ATTEMPTS: u32 = 6;
/// The replicas' endpoint lease: short, so that takeovers after a kill
/// happen within the run, and longer than the attempt timeout.
const LEASE: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(100);
/// Pause between two publishes of one replica thread.
const PUBLISH_PACE: Duration = Duration::from_millis(4);
/// The drain fails when no acknowledged delivery arrived for this long.
const STALL: Duration = Duration::from_secs(60);

/// (name, path, event pattern, ordered) of the endpoints.
const ENDPOINTS: [(&str, &str, &str, bool); 3] = [
    ("all", "/all", "*", false),
    ("orders", "/orders", "order.*", false),
    ("ordered", "/ordered", "order.*", true),
];

fn event_type(n: u64) -> &'static str {
    if n % 3 == 0 {
        "user.signup"
    } else {
        "order.placed"
    }
}

fn matches(path: &str, event_type: &str) -> bool {
    path == "/all" || event_type.starts_with("order.")
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// The bus of one replica (or of the parent) on the shared schema.
fn replica_bus(url: &str, schema: &str, name: &str) -> BusBuilder {
    Bus::postgres(url)
        .postgres_schema(schema)
        .postgres_lease(LEASE)
        .postgres_poll_interval(POLL)
        .allow_network("127.0.0.1/32")
        .max_attempts(MAX_ATTEMPTS)
        .retry_delays([Duration::from_millis(30), Duration::from_millis(60)])
        .retry_jitter(0.0)
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_millis(500))
        .concurrency(4)
        .user_agent(format!("replica-{name}"))
}

/// What the database and the final bus say when the drain stalls: the
/// leases, the replicas, each endpoint's unfinished deliveries, and the
/// bus's own view of its queues.
fn stall_report(url: &str, schema: &str, bus: &Bus) -> String {
    let mut out = Vec::new();
    let mut client = match hookbus::postgres::Client::connect(url, hookbus::postgres::NoTls) {
        Ok(c) => c,
        Err(e) => return format!("(cannot connect for the report: {e})"),
    };
    let queries = [
        (
            "leases",
            format!(
                "SELECT endpoint::text, owner, (until - now())::text FROM \"{schema}\".endpoint_leases ORDER BY endpoint"
            ),
        ),
        (
            "replicas",
            format!("SELECT id, (now() - seen_at)::text, '' FROM \"{schema}\".replicas ORDER BY id"),
        ),
        (
            "unfinished",
            format!(
                "SELECT endpoint::text, count(*)::text, count(*) FILTER (WHERE in_flight)::text
                 FROM \"{schema}\".deliveries WHERE NOT finished GROUP BY endpoint ORDER BY endpoint"
            ),
        ),
    ];
    for (what, q) in queries {
        match client.query(q.as_str(), &[]) {
            Ok(rows) => {
                for r in rows {
                    let (a, b, c): (String, String, String) = (r.get(0), r.get(1), r.get(2));
                    out.push(format!("{what}: {a} | {b} | {c}"));
                }
            }
            Err(e) => out.push(format!("{what}: query failed: {e}")),
        }
    }
    for ep in bus.endpoints(None, 100).items {
        out.push(format!(
            "final bus: endpoint {} ({}) queue_depth {:?} status {:?}",
            ep.id(),
            ep.name(),
            bus.queue_depth(ep.id()),
            ep.status()
        ));
    }
    out.push(format!("final bus stats: {:?}", bus.stats()));
    out.join("\n")
}

// ----- the replica -----

/// Appends one journal line with a single `write` (O_APPEND keeps lines of
/// different processes whole).
fn journal(file: &File, line: &str, sync: bool) {
    let text = format!("{line}\n");
    (&*file)
        .write_all(text.as_bytes())
        .expect("write the journal");
    if sync {
        file.sync_data().expect("fsync the journal");
    }
}

#[test]
#[ignore = "a replica of postgres_replicas_survive_sigkill; does nothing when run directly"]
fn replica_child_entry() {
    let Ok(schema) = std::env::var(CHILD_SCHEMA) else {
        return;
    };
    {
        let url = common::postgres_url();
        let name = std::env::var(CHILD_NAME).expect("replica name");
        let path = std::env::var(CHILD_JOURNAL).expect("journal path");
        let file = Arc::new(
            OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open the journal"),
        );
        // A replica whose parent died stops on its own.
        let parent = std::os::unix::process::parent_id();
        thread::spawn(move || loop {
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(3);
            }
            thread::sleep(Duration::from_millis(200));
        });
        let bus = Arc::new(
            replica_bus(&url, &schema, &name)
                .open()
                .expect("a replica opens the bus"),
        );
        let threads: Vec<_> = (0..PUBLISHERS)
            .map(|t| {
                let (bus, file, name) = (bus.clone(), file.clone(), name.clone());
                thread::spawn(move || {
                    for n in 0u64.. {
                        let tag = format!("r{name}t{t}n{n}");
                        let event =
                            Event::new(event_type(n), &json!({"tag": tag, "n": n})).expect("event");
                        journal(&file, &format!("TRY {tag} {}", micros_now()), false);
                        match bus.publish(event) {
                            Ok(id) => {
                                journal(&file, &format!("ACK {tag} {id} {}", micros_now()), true)
                            }
                            Err(e) => {
                                journal(&file, &format!("ERR {tag} {}", e.error()), false);
                                thread::sleep(Duration::from_millis(50));
                            }
                        }
                        thread::sleep(PUBLISH_PACE);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("publisher thread");
        }
    }
}

// ----- the parent -----

/// One request as the receiver answered it.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    webhook_id: String,
    event_type: String,
    attempt: u64,
    sender: String,
    tag: String,
    arrived: u64,
    answered: u64,
    status: u16,
}

/// FNV-1a: which events the receiver fails, the same in every run.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn reply_for(tag: &str, attempt: u64) -> u16 {
    let h = fnv(tag);
    match attempt {
        1 if h % 5 == 0 => 500,
        2 if h % 15 == 0 => 500,
        _ => 200,
    }
}

/// The receiver: answers as `reply_for` says after 2–15 ms, and records
/// each request with its arrival and answer times.
fn start_receiver(hits: Arc<Mutex<Vec<Hit>>>) -> Receiver {
    Receiver::start(move |r, _| {
        let arrived = micros_now();
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let tag = body["data"]["tag"].as_str().unwrap_or_default().to_string();
        let attempt: u64 = r
            .header("webhook-attempt")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let status = reply_for(&tag, attempt);
        thread::sleep(Duration::from_millis(2 + fnv(&r.webhook_id()) % 14));
        hits.lock().push(Hit {
            path: r.path.clone(),
            webhook_id: r.header("webhook-id").unwrap_or_default().to_string(),
            event_type: r
                .header("webhook-event-type")
                .unwrap_or_default()
                .to_string(),
            attempt,
            sender: r
                .header("user-agent")
                .unwrap_or_default()
                .trim_start_matches("replica-")
                .to_string(),
            tag,
            arrived,
            answered: micros_now(),
            status,
        });
        Reply::Status(status)
    })
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One running replica process.
struct Replica {
    name: String,
    child: KillOnDrop,
    stderr_path: std::path::PathBuf,
}

struct Run<'a> {
    exe: std::path::PathBuf,
    schema: &'a str,
    journal: &'a Path,
    logs: &'a Path,
}

impl Run<'_> {
    fn spawn(&self, replica: usize, generation: u64) -> Replica {
        let name = format!("{replica}.{generation}");
        let stderr_path = self.logs.join(format!("replica-{name}.stderr"));
        let stderr = File::create(&stderr_path).expect("replica stderr file");
        let child = Command::new(&self.exe)
            .args([
                "--exact",
                "replica_child_entry",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SCHEMA, self.schema)
            .env(CHILD_NAME, &name)
            .env(CHILD_JOURNAL, self.journal)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn a replica");
        Replica {
            name,
            child: KillOnDrop(child),
            stderr_path,
        }
    }
}

/// SIGKILLs a replica (after checking it did not die on its own) and
/// returns when it was killed.
fn kill(mut replica: Replica) -> u64 {
    if let Some(status) = replica.child.0.try_wait().expect("poll a replica") {
        let mut text = String::new();
        let _ = File::open(&replica.stderr_path).and_then(|mut f| f.read_to_string(&mut text));
        panic!(
            "replica {} exited by itself ({status}) before its kill; stderr:\n{text}",
            replica.name
        );
    }
    replica.child.0.kill().expect("SIGKILL a replica");
    let at = micros_now();
    let status = replica.child.0.wait().expect("reap a replica");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "replica {}: {status}",
        replica.name
    );
    at
}

/// What the replicas wrote in the journal.
#[derive(Default)]
struct Journal {
    /// tag → when its publish began (µs).
    tried: HashMap<String, u64>,
    /// tag → (event id, when its publish returned Ok).
    acked: HashMap<String, (EventId, u64)>,
    failed: usize,
}

fn read_journal(path: &Path) -> Journal {
    let text = std::fs::read_to_string(path).expect("read the journal");
    let mut journal = Journal::default();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["TRY", tag, at] => {
                if let Ok(at) = at.parse() {
                    journal.tried.insert(tag.to_string(), at);
                }
            }
            ["ACK", tag, id, at] => {
                if let (Ok(id), Ok(at)) = (id.parse(), at.parse()) {
                    journal.acked.insert(tag.to_string(), (id, at));
                }
            }
            ["ERR", ..] => journal.failed += 1,
            // A line cut by a kill in the middle of its write: it carries
            // no acknowledgement (those are written whole, then fsync'd).
            _ => {}
        }
    }
    for tag in journal.acked.keys() {
        assert!(
            journal.tried.contains_key(tag),
            "{tag} acknowledged but never tried"
        );
    }
    journal
}

/// xorshift64*: the kill schedule, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rounds() -> u64 {
    if let Some(n) = std::env::var("HOOKBUS_PG_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::var("HOOKBUS_LONG").is_ok_and(|v| v == "1") {
        LONG_ROUNDS
    } else {
        DEFAULT_ROUNDS
    }
}

#[test]
fn postgres_replicas_survive_sigkill() {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipped: {POSTGRES_URL_VAR} is not set (needs a PostgreSQL server)");
        return;
    };
    // Loud when the server is not there.
    drop(common::admin_client(&url));
    let schema = format!("hbt_replicas_crash_{}", std::process::id());
    common::drop_schema(&url, &schema);

    let rounds = rounds();
    let seed = std::env::var("HOOKBUS_PG_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| micros_now() | 1);
    println!("postgres replicas crash: {rounds} rounds, seed {seed} (HOOKBUS_PG_CRASH_SEED)");
    let mut rng = Rng(seed);

    let hits = Arc::new(Mutex::new(Vec::new()));
    let rx = start_receiver(hits.clone());
    let scratch = tempfile::tempdir().expect("scratch directory");
    let journal_path = scratch.path().join("journal");
    File::create(&journal_path).expect("create the journal");

    // The endpoints, registered once by the parent before any replica runs.
    {
        let bus = replica_bus(&url, &schema, "setup")
            .open()
            .expect("open the schema");
        for (name, path, pattern, ordered) in ENDPOINTS {
            bus.add_endpoint(
                EndpointConfig::new(name, rx.url(path))
                    .events([pattern])
                    .ordered(ordered),
            )
            .expect("add an endpoint");
        }
        bus.shutdown().expect("shut the setup bus down");
    }

    let run = Run {
        exe: std::env::current_exe().expect("test binary"),
        schema: &schema,
        journal: &journal_path,
        logs: scratch.path(),
    };
    let mut generation = [0u64; REPLICAS];
    let mut live: Vec<Option<Replica>> = (0..REPLICAS).map(|r| Some(run.spawn(r, 0))).collect();
    // process name → when it was killed (µs).
    let mut killed: HashMap<String, u64> = HashMap::new();
    let started = Instant::now();
    for round in 0..rounds {
        thread::sleep(Duration::from_millis(20 + rng.below(1480)));
        let victims: Vec<usize> = if round % 5 == 4 {
            (0..REPLICAS).collect()
        } else {
            vec![rng.below(REPLICAS as u64) as usize]
        };
        for r in victims {
            let replica = live[r].take().expect("a live replica");
            let name = replica.name.clone();
            killed.insert(name, kill(replica));
            generation[r] += 1;
            live[r] = Some(run.spawn(r, generation[r]));
        }
    }
    for replica in live.iter_mut() {
        let replica = replica.take().expect("a live replica");
        let name = replica.name.clone();
        killed.insert(name, kill(replica));
    }
    let killing = started.elapsed();

    let journal = read_journal(&journal_path);
    assert!(!journal.acked.is_empty(), "no publish was acknowledged");

    // A last, clean replica drains what the killed ones left.
    let bus = replica_bus(&url, &schema, "final")
        .open()
        .expect("the final replica opens");
    let missing = || -> usize {
        let got: HashSet<(String, String)> = hits
            .lock()
            .iter()
            .filter(|h| h.status == 200)
            .map(|h| (h.path.clone(), h.webhook_id.clone()))
            .collect();
        journal
            .acked
            .iter()
            .map(|(tag, (id, _))| {
                let n: u64 = tag.rsplit('n').next().unwrap().parse().unwrap();
                ENDPOINTS
                    .iter()
                    .filter(|e| matches(e.1, event_type(n)))
                    .filter(|e| !got.contains(&(e.1.to_string(), id.to_string())))
                    .count()
            })
            .sum()
    };
    let drain_started = Instant::now();
    let mut left = missing();
    let mut moved_at = Instant::now();
    while left > 0 {
        thread::sleep(Duration::from_millis(100));
        let now_left = missing();
        if now_left < left {
            moved_at = Instant::now();
        }
        left = now_left;
        if left > 0 && moved_at.elapsed() >= STALL {
            panic!(
                "nothing delivered for {STALL:?}: {left} acknowledged deliveries missing\n{}",
                stall_report(&url, &schema, &bus)
            );
        }
    }
    let drained = drain_started.elapsed();
    // Let in-flight repeats land, then stop.
    thread::sleep(Duration::from_millis(300));
    let hits = hits.lock().clone();

    // Nothing unpublished arrived; one tag, one id; unacknowledged events
    // that arrived are committed.
    let mut id_of_tag: HashMap<&str, &str> = HashMap::new();
    let mut unacked_arrived = HashSet::new();
    for h in &hits {
        assert!(
            journal.tried.contains_key(&h.tag),
            "request for a publish no replica attempted: {h:?}"
        );
        let first = id_of_tag.entry(&h.tag).or_insert(&h.webhook_id);
        assert_eq!(*first, h.webhook_id, "tag {} under two ids", h.tag);
        match journal.acked.get(&h.tag) {
            Some((id, _)) => assert_eq!(id.to_string(), h.webhook_id, "{h:?}"),
            None => {
                unacked_arrived.insert(h.webhook_id.clone());
            }
        }
        assert!(
            matches(&h.path, &h.event_type),
            "{} reached {}, which it does not match",
            h.event_type,
            h.path
        );
    }
    for id in &unacked_arrived {
        let event: EventId = id.parse().expect("a webhook-id is an event id");
        assert!(
            bus.event(event).expect("look the event up").is_some(),
            "event {id} arrived, was never acknowledged, and is not committed"
        );
    }

    // Per delivery: attempt numbers, and one replica at a time.
    let mut deliveries: BTreeMap<(&str, &str), Vec<&Hit>> = BTreeMap::new();
    for h in &hits {
        deliveries
            .entry((&h.path, &h.webhook_id))
            .or_default()
            .push(h);
    }
    let third_of_lease = LEASE.as_micros() as u64 / 3;
    let mut orphan_overlaps = 0;
    let mut takeovers = 0;
    for ((path, id), list) in &mut deliveries {
        list.sort_by_key(|h| h.arrived);
        for pair in list.windows(2) {
            assert!(
                pair[0].attempt <= pair[1].attempt,
                "{path} {id}: attempt {} arrived after attempt {}",
                pair[1].attempt,
                pair[0].attempt
            );
        }
        assert!(list
            .iter()
            .all(|h| (1..=u64::from(MAX_ATTEMPTS)).contains(&h.attempt)));
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                if b.arrived >= a.answered || a.sender == b.sender {
                    continue;
                }
                match killed.get(&a.sender) {
                    Some(&k) if k <= b.arrived => orphan_overlaps += 1,
                    _ => panic!(
                        "{path} {id}: attempted by two live replicas at once: {} \
                         ({}..{} µs) and {} (from {} µs)",
                        a.sender, a.arrived, a.answered, b.sender, b.arrived
                    ),
                }
            }
            // A delivery in flight in a killed replica: no other replica
            // takes it over before a third of the lease has passed.
            if let Some(&k) = killed.get(&a.sender) {
                if a.arrived <= k && k < a.answered + 1_000 {
                    for b in list.iter().filter(|b| b.sender != a.sender) {
                        if b.arrived >= k {
                            assert!(
                                b.arrived - k >= third_of_lease,
                                "{path} {id}: {} was killed with it in flight, and {} \
                                 attempted it {} ms later (lease {LEASE:?})",
                                a.sender,
                                b.sender,
                                (b.arrived - k) / 1000
                            );
                            takeovers += 1;
                            break;
                        }
                    }
                }
            }
        }
    }

    // The ordered endpoint.
    let ordered: Vec<&Hit> = {
        let mut v: Vec<&Hit> = hits.iter().filter(|h| h.path == "/ordered").collect();
        v.sort_by_key(|h| h.arrived);
        v
    };
    let mut seen_runs: HashSet<&str> = HashSet::new();
    let mut previous: Option<&str> = None;
    for (at, h) in ordered.iter().enumerate() {
        if previous != Some(h.webhook_id.as_str()) {
            if !seen_runs.insert(&h.webhook_id) {
                // What arrived around it, and who sent it: enough to tell a
                // stalled sender from a queue out of order.
                let first = ordered
                    .iter()
                    .position(|o| o.webhook_id == h.webhook_id)
                    .unwrap_or(at);
                let around: Vec<String> = ordered[first..=at.min(ordered.len() - 1)]
                    .iter()
                    .map(|o| {
                        format!(
                            "{} attempt {} by {} at {} µs (answered {} µs, status {}, sender killed at {:?})",
                            o.webhook_id,
                            o.attempt,
                            o.sender,
                            o.arrived,
                            o.answered,
                            o.status,
                            killed.get(&o.sender)
                        )
                    })
                    .collect();
                panic!(
                    "/ordered: {} came back after a later delivery:\n{}",
                    h.webhook_id,
                    around.join("\n")
                );
            }
            previous = Some(&h.webhook_id);
        }
    }
    let first_arrival: HashMap<&str, u64> = ordered
        .iter()
        .rev()
        .map(|h| (h.webhook_id.as_str(), h.arrived))
        .collect();
    let first_success: HashMap<&str, u64> = ordered
        .iter()
        .rev()
        .filter(|h| h.status == 200)
        .map(|h| (h.webhook_id.as_str(), h.answered))
        .collect();
    // Acknowledged order events by when their publish returned, and by when
    // their publish began: each must come after every one acknowledged
    // before it began.
    let mut by_ack: Vec<(u64, &str)> = Vec::new();
    let mut by_try: Vec<(u64, &str, &str)> = Vec::new();
    for (tag, (_, acked_at)) in &journal.acked {
        let n: u64 = tag.rsplit('n').next().unwrap().parse().unwrap();
        if matches("/ordered", event_type(n)) {
            let id = id_of_tag
                .get(tag.as_str())
                .copied()
                .expect("acked events arrived");
            by_ack.push((*acked_at, id));
            by_try.push((journal.tried[tag], id, tag));
        }
    }
    by_ack.sort_unstable();
    by_try.sort_unstable();
    let mut before = 0;
    let mut latest: Option<(u64, &str)> = None;
    for (tried_at, id, tag) in &by_try {
        while before < by_ack.len() && by_ack[before].0 < *tried_at {
            let done = first_success[by_ack[before].1];
            if latest.is_none_or(|(t, _)| done > t) {
                latest = Some((done, by_ack[before].1));
            }
            before += 1;
        }
        if let Some((done, earlier)) = latest {
            assert!(
                first_arrival[id] > done,
                "/ordered: {tag} ({id}) was sent before {earlier}, acknowledged before it was published, was delivered"
            );
        }
    }
    bus.shutdown().expect("shut the final replica down");

    let redundant = deliveries
        .values()
        .filter(|l| l.iter().filter(|h| h.status == 200).count() > 1)
        .count();
    println!(
        "postgres replicas crash: {rounds} rounds ({} processes killed) in {:.1} s, drained in {:.1} s; \
         {} publishes tried, {} acknowledged, {} failed, {} unacknowledged arrived; \
         {} requests, {} deliveries, {redundant} delivered twice; \
         {takeovers} takeovers of in-flight deliveries, {orphan_overlaps} overlaps with an orphaned request",
        killed.len(),
        killing.as_secs_f64(),
        drained.as_secs_f64(),
        journal.tried.len(),
        journal.acked.len(),
        journal.failed,
        unacked_arrived.len(),
        hits.len(),
        deliveries.len(),
    );
    common::drop_schema(&url, &schema);
}
