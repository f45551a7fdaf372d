//! Scenario 7: a backlog that does not fit in memory. One endpoint
//! (concurrency 4) is paused and 1,000,000 deliveries are queued for it
//! (published from 8 threads, 1 KiB payloads), in a process of its own
//! that reports its peak RSS *while publishing* (VmHWM reset after the
//! endpoint is added). The database is built once; every repetition, in a
//! fresh process, on a fresh copy of it:
//!
//! 1. opens the bus (peak RSS *after reopen*: VmHWM of the open alone);
//! 2. resumes the endpoint at a fast local receiver; *reopen to first
//!    delivery* is from the start of `open` to the first request seen;
//! 3. waits until the receiver has seen every delivery (or
//!    `HOOKBUS_BENCH_BIG_DRAIN` of them), VmHWM reset after the open, so
//!    that is the peak RSS *while draining*.
//!
//! Targets (issue 9): RSS ≤ 200 MiB in all three phases, reopen to first
//! delivery ≤ 2 s.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hookbus::Bus;

use super::harness::{self, Knobs, Res, Row};
use super::recovery;
use super::wire::{wall_ns, Receiver};

const DIR_VAR: &str = "HOOKBUS_BENCH_S7_DIR";
const RSS_TARGET_MIB: f64 = 200.0;
const FIRST_TARGET_MS: f64 = 2000.0;

pub fn run(task: &str, k: &Knobs) -> Res {
    let dir = PathBuf::from(std::env::var_os(DIR_VAR).expect("the scenario 7 directory"));
    match task {
        "build" => build(&dir, k),
        "open" => reopen(&dir, k),
        other => panic!("unknown scenario 7 task {other}"),
    }
}

fn build(dir: &Path, k: &Knobs) -> Res {
    let (bus, ep) = recovery::paused_endpoint(dir, k);
    let load = harness::load1();
    harness::reset_peak_rss();
    let sampler = harness::Sampler::start(Duration::from_millis(100), None);
    let secs = recovery::publish_backlog(&bus, k.big_backlog);
    let (_, threads, _) = sampler.finish();
    let mut res = Res::new();
    res.insert("publish_rate".into(), k.big_backlog as f64 / secs);
    res.insert("publish_s".into(), secs);
    res.insert(
        "rss_publish".into(),
        crate::peak_rss_mib().unwrap_or(f64::NAN),
    );
    res.insert("rss_published".into(), harness::rss_mib());
    res.insert("threads_publish".into(), threads);
    res.insert("load".into(), load);
    let queued = bus.queue_depth(ep).expect("depth");
    assert_eq!(queued, k.big_backlog, "the whole backlog is queued");
    res.insert(
        "disk_mib".into(),
        bus.size_on_disk().expect("size") as f64 / (1 << 20) as f64,
    );
    bus.shutdown().expect("shutdown");
    res
}

fn reopen(dir: &Path, k: &Knobs) -> Res {
    let port = recovery::stored_port(dir);
    let recv = Receiver::start_on(port, false);
    let total = k.big_backlog as u64;
    let want = total.min(k.big_drain as u64);
    let load = harness::load1();
    let cpu0 = crate::process_cpu_secs();
    harness::reset_peak_rss();
    let wall0 = wall_ns();
    let t0 = Instant::now();
    let bus = Bus::builder(dir.join("db"))
        .allow_network("127.0.0.1/32")
        .open()
        .expect("reopen the bus");
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rss_open = crate::peak_rss_mib().unwrap_or(f64::NAN);
    harness::reset_peak_rss();
    let sampler = harness::Sampler::start(Duration::from_millis(100), None);
    let ep = bus.endpoints(None, 1).items[0].id();
    bus.resume_endpoint(ep).expect("resume");
    let resume_ms = t0.elapsed().as_secs_f64() * 1e3;
    crate::wait_for(Duration::from_secs(120), || {
        recv.stats.first_ns.load(Ordering::SeqCst) != 0
    });
    let first_ns = recv.stats.first_ns.load(Ordering::SeqCst);
    let first_at = t0.elapsed().as_secs_f64();
    crate::wait_for(Duration::from_secs(3600), || recv.stats.count() >= want);
    let all_s = t0.elapsed().as_secs_f64();
    let (_, threads, _) = sampler.finish();
    let got = recv.stats.count();
    let cpu = cpu0.zip(crate::process_cpu_secs()).map(|(a, b)| b - a);
    let mut res = Res::new();
    res.insert("open_ms".into(), open_ms);
    res.insert("resume_ms".into(), resume_ms);
    res.insert(
        "first_ms".into(),
        first_ns.saturating_sub(wall0) as f64 / 1e6,
    );
    res.insert("rss_open".into(), rss_open);
    res.insert(
        "rss_drain".into(),
        crate::peak_rss_mib().unwrap_or(f64::NAN),
    );
    res.insert("drained".into(), got as f64);
    res.insert(
        "drain_rate".into(),
        got as f64 / (all_s - first_at).max(1e-3),
    );
    res.insert("all_s".into(), all_s);
    res.insert("threads".into(), threads);
    res.insert(
        "cpu_us".into(),
        cpu.map_or(f64::NAN, |c| c * 1e6 / got.max(1) as f64),
    );
    res.insert("load".into(), load);
    res.insert("complete".into(), f64::from(u8::from(got >= want)));
    bus.shutdown().expect("shutdown");
    res
}

