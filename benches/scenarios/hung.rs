//! Scenario 11: hung endpoints next to a healthy one. A healthy endpoint
//! (concurrency 4, a loopback receiver answering at once) drains a backlog
//! of 20,000 deliveries, alone, and with 50 or 1,000 hung endpoints
//! (a loopback listener that accepts every connection and never answers;
//! 60 s timeout, so no attempt to them ends during the measurement; three
//! events queued for each).
//!
//! The healthy endpoint answers once before the hung load starts (one
//! warm-up delivery), so it is *proven* in the pool's terms: hung and new
//! endpoints share at most half of the pool, a proven endpoint never waits
//! behind them. Then it is paused, its backlog is published, the hung
//! endpoints are added and their events published, and the clock starts
//! once their attempts have connected (the listener's accept count has
//! been still for 300 ms). The clock runs from `resume_endpoint` until the
//! receiver has seen the whole backlog. Each system in its own process,
//! interleaved per repetition.
//!
//! Targets: ≥ 0.5× the rate alone with 50 hung, ≥ 0.25× with 1,000 (more
//! than the pool's 64 threads).

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hookbus::{Bus, EndpointConfig, Event};

use super::harness::{self, Knobs, Res, Row};
use super::wire::{event_payload, Receiver, SECRET};

/// Accepts connections and holds them open, never reading or answering.
struct Sink {
    port: u16,
    accepted: Arc<AtomicUsize>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let port = listener.local_addr().expect("sink address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (Arc::clone(&accepted), Arc::clone(&held));
        thread::Builder::new()
            .name("bench-sink".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    h.lock().expect("sink lock").push(stream);
                    a.fetch_add(1, Ordering::SeqCst);
                }
            })
            .expect("spawn the sink");
        Sink {
            port,
            accepted,
            held,
        }
    }

    /// Closes every held connection: the hung attempts end at once.
    fn release(&self) {
        self.held.lock().expect("sink lock").clear();
    }
}

