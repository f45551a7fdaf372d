//! The benchmark scenarios of hookbus, in one run:
//!
//! ```text
//! cargo bench --bench scenarios                           # everything, ~30 min on 2 cores
//! HOOKBUS_BENCH_SMOKE=1 cargo bench --bench scenarios     # seconds, for CI
//! HOOKBUS_BENCH_SCENARIOS=2,3 cargo bench --bench scenarios
//! ```
//!
//! 1. durable publish (below);
//! 2. delivery throughput of a backlog, against a plain ureq loop
//!    (`scenarios/delivery.rs`);
//! 3. end-to-end publish-to-receipt latency at a steady offered rate
//!    (`scenarios/delivery.rs`);
//! 4. recovery of a database of pending deliveries (`scenarios/recovery.rs`);
//! 5. many endpoints: threads, memory, idle CPU (`scenarios/scale.rs`);
//! 6. a hand-written SQLite outbox with polling senders doing the jobs of 2
//!    and 3 (`scenarios/peer.rs`);
//! 7. a backlog of a million deliveries for one paused endpoint: memory
//!    while publishing, reopening and draining (`scenarios/backlog.rs`);
//! 8. 100,000 endpoints registered, nothing pending: open, memory,
//!    threads, idle CPU (`scenarios/fleet.rs`);
//! 9. one event to each of 10,000 customers, then idle: threads and memory
//!    (`scenarios/fleet.rs`);
//! 10. publishing to one customer with 100,000 endpoints registered,
//!     against 10 (`scenarios/fleet.rs`);
//! 11. hung endpoints next to a healthy one (`scenarios/hung.rs`);
//! 12. publish and delivery on PostgreSQL with 1 and 3 replica processes,
//!     beside sled (`scenarios/postgres.rs`; `cargo bench --features
//!     postgres` with `HOOKBUS_BENCH_POSTGRES_URL` or
//!     `HOOKBUS_TEST_POSTGRES_URL` set, else sled alone).
//!
//! How scenarios 8 to 10 give endpoints and events to customers is in
//! `scenarios/api.rs`.
//!
//! Each scenario prints its table; a summary table with the ratios to the
//! baselines measured in the same run closes the output. Knobs for scenarios
//! 2 to 11 (sizes, rates, which scenarios and systems) are listed in
//! `scenarios/harness.rs`; `HOOKBUS_BENCH_REPS` and `HOOKBUS_BENCH_DIR` apply
//! to all.
//!
//! # Scenario 1: durable publish throughput
//!
//! Measures, in one run, `Bus::publish` against three baselines, each with
//! 1, 4 and 16 publishing threads and the same 1 KiB JSON payload:
//!
//! - **hookbus**: `Bus::publish` with one *enabled* endpoint subscribed to
//!   every event. A disabled endpoint would get no delivery records, so it
//!   would understate the work a real publish does. Instead the endpoint
//!   points at a loopback listener that accepts connections and never
//!   answers (opened to the SSRF guard with `allow_network("127.0.0.1/32")`),
//!   with `concurrency(1)` and a 120 s timeout: exactly one delivery
//!   is in flight (hung on that listener) and every other one stays queued.
//!   Each publish therefore writes the event record plus one delivery record
//!   in one sled batch and waits for the group-committed flush, and the
//!   sender threads cost nothing during the measurement. One warm-up event is
//!   published (and its delivery seen to connect) before timing starts.
//! - **sled raw insert** (the ceiling): `Db::insert` of the same payload
//!   under a 17-byte monotonic key, no flush. Not durable on kill -9.
//! - **sled insert + flush** (the naive durable way): the same, then
//!   `Db::flush()` after every insert. Concurrent flushers share sled's own
//!   write+sync, so this baseline already gets some batching for free.
//! - **SQLite outbox**: rusqlite (bundled SQLite), WAL, `synchronous=FULL`,
//!   a table `outbox(id INTEGER PRIMARY KEY, type TEXT, payload BLOB,
//!   created INTEGER, status INTEGER)`, one `INSERT` per event in its own
//!   `BEGIN IMMEDIATE` transaction, one connection per thread with a
//!   `busy_timeout`. Note that SQLite FULL fsyncs the WAL (power-cut safe),
//!   while sled's flush uses `sync_file_range` (process-crash safe): the
//!   durability levels are not identical.
//!
//! Every measurement runs in its own process (the binary re-runs itself;
//! see `measure_in_child`) and uses a fresh temporary directory (`tempfile`, or
//! `HOOKBUS_BENCH_DIR` if set) and runs for a fixed time (2.5 s by default,
//! `HOOKBUS_BENCH_SECS`), repeated 3 times (`HOOKBUS_BENCH_REPS`); the median
//! run is reported. Repetitions are interleaved (rep → threads → system) so
//! slow drift of the machine affects every system alike.
//!
//! Smoke mode (`HOOKBUS_BENCH_SMOKE=1` or `--smoke`): 200 events per
//! measurement, one repetition, so CI can check that this still runs.
//! Unknown arguments (`cargo bench` passes `--bench`) are ignored.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookbus::{Bus, EndpointConfig, Event};
use rusqlite::{params, Connection, TransactionBehavior};

