//! Crash recovery under `kill -9`: guards the crate's durability guarantees
//! ("Durable publish", "At least once", "Attempt numbers never go
//! backwards" in the crate docs) against a host process that dies at any
//! moment, including while it opens the database and resumes deliveries.
//!
//! The test re-runs its own binary as a child process (the ignored test
//! `child_process_entry`, which does nothing unless `HOOKBUS_CRASH_CHILD_DIR`
//! is set). The child opens a bus in a shared directory, registers two
//! endpoints on a loopback receiver if they are not there yet (`/all`
//! subscribed to `*`, `/orders` to `order.*`), then publishes numbered
//! events `{"n": N}`, printing `TRY n` before each publish and
//! `ACK n <event id>` only after `publish` returned `Ok`. The parent kills
//! the child with SIGKILL and starts the next one on the same directory,
//! which resumes what the previous ones left. Rounds are of two kinds:
//!
//! - busy (3 in 4): three threads publish as fast as they can (with a 2 ms
//!   pause); the kill lands 20–400 ms after the start, or, one busy round in
//!   four, 0–12 ms after the child announced it is opening the database;
//! - trickle: one event needing three attempts every 150 ms; the kill lands
//!   while a retry is in flight on an otherwise idle lane, when nothing but
//!   the sender's own flush has written the database since the previous
//!   attempt failed (what keeps attempt numbers from going backwards).
//!
//! The receiver answers 500 to the first attempt of every 5th event and to
//! the second of every 15th, and answers retries after 40 ms, so retries
//! (20 and 40 ms apart) are scheduled or in flight when the kills land.
//!
//! After the last round the parent opens the bus itself and checks:
//! - the database opens with no corrupt record, after every kill, at the end
//!   and after a clean shutdown;
//! - every acknowledged event is stored with its deliveries, reached every
//!   endpoint it matched (answered 2xx at least once) and ends `Delivered`;
//! - nothing arrived that was never published (received ⊆ tried), at an
//!   endpoint it does not match, or under another event's `webhook-id`;
//! - per (`webhook-id`, endpoint), the attempt numbers the receiver saw never
//!   decrease in arrival order and never exceed 3.
//!
//! It prints one summary line: rounds, events acknowledged and received,
//! duplicates ((`webhook-id`, endpoint) pairs received more than once,
//! retries included) and redundant 2xx deliveries (the crash duplicates).
//!
//! Default run (20 rounds, under 10 s in a debug build):
//! `cargo test --test crash_recovery -- --nocapture`
//!
//! Long mode: set the number of rounds, and optionally replay the kill
//! schedule of an earlier run with the seed its first line printed (timings
//! still vary from run to run):
//! `HOOKBUS_CRASH_ROUNDS=500 HOOKBUS_CRASH_SEED=42 cargo test --release --test crash_recovery -- --nocapture`

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Received, Receiver, Reply};
use hookbus::{Bus, BusBuilder, DeliveryStatus, EndpointId, Event, EventId};
use serde_json::json;

/// Set in the child: the database directory. Its presence makes
/// `child_process_entry` run.
const CHILD_DIR: &str = "HOOKBUS_CRASH_CHILD_DIR";
/// Set in the child: the receiver's base URL, `http://127.0.0.1:<port>`.
const CHILD_URL: &str = "HOOKBUS_CRASH_CHILD_URL";
/// Set in the child: the first event number it publishes.
const CHILD_START: &str = "HOOKBUS_CRASH_CHILD_START";
/// Set in the child: `busy` (publish as fast as [`PUBLISH_PACE`] allows from
/// [`PUBLISHERS`] threads) or `trickle` (one event needing three attempts
/// every [`TRICKLE_PACE`]). Busy publishes flush the database all the time;
/// in a trickle round a retry can be in flight while nothing else writes,
/// so only the sender's own flush protects the attempt number.
const CHILD_MODE: &str = "HOOKBUS_CRASH_CHILD_MODE";
/// Marks the child's protocol lines among libtest's own output.
const TAG: &str = "#hookbus-crash ";