pub fn run(hung: usize, k: &Knobs) -> Res {
    let dir = k.temp_dir();
    let recv = Receiver::start(false);
    let sink = Sink::start();
    let bus = Bus::builder(dir.path())
        .allow_network("127.0.0.1/32")
        .open()
        .expect("open the bus");
    let healthy = bus
        .add_endpoint(
            EndpointConfig::new("healthy", recv.url(0))
                .events(["ev.h"])
                .secret(SECRET)
                .concurrency(k.concurrency as u32),
        )
        .expect("add the healthy endpoint")
        .id();
    let payload = event_payload(0);
    let event = |t: &str| Event::from_json_bytes(t, payload.clone()).expect("event");
    // Warm-up: the healthy endpoint answers once (it is then proven).
    bus.publish(event("ev.h")).expect("publish");
    assert!(
        crate::wait_for(Duration::from_secs(30), || recv.stats.count() >= 1),
        "the warm-up delivery never arrived"
    );
    bus.pause_endpoint(healthy).expect("pause");
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < k.healthy {
                    bus.publish(event("ev.h")).expect("publish");
                }
            });
        }
    });
    for i in 0..hung {
        bus.add_endpoint(
            EndpointConfig::new(
                format!("hung{i}"),
                format!("http://127.0.0.1:{}/hung/{i}", sink.port),
            )
            .events(["ev.x"])
            .timeout(Duration::from_secs(60)),
        )
        .expect("add a hung endpoint");
    }
    if hung > 0 {
        for _ in 0..3 {
            bus.publish(event("ev.x")).expect("publish");
        }
        // Until the hung attempts have connected: the accept count still
        // for 300 ms (at most 30 s).
        let t = Instant::now();
        let mut last = (0, Instant::now());
        while t.elapsed() < Duration::from_secs(30) {
            let now = sink.accepted.load(Ordering::SeqCst);
            if now != last.0 {
                last = (now, Instant::now());
            } else if now > 0 && last.1.elapsed() >= Duration::from_millis(300) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    let mut res = Res::new();
    res.insert(
        "hung_conns".into(),
        sink.accepted.load(Ordering::SeqCst) as f64,
    );
    res.insert("load".into(), harness::load1());
    let threads_before = harness::threads_now();
    let base = recv.stats.count();
    let want = base + k.healthy as u64;
    let sampler = harness::Sampler::start(Duration::from_millis(50), None);
    let cpu0 = crate::process_cpu_secs();
    let t = Instant::now();
    bus.resume_endpoint(healthy).expect("resume");
    crate::wait_for(Duration::from_secs(600), || recv.stats.count() >= want);
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu0.zip(crate::process_cpu_secs()).map(|(a, b)| b - a);
    let (_, threads, _) = sampler.finish();
    let got = recv.stats.count() - base;
    res.insert("rate".into(), got as f64 / secs);
    res.insert("secs".into(), secs);
    res.insert(
        "cpu_us".into(),
        cpu.map_or(f64::NAN, |c| c * 1e6 / got.max(1) as f64),
    );
    res.insert("threads_before".into(), threads_before);
    res.insert("threads".into(), threads);
    res.insert(
        "hung_conns_end".into(),
        sink.accepted.load(Ordering::SeqCst) as f64,
    );
    res.insert(
        "complete".into(),
        f64::from(u8::from(got >= k.healthy as u64)),
    );
    sink.release();
    bus.shutdown().expect("shutdown");
    res
}

pub fn scenario_11(k: &Knobs, rows: &mut Vec<Row>) {
    if !k.wants("hookbus") {
        return;
    }
    let cases: Vec<usize> = std::iter::once(0).chain(k.hung.iter().copied()).collect();
    let mut results: Vec<Vec<Res>> = cases.iter().map(|_| Vec::new()).collect();
    for rep in 0..k.reps {
        for (i, &hung) in cases.iter().enumerate() {
            let r = harness::run_task(&format!("s11:{hung}"), &[]);
            eprintln!(
                "rep {}/{} s11 {hung:>5} hung: healthy {}/s over {:.2} s, {:.0} hung connections, peak {:.0} threads (load {:.2})",
                rep + 1,
                k.reps,
                harness::rate(r["rate"]),
                r["secs"],
                r["hung_conns"],
                r["threads"],
                r["load"]
            );
            results[i].push(r);
        }
    }
    let alone = harness::med(&results[0], "rate");
    println!("## Scenario 11: hung endpoints next to a healthy one");
    println!();
    println!(
        "The healthy endpoint (concurrency {}) answers one warm-up delivery first, then drains \
         a backlog of {} with the hung endpoints' attempts (60 s timeout, 3 events each) \
         already connected and waiting. {} repetition(s), interleaved, medians.",
        k.concurrency, k.healthy, k.reps
    );
    println!();
    println!(
        "| hung endpoints | healthy deliveries/s | all runs | × alone | pairs | target | met | hung connections held | peak threads | CPU µs/delivery | load (1 min) |"
    );
    println!("|---:|---:|---|---:|---|---|:---:|---:|---:|---:|---|");
    for (i, &hung) in cases.iter().enumerate() {
        let runs = &results[i];
        let rate = harness::med(runs, "rate");
        let ratio = rate.zip(alone).map(|(r, a)| r / a);
        let bar = if hung == 0 {
            None
        } else if hung <= 64 {
            Some(0.5)
        } else {
            Some(0.25)
        };
        let pairs: Vec<String> = runs
            .iter()
            .zip(&results[0])
            .map(|(r, a)| format!("{:.2}", r["rate"] / a["rate"]))
            .collect();
        let met = bar.and_then(|b| ratio.map(|r| r >= b));
        println!(
            "| {hung} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            harness::show(rate, harness::rate),
            harness::all(runs, "rate", harness::rate),
            harness::show(ratio, harness::f2),
            pairs.join(", "),
            bar.map_or_else(|| "-".into(), |b| format!("≥ {b}×")),
            harness::check(met),
            harness::show(harness::med(runs, "hung_conns_end"), harness::f0),
            harness::show(harness::med(runs, "threads"), harness::f0),
            harness::show(harness::med(runs, "cpu_us"), harness::f0),
            harness::all(runs, "load", harness::f1),
        );
        if hung > 0 {
            rows.push(Row {
                scenario: "11 hung endpoints",
                case: format!("{hung} hung + 1 healthy"),
                hookbus: format!("{}/s", harness::show(rate, harness::rate)),
                baseline: format!("alone {}/s", harness::show(alone, harness::rate)),
                ratio: format!("{}×", harness::show(ratio, harness::f2)),
                target: format!("≥ {}×: {}", bar.unwrap_or(0.0), harness::check(met)),
                latency: "-".into(),
                rss: "-".into(),
            });
        }
    }
    println!();
}
