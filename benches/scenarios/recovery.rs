//! Scenario 4: recovery. A database holding 100,000 pending deliveries to
//! one endpoint (concurrency 4) is built once: the endpoint is paused, the
//! events are published from 8 threads, the bus is shut down. The paused
//! state is stored, so each repetition, on a fresh copy of that directory,
//! in a fresh process:
//!
//! 1. `Bus::open` (timed: reads endpoints, then every pending delivery and
//!    every event after the queue checkpoint, and rebuilds the queues);
//! 2. `resume_endpoint`; the time of the first request at the receiver and
//!    of the last one are taken from the start of `open`;
//! 3. peak RSS covers the whole recovery (open and the drain).
//!
//! Baseline: opening the same sled directory with sled alone and reading
//! every key and value once, the floor for any recovery that looks at the
//! whole database.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookbus::{Bus, EndpointConfig, EndpointId, Event};

use super::harness::{self, Knobs, Res, Row};
use super::wire::{event_payload, wall_ns, Receiver, SECRET};

const DIR_VAR: &str = "HOOKBUS_BENCH_S4_DIR";

fn dir_from_env() -> PathBuf {
    PathBuf::from(std::env::var_os(DIR_VAR).expect("the scenario 4 directory"))
}

pub fn run(task: &str, k: &Knobs) -> Res {
    let dir = dir_from_env();
    match task {
        "build" => build(&dir, k),
        "hookbus" => recover(&dir, k),
        "sled" => sled_scan(&dir),
        other => panic!("unknown scenario 4 task {other}"),
    }
}

fn build(dir: &Path, k: &Knobs) -> Res {
    let (bus, ep) = paused_endpoint(dir, k);
    let secs = publish_backlog(&bus, k.recovery);
    assert_eq!(bus.queue_depth(ep).expect("depth"), k.recovery);
    let mut res = Res::new();
    res.insert("build_rate".into(), k.recovery as f64 / secs);
    res.insert(
        "disk_mib".into(),
        bus.size_on_disk().expect("size") as f64 / (1 << 20) as f64,
    );
    bus.shutdown().expect("shutdown");
    res
}

/// A bus in `dir/db` with one paused endpoint (concurrency from the knobs,
/// subscribed to `ev.0`) at a port, free now, written to `dir/port` for the
/// process that later listens on it. Scenarios 4 and 7 build on it.
pub(crate) fn paused_endpoint(dir: &Path, k: &Knobs) -> (Bus, EndpointId) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    fs::write(dir.join("port"), port.to_string()).expect("write the port");
    let bus = Bus::builder(dir.join("db"))
        .allow_network("127.0.0.1/32")
        .open()
        .expect("open the bus");
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep0", format!("http://127.0.0.1:{port}/ep/0"))
                .events(["ev.0"])
                .secret(SECRET)
                .concurrency(k.concurrency as u32),
        )
        .expect("add the endpoint")
        .id();
    bus.pause_endpoint(ep).expect("pause");
    (bus, ep)
}

