//! hookbus quickstart: publish a few events and watch them arrive, signed.
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart -- --url https://example.com/hooks [--secret whsec_...]
//! ```
//!
//! Without arguments it starts a small HTTP receiver on 127.0.0.1, opens a
//! bus in a temporary directory, registers two endpoints on that receiver,
//! publishes three events and prints every delivery as the receiver saw it,
//! after checking its signature.
//!
//! With `--url` it sends the same events to your own receiver instead, and
//! reports from the bus's delivery log what happened to each of them.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use hookbus::signing::DEFAULT_TOLERANCE;
use hookbus::verify::verify_standard;
use hookbus::{Bus, DeliveryStatus, EndpointConfig, Event, EventId, Secret};
use serde_json::json;

/// How long the local demo waits for its receiver to see every delivery.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `--url` mode waits for every delivery to finish (retries included).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

const USAGE: &str = "\
usage: cargo run --example quickstart [-- --url URL [--secret whsec_...]]

  (no arguments)    deliver to a receiver started on 127.0.0.1 and check signatures
  --url URL         deliver to your own receiver instead
  --secret SECRET   sign requests to --url with this secret (optional)
  -h, --help        show this help";

fn main() -> Result<(), Failure> {
    let Some(args) = parse_args()? else {
        println!("{USAGE}");
        return Ok(());
    };
    match args.url {
        None => run_local(),
        Some(url) => run_remote(&url, args.secret.as_deref()),
    }
}

// ----- the local demo -----

fn run_local() -> Result<(), Failure> {
    // 1. A bus, stored in a temporary directory that is deleted at exit.
    let dir = tempfile::tempdir()?;
    let bus = open_bus(dir.path())?;

    // 2. A tiny HTTP receiver on a free port of 127.0.0.1, standing in for
    //    your customers' servers. It runs on its own thread, like a real
    //    server, and reports every request it answered on a channel.
    let server = tiny_http::Server::http("127.0.0.1:0")
        .map_err(|e| Failure(format!("cannot start the local receiver: {e}")))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Failure("the local receiver has no IP address".into()))?;
    let base = format!("http://{addr}");
    println!("receiver listening on {base}");

    // 3. Your customer "acme" (a tenant: one per customer) registers two
    //    endpoints on that receiver, each with its own signing secret:
    //    - "crm" wants every lead event (`lead.*`);
    //    - "mailer" wants new leads and every contact event.
    //    So lead.create goes to both (fan-out), lead.update only to the crm
    //    and contact.subscribed only to the mailer (filtering).
    //    Another customer, "globex", subscribes to everything, and still
    //    receives nothing: acme's events never reach another tenant. (Its
    //    path has no secret on the receiver, so a delivery there would
    //    fail this demo.)
    let crm_secret = Secret::generate()?;
    let mailer_secret = Secret::generate()?;
    bus.add_endpoint(
        EndpointConfig::new("crm", format!("{base}/crm"))
            .tenant(TENANT)
            .events(["lead.*"])
            .secret(crm_secret.expose()),
    )?;
    bus.add_endpoint(
        EndpointConfig::new("mailer", format!("{base}/mailer"))
            .tenant(TENANT)
            .events(["lead.create", "contact.*"])
            .secret(mailer_secret.expose()),
    )?;
    bus.add_endpoint(
        EndpointConfig::new("globex-everything", format!("{base}/globex")).tenant("globex"),
    )?;

    // The receiver knows which secret belongs to which path.
    let secrets = vec![
        ("/crm".to_string(), crm_secret),
        ("/mailer".to_string(), mailer_secret),
    ];
    let server = Arc::new(server);
    let (seen_tx, seen_rx) = mpsc::channel();
    let receiver = {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            // Ends when `server.unblock()` is called below.
            for request in server.incoming_requests() {
                // If main has stopped listening, keep answering anyway.
                let _ = seen_tx.send(answer(request, &secrets));
            }
        })
    };

    // 4. Publish. Each publish is durable when it returns; delivery happens
    //    in the background, on the bus's own threads.
    let published = publish_events(&bus)?;
    let mut expected = 0;
    for (id, _) in &published {
        expected += bus.deliveries(*id)?.len();
    }
    println!("\nwaiting for {expected} deliveries...\n");

    // 5. Print what the receiver saw until it has seen every delivery.
    //    Delivery is at least once, so a receiver may see the same
    //    webhook-id twice: each (path, webhook-id) is counted once.
    let deadline = Instant::now() + LOCAL_TIMEOUT;
    let mut distinct = HashSet::new();
    let mut outcome = Ok(());
    while distinct.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(seen) = seen_rx.recv_timeout(left) else {
            outcome = Err(Failure(format!(
                "timed out after {LOCAL_TIMEOUT:?}: the receiver saw {} of {expected} deliveries",
                distinct.len()
            )));
            break;
        };
        if let Err(why) = seen.check {
            outcome = Err(Failure(format!(
                "signature check FAILED for {} on {}: {why}",
                seen.webhook_id, seen.path
            )));
            break;
        }
        let duplicate = if distinct.insert((seen.path.clone(), seen.webhook_id.clone())) {
            ""
        } else {
            "  (duplicate, already seen)"
        };
        println!(
            "{:<8} webhook-id {}  attempt {}  type {:<18}  signature verified{duplicate}",
            seen.path, seen.webhook_id, seen.attempt, seen.event_type
        );
    }

    // 6. Shut the bus down: it lets attempts in flight finish (the receiver
    //    is still answering), stops its threads and flushes the database.
    //    Then stop the receiver.
    bus.shutdown()?;
    server.unblock();
    let _ = receiver.join();
    outcome?;
    println!("\nall {expected} deliveries received and verified; bus shut down");
    Ok(())
}

