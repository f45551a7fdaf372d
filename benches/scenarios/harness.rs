//! What scenarios 2 to 6 share: their knobs, the results a measurement
//! process hands back, medians, and the summary table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One measurement's numbers, by name. Passed from the measurement process
/// to the parent as one `RESULT2 name=value …` line.
pub type Res = BTreeMap<String, f64>;

/// Set in a measurement process: which task to run (`s2:hookbus:0`, …).
pub const TASK_VAR: &str = "HOOKBUS_BENCH_TASK";

/// Scenario sizes and settings, from the environment. The measurement
/// processes read the same environment, so only the task name is passed.
pub struct Knobs {
    pub reps: usize,
    /// `HOOKBUS_BENCH_SCENARIOS`: which scenarios run (1 to 12). Default all.
    pub scenarios: Vec<u32>,
    /// `HOOKBUS_BENCH_ONLY`: systems to run (hookbus, plain, fair, plain0,
    /// peer, recv, sled; scenario 1's raw, naive, sqlite). Default all.
    pub only: Option<Vec<String>>,
    /// `HOOKBUS_BENCH_CONCURRENCY`: sender threads for one endpoint
    /// (scenarios 2, 3, 4), and the baseline's threads. Default 4.
    pub concurrency: usize,
    /// `HOOKBUS_BENCH_BACKLOG`: deliveries in scenario 2's backlog. Default 50,000.
    pub backlog: usize,
    /// `HOOKBUS_BENCH_FANOUT`: endpoints of scenario 2's second case. Default 100.
    pub fanout: usize,
    /// `HOOKBUS_BENCH_FANOUT_CONCURRENCY`: concurrency of each of them. Default 1.
    pub fanout_concurrency: usize,
    /// `HOOKBUS_BENCH_RATES`: offered publish rates of scenario 3, events/s.
    /// Default 1000, 3000, 10000.
    pub rates: Vec<f64>,
    /// `HOOKBUS_BENCH_E2E_SECS`: how long scenario 3 publishes at each rate.
    pub e2e_secs: f64,
    /// `HOOKBUS_BENCH_RECOVERY`: pending deliveries in scenario 4's database.
    pub recovery: usize,
    /// `HOOKBUS_BENCH_ENDPOINTS`: endpoint counts of scenario 5.
    pub scale: Vec<usize>,
    /// `HOOKBUS_BENCH_SCALE_ROUNDS`: events per endpoint in scenario 5
    /// (one round = one event to every endpoint).
    pub scale_rounds: usize,
    /// `HOOKBUS_BENCH_IDLE_TIMEOUT_S`: scenario 5's `sender_idle_timeout`
    /// (hookbus's default, 30 s; 0.5 s in smoke mode).
    pub idle_timeout: Duration,
    /// Scenario 5's windows of idleness over which CPU is read.
    pub idle_window: Duration,
    /// `HOOKBUS_BENCH_PEER_POLL_MS`: the SQLite peer's sleep when nothing is
    /// pending. Default 50 ms.
    pub peer_poll: Duration,
    /// `HOOKBUS_BENCH_PEER_SYNC=full`: the peer's INSERTs use
    /// `synchronous=FULL` instead of NORMAL.
    pub peer_full_sync: bool,
    /// `HOOKBUS_BENCH_BIG_BACKLOG`: deliveries queued for one paused
    /// endpoint in scenario 7. Default 1,000,000.
    pub big_backlog: usize,
    /// `HOOKBUS_BENCH_BIG_DRAIN`: how many of them scenario 7 waits to see
    /// delivered while it samples memory. Default: all of them.
    pub big_drain: usize,
    /// `HOOKBUS_BENCH_TENANTS` × `HOOKBUS_BENCH_PER_TENANT`: the endpoints
    /// of scenarios 8 and 10. Default 10,000 × 10.
    pub tenants: usize,
    pub per_tenant: usize,
    /// `HOOKBUS_BENCH_CUSTOMERS`: scenario 9's customers, one endpoint
    /// each. Default 10,000.
    pub customers: usize,
    /// `HOOKBUS_BENCH_HUNG`: hung endpoint counts of scenario 11. Default
    /// 50, 1000.
    pub hung: Vec<usize>,
    /// `HOOKBUS_BENCH_HEALTHY`: the healthy endpoint's backlog in scenario
    /// 11, the window its rate is measured over. Default 20,000.
    pub healthy: usize,
    /// `HOOKBUS_BENCH_SECS`: how long scenario 10 publishes per
    /// measurement. Default 2.5 s.
    pub publish_secs: f64,
    /// Scenario 9's `sender_idle_timeout`: the library's default, or
    /// `HOOKBUS_BENCH_IDLE_TIMEOUT_S` if set (0.5 s in smoke mode).
    pub customers_idle_timeout: Option<Duration>,
    pub dir: Option<PathBuf>,
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .filter(|n| *n > 0)
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &f64| *n > 0.0)
}

