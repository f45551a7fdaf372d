//! Scenario 2 (delivery throughput of a backlog) and scenario 3
//! (end-to-end latency at a steady offered rate), for hookbus, its
//! baselines and the SQLite peer of scenario 6.
//!
//! Scenario 2, two cases: a backlog of 50,000 deliveries to 1 endpoint
//! (concurrency 4), and to 100 endpoints, 500 each (concurrency 1 each, so
//! 100 sender threads). Systems, each in its own process:
//!
//! - `recv`: the receiver alone, driven by a minimal raw-socket client
//!   with the same number of threads and the same request bytes: the
//!   ceiling of the loopback receiver on this machine.
//! - `fair`: the baseline the target is set against, a plain loop of ureq
//!   POSTs as fast as ureq can be: the same threads, the same bodies
//!   (hookbus's envelope around the same 1 KiB payload), signed the same
//!   way, one agent configured like hookbus's, an IP address, and every
//!   phase of the request bounded (connect 5 s, the rest 15 s each) without
//!   a global timeout, so ureq spawns no thread per request (see
//!   `wire::Timeouts`); no storage.
//! - `plain`: the same loop with hookbus's timeouts (global 15 s, connect
//!   5 s). With a global timeout set, ureq 3.5 resolves the host on a
//!   thread of its own for every request, IP literal and pooled connection
//!   or not, which makes this loop slow and flatters a ratio against it.
//!   (hookbus itself resolves IP literals without that thread.)
//! - `plain0`: the same loop without any timeout (ureq's defaults).
//! - `hookbus`: endpoints paused, the backlog published (not timed), then
//!   the clock runs from `resume_endpoint` until the receiver has seen
//!   every delivery (`rate`); `done_s` is until `stats().delivered` counts
//!   them all too.
//! - `peer`: the SQLite outbox filled with the same backlog (not timed),
//!   then its polling senders start.
//!
//! Scenario 3: one endpoint (concurrency 4); events published at a steady
//! offered rate (each publisher thread takes the next slot of a fixed
//! schedule, sleeps until it, stamps the payload with the wall clock and
//! publishes), and the receiver records receipt minus stamp. One warm-up
//! event is excluded.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hookbus::{Bus, EndpointConfig, EndpointId, Event, EventId};

use super::harness::{self, Knobs, Res, Row};
use super::peer;
use super::wire::{self, event_payload, wall_ns, Receiver, Timeouts, SECRET};

/// The longest a measurement waits for its deliveries.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

pub struct Case {
    pub endpoints: usize,
    pub per_endpoint: usize,
    pub concurrency: usize,
}

impl Case {
    fn total(&self) -> usize {
        self.endpoints * self.per_endpoint
    }

    fn threads(&self) -> usize {
        self.endpoints * self.concurrency
    }

    fn label(&self) -> String {
        format!(
            "{} endpoint{} × {}, concurrency {} ({} threads)",
            self.endpoints,
            if self.endpoints == 1 { "" } else { "s" },
            self.per_endpoint,
            self.concurrency,
            self.threads()
        )
    }
}

pub fn s2_cases(k: &Knobs) -> Vec<Case> {
    vec![
        Case {
            endpoints: 1,
            per_endpoint: k.backlog,
            concurrency: k.concurrency,
        },
        Case {
            endpoints: k.fanout,
            per_endpoint: (k.backlog / k.fanout).max(1),
            concurrency: k.fanout_concurrency,
        },
    ]
}

/// Publishers for scenario 3 at `rate`: enough to keep up while each
/// publish waits for its flush.
fn publishers_for(rate: f64) -> usize {
    ((rate / 200.0).ceil() as usize).clamp(4, 64)
}

// ----- helpers of the measurement processes -----

/// Polls until the receiver has seen `n` requests; `false` on timeout.
fn wait_received(recv: &Receiver, n: u64, limit: Duration) -> bool {
    crate::wait_for(limit, || recv.stats.count() >= n)
}

