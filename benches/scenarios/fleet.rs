//! Scenarios 8, 9 and 10: a bus serving many customers (issue 9).
//!
//! The endpoints of 8 and 10 are built once: 10,000 customers × 10
//! endpoints (100,000), each endpoint subscribed to `lead.create` and given
//! to its customer as `api.rs` says, at a loopback port where nothing
//! listens (nothing is ever sent to them). The time to add them is reported.
//!
//! - **8, 100,000 endpoints, nothing pending**: every repetition opens the
//!   bus in a fresh process and reads the open time, RSS (VmHWM of the
//!   open, VmRSS after), the process's threads (`/proc/self/status`, the
//!   same as counting `/proc/self/task`; the measuring process adds only its
//!   main thread and one sampling thread, not counted) and idle CPU
//!   (utime + stime from `/proc/self/stat`) over a few seconds.
//!   Targets: open ≤ 2 s, RSS ≤ 150 MiB, threads ≤ 20, idle CPU ≈ 0.
//! - **10, publish to one customer**: the rate of publishing (8 threads,
//!   a fixed time) events for one customer whose 10 endpoints are paused,
//!   so only the publish path counts, with the 100,000 endpoints
//!   registered, against a bus with only those 10 registered. Each
//!   repetition picks another customer. Target: ≥ 0.8× the small bus.
//! - **9, one event to each of 10,000 customers, then idle**: a fresh
//!   bus, 10,000 customers with one endpoint each at a loopback receiver
//!   in the same process; one event to every customer (8 publishing
//!   threads), until every one is received. Sampled every 20 ms: RSS and
//!   threads; every 100 ms: the sender threads (named `hookbus-send*`).
//!   Then idle CPU right after, and RSS, threads and idle CPU once the
//!   sender threads have ended (the library's default idle timeout, or
//!   `HOOKBUS_BENCH_IDLE_TIMEOUT_S`).
//!   Targets: sender threads never above the configured maximum (the
//!   default `sender_threads`, 64), RSS ≤ 150 MiB.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hookbus::{Bus, EndpointConfig, EndpointId, Event};

use super::api::{customer_endpoint, customer_event, customers_by};
use super::harness::{self, Knobs, Res, Row};
use super::wire::{event_payload, Receiver, SECRET};

const DIR_VAR: &str = "HOOKBUS_BENCH_S8_DIR";
const EVENT_TYPE: &str = "lead.create";
/// The default `sender_threads` of the pool: scenario 9's bound.
const POOL_MAX: f64 = 64.0;

fn open(dir: &Path) -> Bus {
    Bus::builder(dir)
        .allow_network("127.0.0.1/32")
        .open()
        .expect("open the bus")
}

fn endpoint(customer: usize, j: usize, url: String) -> EndpointConfig {
    customer_endpoint(
        EndpointConfig::new(format!("c{customer}-e{j}"), url)
            .events([EVENT_TYPE])
            .secret(SECRET),
        customer,
    )
}

/// Adds `customers` × `per` endpoints; returns the seconds it took.
fn add_fleet(bus: &Bus, customers: usize, per: usize) -> f64 {
    let t = Instant::now();
    for c in 0..customers {
        for j in 0..per {
            // Port 1 on loopback: nothing listens, nothing is ever sent.
            bus.add_endpoint(endpoint(c, j, format!("http://127.0.0.1:1/c{c}/e{j}")))
                .expect("add an endpoint");
        }
    }
    t.elapsed().as_secs_f64()
}

pub fn run(task: &str, k: &Knobs) -> Res {
    let parts: Vec<&str> = task.split(':').collect();
    let dir = || PathBuf::from(std::env::var_os(DIR_VAR).expect("the scenario 8 directory"));
    match parts[..] {
        ["build"] => build(&dir(), k),
        ["idle"] => idle(&dir(), k),
        ["publish", size, rep] => publish(size, rep.parse().expect("a repetition"), k),
        ["customers"] => customers(k),
        _ => panic!("unknown scenario 8-10 task {task}"),
    }
}