fn env_numbers<T: std::str::FromStr>(name: &str) -> Option<Vec<T>> {
    let list: Vec<T> = crate::env_list(name)?
        .iter()
        .filter_map(|s| s.replace('_', "").parse().ok())
        .collect();
    (!list.is_empty()).then_some(list)
}

impl Knobs {
    pub fn from_env(smoke: bool, reps: usize, dir: Option<PathBuf>) -> Knobs {
        let pick = |name: &str, full: usize, small: usize| {
            env_usize(name).unwrap_or(if smoke { small } else { full })
        };
        Knobs {
            reps,
            scenarios: env_numbers("HOOKBUS_BENCH_SCENARIOS").unwrap_or((1..=12).collect()),
            only: crate::env_list("HOOKBUS_BENCH_ONLY"),
            concurrency: pick("HOOKBUS_BENCH_CONCURRENCY", 4, 4),
            backlog: pick("HOOKBUS_BENCH_BACKLOG", 50_000, 400),
            fanout: pick("HOOKBUS_BENCH_FANOUT", 100, 10),
            fanout_concurrency: pick("HOOKBUS_BENCH_FANOUT_CONCURRENCY", 1, 1),
            rates: env_numbers("HOOKBUS_BENCH_RATES").unwrap_or(if smoke {
                vec![200.0]
            } else {
                vec![1000.0, 3000.0, 10_000.0]
            }),
            e2e_secs: env_f64("HOOKBUS_BENCH_E2E_SECS").unwrap_or(if smoke { 0.5 } else { 5.0 }),
            recovery: pick("HOOKBUS_BENCH_RECOVERY", 100_000, 500),
            scale: env_numbers("HOOKBUS_BENCH_ENDPOINTS").unwrap_or(if smoke {
                vec![10, 30]
            } else {
                vec![1000, 10_000]
            }),
            scale_rounds: pick("HOOKBUS_BENCH_SCALE_ROUNDS", 2, 2),
            idle_timeout: Duration::from_secs_f64(
                env_f64("HOOKBUS_BENCH_IDLE_TIMEOUT_S").unwrap_or(if smoke { 0.5 } else { 30.0 }),
            ),
            idle_window: Duration::from_millis(if smoke { 300 } else { 3000 }),
            peer_poll: Duration::from_millis(
                std::env::var("HOOKBUS_BENCH_PEER_POLL_MS")
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(50),
            ),
            peer_full_sync: std::env::var("HOOKBUS_BENCH_PEER_SYNC")
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("full")),
            big_backlog: pick("HOOKBUS_BENCH_BIG_BACKLOG", 1_000_000, 3000),
            big_drain: env_usize("HOOKBUS_BENCH_BIG_DRAIN").unwrap_or(usize::MAX),
            tenants: pick("HOOKBUS_BENCH_TENANTS", 10_000, 20),
            per_tenant: pick("HOOKBUS_BENCH_PER_TENANT", 10, 3),
            customers: pick("HOOKBUS_BENCH_CUSTOMERS", 10_000, 30),
            hung: env_numbers("HOOKBUS_BENCH_HUNG").unwrap_or(if smoke {
                vec![3, 70]
            } else {
                vec![50, 1000]
            }),
            healthy: pick("HOOKBUS_BENCH_HEALTHY", 20_000, 200),
            customers_idle_timeout: env_f64("HOOKBUS_BENCH_IDLE_TIMEOUT_S")
                .or(smoke.then_some(0.5))
                .map(Duration::from_secs_f64),
            publish_secs: env_f64("HOOKBUS_BENCH_SECS").unwrap_or(if smoke { 0.3 } else { 2.5 }),
            dir,
        }
    }

    pub fn runs(&self, scenario: u32) -> bool {
        self.scenarios.contains(&scenario)
    }

    /// Whether `system` is selected by `HOOKBUS_BENCH_ONLY`. The SQLite
    /// peer is scenario 6, so it also needs scenario 6 selected.
    pub fn wants(&self, system: &str) -> bool {
        (system != "peer" || self.runs(6))
            && self
                .only
                .as_ref()
                .is_none_or(|o| o.iter().any(|x| x == system))
    }

    pub fn temp_dir(&self) -> tempfile::TempDir {
        match &self.dir {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .expect("create a temporary directory")
    }
}

// ----- measurement processes -----

