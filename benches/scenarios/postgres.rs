//! Scenario 12: the PostgreSQL backend beside sled, in the same run.
//!
//! Two measurements, each for three systems: `sled` (one process, the
//! default backend), `pg1` (one replica process on PostgreSQL) and `pg3`
//! (three replica processes on one schema). Every replica is a process of
//! its own (this binary re-run with a `s12r:` task), as a host's replicas
//! would be; the coordinator (a `s12:` task) prepares the bus, starts the
//! replicas, waits until every one has opened it, then gives them one
//! start time.
//!
//! - **publish**: one enabled endpoint, paused, so every publish writes
//!   its event and one queued delivery and nothing is sent; each replica
//!   publishes the 1 KiB payload from `threads` threads for a fixed time
//!   (`HOOKBUS_BENCH_SECS`, 2.5 s; 0.3 s in smoke mode). The rate is the
//!   sum over the replicas.
//! - **delivery**: `HOOKBUS_BENCH_PG_ENDPOINTS` endpoints (6, concurrency 4
//!   each) on a loopback receiver in the coordinator, paused while a
//!   backlog of `HOOKBUS_BENCH_PG_BACKLOG` deliveries (12,000; 300 in smoke
//!   mode) is published (not timed); then the replicas open the bus, the
//!   first one resumes every endpoint, and the clock runs until the
//!   receiver has seen every delivery. On PostgreSQL each endpoint is
//!   served by the replica holding its lease, so three replicas split the
//!   endpoints between them.
//!
//! PostgreSQL needs the cargo feature `postgres` and a server named by
//! `HOOKBUS_BENCH_POSTGRES_URL` (or `HOOKBUS_TEST_POSTGRES_URL`); without
//! either, the PostgreSQL rows are skipped with a message and sled runs
//! alone. Each measurement uses a fresh schema, dropped afterwards.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hookbus::{Bus, BusBuilder, EndpointConfig, Event};

use super::delivery::{add_endpoints, publish_all};
use super::harness::{self, Knobs, Res, Row};
use super::wire::{event_payload, wall_ns, Receiver};

/// Publishing threads per replica.
const THREADS: [usize; 2] = [1, 8];
/// The systems, as (name, replicas).
const SYSTEMS: [(&str, usize); 3] = [("sled", 1), ("pg1", 1), ("pg3", 3)];
/// Set in a replica: where the bus is (`sled:<dir>` or `pg:<schema>`).
const AT_VAR: &str = "HOOKBUS_BENCH_S12_AT";
/// The longest a delivery measurement waits.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
/// How long the replicas get to open the bus.
const OPEN_LIMIT: Duration = Duration::from_secs(120);

/// The server the PostgreSQL rows use, if any.
fn postgres_url() -> Option<String> {
    ["HOOKBUS_BENCH_POSTGRES_URL", "HOOKBUS_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
}

/// Why the PostgreSQL rows cannot run here, if they cannot.
fn postgres_missing() -> Option<&'static str> {
    if !cfg!(feature = "postgres") {
        Some("built without the cargo feature `postgres` (cargo bench --features postgres)")
    } else if postgres_url().is_none() {
        Some("neither HOOKBUS_BENCH_POSTGRES_URL nor HOOKBUS_TEST_POSTGRES_URL is set")
    } else {
        None
    }
}

fn backlog() -> usize {
    std::env::var("HOOKBUS_BENCH_PG_BACKLOG")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(if smoke() { 300 } else { 12_000 })
}

fn smoke() -> bool {
    crate::env_flag("HOOKBUS_BENCH_SMOKE") || std::env::args().any(|a| a == "--smoke")
}

