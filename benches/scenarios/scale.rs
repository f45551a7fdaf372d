//! Scenario 5: many endpoints. 1,000 and 10,000 endpoints (default
//! concurrency 2), each subscribed to its own event type, on one loopback
//! receiver; each gets a little traffic: `rounds` rounds of one event to
//! every endpoint (published from 8 threads), each round delivered before
//! the next. Then traffic stops, and the process is read:
//!
//! - threads (`/proc/self/status`, sampled every 20 ms for the peak; the
//!   sender threads, named `hookbus-send-*`, counted from
//!   `/proc/self/task/*/comm` after the traffic and after they time out);
//! - RSS (VmRSS after the traffic and once idle; VmHWM for the peak);
//! - idle CPU (utime + stime of the whole process from `/proc/self/stat`)
//!   over a window right after the traffic, while the sender threads wait
//!   for work, and over another once they have exited;
//! - the time to add the endpoints, and to reopen the bus with them.
//!
//! `sender_idle_timeout` is the default 30 s (`HOOKBUS_BENCH_IDLE_TIMEOUT_S`
//! changes it), so the first idle window sees every sender thread alive and
//! waiting, as long as a round takes less than that. The process also holds the
//! receiver: one thread per open connection (`bench-recv`), at most 64 idle
//! ones kept by the senders' connection pool.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hookbus::{Bus, EndpointConfig, Event};

use super::harness::{self, Knobs, Res, Row};
use super::wire::{event_payload, Receiver, SECRET};

pub fn run(n: usize, k: &Knobs) -> Res {
    let dir = k.temp_dir();
    let recv = Receiver::start(false);
    let builder = Bus::builder(dir.path())
        .allow_network("127.0.0.1/32")
        .sender_idle_timeout(k.idle_timeout);
    let bus = builder.clone().open().expect("open the bus");
    let mut res = Res::new();
    res.insert("load".into(), harness::load1());

    let t = Instant::now();
    for i in 0..n {
        bus.add_endpoint(
            EndpointConfig::new(format!("ep{i}"), recv.url(i))
                .events([format!("ev.{i}")])
                .secret(SECRET),
        )
        .expect("add an endpoint");
    }
    res.insert("add_s".into(), t.elapsed().as_secs_f64());
    res.insert("threads_idle_start".into(), harness::threads_now());
    res.insert("rss_start".into(), harness::rss_mib());

    // Peak thread count, sampled.
    let peak = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let payload = event_payload(0);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(harness::threads_now() as usize, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        });
        let mut publish_secs = 0.0;
        let mut deliver_secs = 0.0;
        for round in 0..k.scale_rounds {
            let t = Instant::now();
            let next = AtomicUsize::new(0);
            thread::scope(|p| {
                for _ in 0..8 {
                    p.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let event = Event::from_json_bytes(format!("ev.{i}"), payload.clone())
                            .expect("event");
                        bus.publish(event).expect("publish");
                    });
                }
            });
            publish_secs += t.elapsed().as_secs_f64();
            let want = (n * (round + 1)) as u64;
            crate::wait_for(Duration::from_secs(300), || recv.stats.count() >= want);
            deliver_secs += t.elapsed().as_secs_f64();
        }
        let rounds = k.scale_rounds as f64;
        res.insert("publish_rate".into(), n as f64 * rounds / publish_secs);
        res.insert("round_s".into(), deliver_secs / rounds);
        let total = (n * k.scale_rounds) as u64;
        crate::wait_for(Duration::from_secs(30), || bus.stats().delivered >= total);
        stop.store(true, Ordering::Relaxed);
    });
    res.insert(
        "recv_peak_conns".into(),
        recv.stats.peak_open.load(Ordering::SeqCst) as f64,
    );
    res.insert(
        "conns".into(),
        recv.stats.connections.load(Ordering::SeqCst) as f64,
    );

    // Right after the traffic: sender threads still alive, waiting.
    let after = harness::threads_now();
    res.insert("threads_after".into(), after);
    let peak = (peak.load(Ordering::Relaxed) as f64).max(after);
    res.insert("threads_peak".into(), peak);
    res.insert(
        "senders_after".into(),
        harness::threads_named("hookbus-send") as f64,
    );
    res.insert("rss_after".into(), harness::rss_mib());
    res.insert(
        "cpu_idle_waiting".into(),
        harness::cpu_percent_over(k.idle_window),
    );

    // Once the sender threads have timed out.
    // Polled every 100 ms: reading thousands of thread names costs CPU.
    let t = Instant::now();
    while harness::threads_named("hookbus-send") > 0
        && t.elapsed() < k.idle_timeout + Duration::from_secs(30)
    {
        thread::sleep(Duration::from_millis(100));
    }
    res.insert("senders_exit_s".into(), t.elapsed().as_secs_f64());
    res.insert("threads_idle".into(), harness::threads_now());
    res.insert(
        "senders_idle".into(),
        harness::threads_named("hookbus-send") as f64,
    );
    res.insert("cpu_idle".into(), harness::cpu_percent_over(k.idle_window));
    res.insert("rss_idle".into(), harness::rss_mib());
    res.insert("rss".into(), crate::peak_rss_mib().unwrap_or(f64::NAN));
    let delivered = bus.stats().delivered;
    res.insert(
        "complete".into(),
        f64::from(u8::from(delivered >= (n * k.scale_rounds) as u64)),
    );
    bus.shutdown().expect("shutdown");
    drop(bus);

    let t = Instant::now();
    let bus = builder.open().expect("reopen the bus");
    res.insert("reopen_ms".into(), t.elapsed().as_secs_f64() * 1e3);
    bus.shutdown().expect("shutdown");
    res
}

