//! Soak test: does the database stay bounded when retention is on?
//!
//! ```text
//! cargo bench --bench soak                          # 120 s per phase
//! HOOKBUS_SOAK_SECS=60 cargo bench --bench soak     # 60 s per phase
//! HOOKBUS_BENCH_SMOKE=1 cargo bench --bench soak    # a few seconds, for CI
//! ```
//!
//! Publishes 1 KiB events at a steady rate (`HOOKBUS_SOAK_RATE`, default
//! 200 events/s) for a fixed time, and delivers each of them to 2 endpoints
//! on a loopback receiver (tiny_http, keep-alive, a few handler threads)
//! that answers 200 to everything. It runs twice, each time in a fresh
//! temporary directory and in a process of its own (so the second phase's
//! memory figures do not inherit the first one's heap):
//!
//! 1. retention on, short: delivered events are purged 10 s after publish,
//!    the janitor runs every second;
//! 2. retention off (`retention(None)`): everything is kept, for comparison.
//!
//! Every ~10 % of a phase it prints the elapsed time, events published,
//! deliveries made (`Bus::stats`), deliveries queued, the database size as
//! sled reports it (`Bus::size_on_disk`), the size of the directory's files
//! (summed lengths, and the blocks actually allocated), and the process's
//! resident memory (VmRSS). At the end it prints start, middle and end
//! figures of both phases side by side, and whether each size stayed
//! bounded: the end figure within 25 % of the middle one. With retention on
//! the store should stop growing once the first events age out (after
//! 10 s); with it off it grows with every event.
//!
//! Unknown arguments (`cargo bench` passes `--bench`) are ignored.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hookbus::{Bus, EndpointConfig, Event};

const PAYLOAD_BYTES: usize = 1024;
const ENDPOINTS: usize = 2;
const DEFAULT_SECS: f64 = 120.0;
/// Each phase in smoke mode; with start-up and draining the whole run
/// takes about 5 s.
const SMOKE_SECS: f64 = 2.0;
const DEFAULT_RATE: f64 = 200.0;
const RETENTION: Duration = Duration::from_secs(10);
const JANITOR_INTERVAL: Duration = Duration::from_secs(1);
/// Samples per phase after the one at the start: one every 10 %.
const SAMPLES: usize = 10;
/// How much the end figure may exceed the middle one and still count as
/// bounded. Sled's log-structured files move in segments, so sizes wobble.
const BOUNDED_SLACK: f64 = 1.25;
/// The longest a phase waits, after publishing, for its queues to empty.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Set on the child processes: which phase to run.
const CHILD_VAR: &str = "HOOKBUS_SOAK_PHASE";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    RetentionOn,
    RetentionOff,
}

impl Phase {
    const ALL: [Phase; 2] = [Phase::RetentionOn, Phase::RetentionOff];

    fn name(self) -> &'static str {
        match self {
            Phase::RetentionOn => "on",
            Phase::RetentionOff => "off",
        }
    }

    fn label(self) -> String {
        match self {
            Phase::RetentionOn => format!("retention {} s", RETENTION.as_secs()),
            Phase::RetentionOff => "retention off".to_string(),
        }
    }

    fn retention(self) -> Option<Duration> {
        match self {
            Phase::RetentionOn => Some(RETENTION),
            Phase::RetentionOff => None,
        }
    }
}

struct Settings {
    duration: Duration,
    rate: f64,
    smoke: bool,
}

fn settings() -> Settings {
    let smoke = std::env::var("HOOKBUS_BENCH_SMOKE")
        .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
        || std::env::args().any(|a| a == "--smoke");
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
    };
    let secs = if smoke {
        SMOKE_SECS
    } else {
        number("HOOKBUS_SOAK_SECS").unwrap_or(DEFAULT_SECS)
    };
    Settings {
        duration: Duration::from_secs_f64(secs),
        rate: number("HOOKBUS_SOAK_RATE").unwrap_or(DEFAULT_RATE),
        smoke,
    }
}

/// What one look at a running phase found.
#[derive(Clone, Copy, Debug)]
struct Sample {
    elapsed: Duration,
    published: u64,
    delivered: u64,
    queued: usize,
    /// `Bus::size_on_disk`: what sled reports.
    db_bytes: u64,
    /// The directory's files: summed lengths, and blocks allocated.
    dir_len: u64,
    dir_alloc: u64,
    rss_bytes: u64,
}

impl Sample {
    /// One line for the parent process to read back.
    fn encode(&self) -> String {
        format!(
            "SAMPLE {} {} {} {} {} {} {} {}",
            self.elapsed.as_millis(),
            self.published,
            self.delivered,
            self.queued,
            self.db_bytes,
            self.dir_len,
            self.dir_alloc,
            self.rss_bytes
        )
    }

    fn decode(line: &str) -> Option<Sample> {
        let f: Vec<u64> = line
            .split_whitespace()
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        let [ms, published, delivered, queued, db, len, alloc, rss] = f[..] else {
            return None;
        };
        Some(Sample {
            elapsed: Duration::from_millis(ms),
            published,
            delivered,
            queued: queued as usize,
            db_bytes: db,
            dir_len: len,
            dir_alloc: alloc,
            rss_bytes: rss,
        })
    }
}

