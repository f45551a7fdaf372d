//! hookbus admin view: what an operator's dashboard would show, printed in
//! the terminal.
//!
//! ```text
//! cargo run --example admin
//! ```
//!
//! No arguments; it runs by itself for a few seconds and exits. It starts a
//! small HTTP receiver on 127.0.0.1 with three paths that behave
//! differently, standing in for three customers' servers:
//!
//! - `/warehouse` always answers 200;
//! - `/crm` answers 500 to its first requests, then recovers, so some
//!   deliveries are retried and one runs out of attempts;
//! - `/erp` answers 410 Gone ("this URL no longer exists"), which makes
//!   hookbus pause the endpoint and keep its events queued.
//!
//! It registers one endpoint per path, publishes a handful of events, prints
//! the operational notices as they arrive, then the endpoint table and the
//! latest attempts, just like an admin page. Finally it does the two things
//! an operator does from such a page: resend a failed delivery, and resume
//! a paused endpoint once its owner has fixed it.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookbus::{
    Attempt, AttemptQuery, Bus, DeliveryFilter, DeliveryStatus, EndpointConfig, EndpointId,
    EndpointStatus, Event, EventId, Notice, PauseReason, Trigger,
};
use serde_json::json;

/// The longest the demo waits for deliveries to settle at each step. The
/// retry delays below are short, so each step normally takes well under a
/// second.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many requests to `/crm` fail before it recovers. The CRM endpoint
/// gets 5 deliveries of 2 attempts each: 6 failures cannot be spread over 5
/// deliveries without one of them failing both its attempts, so at least
/// one delivery ends up failed, ready to be resent.
const CRM_FAILURES: u32 = 6;

/// The customer whose endpoints and events this demo shows.
const TENANT: &str = "acme";