pub fn scenario_5(k: &Knobs, rows: &mut Vec<Row>) {
    if !k.wants("hookbus") {
        return;
    }
    let mut results: Vec<Vec<Res>> = k.scale.iter().map(|_| Vec::new()).collect();
    for rep in 0..k.reps {
        for (i, n) in k.scale.iter().enumerate() {
            let r = harness::run_task(&format!("s5:{i}"), &[]);
            eprintln!(
                "rep {}/{} s5 {n:>6} endpoints: peak {} threads, {} senders after traffic, {} once idle; idle CPU {:.2}% / {:.2}% (load {:.2})",
                rep + 1,
                k.reps,
                r["threads_peak"],
                r["senders_after"],
                r["senders_idle"],
                r["cpu_idle_waiting"],
                r["cpu_idle"],
                r["load"],
            );
            results[i].push(r);
        }
    }
    println!("## Scenario 5: many endpoints");
    println!();
    println!(
        "Each endpoint gets {} event(s), one round at a time; default concurrency (2); \
         sender_idle_timeout {:.1} s (the default is 30 s); idle CPU read over {:.1} s windows, \
         in % of one core, for the whole process (receiver included). {} repetition(s), \
         medians of each column.",
        k.scale_rounds,
        k.idle_timeout.as_secs_f64(),
        k.idle_window.as_secs_f64(),
        k.reps
    );
    println!();
    println!(
        "| endpoints | add all s | RSS with endpoints added MiB | publish/s | round delivered s | peak threads | sender threads after traffic | receiver conns peak | RSS after traffic MiB | peak RSS MiB | idle CPU %, senders waiting | senders exit after s | threads once idle | idle CPU %, once idle | RSS once idle MiB | reopen ms | complete | load (1 min) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|");
    for (i, n) in k.scale.iter().enumerate() {
        let runs = &results[i];
        let m = |key: &str, f: fn(f64) -> String| harness::show(harness::med(runs, key), f);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m("add_s", harness::f2),
            m("rss_start", harness::f0),
            m("publish_rate", harness::rate),
            m("round_s", harness::f2),
            m("threads_peak", harness::f0),
            m("senders_after", harness::f0),
            m("recv_peak_conns", harness::f0),
            m("rss_after", harness::f0),
            m("rss", harness::f0),
            m("cpu_idle_waiting", harness::f2),
            m("senders_exit_s", harness::f1),
            m("threads_idle", harness::f0),
            m("cpu_idle", harness::f2),
            m("rss_idle", harness::f0),
            m("reopen_ms", harness::ms),
            if runs.iter().all(|r| r.get("complete") == Some(&1.0)) { "yes" } else { "NO" },
            harness::all(runs, "load", harness::f1),
        );
        let idle = harness::med(runs, "cpu_idle_waiting")
            .zip(harness::med(runs, "cpu_idle"))
            .map(|(a, b)| a.max(b));
        let met = match idle {
            Some(c) if c <= 1.0 => "yes",
            Some(_) => "NO",
            None => "-",
        };
        rows.push(Row {
            scenario: "5 endpoints",
            case: format!("{n} endpoints × {} events", k.scale_rounds),
            hookbus: format!(
                "peak {} threads ({} senders), {} once idle; publish {}/s",
                m("threads_peak", harness::f0),
                m("senders_after", harness::f0),
                m("threads_idle", harness::f0),
                m("publish_rate", harness::rate),
            ),
            baseline: "-".into(),
            ratio: "-".into(),
            target: format!(
                "idle CPU ~0: {} % / {} %: {met}",
                m("cpu_idle_waiting", harness::f2),
                m("cpu_idle", harness::f2)
            ),
            latency: "-".into(),
            rss: format!(
                "{} (idle {})",
                m("rss", harness::f0),
                m("rss_idle", harness::f0)
            ),
        });
    }
    println!();
}