fn main() {
    let settings = settings();
    if let Ok(phase) = std::env::var(CHILD_VAR) {
        let phase = Phase::ALL
            .into_iter()
            .find(|p| p.name() == phase)
            .unwrap_or_else(|| panic!("unknown phase {phase:?}"));
        run_phase(phase, &settings);
        return;
    }
    let started = Instant::now();
    println!(
        "hookbus soak: {:.0} s per phase{}, {:.0} events/s of {PAYLOAD_BYTES} B, {ENDPOINTS} endpoints, \
         janitor every {} s",
        settings.duration.as_secs_f64(),
        if settings.smoke { " (smoke)" } else { "" },
        settings.rate,
        JANITOR_INTERVAL.as_secs()
    );
    let mut results = Vec::new();
    for phase in Phase::ALL {
        println!("\n== {} ==", phase.label());
        results.push((phase, run_child(phase)));
    }
    print_summary(&results, settings.duration);
    println!("\ntotal run time {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs one phase in a child process (this same binary), echoing its
/// output, and returns its samples.
fn run_child(phase: Phase) -> Vec<Sample> {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_VAR, phase.name())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the phase's process");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut samples = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the phase's output");
        match line.strip_prefix("SAMPLE ") {
            Some(data) => samples
                .push(Sample::decode(data).unwrap_or_else(|| panic!("unreadable sample: {line}"))),
            None => println!("{line}"),
        }
    }
    let status = child.wait().expect("wait for the phase's process");
    assert!(status.success(), "phase {} failed: {status}", phase.label());
    assert!(
        samples.len() >= 2,
        "phase {} reported too few samples",
        phase.label()
    );
    samples
}

// ----- one phase, in its own process -----

fn run_phase(phase: Phase, settings: &Settings) {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let bus = Bus::builder(dir.path())
        // The receiver is on 127.0.0.1, which the SSRF guard refuses by default.
        .allow_private_networks(true)
        .retention(phase.retention())
        .janitor_interval(JANITOR_INTERVAL)
        .retry_delays([Duration::from_millis(100)])
        .timeout(Duration::from_secs(5))
        // One connection per endpoint: tiny_http serves each keep-alive
        // connection on one of 4 pre-started threads, and a burst of more
        // new connections than that can leave one unserved until it times
        // out (a tiny_http limit, not hookbus's). One delivery at a time
        // still keeps up with the publish rate on loopback.
        .concurrency(1)
        .open()
        .expect("open the bus");
    for i in 0..ENDPOINTS {
        bus.add_endpoint(EndpointConfig::new(
            format!("soak-{i}"),
            receiver.url(&format!("/hook/{i}")),
        ))
        .expect("add an endpoint");
    }
    let payload = payload();
    let started = Instant::now();

    let sampler = {
        let (bus, path) = (bus.clone(), dir.path().to_path_buf());
        let duration = settings.duration;
        thread::spawn(move || {
            println!(
                "{:>7} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>8}",
                "elapsed",
                "published",
                "delivered",
                "queued",
                "db size",
                "dir len",
                "dir alloc",
                "RSS"
            );
            for i in 0..=SAMPLES {
                let at = duration.mul_f64(i as f64 / SAMPLES as f64);
                thread::sleep(at.saturating_sub(started.elapsed()));
                let sample = take_sample(&bus, &path, started.elapsed());
                println!(
                    "{:>6.1}s {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>8}",
                    sample.elapsed.as_secs_f64(),
                    sample.published,
                    sample.delivered,
                    sample.queued,
                    mib(sample.db_bytes),
                    mib(sample.dir_len),
                    mib(sample.dir_alloc),
                    mib(sample.rss_bytes)
                );
                println!("{}", sample.encode());
            }
        })
    };

    // A steady rate: event n is due at n / rate seconds; publishing never
    // bursts to catch up more than it has to.
    let period = Duration::from_secs_f64(1.0 / settings.rate);
    let mut n: u32 = 0;
    let mut late = 0u64;
    let mut latencies = Vec::new();
    loop {
        let due = period * n;
        if due >= settings.duration {
            break;
        }
        let now = started.elapsed();
        if due > now {
            thread::sleep(due - now);
        } else if now - due > Duration::from_millis(100) {
            late += 1;
        }
        let event = Event::from_json_bytes("lead.create", payload.clone()).expect("valid JSON");
        let publish_started = Instant::now();
        bus.publish(event).expect("publish");
        latencies.push(publish_started.elapsed());
        n += 1;
    }
    sampler.join().expect("the sampler thread");

    // Let the last deliveries finish, so that the counts add up.
    let drain_started = Instant::now();
    while {
        let s = bus.stats();
        s.queued + s.in_flight > 0
    } {
        assert!(
            drain_started.elapsed() < DRAIN_TIMEOUT,
            "deliveries still queued {DRAIN_TIMEOUT:?} after publishing stopped"
        );
        thread::sleep(Duration::from_millis(20));
    }
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "publish latency: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        quantile(0.5),
        quantile(0.99),
        quantile(1.0)
    );
    let stats = bus.stats();
    println!(
        "published {} (expected {n}{}), {} deliveries made, {} failed, {} attempts \
         ({} retries), receiver saw {} requests; drained in {:.1} s",
        stats.published,
        if late > 0 {
            format!(", {late} published >100 ms late")
        } else {
            String::new()
        },
        stats.delivered,
        stats.failed,
        stats.attempts,
        stats.retried,
        receiver.requests.load(Ordering::Relaxed),
        drain_started.elapsed().as_secs_f64()
    );
    bus.shutdown().expect("shut the bus down");
    receiver.stop();
}