const DEFAULT_ROUNDS: usize = 20;
const MAX_ATTEMPTS: u64 = 3;
const PUBLISHERS: usize = 3;
/// Pause between two publishes of one child thread: keeps the number of
/// events per round (and the run time) bounded.
const PUBLISH_PACE: Duration = Duration::from_millis(2);
/// Pause between two publishes of a trickle round.
const TRICKLE_PACE: Duration = Duration::from_millis(150);
/// A child never runs longer than this, even if the parent is gone.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// Time allowed, after the last kill, for every acknowledged event to arrive.
const FINAL_TIMEOUT: Duration = Duration::from_secs(60);

/// (name, path, event pattern) of the two endpoints.
const ENDPOINTS: [(&str, &str, &str); 2] = [("all", "/all", "*"), ("orders", "/orders", "order.*")];

fn bus_builder(dir: &Path) -> BusBuilder {
    Bus::builder(dir)
        // The receiver is on loopback, which the SSRF guard refuses by default.
        .allow_network("127.0.0.1/32")
        .max_attempts(MAX_ATTEMPTS as u32)
        .retry_delays([Duration::from_millis(20), Duration::from_millis(40)])
        .retry_jitter(0.0)
        .timeout(Duration::from_secs(2))
        // Slow retry answers hold a sender thread each.
        .concurrency(4)
        .connect_timeout(Duration::from_secs(1))
}

fn event_type(n: u64) -> &'static str {
    if n % 3 == 0 {
        "user.signup"
    } else {
        "order.placed"
    }
}

/// The receiver paths an event numbered `n` must reach.
fn paths_for(n: u64) -> &'static [&'static str] {
    if n % 3 == 0 {
        &["/all"]
    } else {
        &["/all", "/orders"]
    }
}

fn static_path(path: &str) -> Option<&'static str> {
    ENDPOINTS.iter().map(|e| e.1).find(|p| *p == path)
}

/// How long the receiver takes to answer attempts 2 and 3. While a retry is
/// in flight on an otherwise idle lane nothing else writes to the database,
/// so a kill then finds on disk only what the sender flushed before sending
/// (the `InFlight` record).
const RETRY_ANSWER_DELAY: Duration = Duration::from_millis(40);

/// The receiver's deterministic answer: 500 to the first attempt of every
/// 5th event and to the second of every 15th (which thus needs attempt 3).
fn reply_for(n: u64, attempt: u64) -> u16 {
    match attempt {
        1 if n % 5 == 0 => 500,
        2 if n % 15 == 0 => 500,
        _ => 200,
    }
}

/// One request, decoded. `None` for a request whose body is not a whole
/// envelope (a sender killed in the middle of writing it).
struct Seen {
    path: String,
    webhook_id: String,
    body_id: String,
    event_type: String,
    attempt: u64,
    n: u64,
}

fn decode(r: &Received) -> Option<Seen> {
    let webhook_id = r.header("webhook-id")?.to_string();
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    Some(Seen {
        path: r.path.clone(),
        webhook_id,
        body_id: v["id"].as_str()?.to_string(),
        event_type: v["type"].as_str()?.to_string(),
        attempt: v["attempt"].as_u64()?,
        n: v["data"]["n"].as_u64()?,
    })
}

// ----- the child -----