fn main() -> Result<(), Failure> {
    // ----- 1. The receiver: three customers' servers on one local port -----
    let receiver = Receiver::start()?;
    receiver.set("/warehouse", Behavior::Ok);
    receiver.set("/crm", Behavior::FailNext(CRM_FAILURES));
    receiver.set("/erp", Behavior::Gone);
    println!("receiver listening on {}", receiver.base);

    // ----- 2. The bus, stored in a temporary directory deleted at exit -----
    let dir = tempfile::tempdir()?;
    let bus = open_bus(dir.path())?;

    // ----- 3. One customer (a tenant) and its endpoints -----
    // The warehouse only cares about orders; the CRM and the ERP want
    // everything. All three belong to the customer "acme", and acme's
    // events reach only acme's endpoints.
    bus.add_endpoint(
        EndpointConfig::new("warehouse", receiver.url("/warehouse"))
            .tenant(TENANT)
            .events(["order.*"]),
    )?;
    let crm = bus
        .add_endpoint(EndpointConfig::new("crm", receiver.url("/crm")).tenant(TENANT))?
        .id();
    let erp = bus
        .add_endpoint(EndpointConfig::new("erp", receiver.url("/erp")).tenant(TENANT))?
        .id();

    // Endpoint ids are what the bus reports; people read names.
    let names: HashMap<EndpointId, String> = bus
        .endpoints(None, usize::MAX)
        .items
        .iter()
        .map(|e| (e.id(), e.name().to_string()))
        .collect();

    // ----- 4. Notices: what an app would turn into e-mails or banners -----
    // Every subscriber gets its own channel. A background thread prints
    // them as they come, while the main thread goes on.
    let notices = NoticePrinter::start(&bus, names.clone());

    // ----- 5. Publish -----
    println!("\npublishing 5 events...");
    let events = [
        ("order.created", json!({"order": 1001, "total": "19.90"})),
        ("order.created", json!({"order": 1002, "total": "5.00"})),
        ("order.paid", json!({"order": 1001})),
        (
            "customer.updated",
            json!({"customer": 7, "email": "ada@example.com"}),
        ),
        ("order.shipped", json!({"order": 1001, "carrier": "post"})),
    ];
    for (event_type, payload) in &events {
        // `publish` returns once the event is durable; delivery happens in
        // the background, on the bus's own threads.
        let id = bus.publish(Event::new(*event_type, payload)?.tenant(TENANT))?;
        println!("  published {event_type:<16} {id}");
    }

    // Retries take a few hundred milliseconds here: wait for them.
    wait_until_settled(&bus)?;
    print!("{}", endpoint_table(&bus, "endpoints after publishing")?);
    print!("{}", recent_attempts(&bus, &names, 10)?);

    // ----- 6. Resend a failed delivery -----
    // An operator sees a failed delivery on the CRM, checks that the CRM
    // works again, and presses "resend". The receiver's first failures
    // are over by now; setting it healthy makes sure of it.
    println!("\n== resending a failed delivery to the crm ==");
    let failed = bus.endpoint_deliveries(crm, DeliveryFilter::Failed, None, 1)?;
    let Some(failed) = failed.items.first() else {
        return Err(Failure(
            "expected at least one failed delivery to the crm, found none".into(),
        ));
    };
    let event = failed.event;
    println!(
        "failed delivery: event {event} to crm ({})",
        describe_delivery(failed.status)
    );
    receiver.set("/crm", Behavior::Ok);
    // A resend starts a new round of attempts, numbered after the earlier
    // ones and logged as manual, so the log keeps the whole story.
    bus.resend(event, crm)?;
    let status = wait_for_delivery(&bus, crm, event)?;
    println!("after the resend: {}", describe_delivery(status));
    let history = bus.query_attempts(AttemptQuery::new().endpoint(crm).event(event), None, 50)?;
    print!(
        "{}",
        attempt_table(
            &format!("every attempt of {event} to crm"),
            &history.items,
            &names
        )
    );
    print!("{}", endpoint_table(&bus, "endpoints after the resend")?);

    // ----- 7. Resume the paused endpoint -----
    // The ERP was paused when it answered 410 Gone. Its events were kept,
    // queued, not sent. Its owner fixes their server; the operator resumes
    // the endpoint and the backlog goes out: by due time, so the delivery
    // that got the 410 (due for its retry) goes after the ones never tried.
    println!("\n== resuming the erp ==");
    let backlog = bus.endpoint_deliveries(erp, DeliveryFilter::Unfinished, None, 100)?;
    let status = bus.endpoint(erp).ok_or_else(|| gone(erp))?.status();
    println!(
        "erp is {}, {} deliveries queued",
        describe_status(status),
        backlog.items.len()
    );
    receiver.set("/erp", Behavior::Ok);
    bus.resume_endpoint(erp)?;
    watch_backlog(&bus, erp)?;
    print!("{}", endpoint_table(&bus, "endpoints at the end")?);
    print!("{}", recent_attempts(&bus, &names, 10)?);

    // ----- 8. Shut down -----
    // Shutdown lets attempts in flight finish, stops the bus's threads and
    // flushes the database. Then the notice printer and the receiver stop.
    bus.shutdown()?;
    notices.stop();
    receiver.stop();
    println!("\nbus shut down");
    Ok(())
}

/// Opens the demo's bus. These settings differ from the defaults:
///
/// - Short retry delays (200 ms) and 2 attempts per delivery, so retries
///   and failures happen within a second instead of 30 s / 5 min / 50 min.
/// - A short attempt timeout: the local receiver answers at once.
/// - One delivery in flight per endpoint, so at most 3 connections are open
///   at once. tiny_http (the demo receiver, not hookbus) serves each
///   keep-alive connection on one of 4 pre-started threads, and a burst of
///   more new connections than that can leave one unserved until it times
///   out. A real receiver has no such limit.
/// - Private networks allowed. By default hookbus refuses to connect to
///   loopback and other private addresses, so that users who register
///   endpoint URLs cannot make your server call its own network (SSRF).
///   This demo's receiver is on 127.0.0.1, so it turns that guard off. In
///   production leave it on, or open only trusted subnets with
///   `allow_network`.
fn open_bus(path: &Path) -> Result<Bus, Failure> {
    let bus = Bus::builder(path)
        .allow_private_networks(true)
        .max_attempts(2)
        .retry_delays([Duration::from_millis(200)])
        .timeout(Duration::from_secs(2))
        .concurrency(1)
        .open()?;
    Ok(bus)
}