fn take_sample(bus: &Bus, dir: &Path, elapsed: Duration) -> Sample {
    let stats = bus.stats();
    let (dir_len, dir_alloc) = dir_size(dir);
    Sample {
        elapsed,
        published: stats.published,
        delivered: stats.delivered,
        queued: stats.queued,
        db_bytes: bus.size_on_disk().expect("size on disk"),
        dir_len,
        dir_alloc,
        rss_bytes: rss_bytes(),
    }
}

/// Summed file lengths, and blocks allocated (what `du` counts), of every
/// file under `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut len, mut alloc) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        // A file sled removes meanwhile is simply not counted.
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (l, a) = dir_size(&entry.path());
            len += l;
            alloc += a;
        } else {
            len += meta.len();
            alloc += meta.blocks() * 512;
        }
    }
    (len, alloc)
}

/// Resident memory of this process (VmRSS), 0 if unknown.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// A JSON object of exactly `PAYLOAD_BYTES` bytes.
fn payload() -> Vec<u8> {
    let head = r#"{"lead_id":4242,"name":"Ada Lovelace","email":"ada@example.com","source":"soak","note":""#;
    let tail = r#""}"#;
    let pad = PAYLOAD_BYTES - head.len() - tail.len();
    let json = format!("{head}{}{tail}", "x".repeat(pad)).into_bytes();
    assert_eq!(json.len(), PAYLOAD_BYTES);
    json
}

fn mib(bytes: u64) -> String {
    format!("{:.1}M", bytes as f64 / (1024.0 * 1024.0))
}

// ----- the summary -----

fn print_summary(results: &[(Phase, Vec<Sample>)], duration: Duration) {
    println!("\n== summary: start / middle / end of each phase ==");
    println!(
        "{:<15} {:<6} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "phase",
        "when",
        "elapsed",
        "published",
        "delivered",
        "db size",
        "dir len",
        "dir alloc",
        "RSS"
    );
    for (phase, samples) in results {
        let picks = [
            ("start", samples[0]),
            ("middle", samples[samples.len() / 2]),
            ("end", samples[samples.len() - 1]),
        ];
        for (i, (when, s)) in picks.iter().enumerate() {
            let label = if i == 0 { phase.label() } else { String::new() };
            println!(
                "{:<15} {:<6} {:>6.1}s {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
                label,
                when,
                s.elapsed.as_secs_f64(),
                s.published,
                s.delivered,
                mib(s.db_bytes),
                mib(s.dir_len),
                mib(s.dir_alloc),
                mib(s.rss_bytes)
            );
        }
    }
    println!("\nbounded? (end within {BOUNDED_SLACK}x of middle)");
    if duration < RETENTION * 2 {
        println!(
            "  (a phase shorter than twice the retention purges nothing before its middle: \
             the verdicts below say nothing about retention)"
        );
    }
    for (phase, samples) in results {
        let middle = samples[samples.len() / 2];
        let end = samples[samples.len() - 1];
        let verdict = |what: &str, m: u64, e: u64| {
            let ratio = e as f64 / m.max(1) as f64;
            let word = if ratio <= BOUNDED_SLACK {
                "bounded"
            } else {
                "growing"
            };
            format!("{what} {word} (end/middle {ratio:.2})")
        };
        println!(
            "  {:<15} {}; {}; {}",
            phase.label(),
            verdict("db size", middle.db_bytes, end.db_bytes),
            verdict("dir", middle.dir_len, end.dir_len),
            verdict("RSS", middle.rss_bytes, end.rss_bytes)
        );
    }
}

// ----- the receiver -----

/// A loopback HTTP server answering 200 to every request, on a few handler
/// threads. tiny_http keeps connections alive, so the bus reuses them.
struct Receiver {
    server: Arc<tiny_http::Server>,
    port: u16,
    requests: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Receiver {
    const THREADS: usize = 4;

    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let requests = Arc::new(AtomicU64::new(0));
        let threads = (0..Self::THREADS)
            .map(|_| {
                let (server, requests) = (Arc::clone(&server), Arc::clone(&requests));
                thread::spawn(move || {
                    for mut request in server.incoming_requests() {
                        // Read the body so the connection can carry the next request.
                        let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
                        requests.fetch_add(1, Ordering::Relaxed);
                        let _ = request.respond(tiny_http::Response::empty(200));
                    }
                })
            })
            .collect();
        Receiver {
            server,
            port,
            requests,
            threads,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn stop(self) {
        // `unblock` releases one waiting thread at a time.
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}