/// Prints a measurement's result for the parent to read.
pub fn emit(res: &Res) {
    let fields: Vec<String> = res.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("RESULT2 {}", fields.join(" "));
}

pub fn decode(line: &str) -> Res {
    line.split_whitespace()
        .filter_map(|f| {
            let (k, v) = f.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Runs `task` in a fresh process of this binary (with `env` added) and
/// returns what it measured. Each measurement gets its own process: sled
/// keeps process-wide state, and peak RSS and thread counts are per process.
pub fn run_task(task: &str, env: &[(&str, String)]) -> Res {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(TASK_VAR, task)
        .stderr(std::process::Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run a measurement process");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "measurement {task} failed ({}): {text}",
        output.status
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT2 "))
        .unwrap_or_else(|| panic!("no result from measurement {task}: {text}"));
    decode(line)
}

/// The 1-minute load average now.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Resets the process's peak RSS (VmHWM) to its current RSS, so the next
/// reading covers only what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A field of `/proc/self/status`, in its unit (kB for memory).
pub fn proc_status(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn rss_mib() -> f64 {
    proc_status("VmRSS").map_or(f64::NAN, |k| k / 1024.0)
}

pub fn threads_now() -> f64 {
    proc_status("Threads").unwrap_or(f64::NAN)
}

// ----- medians and formatting -----

/// The median of one field over repetitions (each field on its own).
pub fn med(runs: &[Res], key: &str) -> Option<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.get(key).copied())
        .filter(|x| !x.is_nan())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Every repetition's value of one field, for the "all runs" column.
pub fn all(runs: &[Res], key: &str, fmt: fn(f64) -> String) -> String {
    runs.iter()
        .filter_map(|r| r.get(key).copied())
        .map(fmt)
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn show(v: Option<f64>, fmt: fn(f64) -> String) -> String {
    v.map_or_else(|| "-".into(), fmt)
}

pub fn f0(v: f64) -> String {
    format!("{v:.0}")
}

pub fn f1(v: f64) -> String {
    format!("{v:.1}")
}

pub fn f2(v: f64) -> String {
    format!("{v:.2}")
}

pub fn rate(v: f64) -> String {
    crate::fmt_rate(v)
}

/// Milliseconds, with the precision they deserve.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One line of the final summary.
pub struct Row {
    pub scenario: &'static str,
    pub case: String,
    pub hookbus: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub latency: String,
    pub rss: String,
}

pub fn print_summary(rows: &[Row]) {
    println!("## Summary (medians)");
    println!();
    println!(
        "| scenario | case | hookbus | baseline(s) | ratio | target | p50 / p99 | peak RSS MiB |"
    );
    println!("|---|---|---:|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario, r.case, r.hookbus, r.baseline, r.ratio, r.target, r.latency, r.rss
        );
    }
    println!();
}

// ----- sampling a process while it works -----

/// Samples the process's resident memory and thread count on a thread of
/// its own (counted in the thread numbers: one), keeping the highest of
/// each; optionally also counts threads whose name starts with a prefix
/// (reading every thread's name, so only every fifth sample).
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<(f64, f64, f64)>>,
}

impl Sampler {
    pub fn start(every: Duration, named: Option<&'static str>) -> Sampler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                let (mut rss, mut threads, mut senders) = (0f64, 0f64, 0f64);
                let mut n = 0u64;
                loop {
                    let last = flag.load(Ordering::Relaxed);
                    rss = rss.max(rss_mib());
                    threads = threads.max(threads_now());
                    if let Some(prefix) = named {
                        if n % 5 == 0 || last {
                            senders = senders.max(threads_named(prefix) as f64);
                        }
                    }
                    n += 1;
                    if last {
                        return (rss, threads, senders);
                    }
                    std::thread::sleep(every);
                }
            })
            .expect("spawn the sampler");
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling: (highest RSS MiB, most threads, most named threads).
    pub fn finish(mut self) -> (f64, f64, f64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN))
    }
}

/// Threads of this process whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Share of one core used by the whole process over `window`, in %
/// (utime + stime from `/proc/self/stat`, in ticks of 10 ms).
pub fn cpu_percent_over(window: Duration) -> f64 {
    let a = crate::process_cpu_secs();
    let t = std::time::Instant::now();
    std::thread::sleep(window);
    let b = crate::process_cpu_secs();
    a.zip(b).map_or(f64::NAN, |(a, b)| {
        (b - a) / t.elapsed().as_secs_f64() * 100.0
    })
}

/// Copies a directory tree (a built database, for a measurement to use up).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create a copy");
    for entry in std::fs::read_dir(from).expect("read the built directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// A yes/NO/- cell for a target.
pub fn check(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}