/// Publishes `total` events from `threads` threads (building a backlog).
pub fn publish_all(bus: &Bus, total: usize, threads: usize, event: impl Fn(usize) -> Event + Sync) {
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                bus.publish(event(i)).expect("publish");
            });
        }
    });
}

fn open_bus(dir: &std::path::Path) -> Bus {
    Bus::builder(dir)
        .allow_network("127.0.0.1/32")
        .open()
        .expect("open the bus")
}

pub fn add_endpoints(bus: &Bus, recv: &Receiver, n: usize, concurrency: usize) -> Vec<EndpointId> {
    (0..n)
        .map(|i| {
            bus.add_endpoint(
                EndpointConfig::new(format!("ep{i}"), recv.url(i))
                    .events([format!("ev.{i}")])
                    .secret(SECRET)
                    .concurrency(concurrency as u32),
            )
            .expect("add an endpoint")
            .id()
        })
        .collect()
}

/// What every timed phase reports: time, CPU, peak RSS, load, connections.
struct Clock {
    started: Instant,
    cpu: Option<f64>,
    load: f64,
}

impl Clock {
    fn start() -> Clock {
        harness::reset_peak_rss();
        Clock {
            load: harness::load1(),
            cpu: crate::process_cpu_secs(),
            started: Instant::now(),
        }
    }