// ----- waiting -----

/// Waits until nothing is left to do: active endpoints have empty queues,
/// and paused or disabled ones (whose queues wait on purpose) have nothing
/// in flight.
fn wait_until_settled(bus: &Bus) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let stats = bus.stats();
        let busy = stats
            .endpoints
            .iter()
            .any(|e| e.in_flight > 0 || (e.status == EndpointStatus::Active && e.queued > 0));
        if !busy {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!(
                "deliveries did not settle within {SETTLE_TIMEOUT:?}: {} queued, {} in flight",
                stats.queued, stats.in_flight
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until one delivery is delivered or failed; returns its status.
fn wait_for_delivery(
    bus: &Bus,
    endpoint: EndpointId,
    event: EventId,
) -> Result<DeliveryStatus, Failure> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let delivery = bus
            .delivery(endpoint, event)?
            .ok_or_else(|| Failure(format!("the delivery of {event} disappeared")))?;
        if matches!(
            delivery.status,
            DeliveryStatus::Delivered { .. } | DeliveryStatus::Failed { .. }
        ) {
            return Ok(delivery.status);
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!(
                "the resent delivery of {event} did not finish within {SETTLE_TIMEOUT:?}"
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Prints an endpoint's queue shrinking as its backlog is delivered, a
/// line each time it changes, until it is empty.
fn watch_backlog(bus: &Bus, endpoint: EndpointId) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = None;
    loop {
        let health = bus
            .endpoint_health(endpoint)
            .ok_or_else(|| gone(endpoint))?;
        let delivered = bus
            .stats()
            .endpoints
            .iter()
            .find(|e| e.endpoint == endpoint)
            .map_or(0, |e| e.delivered);
        let now = (health.queued, health.in_flight, delivered);
        if last != Some(now) {
            println!(
                "  erp: {} queued, {} in flight, {} delivered",
                now.0, now.1, now.2
            );
            last = Some(now);
        }
        if health.queued == 0 && health.in_flight == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!(
                "the backlog was not delivered within {SETTLE_TIMEOUT:?}"
            )));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ----- the admin page's tables -----

/// The endpoint table: one row per endpoint with its status, queue,
/// counters and health. Built as one string so that a notice printed by
/// the other thread cannot land in the middle of it.
fn endpoint_table(bus: &Bus, title: &str) -> Result<String, Failure> {
    let stats = bus.stats();
    let mut out = String::new();
    writeln!(out, "\n== {title} ==")?;
    writeln!(
        out,
        "{:<10} {:<36} {:<18} {:>6} {:>6} {:>5} {:>6} {:<13} {:<13} {:>5}",
        "name",
        "url",
        "status",
        "queued",
        "flying",
        "sent",
        "failed",
        "last success",
        "last failure",
        "fails"
    )?;
    for endpoint in bus.endpoints(None, usize::MAX).items {
        // Health comes from the endpoint's stored state; the counters are
        // since the bus opened.
        let health = bus
            .endpoint_health(endpoint.id())
            .ok_or_else(|| gone(endpoint.id()))?;
        let counts = stats.endpoints.iter().find(|e| e.endpoint == endpoint.id());
        writeln!(
            out,
            "{:<10} {:<36} {:<18} {:>6} {:>6} {:>5} {:>6} {:<13} {:<13} {:>5}",
            endpoint.name(),
            endpoint.url(),
            describe_status(health.status),
            health.queued,
            health.in_flight,
            counts.map_or(0, |c| c.delivered),
            counts.map_or(0, |c| c.failed),
            ago(health.last_success),
            ago(health.last_failure),
            health.consecutive_failed_attempts,
        )?;
    }
    writeln!(
        out,
        "(queued: for a first attempt or a retry; sent/failed: deliveries since the bus opened; \
         fails: failed attempts in a row)"
    )?;
    Ok(out)
}

/// The `limit` newest attempts across every endpoint.
fn recent_attempts(
    bus: &Bus,
    names: &HashMap<EndpointId, String>,
    limit: usize,
) -> Result<String, Failure> {
    let page = bus.query_attempts(AttemptQuery::new(), None, limit)?;
    Ok(attempt_table(
        &format!("the {limit} most recent attempts"),
        &page.items,
        names,
    ))
}

/// Attempts as a table, in the order given (newest first from the bus).
fn attempt_table(title: &str, attempts: &[Attempt], names: &HashMap<EndpointId, String>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "\n== {title} ==");
    let _ = writeln!(
        out,
        "{:<12} {:<10} {:<30} {:>2} {:<9} {:<16} {:>8}",
        "time (UTC)", "endpoint", "event", "#", "trigger", "result", "took"
    );
    for a in attempts {
        let trigger = match a.trigger {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Test => "test",
            _ => "other",
        };
        let result = match (a.succeeded, a.status, a.error) {
            (true, Some(status), _) => format!("ok {status}"),
            (false, Some(status), _) => format!("failed {status}"),
            (false, None, Some(kind)) => format!("failed ({kind})"),
            _ => "?".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:<30} {:>2} {:<9} {:<16} {:>6.1}ms",
            clock(a.started_at),
            names.get(&a.endpoint).map_or("?", String::as_str),
            a.event.to_string(),
            a.number,
            trigger,
            result,
            a.duration.as_secs_f64() * 1000.0,
        );
    }
    out
}

fn describe_status(status: EndpointStatus) -> String {
    match status {
        EndpointStatus::Active => "active".into(),
        EndpointStatus::Disabled => "disabled".into(),
        EndpointStatus::Paused { reason, .. } => format!("paused ({})", describe_reason(reason)),
        // EndpointStatus is non_exhaustive: later versions may add states.
        _ => "other".into(),
    }
}

fn describe_reason(reason: PauseReason) -> String {
    match reason {
        PauseReason::Manual => "by hand".into(),
        PauseReason::ConsecutiveFailures(n) => format!("{n} failures"),
        PauseReason::Gone => "410 gone".into(),
        _ => "other".into(),
    }
}

fn describe_delivery(status: DeliveryStatus) -> String {
    match status {
        DeliveryStatus::Queued { next_attempt, .. } => format!("queued, attempt {next_attempt}"),
        DeliveryStatus::InFlight { attempt } => format!("attempt {attempt} in flight"),
        DeliveryStatus::Delivered { attempts } => format!("delivered by attempt {attempts}"),
        DeliveryStatus::Failed { attempts } => format!("failed after {attempts} attempts"),
        _ => "unknown".into(),
    }
}

/// "1.3s ago", "250ms ago", or "-" for never.
fn ago(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "-".into();
    };
    // A time a hair in the future (clock adjustments) shows as "0ms ago".
    let age = SystemTime::now().duration_since(t).unwrap_or_default();
    if age < Duration::from_secs(1) {
        format!("{}ms ago", age.as_millis())
    } else if age < Duration::from_secs(60) {
        format!("{:.1}s ago", age.as_secs_f64())
    } else {
        format!("{}m{}s ago", age.as_secs() / 60, age.as_secs() % 60)
    }
}