#[path = "scenarios/api.rs"]
mod api;
#[path = "scenarios/backlog.rs"]
mod backlog;
#[path = "scenarios/delivery.rs"]
mod delivery;
#[path = "scenarios/fleet.rs"]
mod fleet;
#[path = "scenarios/harness.rs"]
mod harness;
#[path = "scenarios/hung.rs"]
mod hung;
#[path = "scenarios/peer.rs"]
mod peer;
#[path = "scenarios/postgres.rs"]
mod postgres;
#[path = "scenarios/recovery.rs"]
mod recovery;
#[path = "scenarios/scale.rs"]
mod scale;
#[path = "scenarios/wire.rs"]
mod wire;

const PAYLOAD_BYTES: usize = 1024;
const THREADS: [usize; 3] = [1, 4, 16];
const EVENT_TYPE: &str = "lead.create";
/// hookbus's default sled cache; the sled baselines use the same.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// hookbus's default background flush interval; the sled baselines use the same.
const SLED_FLUSH_EVERY_MS: u64 = 500;
const SMOKE_EVENTS: u64 = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Hookbus,
    SledRaw,
    SledFlush,
    Sqlite,
}

const SYSTEMS: [System; 4] = [
    System::Hookbus,
    System::SledRaw,
    System::SledFlush,
    System::Sqlite,
];

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Hookbus => "hookbus",
            System::SledRaw => "raw",
            System::SledFlush => "naive",
            System::Sqlite => "sqlite",
        }
    }

    fn label(self) -> &'static str {
        match self {
            System::Hookbus => "hookbus publish",
            System::SledRaw => "sled insert, no flush (ceiling)",
            System::SledFlush => "sled insert + flush each (naive)",
            System::Sqlite => "SQLite WAL FULL outbox",
        }
    }
}

#[derive(Clone, Copy)]
enum Budget {
    Time(Duration),
    Count(u64),
}

struct Settings {
    budget: Budget,
    reps: usize,
    smoke: bool,
    dir: Option<PathBuf>,
    /// `HOOKBUS_BENCH_ONLY`: comma-separated systems (hookbus, raw, naive,
    /// sqlite) to run, for profiling one of them. Default: all.
    only: Option<Vec<String>>,
    /// `HOOKBUS_BENCH_THREADS`: comma-separated thread counts. Default: all.
    threads: Option<Vec<usize>>,
}

impl Settings {
    fn wanted(&self, system: System, threads: usize) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == system.name()))
            && self.threads.as_ref().is_none_or(|t| t.contains(&threads))
    }
}