/// One request as the receiver saw it.
struct Seen {
    path: String,
    webhook_id: String,
    /// The envelope's `attempt` and `type` fields.
    attempt: String,
    event_type: String,
    /// `Ok` when the signature matched the endpoint's secret.
    check: Result<(), String>,
}

/// The receiver's work for one request: check the signature, answer 200 if
/// it matches and 401 if not, and report what was seen.
fn answer(mut request: tiny_http::Request, secrets: &[(String, Secret)]) -> Seen {
    let path = request.url().to_string();
    // Everything needed to check a delivery: three headers and the raw body,
    // exactly as received (check it before parsing the JSON).
    let webhook_id = header(&request, "webhook-id");
    let timestamp = header(&request, "webhook-timestamp");
    let signature = header(&request, "webhook-signature");
    let mut body = Vec::new();
    let check = match secrets.iter().find(|(p, _)| *p == path) {
        None => Err("no endpoint has this path".to_string()),
        Some(_) if request.as_reader().read_to_end(&mut body).is_err() => {
            Err("the body could not be read".to_string())
        }
        Some((_, secret)) => verify_standard(
            secret.expose(),
            &webhook_id,
            &timestamp,
            &signature,
            &body,
            SystemTime::now(),
            DEFAULT_TOLERANCE,
        )
        .map_err(|e| e.to_string()),
    };
    // Any answer but 2xx makes hookbus retry later. A failed answer (the
    // sender gave up) is the sender's problem: ignore it.
    let status = if check.is_ok() { 200 } else { 401 };
    let _ = request.respond(tiny_http::Response::empty(status));

    // The body is the envelope {"id", "type", "occurred_at", "attempt", "data"}.
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Seen {
        path,
        webhook_id,
        attempt: envelope["attempt"].to_string(),
        event_type: envelope["type"].as_str().unwrap_or("?").to_string(),
        check,
    }
}

/// The value of a request header, or "" when it is missing (which then
/// fails the signature check).
fn header(request: &tiny_http::Request, name: &'static str) -> String {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
        .unwrap_or_default()
}

/// The customer whose events this demo publishes.
const TENANT: &str = "acme";

// ----- sending to your own receiver -----

fn run_remote(url: &str, secret: Option<&str>) -> Result<(), Failure> {
    let dir = tempfile::tempdir()?;
    let bus = open_bus(dir.path())?;

    // One endpoint that receives every event type. add_endpoint checks the
    // URL and the secret and explains what is wrong with them.
    let mut config = EndpointConfig::new("your-receiver", url).tenant(TENANT);
    if let Some(secret) = secret {
        config = config.secret(secret);
    }
    bus.add_endpoint(config)?;
    match secret {
        Some(_) => println!("delivering to {url}, signed with the given secret"),
        None => println!("delivering to {url}, unsigned (no --secret given)"),
    }

    let published = publish_events(&bus)?;
    println!();

    // Poll the delivery log until every delivery is Delivered or Failed,
    // printing each attempt once as it appears.
    let deadline = Instant::now() + REMOTE_TIMEOUT;
    let mut attempts_printed = vec![0; published.len()];
    let (delivered, failed) = loop {
        let (mut delivered, mut failed, mut unfinished) = (0, 0, 0);
        for (i, (id, event_type)) in published.iter().enumerate() {
            for attempt in bus.attempts(*id)?.iter().skip(attempts_printed[i]) {
                let outcome = match (attempt.error, &attempt.error_message) {
                    (None, _) => format!("delivered (HTTP {})", attempt.status.unwrap_or(0)),
                    (Some(kind), Some(message)) => format!("failed ({kind}): {message}"),
                    (Some(kind), None) => format!("failed ({kind})"),
                };
                println!(
                    "{id}  {event_type:<18}  attempt {}  {outcome}",
                    attempt.number
                );
                attempts_printed[i] += 1;
            }
            for delivery in bus.deliveries(*id)? {
                match delivery.status {
                    DeliveryStatus::Delivered { .. } => delivered += 1,
                    DeliveryStatus::Failed { .. } => failed += 1,
                    _ => unfinished += 1,
                }
            }
        }
        if unfinished == 0 {
            break (delivered, failed);
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!(
                "gave up after {REMOTE_TIMEOUT:?}: {unfinished} deliveries still unfinished"
            )));
        }
        thread::sleep(Duration::from_millis(100));
    };

    bus.shutdown()?;
    println!("\n{delivered} delivered, {failed} failed");
    if failed > 0 {
        return Err(Failure(format!(
            "{failed} deliveries failed after all their attempts"
        )));
    }
    Ok(())
}