/// Wall-clock time of day in UTC, `HH:MM:SS.mmm` (no date library needed).
fn clock(t: SystemTime) -> String {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since_epoch.subsec_millis()
    )
}

// ----- notices -----

/// A thread printing the bus's notices as they arrive.
struct NoticePrinter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl NoticePrinter {
    fn start(bus: &Bus, names: HashMap<EndpointId, String>) -> NoticePrinter {
        let notices = bus.notices();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let name = |id: &EndpointId| names.get(id).cloned().unwrap_or_else(|| id.to_string());
            // Wake up now and then to see whether main asked to stop.
            while !stopping.load(Ordering::SeqCst) {
                let notice = match notices.recv_timeout(Duration::from_millis(100)) {
                    Ok(notice) => notice,
                    Err(e) if e.is_timeout() => continue,
                    // The bus is gone.
                    Err(_) => break,
                };
                let text = match notice {
                    Notice::DeliveryExhausted {
                        endpoint,
                        event,
                        attempts,
                    } => format!(
                        "delivery of {event} to {} failed after {attempts} attempts (kept; can be resent)",
                        name(&endpoint)
                    ),
                    Notice::EndpointPaused { endpoint, reason } => format!(
                        "endpoint {} paused ({}); its events are kept until it is resumed",
                        name(&endpoint),
                        describe_reason(reason)
                    ),
                    Notice::EndpointRecovered { endpoint } => {
                        format!("endpoint {} delivers again", name(&endpoint))
                    }
                    // Notice is non_exhaustive: later versions may add kinds.
                    other => format!("{other:?}"),
                };
                println!("  [notice] {text}");
            }
        });
        NoticePrinter { stop, thread }
    }

    /// Prints what is left, then stops the thread.
    fn stop(self) {
        // Give notices emitted just before shutdown a moment to be printed.
        thread::sleep(Duration::from_millis(150));
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

// ----- the receiver -----

/// How one path of the receiver answers.
#[derive(Clone, Copy, Debug)]
enum Behavior {
    /// 200 OK.
    Ok,
    /// 500 to the next `n` requests, then 200.
    FailNext(u32),
    /// 410 Gone: the receiver says this URL is gone for good.
    Gone,
}

/// A local HTTP server whose paths answer as told; main changes a path's
/// behavior at any time to play the customer fixing their server.
struct Receiver {
    server: Arc<tiny_http::Server>,
    base: String,
    behaviors: Arc<Mutex<HashMap<String, Behavior>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Receiver {
    /// Handler threads: a few, so a slow request never holds up the others.
    const THREADS: usize = 4;

    fn start() -> Result<Receiver, Failure> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| Failure(format!("cannot start the local receiver: {e}")))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Failure("the local receiver has no IP address".into()))?;
        let server = Arc::new(server);
        let behaviors = Arc::new(Mutex::new(HashMap::new()));
        let threads = (0..Self::THREADS)
            .map(|_| {
                let (server, behaviors) = (Arc::clone(&server), Arc::clone(&behaviors));
                thread::spawn(move || {
                    // Ends when `stop` unblocks it.
                    for request in server.incoming_requests() {
                        answer(request, &behaviors);
                    }
                })
            })
            .collect();
        Ok(Receiver {
            server,
            base: format!("http://{addr}"),
            behaviors,
            threads,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn set(&self, path: &str, behavior: Behavior) {
        lock(&self.behaviors).insert(path.to_string(), behavior);
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

fn answer(mut request: tiny_http::Request, behaviors: &Mutex<HashMap<String, Behavior>>) {
    // Read the body as a real receiver would (and so the connection can be
    // reused for the next request).
    let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
    let status = {
        let mut behaviors = lock(behaviors);
        match behaviors.get_mut(request.url()) {
            None => 404,
            Some(Behavior::Ok | Behavior::FailNext(0)) => 200,
            Some(Behavior::Gone) => 410,
            Some(Behavior::FailNext(n)) => {
                *n -= 1;
                500
            }
        }
    };
    // The sender may have given up (timeouts): a failed answer is its problem.
    let _ = request.respond(tiny_http::Response::empty(status));
}

/// Locks a mutex even if a thread panicked while holding it: the map of
/// behaviors stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ----- errors -----

/// The error `main` returns. Rust prints an error returned from `main` with
/// `{:?}`, so `Debug` here shows the plain message.
struct Failure(String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A read found no such endpoint: reads answer `None` for what does not
/// exist, and this demo never deletes one, so it would be a bug.
fn gone(endpoint: EndpointId) -> Failure {
    Failure(format!("endpoint {endpoint} does not exist"))
}

/// Lets `?` turn any error (hookbus, I/O, JSON, formatting) into a `Failure`.
impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}