fn endpoints() -> usize {
    std::env::var("HOOKBUS_BENCH_PG_ENDPOINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

// ----- where the bus lives -----

/// A bus location: a sled directory or a PostgreSQL schema.
enum At {
    Sled(std::path::PathBuf),
    Postgres(String),
}

impl At {
    fn parse(text: &str) -> At {
        match text.split_once(':') {
            Some(("sled", dir)) => At::Sled(dir.into()),
            Some(("pg", schema)) => At::Postgres(schema.into()),
            _ => panic!("bad {AT_VAR} {text:?}"),
        }
    }

    fn text(&self) -> String {
        match self {
            At::Sled(dir) => format!("sled:{}", dir.display()),
            At::Postgres(schema) => format!("pg:{schema}"),
        }
    }

    fn builder(&self) -> BusBuilder {
        let builder = match self {
            At::Sled(dir) => Bus::builder(dir),
            At::Postgres(schema) => postgres_builder(schema),
        };
        builder.allow_network("127.0.0.1/32")
    }
}

#[cfg(feature = "postgres")]
fn postgres_builder(schema: &str) -> BusBuilder {
    let url = postgres_url().expect("a PostgreSQL server");
    Bus::postgres(url).postgres_schema(schema)
}

#[cfg(not(feature = "postgres"))]
fn postgres_builder(_schema: &str) -> BusBuilder {
    unreachable!("the PostgreSQL rows are skipped without the feature")
}

/// Drops a measurement's schema (before and after it).
#[cfg(feature = "postgres")]
fn drop_schema(schema: &str) {
    let url = postgres_url().expect("a PostgreSQL server");
    let mut client = hookbus::postgres::Client::connect(&url, hookbus::postgres::NoTls)
        .unwrap_or_else(|e| panic!("the PostgreSQL server at {url} is unreachable: {e}"));
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .expect("drop the bench schema");
}

#[cfg(not(feature = "postgres"))]
fn drop_schema(_schema: &str) {}

/// A fresh location for one measurement of `system`; the directory guard
/// lives as long as the measurement.
fn fresh(system: &str, k: &Knobs) -> (At, tempfile::TempDir) {
    let dir = k.temp_dir();
    let at = if system == "sled" {
        At::Sled(dir.path().join("bus"))
    } else {
        let schema = format!("bench_s12_{}", std::process::id());
        drop_schema(&schema);
        At::Postgres(schema)
    };
    (at, dir)
}

fn cleanup(at: &At) {
    if let At::Postgres(schema) = at {
        drop_schema(schema);
    }
}

// ----- the replicas -----

/// A replica process: says READY once its bus is open.
struct Replica {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

fn spawn_replica(task: &str, at: &At) -> Replica {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(harness::TASK_VAR, task)
        .env(AT_VAR, at.text())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a replica");
    let stdout = child.stdout.take().expect("replica stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Replica {
        stdin: child.stdin.take(),
        child,
        lines,
    }
}

impl Replica {
    /// Waits for a line starting with `prefix`; panics if the replica
    /// ends or takes longer than `limit`.
    fn expect(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("a replica did not say {prefix}: {e}"),
            }
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("replica stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .expect("talk to a replica");
    }

    /// Closes its stdin (it shuts its bus down and ends) and reaps it.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("reap a replica");
        assert!(status.success(), "a replica failed: {status}");
    }
}

/// Starts `n` replicas of `task`, waits until each has opened the bus, and
/// gives them all the same start time, a little ahead.
fn start_replicas(n: usize, task: &str, at: &At) -> (Vec<Replica>, u64) {
    let mut replicas: Vec<Replica> = (0..n)
        .map(|i| spawn_replica(&format!("{task}:{i}"), at))
        .collect();
    for r in &replicas {
        r.expect("READY", OPEN_LIMIT);
    }
    let start_ns = wall_ns() + 50_000_000;
    for r in &mut replicas {
        r.say(&format!("GO {start_ns}"));
    }
    (replicas, start_ns)
}

/// In a replica: announces READY, then returns the start time it is given.
fn ready_and_wait() -> u64 {
    println!("READY");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .expect("read GO");
    let start: u64 = line
        .trim()
        .strip_prefix("GO ")
        .and_then(|t| t.parse().ok())
        .expect("GO <start ns>");
    let now = wall_ns();
    if start > now {
        thread::sleep(Duration::from_nanos(start - now));
    }
    start
}

/// In a replica: blocks until its stdin closes.
fn wait_for_stop() {
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut rest);
}

/// The replica tasks: `s12r:pub:<threads>:<i>` and `s12r:drain:<i>`. A
/// publishing replica prints its `RESULT2` line before it waits to be
/// stopped.
pub fn run_replica(task: &str, k: &Knobs) {
    let at = At::parse(&std::env::var(AT_VAR).expect("bus location"));
    let parts: Vec<&str> = task.split(':').collect();
    let bus = at.builder().open().expect("a replica opens the bus");
    match parts[1] {
        "pub" => replica_publish(&bus, parts[2].parse().expect("threads"), k),
        "drain" => {
            let first = parts[2] == "0";
            ready_and_wait();
            if first {
                for ep in bus.endpoints(None, usize::MAX).items {
                    bus.resume_endpoint(ep.id()).expect("resume");
                }
            }
            wait_for_stop();
        }
        other => panic!("unknown replica task {other}"),
    }
    bus.shutdown().expect("shut a replica down");
}

fn replica_publish(bus: &Bus, threads: usize, k: &Knobs) {
    let start = ready_and_wait();
    let end = start + (k.publish_secs * 1e9) as u64;
    let payload = event_payload(0);
    let events = AtomicU64::new(0);
    let mut latencies: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (payload, events) = (&payload, &events);
                s.spawn(move || {
                    let mut own = Vec::new();
                    while wall_ns() < end {
                        let event = Event::from_json_bytes("ev.0", payload.clone()).expect("event");
                        let began = Instant::now();
                        bus.publish(event).expect("publish");
                        own.push(began.elapsed().as_micros() as u64);
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    own
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("publisher"))
            .collect()
    });
    let secs = (wall_ns().saturating_sub(start)) as f64 / 1e9;
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |v| *v as f64)
    };
    let mut res = Res::new();
    res.insert("events".into(), events.load(Ordering::Relaxed) as f64);
    res.insert("secs".into(), secs);
    res.insert("p50_us".into(), pick(0.5));
    res.insert("p99_us".into(), pick(0.99));
    harness::emit(&res);
    wait_for_stop();
}