    fn finish(&self, res: &mut Res, events: usize, recv: &Receiver) {
        let cpu = self.cpu.zip(crate::process_cpu_secs()).map(|(a, b)| b - a);
        res.insert(
            "cpu_us".into(),
            cpu.map_or(f64::NAN, |c| c * 1e6 / events.max(1) as f64),
        );
        res.insert("rss".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
        res.insert("load".into(), self.load);
        let st = &recv.stats;
        res.insert("conns".into(), st.connections.load(Ordering::SeqCst) as f64);
        res.insert("bad".into(), st.bad.load(Ordering::SeqCst) as f64);
    }
}

// ----- scenario 2: the measurement processes -----

pub fn run_s2(system: &str, case: &Case, k: &Knobs) -> Res {
    match system {
        "recv" => s2_recv(case),
        "plain" => s2_plain(case, Timeouts::Global),
        "fair" => s2_plain(case, Timeouts::PerPhase),
        "plain0" => s2_plain(case, Timeouts::Off),
        "hookbus" => s2_hookbus(case, k),
        "peer" => s2_peer(case, k),
        other => panic!("unknown scenario 2 system {other}"),
    }
}

fn s2_result(case: &Case, recv: &Receiver, secs: f64) -> Res {
    let got = recv.stats.count();
    let mut res = Res::new();
    res.insert("secs".into(), secs);
    res.insert("rate".into(), got as f64 / secs);
    res.insert(
        "complete".into(),
        f64::from(u8::from(got >= case.total() as u64)),
    );
    res
}

fn s2_recv(case: &Case) -> Res {
    let recv = Receiver::start(false);
    let clock = Clock::start();
    thread::scope(|s| {
        for ep in 0..case.endpoints {
            for part in 0..case.concurrency {
                let share = case.per_endpoint / case.concurrency
                    + usize::from(part < case.per_endpoint % case.concurrency);
                let recv = &recv;
                s.spawn(move || {
                    wire::raw_client(recv.addr, &format!("/ep/{ep}"), share).expect("raw client")
                });
            }
        }
    });
    let mut res = s2_result(case, &recv, clock.started.elapsed().as_secs_f64());
    clock.finish(&mut res, case.total(), &recv);
    res
}

fn s2_plain(case: &Case, timeouts: Timeouts) -> Res {
    let recv = Receiver::start(false);
    let agent = wire::agent();
    let payload = event_payload(0);
    let next: Vec<AtomicUsize> = (0..case.endpoints).map(|_| AtomicUsize::new(0)).collect();
    let failed = AtomicU64::new(0);
    let clock = Clock::start();
    thread::scope(|s| {
        for ep in 0..case.endpoints {
            for _ in 0..case.concurrency {
                let (recv, agent, payload, next, failed) =
                    (&recv, &agent, &payload, &next, &failed);
                s.spawn(move || {
                    let url = recv.url(ep);
                    let event_type = format!("ev.{ep}");
                    loop {
                        let i = next[ep].fetch_add(1, Ordering::Relaxed);
                        if i >= case.per_endpoint {
                            break;
                        }
                        let n = (ep * case.per_endpoint + i) as u128;
                        let id = EventId::from_u128((1 << 100) + n).to_string();
                        let body = wire::envelope(&id, &event_type, payload);
                        if !wire::post_with(agent, &url, &id, &body, timeouts) {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    });
    let mut res = s2_result(case, &recv, clock.started.elapsed().as_secs_f64());
    clock.finish(&mut res, case.total(), &recv);
    res.insert("failed".into(), failed.load(Ordering::Relaxed) as f64);
    res
}

fn s2_hookbus(case: &Case, k: &Knobs) -> Res {
    let dir = k.temp_dir();
    let recv = Receiver::start(false);
    let bus = open_bus(dir.path());
    let eps = add_endpoints(&bus, &recv, case.endpoints, case.concurrency);
    for ep in &eps {
        bus.pause_endpoint(*ep).expect("pause");
    }
    let built = Instant::now();
    let payload = event_payload(0);
    publish_all(&bus, case.total(), 8, |i| {
        Event::from_json_bytes(format!("ev.{}", i % case.endpoints), payload.clone())
            .expect("event")
    });
    let build_secs = built.elapsed().as_secs_f64();
    let queued: usize = eps
        .iter()
        .map(|e| bus.queue_depth(*e).expect("depth"))
        .sum();
    assert_eq!(queued, case.total(), "the whole backlog is queued");

    let clock = Clock::start();
    for ep in &eps {
        bus.resume_endpoint(*ep).expect("resume");
    }
    let resume_ms = clock.started.elapsed().as_secs_f64() * 1e3;
    wait_received(&recv, case.total() as u64, DRAIN_LIMIT);
    let secs = clock.started.elapsed().as_secs_f64();
    let total = case.total() as u64;
    crate::wait_for(Duration::from_secs(30), || bus.stats().delivered >= total);
    let done = clock.started.elapsed().as_secs_f64();
    let mut res = s2_result(case, &recv, secs);
    clock.finish(&mut res, case.total(), &recv);
    let stats = bus.stats();
    res.insert("done_s".into(), done);
    res.insert("resume_ms".into(), resume_ms);
    res.insert("build_rate".into(), case.total() as f64 / build_secs);
    res.insert("failed".into(), stats.failed as f64);
    res.insert("attempts".into(), stats.attempts as f64);
    bus.shutdown().expect("shutdown");
    res
}

fn s2_peer(case: &Case, k: &Knobs) -> Res {
    let dir = k.temp_dir();
    let path = dir.path().join("outbox.db");
    peer::create(&path);
    peer::fill(&path, case.total(), case.endpoints);
    let recv = Receiver::start(false);
    let agent = wire::agent();
    let stop = AtomicBool::new(false);
    let clock = Clock::start();
    let mut secs = 0.0;
    let mut done = 0.0;
    thread::scope(|s| {
        for ep in 0..case.endpoints {
            for part in 0..case.concurrency {
                let sender = peer::Sender {
                    path: &path,
                    agent: &agent,
                    url: recv.url(ep),
                    endpoint: ep,
                    part,
                    parts: case.concurrency,
                    poll: k.peer_poll,
                    stop: &stop,
                };
                s.spawn(move || sender.run());
            }
        }
        wait_received(&recv, case.total() as u64, DRAIN_LIMIT);
        secs = clock.started.elapsed().as_secs_f64();
        let conn = peer::connect(&path, false);
        crate::wait_for(Duration::from_secs(30), || peer::pending(&conn) == 0);
        done = clock.started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
    });
    let mut res = s2_result(case, &recv, secs);
    clock.finish(&mut res, case.total(), &recv);
    res.insert("done_s".into(), done);
    res
}

// ----- scenario 3: the measurement processes -----

pub fn run_s3(system: &str, rate: f64, k: &Knobs) -> Res {
    let recv = Receiver::start(true);
    let total = (rate * k.e2e_secs).round().max(1.0) as usize;
    let publishers = publishers_for(rate);
    let dir = k.temp_dir();
    let stop = AtomicBool::new(false);
    let agent = wire::agent();
    let path = dir.path().join("outbox.db");
    let bus = (system == "hookbus").then(|| {
        let bus = open_bus(dir.path());
        bus.add_endpoint(
            EndpointConfig::new("ep0", recv.url(0))
                .secret(SECRET)
                .concurrency(k.concurrency as u32),
        )
        .expect("add the endpoint");
        bus
    });
    if system == "peer" {
        peer::create(&path);
    }
    let publish_one = |conn: Option<&mut rusqlite::Connection>| {
        let payload = event_payload(wall_ns());
        match (&bus, conn) {
            (Some(bus), _) => {
                bus.publish(Event::from_json_bytes("ev.0", payload).expect("event"))
                    .expect("publish");
            }
            (None, Some(conn)) => peer::publish(conn, 0, "ev.0", &payload),
            (None, None) => unreachable!("a system to publish to"),
        }
    };
    let connect = || (system == "peer").then(|| peer::connect(&path, k.peer_full_sync));

    let mut res = Res::new();
    thread::scope(|s| {
        if system == "peer" {
            for part in 0..k.concurrency {
                let sender = peer::Sender {
                    path: &path,
                    agent: &agent,
                    url: recv.url(0),
                    endpoint: 0,
                    part,
                    parts: k.concurrency,
                    poll: k.peer_poll,
                    stop: &stop,
                };
                s.spawn(move || sender.run());
            }
        }
        // Warm-up: one event, delivered before the clock starts.
        publish_one(connect().as_mut());
        assert!(
            wait_received(&recv, 1, Duration::from_secs(30)),
            "the warm-up event was never delivered"
        );

        let next = AtomicUsize::new(0);
        let max_lag_ns = AtomicU64::new(0);
        let clock = Clock::start();
        let start = clock.started + Duration::from_millis(20);
        thread::scope(|p| {
            for _ in 0..publishers {
                let (next, max_lag_ns, publish_one, connect) =
                    (&next, &max_lag_ns, &publish_one, &connect);
                p.spawn(move || {
                    let mut conn = connect();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let due = start + Duration::from_secs_f64(i as f64 / rate);
                        let now = Instant::now();
                        if due > now {
                            thread::sleep(due - now);
                        } else {
                            max_lag_ns.fetch_max((now - due).as_nanos() as u64, Ordering::Relaxed);
                        }
                        publish_one(conn.as_mut());
                    }
                });
            }
        });
        let publish_secs = start.elapsed().as_secs_f64();
        let limit = Duration::from_secs_f64((k.e2e_secs * 4.0).max(30.0));
        wait_received(&recv, total as u64 + 1, limit);
        let drained = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);

        let latencies: Vec<u64> = recv.stats.latencies().into_iter().skip(1).collect();
        let received = latencies.len();
        let (p50, p99, max) = wire::percentiles_ms(latencies);
        res.insert("p50".into(), p50);
        res.insert("p99".into(), p99);
        res.insert("max".into(), max);
        res.insert("offered".into(), rate);
        res.insert("published_rate".into(), total as f64 / publish_secs);
        res.insert(
            "max_lag_ms".into(),
            max_lag_ns.load(Ordering::Relaxed) as f64 / 1e6,
        );
        res.insert("delivered_frac".into(), received as f64 / total as f64);
        res.insert("drain_s".into(), drained);
        res.insert("publishers".into(), publishers as f64);
        clock.finish(&mut res, total, &recv);
    });
    if let Some(bus) = bus {
        bus.shutdown().expect("shutdown");
    }
    res
}

// ----- the parent: run, tabulate -----

const S2_SYSTEMS: [(&str, &str); 6] = [
    ("recv", "receiver alone (raw client)"),
    ("fair", "plain ureq loop, fair (baseline)"),
    ("plain", "plain ureq loop, global timeout"),
    ("plain0", "plain ureq loop, no timeouts"),
    ("hookbus", "hookbus"),
    ("peer", "SQLite outbox + pollers (peer)"),
];

pub fn scenario_2(k: &Knobs, rows: &mut Vec<Row>) {
    let cases = s2_cases(k);
    let systems: Vec<_> = S2_SYSTEMS.iter().filter(|(s, _)| k.wants(s)).collect();
    let mut results: Vec<Vec<Vec<Res>>> = cases
        .iter()
        .map(|_| systems.iter().map(|_| Vec::new()).collect())
        .collect();
    for rep in 0..k.reps {
        for (ci, case) in cases.iter().enumerate() {
            for (si, (sys, label)) in systems.iter().enumerate() {
                let r = harness::run_task(&format!("s2:{sys}:{ci}"), &[]);
                eprintln!(
                    "rep {}/{} s2 {:<32} {:<44} {:>8} deliveries/s in {:.2} s (load {:.2})",
                    rep + 1,
                    k.reps,
                    label,
                    case.label(),
                    harness::rate(r["rate"]),
                    r["secs"],
                    r["load"],
                );
                results[ci][si].push(r);
            }
        }
    }

    println!("## Scenario 2: delivery throughput of a backlog");
    println!();
    println!(
        "Backlog of {} deliveries, 1 KiB payload in hookbus's standard envelope, Standard \
         Webhooks signature, loopback keep-alive receiver answering 200 at once. Clock: \
         from resume_endpoint (hookbus) / sender start (peer, baseline) until the receiver \
         saw every request. \"done s\": until hookbus's stats (or the peer's table) show all \
         delivered. {} repetition(s), medians of each column.",
        k.backlog, k.reps
    );
    println!();
    println!(
        "| case | system | deliveries/s | all runs | done s | CPU µs/delivery | peak RSS MiB | connections opened | complete | load (1 min) |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|:---:|---:|");
    for (ci, case) in cases.iter().enumerate() {
        for (si, (_, label)) in systems.iter().enumerate() {
            let runs = &results[ci][si];
            let done = harness::med(runs, "done_s").or(harness::med(runs, "secs"));
            let complete = runs.iter().all(|r| r.get("complete") == Some(&1.0));
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                case.label(),
                label,
                harness::show(harness::med(runs, "rate"), harness::rate),
                harness::all(runs, "rate", harness::rate),
                harness::show(done, harness::f2),
                harness::show(harness::med(runs, "cpu_us"), harness::f0),
                harness::show(harness::med(runs, "rss"), harness::f0),
                harness::show(harness::med(runs, "conns"), harness::f0),
                if complete { "yes" } else { "NO" },
                harness::all(runs, "load", harness::f1),
            );
        }
    }
    println!();
    println!(
        "| case | hookbus / fair plain loop | target ≥ 0.60 | hookbus / loop with global timeout | hookbus / loop without timeouts | hookbus / SQLite peer | receiver alone / fair loop | CPU µs/delivery hookbus / fair | hookbus backlog build (publish/s, 8 threads) |"
    );
    println!("|---|---:|:---:|---:|---:|---:|---:|---|---:|");
    for (ci, case) in cases.iter().enumerate() {
        let m = |sys: &str, key: &str| {
            systems
                .iter()
                .position(|(s, _)| *s == sys)
                .and_then(|si| harness::med(&results[ci][si], key))
        };
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let hook = m("hookbus", "rate");
        let vs_fair = ratio(hook, m("fair", "rate"));
        let vs_plain = ratio(hook, m("plain", "rate"));
        let vs_plain0 = ratio(hook, m("plain0", "rate"));
        let vs_peer = ratio(hook, m("peer", "rate"));
        let headroom = ratio(m("recv", "rate"), m("fair", "rate"));
        let met = harness::check(vs_fair.map(|r| r >= 0.6));
        println!(
            "| {} | {} | {met} | {} | {} | {} | {} | {} / {} | {} |",
            case.label(),
            harness::show(vs_fair, harness::f2),
            harness::show(vs_plain, harness::f2),
            harness::show(vs_plain0, harness::f2),
            harness::show(vs_peer, harness::f2),
            harness::show(headroom, harness::f2),
            harness::show(m("hookbus", "cpu_us"), harness::f0),
            harness::show(m("fair", "cpu_us"), harness::f0),
            harness::show(m("hookbus", "build_rate"), harness::rate),
        );
        rows.push(Row {
            scenario: "2 delivery",
            case: case.label(),
            hookbus: format!("{}/s", harness::show(hook, harness::rate)),
            baseline: format!(
                "fair plain loop {}/s (global timeout {}/s, none {}/s); peer {}/s; receiver alone {}/s",
                harness::show(m("fair", "rate"), harness::rate),
                harness::show(m("plain", "rate"), harness::rate),
                harness::show(m("plain0", "rate"), harness::rate),
                harness::show(m("peer", "rate"), harness::rate),
                harness::show(m("recv", "rate"), harness::rate),
            ),
            ratio: format!(
                "{} of the fair loop ({} of the global-timeout loop); {}× peer",
                harness::show(vs_fair, harness::f2),
                harness::show(vs_plain, harness::f2),
                harness::show(vs_peer, harness::f2)
            ),
            target: format!("≥ 0.60 of the fair loop: {met}"),
            latency: "-".into(),
            rss: format!(
                "{} (fair loop {})",
                harness::show(m("hookbus", "rss"), harness::f0),
                harness::show(m("fair", "rss"), harness::f0)
            ),
        });
    }
    println!();
}

pub fn scenario_3(k: &Knobs, rows: &mut Vec<Row>) {
    let systems: Vec<(&str, &str)> = [
        ("hookbus", "hookbus"),
        ("peer", "SQLite outbox + pollers (peer)"),
    ]
    .into_iter()
    .filter(|(s, _)| k.wants(s))
    .collect();
    let mut results: Vec<Vec<Vec<Res>>> = k
        .rates
        .iter()
        .map(|_| systems.iter().map(|_| Vec::new()).collect())
        .collect();
    for rep in 0..k.reps {
        for (ri, rate) in k.rates.iter().enumerate() {
            for (si, (sys, label)) in systems.iter().enumerate() {
                let r = harness::run_task(&format!("s3:{sys}:{ri}"), &[]);
                eprintln!(
                    "rep {}/{} s3 {:<32} offered {:>6}/s: published {:>8}/s, p50 {} ms, p99 {} ms, {:.0}% delivered (load {:.2})",
                    rep + 1,
                    k.reps,
                    label,
                    rate,
                    harness::rate(r["published_rate"]),
                    harness::ms(r["p50"]),
                    harness::ms(r["p99"]),
                    r["delivered_frac"] * 100.0,
                    r["load"],
                );
                results[ri][si].push(r);
            }
        }
    }

    println!("## Scenario 3: end-to-end latency at a steady offered rate");
    println!();
    println!(
        "One endpoint, concurrency {}; {:.1} s of publishing at each offered rate from \
         ceil(rate/200) (4 to 64) publisher threads on a fixed schedule; the payload carries \
         the wall clock taken just before publish; the receiver records receipt minus that. \
         \"published/s\" below the offered rate (or a large publish lag) means publishing \
         did not keep up; \"drained after\" well past the publishing time means delivery did \
         not. Peer: polls every {} ms when idle, INSERTs with \
         synchronous={}. {} repetition(s), medians of each column.",
        k.concurrency,
        k.e2e_secs,
        k.peer_poll.as_millis(),
        if k.peer_full_sync { "FULL" } else { "NORMAL" },
        k.reps
    );
    println!();
    println!(
        "| offered/s | system | published/s | delivered | p50 ms | p99 ms | max ms | max publish lag ms | drained after s | CPU µs/event | peak RSS MiB | load (1 min) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (ri, rate) in k.rates.iter().enumerate() {
        for (si, (_, label)) in systems.iter().enumerate() {
            let runs = &results[ri][si];
            println!(
                "| {} | {} | {} | {}% | {} | {} | {} | {} | {} | {} | {} | {} |",
                harness::rate(*rate),
                label,
                harness::show(harness::med(runs, "published_rate"), harness::rate),
                harness::show(
                    harness::med(runs, "delivered_frac").map(|f| f * 100.0),
                    harness::f0
                ),
                harness::show(harness::med(runs, "p50"), harness::ms),
                harness::show(harness::med(runs, "p99"), harness::ms),
                harness::show(harness::med(runs, "max"), harness::ms),
                harness::show(harness::med(runs, "max_lag_ms"), harness::ms),
                harness::show(harness::med(runs, "drain_s"), harness::f2),
                harness::show(harness::med(runs, "cpu_us"), harness::f0),
                harness::show(harness::med(runs, "rss"), harness::f0),
                harness::all(runs, "load", harness::f1),
            );
        }
    }
    println!();
    for (ri, rate) in k.rates.iter().enumerate() {
        let m = |sys: &str, key: &str| {
            systems
                .iter()
                .position(|(s, _)| *s == sys)
                .and_then(|si| harness::med(&results[ri][si], key))
        };
        // Sustained: publishers kept to the schedule, and the deliveries
        // kept up (drained within half a second of the last publish).
        let sustained = |sys: &str| {
            m(sys, "published_rate").is_some_and(|p| p >= 0.95 * rate)
                && m(sys, "delivered_frac").is_some_and(|d| d >= 0.999)
                && m(sys, "drain_s").is_some_and(|d| d <= k.e2e_secs + 0.5)
        };
        let ratio = |key: &str| m("hookbus", key).zip(m("peer", key)).map(|(h, p)| h / p);
        let lat = |sys: &str| {
            format!(
                "{} / {} ms",
                harness::show(m(sys, "p50"), harness::ms),
                harness::show(m(sys, "p99"), harness::ms)
            )
        };
        rows.push(Row {
            scenario: "3 end-to-end",
            case: format!("{}/s offered", harness::rate(*rate)),
            hookbus: format!(
                "{}/s published, drained {} s after the start",
                harness::show(m("hookbus", "published_rate"), harness::rate),
                harness::show(m("hookbus", "drain_s"), harness::f1),
            ),
            baseline: match m("peer", "published_rate") {
                Some(p) => format!(
                    "peer {}/s published{}, p50/p99 {}",
                    harness::rate(p),
                    if sustained("peer") {
                        ""
                    } else {
                        " (NOT sustained)"
                    },
                    lat("peer")
                ),
                None => "-".into(),
            },
            ratio: format!(
                "latency hookbus/peer: p50 {}, p99 {}",
                harness::show(ratio("p50"), harness::f2),
                harness::show(ratio("p99"), harness::f2)
            ),
            target: format!(
                "sustained: {}",
                if sustained("hookbus") { "yes" } else { "NO" }
            ),
            latency: lat("hookbus"),
            rss: harness::show(m("hookbus", "rss"), harness::f0),
        });
    }
}