fn env_list(name: &str) -> Option<Vec<String>> {
    let v = std::env::var(name).ok()?;
    let items: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

fn settings() -> Settings {
    let smoke = env_flag("HOOKBUS_BENCH_SMOKE") || std::env::args().any(|a| a == "--smoke");
    let dir = std::env::var_os("HOOKBUS_BENCH_DIR").map(PathBuf::from);
    let only = env_list("HOOKBUS_BENCH_ONLY");
    let threads = env_list("HOOKBUS_BENCH_THREADS")
        .map(|l| l.iter().filter_map(|t| t.parse().ok()).collect());
    if smoke {
        return Settings {
            budget: Budget::Count(SMOKE_EVENTS),
            reps: 1,
            smoke,
            dir,
            only,
            threads,
        };
    }
    let secs = std::env::var("HOOKBUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(2.5);
    let reps = std::env::var("HOOKBUS_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|r| *r > 0)
        .unwrap_or(3);
    Settings {
        budget: Budget::Time(Duration::from_secs_f64(secs)),
        reps,
        smoke,
        dir,
        only,
        threads,
    }
}

/// A JSON object of exactly `PAYLOAD_BYTES` bytes.
fn payload() -> Vec<u8> {
    let head = r#"{"lead_id":4242,"name":"Ada Lovelace","email":"ada@example.com","source":"bench","note":""#;
    let tail = r#""}"#;
    let pad = PAYLOAD_BYTES - head.len() - tail.len();
    let json = format!("{head}{}{tail}", "x".repeat(pad)).into_bytes();
    assert_eq!(json.len(), PAYLOAD_BYTES);
    serde_json::from_slice::<serde_json::Value>(&json).expect("payload is JSON");
    json
}

fn temp_dir(settings: &Settings) -> tempfile::TempDir {
    match &settings.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("create a temporary directory")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ----- driving threads -----

struct Run {
    events: u64,
    elapsed: Duration,
    /// Per-operation latencies in nanoseconds, all threads.
    latencies: Vec<u64>,
    /// Process CPU seconds spent while the clock ran.
    cpu_secs: Option<f64>,
}

/// Runs `op` from `threads` threads until the budget is spent. `init` builds
/// each thread's state before the clock starts.
fn drive<S, I, F>(threads: usize, budget: Budget, init: I, op: F) -> Run
where
    I: Fn(usize) -> S + Sync,
    F: Fn(&mut S) + Sync,
{
    let barrier = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    let claimed = AtomicU64::new(0);
    let mut start = Instant::now();
    let mut cpu_start = None;
    let per_thread: Vec<Vec<u64>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, stop, claimed, init, op) = (&barrier, &stop, &claimed, &init, &op);
                s.spawn(move || {
                    let mut state = init(t);
                    let mut lat = Vec::with_capacity(64 * 1024);
                    barrier.wait();
                    loop {
                        let go = match budget {
                            Budget::Time(_) => !stop.load(Ordering::Relaxed),
                            Budget::Count(n) => claimed.fetch_add(1, Ordering::Relaxed) < n,
                        };
                        if !go {
                            break;
                        }
                        let t0 = Instant::now();
                        op(&mut state);
                        lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        barrier.wait();
        start = Instant::now();
        cpu_start = process_cpu_secs();
        if let Budget::Time(d) = budget {
            thread::sleep(d);
            stop.store(true, Ordering::Relaxed);
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let elapsed = start.elapsed();
    let cpu_secs = cpu_start.zip(process_cpu_secs()).map(|(a, b)| b - a);
    let latencies: Vec<u64> = per_thread.into_iter().flatten().collect();
    Run {
        events: latencies.len() as u64,
        elapsed,
        latencies,
        cpu_secs,
    }
}

// ----- one measurement -----

struct Measurement {
    events: u64,
    secs: f64,
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    /// The slowest single operation, ms: shows starved threads that the
    /// percentiles hide.
    max_ms: f64,
    /// hookbus only: commit flushes per published event.
    flushes_per_event: Option<f64>,
    /// Peak resident set of the measurement process (VmHWM, MiB), read
    /// right after the timed part.
    peak_rss_mib: Option<f64>,
    /// CPU time (user + system, every thread of the process) per event, µs.
    cpu_us_per_event: Option<f64>,
}

impl Measurement {
    fn from_run(mut run: Run) -> Measurement {
        run.latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if run.latencies.is_empty() {
                return 0.0;
            }
            let i = ((run.latencies.len() as f64 - 1.0) * p).round() as usize;
            run.latencies[i] as f64 / 1000.0
        };
        let secs = run.elapsed.as_secs_f64();
        Measurement {
            events: run.events,
            secs,
            rate: run.events as f64 / secs,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            max_ms: run.latencies.last().map_or(0.0, |&n| n as f64 / 1e6),
            flushes_per_event: None,
            peak_rss_mib: None,
            cpu_us_per_event: run.cpu_secs.map(|c| c * 1e6 / run.events.max(1) as f64),
        }
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU time of the whole process so far, in seconds
/// (`/proc/self/stat`, in clock ticks of 1/100 s).
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn measure(system: System, threads: usize, settings: &Settings, payload: &[u8]) -> Measurement {
    match system {
        System::Hookbus => bench_hookbus(threads, settings, payload),
        System::SledRaw => bench_sled(threads, settings, payload, false),
        System::SledFlush => bench_sled(threads, settings, payload, true),
        System::Sqlite => bench_sqlite(threads, settings, payload),
    }
}

// ----- sled baselines -----

fn bench_sled(threads: usize, settings: &Settings, payload: &[u8], flush: bool) -> Measurement {
    let dir = temp_dir(settings);
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(SLED_CACHE_BYTES)
        .flush_every_ms(Some(SLED_FLUSH_EVERY_MS))
        .open()
        .expect("open sled");
    let next = AtomicU64::new(1);
    let run = drive(
        threads,
        settings.budget,
        |_| (),
        |_| {
            // Monotonic 17-byte keys, like hookbus's event keys.
            let mut key = [0u8; 17];
            key[0] = b'e';
            key[1..]
                .copy_from_slice(&u128::from(next.fetch_add(1, Ordering::Relaxed)).to_be_bytes());
            db.insert(key, payload).expect("sled insert");
            if flush {
                db.flush().expect("sled flush");
            }
        },
    );
    let mut m = Measurement::from_run(run);
    m.peak_rss_mib = peak_rss_mib();
    drop(db);
    m
}

// ----- SQLite baseline -----

const OUTBOX_INSERT: &str =
    "INSERT INTO outbox (type, payload, created, status) VALUES (?1, ?2, ?3, 0)";

fn sqlite_connect(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open SQLite");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy_timeout");
    // synchronous is per connection: set it on each one.
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous=FULL");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("read synchronous");
    assert_eq!(sync, 2, "synchronous must be FULL");
    conn
}

fn bench_sqlite(threads: usize, settings: &Settings, payload: &[u8]) -> Measurement {
    let dir = temp_dir(settings);
    let path = dir.path().join("outbox.db");
    {
        let conn = sqlite_connect(&path);
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .expect("journal_mode=WAL");
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        conn.execute_batch(
            "CREATE TABLE outbox (
                 id INTEGER PRIMARY KEY,
                 type TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 created INTEGER NOT NULL,
                 status INTEGER NOT NULL
             )",
        )
        .expect("create outbox");
    }
    let run = drive(
        threads,
        settings.budget,
        |_| sqlite_connect(&path),
        |conn: &mut Connection| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("BEGIN IMMEDIATE");
            tx.prepare_cached(OUTBOX_INSERT)
                .expect("prepare")
                .execute(params![EVENT_TYPE, payload, now_ms()])
                .expect("INSERT");
            tx.commit().expect("COMMIT");
        },
    );
    let mut m = Measurement::from_run(run);
    m.peak_rss_mib = peak_rss_mib();
    let conn = Connection::open(&path).expect("reopen SQLite");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .expect("count rows");
    assert_eq!(
        rows as u64, m.events,
        "every committed INSERT is in the outbox"
    );
    m
}

// ----- hookbus -----

/// A loopback listener that accepts connections, keeps them open and never
/// reads or answers: a receiver that hangs.
struct Sink {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("sink address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            thread::Builder::new()
                .name("bench-sink".into())
                .spawn(move || {
                    let mut held = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                held.push(stream);
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                thread::sleep(Duration::from_millis(2))
                            }
                            Err(_) => thread::sleep(Duration::from_millis(2)),
                        }
                    }
                    // Dropping the streams closes them: the hung attempt ends.
                })
                .expect("spawn the sink")
        };
        Sink {
            addr,
            accepted,
            stop,
            handle,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("sink thread");
    }
}

/// Polls `cond` until it holds (true) or `limit` passes (false).
fn wait_for(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

fn bench_hookbus(threads: usize, settings: &Settings, payload: &[u8]) -> Measurement {
    let dir = temp_dir(settings);
    let sink = Sink::start();
    // Defaults otherwise: 64 MiB cache, 500 ms background flush. The SSRF
    // guard refuses loopback by default: open exactly the sink's address.
    let bus = Bus::builder(dir.path())
        .allow_network("127.0.0.1/32")
        .open()
        .expect("open the bus");
    let endpoint = bus
        .add_endpoint(
            EndpointConfig::new("bench-sink", format!("http://{}/hook", sink.addr))
                .concurrency(1)
                .timeout(Duration::from_secs(120)),
        )
        .expect("add the endpoint");

    // Warm-up: one event whose delivery hangs on the sink for the whole
    // measurement, so every timed publish only queues.
    let event = || Event::from_json_bytes(EVENT_TYPE, payload.to_vec()).expect("valid event");
    bus.publish(event()).expect("warm-up publish");
    let connected = wait_for(Duration::from_secs(10), || {
        sink.accepted.load(Ordering::SeqCst) >= 1
    });
    if !connected {
        let attempts = bus
            .endpoint_attempts(endpoint.id(), None, 5)
            .map(|p| p.items)
            .unwrap_or_default();
        panic!("the sender never connected to the sink; last attempts: {attempts:?}");
    }

    let flushes_before = bus.stats().commit_flushes;
    let run = drive(
        threads,
        settings.budget,
        |_| (),
        |_| {
            // Building the Event (a copy and a JSON validity check of the
            // payload) is part of what a caller pays per publish.
            bus.publish(event()).expect("publish");
        },
    );
    let flushes = bus.stats().commit_flushes - flushes_before;
    let mut m = Measurement::from_run(run);
    m.peak_rss_mib = peak_rss_mib();
    m.flushes_per_event = Some(flushes as f64 / m.events.max(1) as f64);

    // Every timed publish created a delivery that waits in the queue.
    let queued = bus.queue_depth(endpoint.id()).expect("queue depth") as u64;
    assert_eq!(
        queued, m.events,
        "each publish should leave one queued delivery"
    );
    assert_eq!(
        sink.accepted.load(Ordering::SeqCst),
        1,
        "one delivery in flight"
    );

    // Teardown (not timed): start the shutdown, which stops the senders and
    // waits for the hung attempt, then close the sink so that attempt ends.
    let closing = {
        let bus = bus.clone();
        thread::spawn(move || bus.shutdown())
    };
    thread::sleep(Duration::from_millis(50));
    sink.stop();
    closing
        .join()
        .expect("shutdown thread")
        .expect("bus shutdown");
    drop(bus);
    m
}

// ----- one process per measurement -----

/// Set in a child process: `SYSTEM:THREADS`, the one measurement to run.
const CHILD_VAR: &str = "HOOKBUS_BENCH_CHILD";

/// Runs every measurement in a fresh process. sled keeps process-wide
/// state: its first `apply_batch` switches a global concurrency-control
/// lock into read/write mode for every later sled operation in the process,
/// so a baseline measured after hookbus in the same process would pay for
/// hookbus's batches. A fresh process also makes peak RSS per measurement.
fn measure_in_child(system: System, threads: usize) -> Measurement {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let output = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_VAR, format!("{}:{threads}", system.name()))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run a measurement process");
    assert!(
        output.status.success(),
        "measurement {} with {threads} threads failed: {}",
        system.name(),
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result from the measurement process: {text}"));
    Measurement::decode(line).unwrap_or_else(|| panic!("unreadable result: {line}"))
}

/// The child side: runs one measurement and prints it on one line.
fn run_child(spec: &str, settings: &Settings, payload: &[u8]) {
    let (name, threads) = spec.split_once(':').expect("SYSTEM:THREADS");
    let system = SYSTEMS
        .into_iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("unknown system {name}"));
    let threads: usize = threads.parse().expect("a thread count");
    let m = measure(system, threads, settings, payload);
    println!("RESULT {}", m.encode());
}

impl Measurement {
    fn encode(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.events,
            self.secs,
            self.rate,
            self.p50_us,
            self.p99_us,
            self.max_ms,
            opt(self.flushes_per_event),
            opt(self.peak_rss_mib),
            opt(self.cpu_us_per_event),
        )
    }

    fn decode(line: &str) -> Option<Measurement> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let opt = |s: &str| s.parse::<f64>().ok();
        Some(Measurement {
            events: f.first()?.parse().ok()?,
            secs: f.get(1)?.parse().ok()?,
            rate: f.get(2)?.parse().ok()?,
            p50_us: f.get(3)?.parse().ok()?,
            p99_us: f.get(4)?.parse().ok()?,
            max_ms: f.get(5)?.parse().ok()?,
            flushes_per_event: opt(f.get(6)?),
            peak_rss_mib: opt(f.get(7)?),
            cpu_us_per_event: opt(f.get(8)?),
        })
    }
}