// ----- the coordinators -----

/// The coordinator tasks: `s12:pub:<system>:<threads>`, `s12:drain:<system>`.
pub fn run(task: &str, k: &Knobs) -> Res {
    let parts: Vec<&str> = task.split(':').collect();
    let system = parts[2];
    let replicas = SYSTEMS
        .iter()
        .find(|(name, _)| *name == system)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("unknown system {system}"));
    let (at, _dir) = fresh(system, k);
    let res = match parts[1] {
        "pub" => coordinate_publish(&at, replicas, parts[3].parse().expect("threads")),
        "drain" => coordinate_drain(&at, replicas),
        other => panic!("unknown scenario 12 task {other}"),
    };
    cleanup(&at);
    res
}

fn coordinate_publish(at: &At, replicas: usize, threads: usize) -> Res {
    // A loopback listener nobody answers: the endpoint is paused anyway.
    let recv = Receiver::start(false);
    {
        let bus = at.builder().open().expect("open the bus");
        let ep = bus
            .add_endpoint(EndpointConfig::new("ep", recv.url(0)))
            .expect("add the endpoint");
        bus.pause_endpoint(ep.id()).expect("pause");
        bus.shutdown().expect("shut the setup bus down");
    }
    let load = harness::load1();
    let (running, _) = start_replicas(replicas, &format!("s12r:pub:{threads}"), at);
    let results: Vec<Res> = running
        .into_iter()
        .map(|r| {
            let line = r.expect("RESULT2 ", DRAIN_LIMIT);
            let res = harness::decode(line.trim_start_matches("RESULT2 "));
            r.finish();
            res
        })
        .collect();
    let events: f64 = results.iter().map(|r| r["events"]).sum();
    let secs = results.iter().map(|r| r["secs"]).fold(0.0, f64::max);
    let mut res = Res::new();
    res.insert("rate".into(), events / secs);
    res.insert("events".into(), events);
    res.insert("load".into(), load);
    // The slowest replica's percentiles.
    for key in ["p50_us", "p99_us"] {
        res.insert(
            key.into(),
            results.iter().map(|r| r[key]).fold(0.0, f64::max),
        );
    }
    res
}

fn coordinate_drain(at: &At, replicas: usize) -> Res {
    let recv = Receiver::start(false);
    let n_endpoints = endpoints();
    let total = backlog().max(n_endpoints);
    {
        let bus = at.builder().open().expect("open the bus");
        let eps = add_endpoints(&bus, &recv, n_endpoints, 4);
        for ep in &eps {
            bus.pause_endpoint(*ep).expect("pause");
        }
        let payload = event_payload(0);
        publish_all(&bus, total, 8, |i| {
            Event::from_json_bytes(format!("ev.{}", i % n_endpoints), payload.clone())
                .expect("event")
        });
        bus.shutdown().expect("shut the setup bus down");
    }
    let load = harness::load1();
    let (running, start_ns) = start_replicas(replicas, "s12r:drain", at);
    let complete = crate::wait_for(DRAIN_LIMIT, || recv.stats.count() >= total as u64);
    let secs = (wall_ns().saturating_sub(start_ns)) as f64 / 1e9;
    let first_ms = (recv
        .stats
        .first_ns
        .load(Ordering::SeqCst)
        .saturating_sub(start_ns)) as f64
        / 1e6;
    for r in running {
        r.finish();
    }
    let mut res = Res::new();
    res.insert("rate".into(), recv.stats.count() as f64 / secs);
    res.insert("secs".into(), secs);
    res.insert("first_ms".into(), first_ms);
    res.insert("complete".into(), f64::from(u8::from(complete)));
    res.insert("load".into(), load);
    res
}

// ----- the parent -----