// ----- shared by both modes -----

/// Opens a bus for this demo. Two settings differ from the defaults:
///
/// - Short retry delays, so that a failing receiver is retried (3 attempts
///   in all) within seconds instead of after 30 s / 5 min / 50 min.
/// - Private networks allowed. By default hookbus refuses to connect to
///   loopback, private and other reserved addresses, so that users who
///   register endpoint URLs cannot make your server call its own network
///   (SSRF). This demo delivers to 127.0.0.1, and `--url` is usually a
///   receiver on your machine or LAN, so it turns the guard off. In
///   production leave it on, or open only the subnets you trust with
///   `allow_network`.
fn open_bus(path: &Path) -> Result<Bus, Failure> {
    let bus = Bus::builder(path)
        .allow_private_networks(true)
        .max_attempts(3)
        .retry_delays([Duration::from_secs(1), Duration::from_secs(5)])
        .open()?;
    Ok(bus)
}

/// Publishes the demo events; returns each event's id and type.
fn publish_events(bus: &Bus) -> Result<Vec<(EventId, &'static str)>, Failure> {
    let events = [
        (
            "lead.create",
            json!({"lead_id": 42, "name": "Ada Lovelace", "email": "ada@example.com"}),
        ),
        (
            "lead.update",
            json!({"lead_id": 42, "changes": {"stage": "qualified"}}),
        ),
        (
            "contact.subscribed",
            json!({"email": "ada@example.com", "list": "newsletter"}),
        ),
    ];
    let mut published = Vec::new();
    for (event_type, payload) in events {
        let id = bus.publish(Event::new(event_type, &payload)?.tenant(TENANT))?;
        // Which endpoints the event was queued for, by name.
        let mut names = Vec::new();
        for delivery in bus.deliveries(id)? {
            // A read answers `None` for an endpoint deleted meanwhile; this
            // demo deletes none, but shows the id rather than fail.
            names.push(match bus.endpoint(delivery.endpoint) {
                Some(endpoint) => endpoint.name().to_string(),
                None => delivery.endpoint.to_string(),
            });
        }
        println!(
            "published {event_type:<18} as {id}  -> {}",
            names.join(", ")
        );
        published.push((id, event_type));
    }
    Ok(published)
}

/// The command line: `--url URL` and `--secret SECRET`, both optional.
struct Args {
    url: Option<String>,
    secret: Option<String>,
}

/// Reads the command line; `None` means help was asked for.
fn parse_args() -> Result<Option<Args>, Failure> {
    let mut parsed = Args {
        url: None,
        secret: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--url" => &mut parsed.url,
            "--secret" => &mut parsed.secret,
            other => return Err(Failure(format!("unknown argument {other:?}\n\n{USAGE}"))),
        };
        let value = args
            .next()
            .ok_or_else(|| Failure(format!("{arg} needs a value\n\n{USAGE}")))?;
        *slot = Some(value);
    }
    if parsed.secret.is_some() && parsed.url.is_none() {
        return Err(Failure(format!(
            "--secret only applies with --url (the local demo generates its own secrets)\n\n{USAGE}"
        )));
    }
    Ok(Some(parsed))
}

/// The error `main` returns. Rust prints an error returned from `main` with
/// `{:?}`, so `Debug` here shows the plain message.
struct Failure(String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lets `?` turn any error (hookbus, I/O, JSON…) into a `Failure`.
impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}