// ----- report -----

/// The 1, 5 and 15 minute load averages: other work on the machine skews
/// every number here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn median_index(rates: &[f64]) -> usize {
    let mut idx: Vec<usize> = (0..rates.len()).collect();
    idx.sort_by(|&a, &b| rates[a].total_cmp(&rates[b]));
    idx[idx.len() / 2]
}

fn fmt_rate(r: f64) -> String {
    if r >= 100_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else if r >= 10_000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

fn main() {
    let settings = settings();
    let payload = payload();
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        run_child(&spec, &settings, &payload);
        return;
    }
    let knobs = harness::Knobs::from_env(settings.smoke, settings.reps, settings.dir.clone());
    if let Ok(task) = std::env::var(harness::TASK_VAR) {
        if task.starts_with("s12r:") {
            postgres::run_replica(&task, &knobs);
            return;
        }
        run_task(&task, &knobs);
        return;
    }
    let began = Instant::now();
    let load_before = load_average();
    println!("# hookbus benchmark");
    println!();
    println!(
        "{}{} CPUs, load average (1, 5, 15 min) at the start: {load_before}. Other work on \
         the machine skews every number: each table shows the 1-minute load average at the \
         start of each measurement.",
        if settings.smoke {
            "SMOKE MODE (the numbers only show that every path runs; they mean nothing): "
        } else {
            ""
        },
        thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    let mut rows = Vec::new();
    if knobs.runs(1) {
        scenario_1(&settings, &mut rows);
    }
    if knobs.runs(2) {
        delivery::scenario_2(&knobs, &mut rows);
    }
    if knobs.runs(3) {
        delivery::scenario_3(&knobs, &mut rows);
    }
    if knobs.runs(4) {
        recovery::scenario_4(&knobs, &mut rows);
    }
    if knobs.runs(5) {
        scale::scenario_5(&knobs, &mut rows);
    }
    if knobs.runs(7) {
        backlog::scenario_7(&knobs, &mut rows);
    }
    fleet::scenarios_8_to_10(&knobs, &mut rows);
    if knobs.runs(11) {
        hung::scenario_11(&knobs, &mut rows);
    }
    if knobs.runs(12) {
        postgres::scenario_12(&knobs, &mut rows);
    }
    harness::print_summary(&rows);
    println!(
        "total bench time: {:.1} s; load average before: {load_before}, after: {}",
        began.elapsed().as_secs_f64(),
        load_average()
    );
}

/// The measurement processes of scenarios 2 to 11: `s2:SYSTEM:CASE`,
/// `s3:SYSTEM:RATE`, `s4:TASK`, `s5:SIZE` (indices into the knobs' lists),
/// `s7:TASK`, `fleet:TASK…` (8 to 10), `s11:HUNG` (a count).
fn run_task(task: &str, knobs: &harness::Knobs) {
    let parts: Vec<&str> = task.split(':').collect();
    let index = |i: usize| -> usize {
        parts
            .get(i)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("malformed task {task}"))
    };
    let res = match parts[0] {
        "s2" => {
            let cases = delivery::s2_cases(knobs);
            delivery::run_s2(parts[1], &cases[index(2)], knobs)
        }
        "s3" => delivery::run_s3(parts[1], knobs.rates[index(2)], knobs),
        "s4" => recovery::run(parts[1], knobs),
        "s5" => scale::run(knobs.scale[index(1)], knobs),
        "s7" => backlog::run(parts[1], knobs),
        "fleet" => fleet::run(&task["fleet:".len()..], knobs),
        "s11" => hung::run(index(1), knobs),
        "s12" => postgres::run(task, knobs),
        _ => panic!("unknown task {task}"),
    };
    harness::emit(&res);
}