pub fn scenario_7(k: &Knobs, rows: &mut Vec<Row>) {
    if !k.wants("hookbus") {
        return;
    }
    let built = k.temp_dir();
    let b = harness::run_task("s7:build", &[(DIR_VAR, built.path().display().to_string())]);
    eprintln!(
        "s7 queued {} deliveries at {} publishes/s, peak RSS {:.0} MiB, {:.0} MiB on disk (load {:.2})",
        k.big_backlog,
        harness::rate(b["publish_rate"]),
        b["rss_publish"],
        b["disk_mib"],
        b["load"],
    );
    let mut runs = Vec::new();
    for rep in 0..k.reps {
        let copy = k.temp_dir();
        harness::copy_dir(built.path(), copy.path());
        let r = harness::run_task("s7:open", &[(DIR_VAR, copy.path().display().to_string())]);
        eprintln!(
            "rep {}/{} s7 open {} ms (peak RSS {:.0} MiB), first delivery at {} ms, {} delivered at {}/s, peak RSS draining {:.0} MiB (load {:.2})",
            rep + 1,
            k.reps,
            harness::ms(r["open_ms"]),
            r["rss_open"],
            harness::ms(r["first_ms"]),
            r["drained"],
            harness::rate(r["drain_rate"]),
            r["rss_drain"],
            r["load"],
        );
        runs.push(r);
    }
    let m = |key: &str| harness::med(&runs, key);
    let drained = m("drained").unwrap_or(0.0);
    println!("## Scenario 7: a backlog of {} deliveries", k.big_backlog);
    println!();
    println!(
        "One paused endpoint (concurrency {}), {} deliveries queued from 8 publishing threads \
         ({} publishes/s, {:.0} MiB on disk, load {:.1}); every repetition opens a fresh copy \
         in a fresh process, resumes the endpoint at a loopback receiver and waits for {} \
         deliveries. Times from the start of open; RSS is VmHWM of each phase. {} \
         repetition(s), medians of each column.",
        k.concurrency,
        k.big_backlog,
        harness::rate(b["publish_rate"]),
        b["disk_mib"],
        b["load"],
        drained,
        k.reps
    );
    println!();
    println!("| phase | peak RSS MiB | all runs | time | threads (peak) | target |");
    println!("|---|---:|---|---|---:|---|");
    let rss_ok = |v: Option<f64>| harness::check(v.map(|v| v <= RSS_TARGET_MIB));
    println!(
        "| publishing {} | {:.0} | - | {:.1} s | {:.0} | ≤ {RSS_TARGET_MIB:.0} MiB: {} |",
        k.big_backlog,
        b["rss_publish"],
        b["publish_s"],
        b["threads_publish"],
        rss_ok(Some(b["rss_publish"])),
    );
    println!(
        "| reopen | {} | {} | open {} ms (all runs {}); first delivery {} ms (all runs {}) | - | ≤ {RSS_TARGET_MIB:.0} MiB: {}; first delivery ≤ {FIRST_TARGET_MS:.0} ms: {} |",
        harness::show(m("rss_open"), harness::f0),
        harness::all(&runs, "rss_open", harness::f0),
        harness::show(m("open_ms"), harness::ms),
        harness::all(&runs, "open_ms", harness::ms),
        harness::show(m("first_ms"), harness::ms),
        harness::all(&runs, "first_ms", harness::ms),
        rss_ok(m("rss_open")),
        harness::check(m("first_ms").map(|v| v <= FIRST_TARGET_MS)),
    );
    println!(
        "| draining {} | {} | {} | {}/s, all after {} s, CPU {} µs/delivery | {} | ≤ {RSS_TARGET_MIB:.0} MiB: {} |",
        drained,
        harness::show(m("rss_drain"), harness::f0),
        harness::all(&runs, "rss_drain", harness::f0),
        harness::show(m("drain_rate"), harness::rate),
        harness::show(m("all_s"), harness::f1),
        harness::show(m("cpu_us"), harness::f0),
        harness::show(m("threads"), harness::f0),
        rss_ok(m("rss_drain")),
    );
    println!();
    println!(
        "complete: {}; load (1 min) per repetition: {}",
        if runs.iter().all(|r| r.get("complete") == Some(&1.0)) {
            "yes"
        } else {
            "NO"
        },
        harness::all(&runs, "load", harness::f1)
    );
    println!();
    let peak = [Some(b["rss_publish"]), m("rss_open"), m("rss_drain")]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    rows.push(Row {
        scenario: "7 big backlog",
        case: format!("{} queued, paused", k.big_backlog),
        hookbus: format!(
            "reopen {} ms, first delivery {} ms, drain {}/s",
            harness::show(m("open_ms"), harness::ms),
            harness::show(m("first_ms"), harness::ms),
            harness::show(m("drain_rate"), harness::rate),
        ),
        baseline: "-".into(),
        ratio: "-".into(),
        target: format!(
            "RSS ≤ 200 MiB: {}; first ≤ 2 s: {}",
            rss_ok(Some(peak)),
            harness::check(m("first_ms").map(|v| v <= FIRST_TARGET_MS))
        ),
        latency: "-".into(),
        rss: format!(
            "publish {:.0} / open {} / drain {}",
            b["rss_publish"],
            harness::show(m("rss_open"), harness::f0),
            harness::show(m("rss_drain"), harness::f0)
        ),
    });
}