/// Writes one protocol line in a single write, flushed. Returns false once
/// stdout is gone (the parent died): the child then stops.
fn emit(line: &str) -> bool {
    let text = format!("{TAG}{line}\n");
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

#[test]
#[ignore = "child process of kill_9_at_random_moments_loses_nothing; does nothing when run directly"]
fn child_process_entry() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let url = std::env::var(CHILD_URL).expect("receiver URL");
    let start: u64 = std::env::var(CHILD_START)
        .expect("start number")
        .parse()
        .expect("start number");
    let busy = std::env::var(CHILD_MODE).map_or(true, |m| m != "trickle");

    emit("OPENING");
    let began = Instant::now();
    let bus = match bus_builder(Path::new(&dir)).open() {
        Ok(bus) => bus,
        Err(e) => {
            emit(&format!("OPEN_ERR {e}"));
            std::process::exit(3);
        }
    };
    let r = bus.recovery();
    emit(&format!(
        "OPENED endpoints={} resumed={} corrupt={} ms={}",
        r.endpoints,
        r.resumed,
        r.corrupt_records,
        began.elapsed().as_millis()
    ));
    // The first run registers the endpoints; a run killed halfway through
    // leaves some of them, which the next run completes.
    let existing: Vec<String> = bus
        .endpoints(None, usize::MAX)
        .items
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    for (name, path, pattern) in ENDPOINTS {
        if !existing.iter().any(|e| e == name) {
            let config =
                hookbus::EndpointConfig::new(name, format!("{url}{path}")).events([pattern]);
            if let Err(e) = bus.add_endpoint(config) {
                emit(&format!("SETUP_ERR {e}"));
                std::process::exit(3);
            }
        }
    }
    emit("READY");

    // Returns false once the parent is gone.
    let publish = |n: u64| -> bool {
        if !emit(&format!("TRY {n}")) {
            return false;
        }
        let event = Event::new(event_type(n), &json!({ "n": n })).expect("payload");
        emit(&match bus.publish(event) {
            Ok(id) => format!("ACK {n} {id}"),
            Err(e) => format!("PUBERR {n} {e}"),
        })
    };
    let deadline = Instant::now() + CHILD_LIFETIME;
    if busy {
        let next = AtomicU64::new(start);
        thread::scope(|s| {
            for _ in 0..PUBLISHERS {
                s.spawn(|| {
                    while Instant::now() < deadline && publish(next.fetch_add(1, Ordering::SeqCst))
                    {
                        thread::sleep(PUBLISH_PACE);
                    }
                });
            }
        });
    } else {
        // Multiples of 15: answered 500 twice, so attempts 2 and 3 follow.
        let mut n = start.div_ceil(15) * 15;
        while Instant::now() < deadline && publish(n) {
            n += 15;
            thread::sleep(TRICKLE_PACE);
        }
    }
    // Only reached when nobody killed this child.
    emit("LIFETIME_OVER");
    std::process::exit(4);
}

// ----- the parent -----

/// Kills and reaps the child if the parent panics before doing it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This long after the child announced it is opening the database.
    AfterOpening(Duration),
    /// This long after the child was spawned.
    AfterSpawn(Duration),
    /// This long (less than [`RETRY_ANSWER_DELAY`]) after the receiver got a
    /// retry that followed its previous attempt with no other request in
    /// between: the lane was idle, so nothing but the sender's own flush
    /// wrote the database since that previous attempt failed. Or after
    /// [`LONE_RETRY_WAIT`] if no such retry comes.
    LoneRetryInFlight(Duration),
}

/// How long a `LoneRetryInFlight` round waits for its retry.
const LONE_RETRY_WAIT: Duration = Duration::from_millis(1500);

/// Waits until the receiver logs, at index `from` or later, a retry right
/// after the previous attempt of the same delivery. Returns whether one came
/// within `timeout`.
fn wait_for_lone_retry(rx: &Receiver, from: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let found = Cell::new(false);
    let scanned = Cell::new(from + 1);
    // `wait_until` re-checks at its own deadline, which is not before ours:
    // `done` then holds and it returns instead of panicking.
    rx.wait_until(timeout, "a lone retry", |requests| {
        let start = scanned.get();
        if requests.len() > start {
            for pair in requests[start - 1..].windows(2) {
                if let (Some(before), Some(retry)) = (decode(&pair[0]), decode(&pair[1])) {
                    if retry.attempt >= 2
                        && before.attempt + 1 == retry.attempt
                        && before.webhook_id == retry.webhook_id
                        && before.path == retry.path
                    {
                        found.set(true);
                    }
                }
            }
            scanned.set(requests.len());
        }
        found.get() || Instant::now() >= deadline
    });
    found.get()
}