fn build(dir: &Path, k: &Knobs) -> Res {
    let bus = open(dir);
    let mut res = Res::new();
    res.insert("load".into(), harness::load1());
    let secs = add_fleet(&bus, k.tenants, k.per_tenant);
    res.insert("add_s".into(), secs);
    res.insert("rss".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    bus.shutdown().expect("shutdown");
    res
}

fn idle(dir: &Path, k: &Knobs) -> Res {
    let mut res = Res::new();
    res.insert("load".into(), harness::load1());
    harness::reset_peak_rss();
    let t = Instant::now();
    let bus = open(dir);
    res.insert("open_ms".into(), t.elapsed().as_secs_f64() * 1e3);
    res.insert("rss_open".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    res.insert("endpoints".into(), bus.recovery().endpoints as f64);
    // This process's own: its main thread (the sampler is not yet running).
    res.insert("threads_open".into(), harness::threads_now() - 1.0);
    // Sampling slowly: the sampler's own reads count in the idle CPU.
    let sampler = harness::Sampler::start(Duration::from_millis(250), None);
    let cpu = harness::cpu_percent_over(k.idle_window);
    let (_, threads, _) = sampler.finish();
    res.insert("cpu_idle".into(), cpu);
    res.insert("threads".into(), threads - 2.0);
    res.insert("rss".into(), harness::rss_mib());
    res.insert("rss_peak".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    bus.shutdown().expect("shutdown");
    res
}

fn publish(size: &str, rep: usize, k: &Knobs) -> Res {
    let small = k.temp_dir();
    let (bus, customer) = match size {
        "small" => {
            let bus = open(small.path());
            add_fleet(&bus, 1, k.per_tenant);
            (bus, 0)
        }
        "big" => {
            let dir = PathBuf::from(std::env::var_os(DIR_VAR).expect("the built directory"));
            // A different customer each repetition (its endpoints stay
            // paused with what was published to them).
            (open(&dir), (rep * 7919 + k.tenants / 2) % k.tenants)
        }
        other => panic!("unknown size {other}"),
    };
    let prefix = format!("c{customer}-");
    let ids: Vec<EndpointId> = bus
        .endpoints(None, usize::MAX)
        .items
        .iter()
        .filter(|e| e.name().starts_with(&prefix))
        .map(|e| e.id())
        .collect();
    assert_eq!(ids.len(), k.per_tenant, "the customer's endpoints");
    for id in &ids {
        bus.pause_endpoint(*id).expect("pause");
    }
    let payload = event_payload(0);
    let event = || {
        customer_event(
            Event::from_json_bytes(EVENT_TYPE, payload.clone()).expect("event"),
            customer,
        )
    };
    bus.publish(event()).expect("warm-up publish");
    let before: usize = ids
        .iter()
        .map(|id| bus.queue_depth(*id).expect("depth"))
        .sum();
    let load = harness::load1();
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let cpu0 = crate::process_cpu_secs();
    let t = Instant::now();
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    bus.publish(event()).expect("publish");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        thread::sleep(Duration::from_secs_f64(k.publish_secs));
        stop.store(true, Ordering::Relaxed);
    });
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu0.zip(crate::process_cpu_secs()).map(|(a, b)| b - a);
    let n = count.load(Ordering::Relaxed);
    let after: usize = ids
        .iter()
        .map(|id| bus.queue_depth(*id).expect("depth"))
        .sum();
    assert_eq!(
        (after - before) as u64,
        n * k.per_tenant as u64,
        "every publish queued a delivery for each of the customer's endpoints"
    );
    let mut res = Res::new();
    res.insert("rate".into(), n as f64 / secs);
    res.insert(
        "cpu_us".into(),
        cpu.map_or(f64::NAN, |c| c * 1e6 / n.max(1) as f64),
    );
    let registered = match size {
        "small" => k.per_tenant,
        _ => bus.recovery().endpoints,
    };
    res.insert("endpoints".into(), registered as f64);
    res.insert("load".into(), load);
    bus.shutdown().expect("shutdown");
    res
}

fn customers(k: &Knobs) -> Res {
    let n = k.customers;
    let dir = k.temp_dir();
    let recv = Receiver::start(false);
    let mut builder = Bus::builder(dir.path()).allow_network("127.0.0.1/32");
    if let Some(t) = k.customers_idle_timeout {
        builder = builder.sender_idle_timeout(t);
    }
    let bus = builder.open().expect("open the bus");
    let mut res = Res::new();
    res.insert("load".into(), harness::load1());
    let t = Instant::now();
    for c in 0..n {
        bus.add_endpoint(endpoint(c, 0, recv.url(c)))
            .expect("add an endpoint");
    }
    res.insert("add_s".into(), t.elapsed().as_secs_f64());
    res.insert("rss_start".into(), harness::rss_mib());
    let sampler = harness::Sampler::start(Duration::from_millis(20), Some("hookbus-send"));
    let payload = event_payload(0);
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    thread::scope(|p| {
        for _ in 0..8 {
            p.spawn(|| loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= n {
                    break;
                }
                let event = Event::from_json_bytes(EVENT_TYPE, payload.clone()).expect("event");
                bus.publish(customer_event(event, c)).expect("publish");
            });
        }
    });
    res.insert("publish_rate".into(), n as f64 / t.elapsed().as_secs_f64());
    crate::wait_for(Duration::from_secs(600), || recv.stats.count() >= n as u64);
    res.insert("deliver_s".into(), t.elapsed().as_secs_f64());
    let (_, threads, senders) = sampler.finish();
    res.insert("threads_peak".into(), threads);
    res.insert("senders_peak".into(), senders);
    res.insert(
        "recv_threads_peak".into(),
        recv.stats.peak_open.load(Ordering::SeqCst) as f64 + 1.0,
    );
    res.insert("rss_after".into(), harness::rss_mib());
    res.insert(
        "senders_after".into(),
        harness::threads_named("hookbus-send") as f64,
    );
    res.insert(
        "cpu_idle_waiting".into(),
        harness::cpu_percent_over(k.idle_window),
    );
    let t = Instant::now();
    while harness::threads_named("hookbus-send") > 0 && t.elapsed() < Duration::from_secs(90) {
        thread::sleep(Duration::from_millis(200));
    }
    res.insert("senders_exit_s".into(), t.elapsed().as_secs_f64());
    res.insert("cpu_idle".into(), harness::cpu_percent_over(k.idle_window));
    res.insert("threads_idle".into(), harness::threads_now());
    res.insert("rss_idle".into(), harness::rss_mib());
    res.insert("rss_peak".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    res.insert(
        "complete".into(),
        f64::from(u8::from(recv.stats.count() >= n as u64)),
    );
    res.insert(
        "cross".into(),
        recv.stats.count().saturating_sub(n as u64) as f64,
    );
    bus.shutdown().expect("shutdown");
    res
}

/// Scenarios 8 and 10 (sharing one built directory) and 9.
pub fn scenarios_8_to_10(k: &Knobs, rows: &mut Vec<Row>) {
    if !k.wants("hookbus") {
        return;
    }
    let total = k.tenants * k.per_tenant;
    if k.runs(8) || k.runs(10) {
        let built = k.temp_dir();
        let env = [(DIR_VAR, built.path().display().to_string())];
        let b = harness::run_task("fleet:build", &env);
        eprintln!(
            "s8 added {total} endpoints in {:.1} s (load {:.2})",
            b["add_s"], b["load"]
        );
        if k.runs(8) {
            scenario_8(k, &env, &b, rows);
        }
        if k.runs(10) {
            scenario_10(k, &env, rows);
        }
    }
    if k.runs(9) {
        scenario_9(k, rows);
    }
}

fn scenario_8(k: &Knobs, env: &[(&str, String)], b: &Res, rows: &mut Vec<Row>) {
    let total = k.tenants * k.per_tenant;
    let mut runs = Vec::new();
    for rep in 0..k.reps {
        let r = harness::run_task("fleet:idle", env);
        eprintln!(
            "rep {}/{} s8 open {} ms, RSS {:.0} MiB, {:.0} threads, idle CPU {:.2} % (load {:.2})",
            rep + 1,
            k.reps,
            harness::ms(r["open_ms"]),
            r["rss_peak"],
            r["threads"],
            r["cpu_idle"],
            r["load"]
        );
        runs.push(r);
    }
    let m = |key: &str| harness::med(&runs, key);
    println!("## Scenario 8: {total} endpoints registered, nothing pending");
    println!();
    println!(
        "{} customers × {} endpoints, customers separated by {}; adding them took \
         {:.1} s ({:.0} endpoints/s, load {:.1}). Every repetition opens the bus in a fresh \
         process; threads exclude the measuring process's own (main, sampler); idle CPU over \
         {:.1} s. {} repetition(s), medians.",
        k.tenants,
        k.per_tenant,
        customers_by(),
        b["add_s"],
        total as f64 / b["add_s"],
        b["load"],
        k.idle_window.as_secs_f64(),
        k.reps
    );
    println!();
    println!("| measure | median | all runs | target | met |");
    println!("|---|---:|---|---|:---:|");
    let line =
        |label: &str, key: &str, fmt: fn(f64) -> String, target: &str, ok: fn(f64) -> bool| {
            println!(
                "| {label} | {} | {} | {target} | {} |",
                harness::show(m(key), fmt),
                harness::all(&runs, key, fmt),
                harness::check(m(key).map(ok)),
            );
        };
    line("open ms", "open_ms", harness::ms, "≤ 2000", |v| {
        v <= 2000.0
    });
    line(
        "peak RSS MiB (open and idle)",
        "rss_peak",
        harness::f0,
        "≤ 150",
        |v| v <= 150.0,
    );
    line("RSS after idle MiB", "rss", harness::f0, "≤ 150", |v| {
        v <= 150.0
    });
    line(
        "threads after open",
        "threads_open",
        harness::f0,
        "≤ 20",
        |v| v <= 20.0,
    );
    line(
        "threads, most while idle",
        "threads",
        harness::f0,
        "≤ 20",
        |v| v <= 20.0,
    );
    line(
        "idle CPU % of a core",
        "cpu_idle",
        harness::f2,
        "≈ 0 (≤ 0.5)",
        |v| v <= 0.5,
    );
    println!();
    println!(
        "load (1 min) per repetition: {}",
        harness::all(&runs, "load", harness::f1)
    );
    println!();
    rows.push(Row {
        scenario: "8 endpoints idle",
        case: format!("{total} registered"),
        hookbus: format!(
            "open {} ms, {} threads, idle CPU {} %",
            harness::show(m("open_ms"), harness::ms),
            harness::show(m("threads"), harness::f0),
            harness::show(m("cpu_idle"), harness::f2)
        ),
        baseline: format!("adding them: {:.1} s", b["add_s"]),
        ratio: "-".into(),
        target: format!(
            "open ≤ 2 s: {}; RSS ≤ 150: {}; threads ≤ 20: {}; CPU ≈ 0: {}",
            harness::check(m("open_ms").map(|v| v <= 2000.0)),
            harness::check(m("rss_peak").map(|v| v <= 150.0)),
            harness::check(m("threads").map(|v| v <= 20.0)),
            harness::check(m("cpu_idle").map(|v| v <= 0.5)),
        ),
        latency: "-".into(),
        rss: harness::show(m("rss_peak"), harness::f0),
    });
}

fn scenario_10(k: &Knobs, env: &[(&str, String)], rows: &mut Vec<Row>) {
    let total = k.tenants * k.per_tenant;
    let (mut small, mut big) = (Vec::new(), Vec::new());
    for rep in 0..k.reps {
        for (size, out) in [("small", &mut small), ("big", &mut big)] {
            let r = harness::run_task(&format!("fleet:publish:{size}:{rep}"), env);
            eprintln!(
                "rep {}/{} s10 {:>6} endpoints registered: {}/s publishing to one customer's {} (load {:.2})",
                rep + 1,
                k.reps,
                r["endpoints"],
                harness::rate(r["rate"]),
                k.per_tenant,
                r["load"]
            );
            out.push(r);
        }
    }
    let ratio = harness::med(&big, "rate")
        .zip(harness::med(&small, "rate"))
        .map(|(b, s)| b / s);
    // The ratio of each repetition's pair, measured back to back.
    let pairs: Vec<String> = big
        .iter()
        .zip(&small)
        .map(|(b, s)| format!("{:.2}", b["rate"] / s["rate"]))
        .collect();
    println!("## Scenario 10: publishing to one customer among many");
    println!();
    println!(
        "Events for one customer whose {} endpoints are paused (each publish queues {} \
         deliveries), 8 publishing threads for {:.1} s; customers separated by \
         {}. {} repetition(s), interleaved, medians.",
        k.per_tenant,
        k.per_tenant,
        k.publish_secs,
        customers_by(),
        k.reps
    );
    println!();
    println!("| endpoints registered | publish/s | all runs | CPU µs/publish | load (1 min) |");
    println!("|---:|---:|---|---:|---|");
    for (runs, n) in [(&small, k.per_tenant), (&big, total)] {
        println!(
            "| {n} | {} | {} | {} | {} |",
            harness::show(harness::med(runs, "rate"), harness::rate),
            harness::all(runs, "rate", harness::rate),
            harness::show(harness::med(runs, "cpu_us"), harness::f0),
            harness::all(runs, "load", harness::f1),
        );
    }
    println!();
    println!(
        "{total} / {} endpoints: **{}×** (pairs: {}); target ≥ 0.8×: {}",
        k.per_tenant,
        harness::show(ratio, harness::f2),
        pairs.join(", "),
        harness::check(ratio.map(|r| r >= 0.8)),
    );
    println!();
    rows.push(Row {
        scenario: "10 publish, many customers",
        case: format!("{total} vs {} endpoints", k.per_tenant),
        hookbus: format!(
            "{}/s",
            harness::show(harness::med(&big, "rate"), harness::rate)
        ),
        baseline: format!(
            "{}/s with {} endpoints",
            harness::show(harness::med(&small, "rate"), harness::rate),
            k.per_tenant
        ),
        ratio: format!("{}×", harness::show(ratio, harness::f2)),
        target: format!("≥ 0.8×: {}", harness::check(ratio.map(|r| r >= 0.8))),
        latency: "-".into(),
        rss: "-".into(),
    });
}

fn scenario_9(k: &Knobs, rows: &mut Vec<Row>) {
    let mut runs = Vec::new();
    for rep in 0..k.reps {
        let r = harness::run_task("fleet:customers", &[]);
        eprintln!(
            "rep {}/{} s9 {} customers: peak {:.0} threads ({:.0} senders), RSS peak {:.0} / idle {:.0} MiB, idle CPU {:.2} % / {:.2} % (load {:.2})",
            rep + 1,
            k.reps,
            k.customers,
            r["threads_peak"],
            r["senders_peak"],
            r["rss_peak"],
            r["rss_idle"],
            r["cpu_idle_waiting"],
            r["cpu_idle"],
            r["load"]
        );
        runs.push(r);
    }
    let m = |key: &str| harness::med(&runs, key);
    let f = |key: &str, fmt: fn(f64) -> String| harness::show(m(key), fmt);
    println!(
        "## Scenario 9: one event to each of {} customers, then idle",
        k.customers
    );
    println!();
    println!(
        "One endpoint per customer, customers separated by {}; one event to each \
         from 8 threads; the receiver runs in the same process (its threads: one per open \
         connection plus one, counted in \"threads\" and shown apart). Idle CPU over {:.1} s \
         windows. {} repetition(s), medians.",
        customers_by(),
        k.idle_window.as_secs_f64(),
        k.reps
    );
    println!();
    println!(
        "| add all s | publish/s | all delivered s | peak threads (all) | of them receiver | peak sender threads | all runs | RSS with endpoints MiB | RSS after MiB | peak RSS MiB | idle CPU % right after | senders gone after s | threads once idle | idle CPU % once idle | RSS once idle MiB | complete |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        f("add_s", harness::f1),
        f("publish_rate", harness::rate),
        f("deliver_s", harness::f2),
        f("threads_peak", harness::f0),
        f("recv_threads_peak", harness::f0),
        f("senders_peak", harness::f0),
        harness::all(&runs, "senders_peak", harness::f0),
        f("rss_start", harness::f0),
        f("rss_after", harness::f0),
        f("rss_peak", harness::f0),
        f("cpu_idle_waiting", harness::f2),
        f("senders_exit_s", harness::f1),
        f("threads_idle", harness::f0),
        f("cpu_idle", harness::f2),
        f("rss_idle", harness::f0),
        if runs.iter().all(|r| r.get("complete") == Some(&1.0)) {
            "yes"
        } else {
            "NO"
        },
    );
    println!();
    let senders_ok = runs
        .iter()
        .map(|r| r["senders_peak"] <= POOL_MAX)
        .reduce(|a, b| a && b);
    println!(
        "Sender threads never above {POOL_MAX:.0} (the default maximum) in any run: {}; peak \
         RSS ≤ 150 MiB: {}; RSS once idle ≤ 150 MiB: {}. Load (1 min): {}",
        harness::check(senders_ok),
        harness::check(m("rss_peak").map(|v| v <= 150.0)),
        harness::check(m("rss_idle").map(|v| v <= 150.0)),
        harness::all(&runs, "load", harness::f1),
    );
    println!();
    rows.push(Row {
        scenario: "9 many customers",
        case: format!("{} customers × 1 event", k.customers),
        hookbus: format!(
            "peak {} sender threads, {} in all; idle CPU {} %",
            f("senders_peak", harness::f0),
            f("threads_peak", harness::f0),
            f("cpu_idle", harness::f2)
        ),
        baseline: "-".into(),
        ratio: "-".into(),
        target: format!(
            "senders ≤ {POOL_MAX:.0}: {}; RSS ≤ 150: {}",
            harness::check(senders_ok),
            harness::check(m("rss_peak").map(|v| v <= 150.0))
        ),
        latency: "-".into(),
        rss: format!(
            "{} (idle {})",
            f("rss_peak", harness::f0),
            f("rss_idle", harness::f0)
        ),
    });
}