/// Publishes `count` `ev.0` events of 1 KiB from 8 threads; returns the
/// seconds it took.
pub(crate) fn publish_backlog(bus: &Bus, count: usize) -> f64 {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let payload = event_payload(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let event = Event::from_json_bytes("ev.0", payload.clone()).expect("event");
                    bus.publish(event).expect("publish");
                }
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// The port `paused_endpoint` wrote.
pub(crate) fn stored_port(dir: &Path) -> u16 {
    fs::read_to_string(dir.join("port"))
        .expect("read the port")
        .trim()
        .parse()
        .expect("a port")
}

fn recover(dir: &Path, k: &Knobs) -> Res {
    let port = stored_port(dir);
    let recv = Receiver::start_on(port, false);
    let total = k.recovery as u64;
    harness::reset_peak_rss();
    let load = harness::load1();
    let cpu0 = crate::process_cpu_secs();
    let wall0 = wall_ns();
    let t0 = Instant::now();
    let bus = Bus::builder(dir.join("db"))
        .allow_network("127.0.0.1/32")
        .open()
        .expect("reopen the bus");
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rss_open = crate::peak_rss_mib().unwrap_or(f64::NAN);
    let resumed = bus.recovery().resumed;
    let ep = bus.endpoints(None, usize::MAX).items[0].id();
    bus.resume_endpoint(ep).expect("resume");
    let resume_ms = t0.elapsed().as_secs_f64() * 1e3;
    crate::wait_for(Duration::from_secs(60), || {
        recv.stats.first_ns.load(Ordering::SeqCst) != 0
    });
    let first_ns = recv.stats.first_ns.load(Ordering::SeqCst);
    crate::wait_for(Duration::from_secs(900), || recv.stats.count() >= total);
    let all_s = t0.elapsed().as_secs_f64();
    crate::wait_for(Duration::from_secs(30), || bus.stats().delivered >= total);
    let cpu = cpu0.zip(crate::process_cpu_secs()).map(|(a, b)| b - a);
    let mut res = Res::new();
    res.insert("open_ms".into(), open_ms);
    res.insert("resumed".into(), resumed as f64);
    res.insert("resume_ms".into(), resume_ms);
    res.insert(
        "first_ms".into(),
        first_ns.saturating_sub(wall0) as f64 / 1e6,
    );
    res.insert("all_s".into(), all_s);
    res.insert(
        "drain_rate".into(),
        recv.stats.count() as f64 / (all_s - resume_ms / 1e3),
    );
    res.insert("rss_open".into(), rss_open);
    res.insert("rss".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    res.insert("cpu_s".into(), cpu.unwrap_or(f64::NAN));
    res.insert("load".into(), load);
    res.insert(
        "complete".into(),
        f64::from(u8::from(recv.stats.count() >= total)),
    );
    bus.shutdown().expect("shutdown");
    res
}

fn sled_scan(dir: &Path) -> Res {
    harness::reset_peak_rss();
    let load = harness::load1();
    let t0 = Instant::now();
    let db = sled::Config::new()
        .path(dir.join("db"))
        .cache_capacity(64 * 1024 * 1024)
        .open()
        .expect("open sled");
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (mut keys, mut bytes) = (0u64, 0u64);
    for item in db.iter() {
        let (k, v) = item.expect("read");
        keys += 1;
        bytes += (k.len() + v.len()) as u64;
    }
    let mut res = Res::new();
    res.insert("open_ms".into(), open_ms);
    res.insert("scan_ms".into(), t0.elapsed().as_secs_f64() * 1e3);
    res.insert("keys".into(), keys as f64);
    res.insert("mib".into(), bytes as f64 / (1 << 20) as f64);
    res.insert("rss".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    res.insert("load".into(), load);
    res
}

pub fn scenario_4(k: &Knobs, rows: &mut Vec<Row>) {
    if !k.wants("hookbus") && !k.wants("sled") {
        return;
    }
    let built = k.temp_dir();
    let path = built.path().display().to_string();
    let b = harness::run_task("s4:build", &[(DIR_VAR, path)]);
    eprintln!(
        "s4 built {} pending deliveries at {} publishes/s, {:.0} MiB on disk",
        k.recovery,
        harness::rate(b["build_rate"]),
        b["disk_mib"]
    );
    let mut hook = Vec::new();
    let mut sled = Vec::new();
    for rep in 0..k.reps {
        for (sys, out) in [("hookbus", &mut hook), ("sled", &mut sled)] {
            if !k.wants(sys) {
                continue;
            }
            let copy = k.temp_dir();
            harness::copy_dir(built.path(), copy.path());
            let r = harness::run_task(
                &format!("s4:{sys}"),
                &[(DIR_VAR, copy.path().display().to_string())],
            );
            eprintln!(
                "rep {}/{} s4 {sys:<8} open {} ms{} (load {:.2})",
                rep + 1,
                k.reps,
                harness::ms(r["open_ms"]),
                r.get("all_s")
                    .map(|a| format!(
                        ", first delivery at {} ms, all after {a:.2} s",
                        harness::ms(r["first_ms"])
                    ))
                    .unwrap_or_else(|| format!(", full scan {} ms", harness::ms(r["scan_ms"]))),
                r["load"],
            );
            out.push(r);
        }
    }

    println!("## Scenario 4: recovery");
    println!();
    println!(
        "A database with {} pending deliveries to one paused endpoint (concurrency {}), \
         {:.0} MiB on disk, built once at {} publishes/s (8 threads); every repetition \
         opens a fresh copy in a fresh process. Times from the start of open. {} \
         repetition(s), medians of each column.",
        k.recovery,
        k.concurrency,
        b["disk_mib"],
        harness::rate(b["build_rate"]),
        k.reps
    );
    println!();
    println!(
        "| system | open ms | all runs | deliveries resumed | first delivery ms | all delivered s | drain deliveries/s | peak RSS after open MiB | peak RSS MiB | CPU s | complete | load (1 min) |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|");
    let m = harness::med;
    if !hook.is_empty() {
        println!(
            "| hookbus open + resume + drain | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            harness::show(m(&hook, "open_ms"), harness::ms),
            harness::all(&hook, "open_ms", harness::ms),
            harness::show(m(&hook, "resumed"), harness::f0),
            harness::show(m(&hook, "first_ms"), harness::ms),
            harness::show(m(&hook, "all_s"), harness::f2),
            harness::show(m(&hook, "drain_rate"), harness::rate),
            harness::show(m(&hook, "rss_open"), harness::f0),
            harness::show(m(&hook, "rss"), harness::f0),
            harness::show(m(&hook, "cpu_s"), harness::f1),
            if hook.iter().all(|r| r.get("complete") == Some(&1.0)) { "yes" } else { "NO" },
            harness::all(&hook, "load", harness::f1),
        );
    }
    if !sled.is_empty() {
        println!(
            "| sled alone: open + read every key (floor) | {} | {} | {} keys, {} MiB | - | scan done at {} ms | - | - | {} | - | - | {} |",
            harness::show(m(&sled, "open_ms"), harness::ms),
            harness::all(&sled, "open_ms", harness::ms),
            harness::show(m(&sled, "keys"), harness::f0),
            harness::show(m(&sled, "mib"), harness::f0),
            harness::show(m(&sled, "scan_ms"), harness::ms),
            harness::show(m(&sled, "rss"), harness::f0),
            harness::all(&sled, "load", harness::f1),
        );
    }
    println!();
    let ratio = m(&hook, "open_ms")
        .zip(m(&sled, "scan_ms"))
        .map(|(h, s)| h / s);
    rows.push(Row {
        scenario: "4 recovery",
        case: format!("{} pending deliveries", k.recovery),
        hookbus: format!(
            "open {} ms, first delivery {} ms, all {} s ({}/s)",
            harness::show(m(&hook, "open_ms"), harness::ms),
            harness::show(m(&hook, "first_ms"), harness::ms),
            harness::show(m(&hook, "all_s"), harness::f2),
            harness::show(m(&hook, "drain_rate"), harness::rate),
        ),
        baseline: format!(
            "sled open + full scan {} ms",
            harness::show(m(&sled, "scan_ms"), harness::ms)
        ),
        ratio: format!("open / scan {}", harness::show(ratio, harness::f2)),
        target: "-".into(),
        latency: "-".into(),
        rss: harness::show(m(&hook, "rss"), harness::f0),
    });
}