pub fn scenario_12(k: &Knobs, rows: &mut Vec<Row>) {
    println!("## Scenario 12: PostgreSQL backend, 1 and 3 replicas, beside sled");
    println!();
    let missing = postgres_missing();
    if let Some(why) = missing {
        println!("PostgreSQL rows SKIPPED: {why}. sled runs alone.");
        println!();
    }
    let systems: Vec<(&str, usize)> = SYSTEMS
        .iter()
        .copied()
        .filter(|(name, _)| *name == "sled" || missing.is_none())
        .filter(|(name, _)| k.wants(name))
        .collect();
    println!(
        "{} repetition(s), medians. publish: one paused endpoint, {:.1} s per measurement, \
         threads per replica {THREADS:?}, 1 KiB payload. delivery: {} endpoints (concurrency 4 \
         each) on a loopback receiver, {} deliveries queued while paused, then drained by the \
         replicas. Each replica is its own process.",
        k.reps,
        k.publish_secs,
        endpoints(),
        backlog(),
    );
    println!();

    let mut publish: Vec<Vec<Vec<Res>>> = vec![vec![Vec::new(); THREADS.len()]; systems.len()];
    let mut drain: Vec<Vec<Res>> = vec![Vec::new(); systems.len()];
    for _ in 0..k.reps {
        for (ti, threads) in THREADS.iter().enumerate() {
            for (si, (name, _)) in systems.iter().enumerate() {
                let res = harness::run_task(&format!("s12:pub:{name}:{threads}"), &[]);
                eprintln!(
                    "s12 publish {name} {threads} threads/replica: {}/s",
                    harness::rate(res["rate"])
                );
                publish[si][ti].push(res);
            }
        }
        for (si, (name, _)) in systems.iter().enumerate() {
            let res = harness::run_task(&format!("s12:drain:{name}"), &[]);
            eprintln!("s12 delivery {name}: {}/s", harness::rate(res["rate"]));
            drain[si].push(res);
        }
    }

    let sled_publish = |ti: usize| harness::med(&publish[0][ti], "rate");
    let ratio = |v: Option<f64>, base: Option<f64>| {
        v.zip(base)
            .map_or_else(|| "-".into(), |(v, b)| format!("{:.2}×", v / b))
    };
    println!("| publish | threads/replica | events/s (median) | all runs | vs sled | p50 / p99 ms (slowest replica) | load |");
    println!("|---|---:|---:|---|---:|---|---:|");
    for (si, (name, replicas)) in systems.iter().enumerate() {
        for (ti, threads) in THREADS.iter().enumerate() {
            let runs = &publish[si][ti];
            let rate = harness::med(runs, "rate");
            let latency = format!(
                "{} / {}",
                harness::show(harness::med(runs, "p50_us").map(|v| v / 1e3), harness::ms),
                harness::show(harness::med(runs, "p99_us").map(|v| v / 1e3), harness::ms)
            );
            println!(
                "| {} | {threads} | {} | {} | {} | {latency} | {} |",
                label(name, *replicas),
                harness::show(rate, harness::rate),
                harness::all(runs, "rate", harness::rate),
                ratio(rate, sled_publish(ti)),
                harness::show(harness::med(runs, "load"), harness::f1),
            );
            rows.push(Row {
                scenario: "12 publish",
                case: format!("{}, {threads} threads/replica", label(name, *replicas)),
                hookbus: format!("{}/s", harness::show(rate, harness::rate)),
                baseline: format!("sled {}/s", harness::show(sled_publish(ti), harness::rate)),
                ratio: ratio(rate, sled_publish(ti)),
                target: "-".into(),
                latency,
                rss: "-".into(),
            });
        }
    }
    println!();
    let sled_drain = harness::med(&drain[0], "rate");
    println!("| delivery | deliveries/s (median) | all runs | vs sled | first delivery ms | complete | load |");
    println!("|---|---:|---|---:|---:|:---:|---:|");
    for (si, (name, replicas)) in systems.iter().enumerate() {
        let runs = &drain[si];
        let rate = harness::med(runs, "rate");
        let complete = runs.iter().all(|r| r.get("complete") == Some(&1.0));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            label(name, *replicas),
            harness::show(rate, harness::rate),
            harness::all(runs, "rate", harness::rate),
            ratio(rate, sled_drain),
            harness::show(harness::med(runs, "first_ms"), harness::ms),
            if complete { "yes" } else { "NO" },
            harness::show(harness::med(runs, "load"), harness::f1),
        );
        rows.push(Row {
            scenario: "12 delivery",
            case: label(name, *replicas),
            hookbus: format!("{}/s", harness::show(rate, harness::rate)),
            baseline: format!("sled {}/s", harness::show(sled_drain, harness::rate)),
            ratio: ratio(rate, sled_drain),
            target: "-".into(),
            latency: "-".into(),
            rss: "-".into(),
        });
    }
    println!();
    if smoke() {
        println!("(Smoke mode: the numbers above only show that every path runs.)");
        println!();
    }
}

fn label(name: &str, replicas: usize) -> String {
    match name {
        "sled" => "sled".into(),
        _ => format!(
            "PostgreSQL, {replicas} replica{}",
            if replicas == 1 { "" } else { "s" }
        ),
    }
}