/// Runs one child until the kill; returns its protocol lines, and whether
/// a `LoneRetryInFlight` kill found its retry.
fn run_child(
    exe: &Path,
    rx: &Receiver,
    db: &Path,
    start: u64,
    busy: bool,
    kill_at: KillAt,
) -> (Vec<String>, bool) {
    let url = rx.url("");
    let requests_before = rx.requests().len();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_process_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, db)
        .env(CHILD_URL, &url)
        .env(CHILD_START, start.to_string())
        .env(CHILD_MODE, if busy { "busy" } else { "trickle" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test binary");
    let stdout = child.stdout.take().expect("child stdout");
    let mut stderr = child.stderr.take().expect("child stderr");
    let mut child = KillOnDrop(child);

    let (tx, lines_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find(TAG) {
                let _ = tx.send(line[i + TAG.len()..].to_string());
            }
        }
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut lines = Vec::new();
    let mut lone_retry = false;
    match kill_at {
        KillAt::LoneRetryInFlight(delay) => {
            lone_retry = wait_for_lone_retry(rx, requests_before, LONE_RETRY_WAIT);
            if lone_retry {
                thread::sleep(delay);
            }
        }
        KillAt::AfterSpawn(delay) => thread::sleep(delay),
        KillAt::AfterOpening(delay) => {
            let deadline = Instant::now() + Duration::from_secs(20);
            while let Ok(line) =
                lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                let opening = line == "OPENING";
                lines.push(line);
                if opening {
                    break;
                }
            }
            thread::sleep(delay);
        }
    }
    let exited_early = child.0.try_wait().expect("poll the child");
    if exited_early.is_none() {
        child.0.kill().expect("SIGKILL the child");
    }
    let status = child.0.wait().expect("reap the child");
    reader.join().expect("stdout reader");
    lines.extend(lines_rx.try_iter());
    let stderr = err_reader.join().expect("stderr reader");
    if let Some(status) = exited_early {
        let tail: Vec<&String> = lines.iter().rev().take(20).collect();
        panic!("the child exited by itself ({status}) before the kill; last lines {tail:?}; stderr:\n{stderr}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "child not killed by SIGKILL: {status}; stderr:\n{stderr}"
        );
    }
    #[cfg(not(unix))]
    let _ = status;
    (lines, lone_retry)
}

#[derive(Default)]
struct History {
    /// Every n a child started to publish.
    tried: BTreeSet<u64>,
    /// n → event id, for every publish that returned Ok.
    acked: BTreeMap<u64, String>,
    publish_errors: Vec<String>,
    /// Rounds killed before the child printed OPENING / between OPENING and OPENED.
    killed_before_open: usize,
    killed_during_open: usize,
    /// Deliveries the children found unfinished at open, summed.
    resumed: usize,
    /// How long each completed open took, in ms.
    open_ms: Vec<u64>,
    ready_seen: bool,
}