/// Scenario 1: durable publish, against sled and SQLite.
fn scenario_1(settings: &Settings, rows: &mut Vec<harness::Row>) {
    let budget = match settings.budget {
        Budget::Time(d) => format!("{:.1} s per measurement", d.as_secs_f64()),
        Budget::Count(n) => format!("{n} events per measurement"),
    };
    let tmp = settings.dir.clone().unwrap_or_else(std::env::temp_dir);
    println!("## Scenario 1: durable publish");
    println!();
    println!(
        "{}{budget}, {} repetition(s) (median reported), {PAYLOAD_BYTES} B JSON payload, \
         threads {THREADS:?}, {} CPUs, temp dirs under {}",
        if settings.smoke { "SMOKE MODE: " } else { "" },
        settings.reps,
        thread::available_parallelism().map_or(0, |n| n.get()),
        tmp.display(),
    );
    println!();
    println!(
        "hookbus setup: one enabled endpoint (all events) at a loopback listener that accepts \
         and never answers, concurrency 1, 120 s timeout: one delivery hangs in flight, every \
         timed publish writes its event + one queued delivery record and waits for the \
         group-committed sled flush. sled baselines: same 64 MiB cache and 500 ms background \
         flush. SQLite: WAL, synchronous=FULL, one INSERT per BEGIN IMMEDIATE transaction, \
         one connection per thread, busy_timeout 30 s."
    );
    println!();

    // results[system][threads] = one Measurement per repetition
    let mut results: Vec<Vec<Vec<Measurement>>> = SYSTEMS
        .iter()
        .map(|_| THREADS.iter().map(|_| Vec::new()).collect())
        .collect();
    for rep in 0..settings.reps {
        for (ti, &threads) in THREADS.iter().enumerate() {
            for (si, &system) in SYSTEMS.iter().enumerate() {
                if !settings.wanted(system, threads) {
                    continue;
                }
                let m = measure_in_child(system, threads);
                eprintln!(
                    "rep {}/{} {:<34} {:>2} threads: {:>8} events/s ({} events in {:.2} s)",
                    rep + 1,
                    settings.reps,
                    system.label(),
                    threads,
                    fmt_rate(m.rate),
                    m.events,
                    m.secs
                );
                results[si][ti].push(m);
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| system | threads | events/s (median) | all runs | p50 µs | p99 µs | max ms | CPU µs/event | flushes/event | peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut medians = vec![vec![None::<f64>; THREADS.len()]; SYSTEMS.len()];
    for (si, &system) in SYSTEMS.iter().enumerate() {
        for (ti, &threads) in THREADS.iter().enumerate() {
            let runs = &results[si][ti];
            if runs.is_empty() {
                continue;
            }
            let rates: Vec<f64> = runs.iter().map(|m| m.rate).collect();
            let m = &runs[median_index(&rates)];
            medians[si][ti] = Some(m.rate);
            let all = rates
                .iter()
                .map(|r| fmt_rate(*r))
                .collect::<Vec<_>>()
                .join(" / ");
            let flushes = match (system, m.flushes_per_event) {
                (_, Some(f)) => format!("{f:.3}"),
                (System::SledFlush, None) => "1 (by design)".into(),
                _ => "-".into(),
            };
            let rss = m
                .peak_rss_mib
                .map_or_else(|| "-".into(), |r| format!("{r:.0}"));
            let cpu = m
                .cpu_us_per_event
                .map_or_else(|| "-".into(), |c| format!("{c:.0}"));
            let _ = writeln!(
                out,
                "| {} | {threads} | {} | {all} | {:.0} | {:.0} | {:.1} | {cpu} | {flushes} | {rss} |",
                system.label(),
                fmt_rate(m.rate),
                m.p50_us,
                m.p99_us,
                m.max_ms,
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| threads | hookbus / raw ceiling | hookbus / naive flush-each | hookbus / SQLite | target ≥ 0.5× raw | target ≥ 5× naive |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|:---:|:---:|");
    let median_of = |system: System, ti: usize| {
        SYSTEMS
            .iter()
            .position(|s| *s == system)
            .and_then(|si| medians[si][ti])
    };
    for (ti, &threads) in THREADS.iter().enumerate() {
        let Some(h) = median_of(System::Hookbus, ti) else {
            continue;
        };
        let ratio = |base: System| median_of(base, ti).map(|b| h / b);
        let show = |r: Option<f64>| r.map_or_else(|| "-".into(), |r| format!("{r:.2}"));
        let check = |r: Option<f64>, bar: f64| match r {
            Some(r) if r >= bar => "yes",
            Some(_) => "NO",
            None => "-",
        };
        let (r_raw, r_naive, r_lite) = (
            ratio(System::SledRaw),
            ratio(System::SledFlush),
            ratio(System::Sqlite),
        );
        let _ = writeln!(
            out,
            "| {threads} | {} | {} | {} | {} | {} |",
            show(r_raw),
            show(r_naive),
            show(r_lite),
            check(r_raw, 0.5),
            check(r_naive, 5.0),
        );
    }
    print!("{out}");
    println!();
    if settings.smoke {
        println!(
            "(Smoke mode: the numbers above only show that every path runs; they mean nothing.)"
        );
    }
    println!(
        "(The targets are the issue's bar for 16 threads; they are shown for every thread count.)"
    );
    println!();
    for (ti, &threads) in THREADS.iter().enumerate() {
        let Some(h) = median_of(System::Hookbus, ti) else {
            continue;
        };
        let base = |s: System| median_of(s, ti);
        let show = |v: Option<f64>| v.map_or_else(|| "-".into(), fmt_rate);
        let ratio = |s: System| base(s).map_or_else(|| "-".into(), |b| format!("{:.2}", h / b));
        let si = SYSTEMS.iter().position(|s| *s == System::Hookbus);
        let runs = si.map(|si| &results[si][ti]);
        let median_run = runs.filter(|r| !r.is_empty()).map(|r| {
            let rates: Vec<f64> = r.iter().map(|m| m.rate).collect();
            &r[median_index(&rates)]
        });
        rows.push(harness::Row {
            scenario: "1 publish",
            case: format!("{threads} threads"),
            hookbus: format!("{}/s", fmt_rate(h)),
            baseline: format!(
                "raw {}/s; naive {}/s; SQLite {}/s",
                show(base(System::SledRaw)),
                show(base(System::SledFlush)),
                show(base(System::Sqlite))
            ),
            ratio: format!(
                "{} of raw; {}× naive; {}× SQLite",
                ratio(System::SledRaw),
                ratio(System::SledFlush),
                ratio(System::Sqlite)
            ),
            target: "≥ 0.5× raw, ≥ 5× naive (16 threads)".into(),
            latency: median_run.map_or_else(
                || "-".into(),
                |m| format!("{:.2} / {:.2} ms", m.p50_us / 1e3, m.p99_us / 1e3),
            ),
            rss: median_run
                .and_then(|m| m.peak_rss_mib)
                .map_or_else(|| "-".into(), |r| format!("{r:.0}")),
        });
    }
}