impl History {
    fn absorb(&mut self, round: usize, lines: &[String]) {
        let (mut opening, mut opened) = (false, false);
        for line in lines {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("OPENING") => opening = true,
                Some("OPENED") => {
                    opened = true;
                    for word in words {
                        if let Some(v) = word.strip_prefix("resumed=") {
                            self.resumed += v.parse::<usize>().expect("resumed count");
                        }
                        if let Some(v) = word.strip_prefix("ms=") {
                            self.open_ms.push(v.parse().expect("open time"));
                        }
                        if let Some(v) = word.strip_prefix("corrupt=") {
                            assert_eq!(
                                v, "0",
                                "round {round}: the child found corrupt records at open: {line}"
                            );
                        }
                    }
                }
                Some("OPEN_ERR" | "SETUP_ERR") => {
                    panic!("round {round}: the database did not open after a kill: {line}")
                }
                Some("READY") => self.ready_seen = true,
                Some("TRY") => {
                    let n = words.next().and_then(|w| w.parse().ok()).expect("TRY n");
                    self.tried.insert(n);
                }
                Some("ACK") => {
                    let n: u64 = words.next().and_then(|w| w.parse().ok()).expect("ACK n");
                    let id = words.next().expect("ACK id").to_string();
                    assert!(
                        self.tried.contains(&n),
                        "round {round}: ACK {n} without TRY"
                    );
                    assert!(
                        self.acked.insert(n, id).is_none(),
                        "round {round}: {n} acknowledged twice"
                    );
                }
                Some("PUBERR") => self.publish_errors.push(format!("round {round}: {line}")),
                _ => {}
            }
        }
        if !opening {
            self.killed_before_open += 1;
        } else if !opened {
            self.killed_during_open += 1;
        }
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    if common::skip_on_postgres("kills a child process holding a sled directory; the PostgreSQL crash guarantees are guarded by tests/postgres_replicas_crash.rs") {
        return;
    }
    let started = Instant::now();
    let rounds: usize = std::env::var("HOOKBUS_CRASH_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("HOOKBUS_CRASH_ROUNDS is a number"))
        .unwrap_or(DEFAULT_ROUNDS);
    let seed: u64 = std::env::var("HOOKBUS_CRASH_SEED")
        .ok()
        .map(|v| v.parse().expect("HOOKBUS_CRASH_SEED is a number"))
        .unwrap_or_else(|| fastrand::u64(..));
    println!("crash_recovery: {rounds} rounds, seed {seed} (HOOKBUS_CRASH_SEED to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let rx = Receiver::start(|r, _| match decode(r) {
        // Retries answer slowly, so kills land while they are in flight.
        Some(s) if s.attempt >= 2 => Reply::After(RETRY_ANSWER_DELAY, reply_for(s.n, s.attempt)),
        Some(s) => Reply::Status(reply_for(s.n, s.attempt)),
        None => Reply::Status(400),
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("bus");
    let exe = std::env::current_exe().expect("path of this test binary");

    let mut history = History::default();
    let mut next_n = 1;
    let (mut trickle_rounds, mut lone_retry_kills) = (0, 0);
    for round in 0..rounds {
        let busy = round == 0 || rng.u32(0..4) != 0;
        let kill_at = if !busy {
            trickle_rounds += 1;
            KillAt::LoneRetryInFlight(Duration::from_millis(rng.u64(0..=25)))
        } else if rng.u32(0..4) == 0 {
            KillAt::AfterOpening(Duration::from_millis(rng.u64(0..=12)))
        } else {
            KillAt::AfterSpawn(Duration::from_millis(rng.u64(20..=400)))
        };
        let (lines, lone_retry) = run_child(&exe, &rx, &db, next_n, busy, kill_at);
        lone_retry_kills += usize::from(lone_retry);
        history.absorb(round, &lines);
        next_n = next_n.max(history.tried.last().map_or(0, |n| n + 1));
    }
    assert!(
        history.publish_errors.is_empty(),
        "publish returned errors: {:?}",
        history.publish_errors
    );
    let killing_done = started.elapsed();

    // ----- reopen after the last kill and let everything be delivered -----

    let bus = bus_builder(&db)
        .open()
        .unwrap_or_else(|e| panic!("the database does not open after the last kill: {e}"));
    let recovery = bus.recovery();
    assert_eq!(
        recovery.corrupt_records, 0,
        "corrupt records after the last kill: {recovery:?}"
    );
    let endpoints = bus.endpoints(None, usize::MAX).items;
    if history.ready_seen {
        let mut names: Vec<&str> = endpoints.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        assert_eq!(names, ["all", "orders"], "endpoints after the kills");
    }
    let endpoint_of: HashMap<&'static str, EndpointId> = endpoints
        .iter()
        .filter_map(|e| {
            let (_, path, _) = ENDPOINTS.iter().find(|(name, _, _)| *name == e.name())?;
            Some((*path, e.id()))
        })
        .collect();

    // Durable publish: every acknowledged event and its deliveries are stored.
    let mut lost = Vec::new();
    for (&n, id) in &history.acked {
        let id: EventId = id.parse().expect("event id printed by the child");
        let stored = bus.event(id).expect("read an event").is_some();
        let queued = paths_for(n).iter().all(|path| {
            endpoint_of
                .get(path)
                .is_some_and(|ep| bus.delivery(*ep, id).expect("read a delivery").is_some())
        });
        if !stored || !queued {
            lost.push(format!(
                "n={n} {id}: event stored {stored}, deliveries stored {queued}"
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events are missing from the database after the kills, e.g.:\n{}",
        lost.len(),
        history.acked.len(),
        lost.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );

    let want: HashSet<(u64, &'static str)> = history
        .acked
        .keys()
        .flat_map(|&n| paths_for(n).iter().map(move |&p| (n, p)))
        .collect();
    let missing = RefCell::new(want.clone());
    let scanned = Cell::new(0);
    let deadline = Instant::now() + FINAL_TIMEOUT;
    rx.wait_until(FINAL_TIMEOUT, "acknowledged events", |requests| {
        let mut missing = missing.borrow_mut();
        for r in &requests[scanned.get()..] {
            if let (Some(s), Some(path)) = (decode(r), static_path(&r.path)) {
                if reply_for(s.n, s.attempt) == 200 {
                    missing.remove(&(s.n, path));
                }
            }
        }
        scanned.set(requests.len());
        // Returning at our deadline (which `wait_until` re-checks at its
        // own, not earlier) lets the report below say what is missing.
        missing.is_empty() || Instant::now() >= deadline
    });
    let missing = missing.into_inner();
    if !missing.is_empty() {
        let mut sample: Vec<_> = missing.iter().copied().collect();
        sample.sort_unstable();
        let requests = rx.requests();
        let details: Vec<String> = sample
            .iter()
            .take(10)
            .map(|&(n, path)| {
                let id = &history.acked[&n];
                let seen: Vec<u64> = requests
                    .iter()
                    .filter_map(decode)
                    .filter(|s| s.n == n && s.path == path)
                    .map(|s| s.attempt)
                    .collect();
                let state = endpoint_of
                    .get(path)
                    .and_then(|ep| bus.delivery(*ep, id.parse().ok()?).ok().flatten())
                    .map(|d| format!("{:?}", d.status));
                let logged: Vec<String> = id
                    .parse()
                    .ok()
                    .and_then(|id| bus.attempts(id).ok())
                    .unwrap_or_default()
                    .iter()
                    .map(|a| format!("#{} {:?} {:?}", a.number, a.status, a.error_message))
                    .collect();
                format!(
                    "n={n} {path} {id}: attempts received {seen:?}, bus state {state:?}, \
                     attempt log {logged:?}"
                )
            })
            .collect();
        panic!(
            "{} acknowledged deliveries never arrived within {FINAL_TIMEOUT:?} (of {}), e.g.:\n{}",
            missing.len(),
            want.len(),
            details.join("\n")
        );
    }

    // The bus's own records agree: every acknowledged delivery ends
    // Delivered (the record follows the response, so allow a moment), and
    // its log never shows an attempt number out of range.
    let mut pending: Vec<(u64, &'static str, EndpointId, EventId)> = want
        .iter()
        .map(|&(n, path)| {
            let id: EventId = history.acked[&n]
                .parse()
                .expect("event id printed by the child");
            (n, path, endpoint_of[path], id)
        })
        .collect();
    let state_deadline = Instant::now() + Duration::from_secs(15);
    loop {
        pending.retain(|&(n, path, ep, id)| {
            match bus.delivery(ep, id).expect("read a delivery").map(|d| d.status) {
                Some(DeliveryStatus::Delivered { attempts }) => {
                    assert!(
                        (1..=MAX_ATTEMPTS as u32).contains(&attempts),
                        "n={n} {path}: delivered at attempt {attempts}"
                    );
                    false
                }
                Some(DeliveryStatus::Failed { attempts }) => {
                    panic!("n={n} {path} {id}: Failed after {attempts} attempts although the receiver answered 2xx")
                }
                None => panic!("n={n} {path} {id}: acknowledged but no delivery record"),
                Some(_) => true,
            }
        });
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < state_deadline,
            "{} acknowledged deliveries arrived but are not recorded Delivered, e.g. {:?}",
            pending.len(),
            pending
                .iter()
                .take(5)
                .map(|p| (p.0, p.1, bus.delivery(p.2, p.3).ok()))
                .collect::<Vec<_>>()
        );
        thread::sleep(Duration::from_millis(20));
    }
    for (&n, id) in &history.acked {
        let id: EventId = id.parse().expect("event id");
        for attempt in bus.attempts(id).expect("read the attempt log") {
            assert!(
                (1..=MAX_ATTEMPTS as u32).contains(&attempt.number),
                "n={n}: attempt log holds attempt {}",
                attempt.number
            );
        }
    }
    bus.shutdown().expect("clean shutdown");
    drop(bus);

    // A clean shutdown leaves a database that opens cleanly too.
    let again = bus_builder(&db)
        .open()
        .expect("reopen after a clean shutdown");
    let final_recovery = again.recovery();
    assert_eq!(
        final_recovery.corrupt_records, 0,
        "after a clean shutdown: {final_recovery:?}"
    );
    again.shutdown().expect("second shutdown");
    drop(again);

    // ----- what the receiver saw -----

    let requests = rx.requests();
    let mut problems: Vec<String> = Vec::new();
    let mut torn = 0usize;
    // (webhook-id, path) → (attempt numbers in arrival order, 2xx answers)
    let mut pairs: BTreeMap<(String, String), (Vec<u64>, usize)> = BTreeMap::new();
    let mut n_of_id: HashMap<String, BTreeSet<u64>> = HashMap::new();
    let mut received: BTreeSet<u64> = BTreeSet::new();
    let mut spurious_retries = 0usize;
    let mut by_attempt = [0usize; 4];
    for r in &requests {
        let Some(s) = decode(r) else {
            torn += 1;
            continue;
        };
        let mut problem = |what: String| {
            if problems.len() < 50 {
                problems.push(format!(
                    "n={} {} {} attempt {}: {what}",
                    s.n, s.path, s.webhook_id, s.attempt
                ))
            }
        };
        if s.body_id != s.webhook_id {
            problem(format!(
                "body id {} differs from the webhook-id header",
                s.body_id
            ));
        }
        if !history.tried.contains(&s.n) {
            problem("never published".into());
        }
        if s.event_type != event_type(s.n) {
            problem(format!(
                "type {} instead of {}",
                s.event_type,
                event_type(s.n)
            ));
        }
        if !paths_for(s.n).contains(&s.path.as_str()) {
            problem("sent to an endpoint whose patterns do not match".into());
        }
        if let Some(id) = history.acked.get(&s.n) {
            if *id != s.webhook_id {
                problem(format!("publish returned {id}"));
            }
        }
        if !(1..=MAX_ATTEMPTS).contains(&s.attempt) {
            problem(format!("attempt number out of 1..={MAX_ATTEMPTS}"));
        }
        if s.attempt >= 2 && reply_for(s.n, s.attempt - 1) == 200 {
            spurious_retries += 1;
        }
        by_attempt[s.attempt.min(3) as usize] += 1;
        received.insert(s.n);
        n_of_id.entry(s.webhook_id.clone()).or_default().insert(s.n);
        let pair = pairs.entry((s.webhook_id, s.path)).or_default();
        pair.0.push(s.attempt);
        if reply_for(s.n, s.attempt) == 200 {
            pair.1 += 1;
        }
    }
    for ((id, path), (attempts, _)) in &pairs {
        if attempts.windows(2).any(|w| w[1] < w[0]) {
            problems.push(format!(
                "{id} {path}: attempt numbers went backwards: {attempts:?}"
            ));
        }
    }
    for (id, ns) in &n_of_id {
        if ns.len() > 1 {
            problems.push(format!("webhook-id {id} carried several events: {ns:?}"));
        }
    }
    let duplicates = pairs.values().filter(|(a, _)| a.len() > 1).count();
    let redundant_2xx: usize = pairs.values().map(|(_, ok)| ok.saturating_sub(1)).sum();
    let recovered_unacked = received
        .iter()
        .filter(|n| !history.acked.contains_key(n))
        .count();

    println!(
        "crash_recovery summary: rounds={rounds} trickle_rounds={trickle_rounds} lone_retry_kills={lone_retry_kills} killed_before_open={} killed_during_open={} \
         tried={} acked={} deliveries_expected={} events_received={} recovered_unacked={} \
         requests={} attempt1={} attempt2={} attempt3={} duplicates={duplicates} \
         redundant_2xx={redundant_2xx} spurious_retries={spurious_retries} torn_requests={torn} \
         resumed_at_open={} resumed_final={} open_ms_max={} kill_phase={:.1}s total={:.1}s seed={seed}",
        history.killed_before_open,
        history.killed_during_open,
        history.tried.len(),
        history.acked.len(),
        want.len(),
        received.len(),
        recovered_unacked,
        requests.len() - torn,
        by_attempt[1],
        by_attempt[2],
        by_attempt[3],
        history.resumed,
        recovery.resumed,
        history.open_ms.iter().max().copied().unwrap_or(0),
        killing_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        problems.is_empty(),
        "{} problems in what the receiver saw:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        !history.acked.is_empty(),
        "no child acknowledged any event: the test proved nothing"
    );
}
