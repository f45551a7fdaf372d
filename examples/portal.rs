//! hookbus customer portal: the page a host hands to its customers, served
//! on a local port with demo data.
//!
//! ```text
//! cargo run --example portal --features portal
//! cargo run --example portal --features portal -- --port 8080 --exit-after 60
//! ```
//!
//! It opens a bus in a temporary directory, starts a small receiver on
//! 127.0.0.1 standing in for two customers' servers, creates the demo
//! tenant `acme` with three endpoints (one healthy, one failing with 500,
//! one answering 410 Gone, which pauses it) and a second tenant `globex`
//! with one, and publishes an event to each tenant every second (cycling
//! through the catalog's types and a `region` attribute). It mounts
//! the portal handler under `/portal/` on a tiny_http server and prints one
//! portal link per tenant; each carries a session token in its URL
//! fragment, as a host's backend would hand it to a logged-in customer.
//!
//! Options: `--port N` (default 0: any free port, printed),
//! `--exit-after SECONDS` (default: run until Ctrl-C).
//!
//! Printed lines a script can read: `portal listening on URL`,
//! `demo receiver on URL`, `portal for tenant KEY: LINK`, then `ready`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hookbus::portal::{http, Portal};
use hookbus::{Bus, EndpointConfig, Event, EventType, Secret, TenantConfig, TenantId};
use serde_json::{json, Value};

/// Where the portal is mounted on the demo server.
const PREFIX: &str = "/portal";
/// How long each printed session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// One event per tenant this often.
const TRAFFIC_EVERY: Duration = Duration::from_secs(1);
/// The demo host's customers.
const ACME: &str = "acme";
const GLOBEX: &str = "globex";

fn main() {
    if let Err(e) = run() {
        eprintln!("portal example: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(std::env::args().skip(1))?;
    // Ctrl-C (and a service manager's SIGTERM) ends the serving loop; the
    // bus then shuts down cleanly and the temporary directory is removed.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;

    let receiver = Receiver::start().map_err(|e| format!("demo receiver: {e}"))?;
    let dir = tempfile::tempdir()?;
    let bus = open_bus(dir.path())?;
    demo_data(&bus, &receiver)?;

    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or("the server has no IP address")?;
    let base = format!("http://{addr}");
    let portal = Arc::new(demo_portal(&bus)?);
    println!("portal listening on {base}{PREFIX}/");
    println!("demo receiver on {}", receiver.base);
    for tenant in [ACME, GLOBEX] {
        let link = session_link(&bus, &base, tenant)?;
        println!("portal for tenant {tenant}: {link}");
    }
    println!("ready");

    let traffic = Traffic::start(bus.clone(), Arc::clone(&stop));
    let deadline = args.exit_after.map(|s| Instant::now() + s);
    serve(&server, &portal, &stop, deadline);

    stop.store(true, Ordering::SeqCst);
    traffic.join();
    bus.shutdown()?;
    receiver.stop();
    println!("stopped");
    Ok(())
}

/// Command-line options.
struct Args {
    port: u16,
    exit_after: Option<Duration>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            port: 0,
            exit_after: None,
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--port" => {
                    let v = value("--port")?;
                    parsed.port = v.parse().map_err(|_| format!("--port: not a port: {v}"))?;
                }
                "--exit-after" => {
                    let v = value("--exit-after")?;
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| format!("--exit-after: not a number of seconds: {v}"))?;
                    parsed.exit_after = Some(Duration::from_secs(secs));
                }
                "-h" | "--help" => {
                    return Err(
                        "usage: portal [--port N (0: any free port)] [--exit-after SECONDS]".into(),
                    )
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(parsed)
    }
}

/// Opens the demo's bus with the host's event-type catalog. Differences
/// from the defaults, for a demo on one machine:
///
/// - Private networks allowed: the demo receiver (and the receivers the
///   browser tests start) listen on 127.0.0.1, which hookbus refuses by
///   default so that customers cannot make the host call its own network.
///   In production leave the guard on.
/// - 2 attempts, 300 ms apart, a 3 s timeout: failures show within a
///   second instead of after 30 s, 5 min and 50 min.
/// - No pause after failed deliveries, so the failing endpoint keeps
///   failing visibly (the 410 one still pauses: that is immediate).
fn open_bus(path: &Path) -> Result<Bus, hookbus::Error> {
    let mut builder = Bus::builder(path)
        .allow_private_networks(true)
        .max_attempts(2)
        .retry_delays([Duration::from_millis(300)])
        .timeout(Duration::from_secs(3))
        .pause_after(None);
    for (name, description, example) in catalog() {
        builder = builder.event_type(
            EventType::new(name)
                .description(description)
                .example(example),
        );
    }
    builder.open()
}

/// The event types the demo host emits, with a description and an example
/// payload each: what a customer picks from when subscribing.
fn catalog() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "order.created",
            "A customer placed an order.",
            json!({"order_id": "ord_1001", "customer": "cus_42", "total": 49.9, "currency": "EUR"}),
        ),
        (
            "order.paid",
            "The payment of an order was captured.",
            json!({"order_id": "ord_1001", "amount": 49.9, "currency": "EUR", "method": "card"}),
        ),
        (
            "order.shipped",
            "An order left the warehouse.",
            json!({"order_id": "ord_1001", "carrier": "DHL", "tracking": "JJD000390007"}),
        ),
        (
            "customer.updated",
            "A customer changed their name, e-mail or address.",
            json!({"customer": "cus_42", "email": "jo@example.com", "changed": ["email"]}),
        ),
        (
            "invoice.finalized",
            "An invoice was issued and can no longer change.",
            json!({"invoice": "inv_7", "order_id": "ord_1001", "total": 49.9}),
        ),
    ]
}

/// The portal handler, branded for the demo host.
fn demo_portal(bus: &Bus) -> Result<Portal, hookbus::Error> {
    Portal::builder(bus.clone())
        .prefix(PREFIX)
        .title("Northwind webhooks")
        .logo_url(LOGO_PATH)
        .accent_color("#0f766e")
        .build()
}

/// Two customers of the host and their endpoints, pointing at the demo
/// receiver: (tenant, name, receiver path, event-type patterns).
const DEMO_ENDPOINTS: [(&str, &str, &str, &[&str]); 4] = [
    (ACME, "Orders service", "/orders", &["order.*"]),
    (ACME, "Legacy CRM", "/crm", &["*"]),
    (ACME, "Old ERP", "/erp", &["invoice.*"]),
    (
        GLOBEX,
        "Globex billing",
        "/globex",
        &["order.paid", "invoice.*"],
    ),
];

fn demo_data(bus: &Bus, receiver: &Receiver) -> Result<(), hookbus::Error> {
    bus.put_tenant(TenantConfig::new(ACME).display_name("Acme Corp"))?;
    bus.put_tenant(TenantConfig::new(GLOBEX).display_name("Globex"))?;
    for (tenant, name, path, events) in DEMO_ENDPOINTS {
        let mut config = EndpointConfig::new(name, receiver.url(path))
            .tenant(tenant)
            .events(events.iter().copied())
            .secret(Secret::generate()?);
        if path == "/crm" {
            // A custom header, as a customer would add one in the portal.
            config = config.header("x-crm-team", "sales");
        }
        bus.add_endpoint(config)?;
    }
    Ok(())
}

/// A portal link for `tenant`: the page's URL with a fresh session token
/// in its fragment, which browsers never send to a server.
fn session_link(bus: &Bus, base: &str, tenant: &str) -> Result<String, hookbus::Error> {
    let session = bus.portal_session(&TenantId::new(tenant)?, SESSION_TTL)?;
    Ok(format!("{base}{PREFIX}/{}", session.url_fragment))
}

/// Answers each request on its own thread (a test send waits for the
/// customer's receiver) until `stop` is set or the deadline passes.
fn serve(
    server: &tiny_http::Server,
    portal: &Arc<Portal>,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) {
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("portal server: {e}");
                break;
            }
        };
        let portal = Arc::clone(portal);
        thread::spawn(move || answer(&portal, request));
    }
}

/// One request: the logo, or the portal handler (tiny_http <-> http types).
fn answer(portal: &Portal, mut request: tiny_http::Request) {
    let response = if request.url() == LOGO_PATH {
        http::Response::builder()
            .header("content-type", "image/svg+xml")
            .header("cache-control", "max-age=3600")
            .body(LOGO_SVG.as_bytes().to_vec())
            .expect("static response parts are valid")
    } else {
        match to_http(&mut request) {
            Ok(req) => portal.handle(req),
            Err(e) => http::Response::builder()
                .status(400)
                .body(format!("bad request: {e}").into_bytes())
                .expect("static response parts are valid"),
        }
    };
    let status = response.status().as_u16();
    let headers: Vec<tiny_http::Header> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            tiny_http::Header::from_bytes(name.as_str().as_bytes(), value.as_bytes()).ok()
        })
        .collect();
    let body = response.into_body();
    let len = body.len();
    let reply = tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        std::io::Cursor::new(body),
        Some(len),
        None,
    );
    if let Err(e) = request.respond(reply) {
        eprintln!("portal server: could not answer: {e}");
    }
}

/// The largest request body the demo server reads; the portal refuses
/// bodies over its own, smaller limit with a 413.
const MAX_REQUEST_BYTES: u64 = 4 << 20;

fn to_http(request: &mut tiny_http::Request) -> Result<http::Request<Vec<u8>>, String> {
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    let mut builder = http::Request::builder()
        .method(request.method().as_str())
        .uri(request.url());
    for header in request.headers() {
        builder = builder.header(header.field.as_str().as_str(), header.value.as_str());
    }
    builder.body(body).map_err(|e| e.to_string())
}

/// Where the demo serves the host's logo (outside the portal's prefix, as
/// a host's own static file would be).
const LOGO_PATH: &str = "/northwind-logo.svg";
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="#0f766e"/><path d="M18 46V18h6l16 18V18h6v28h-6L24 28v18z" fill="#fff"/></svg>"##;

/// The `region` attribute the demo's events carry in turn, for endpoint
/// filters to choose from.
const REGIONS: [&str; 3] = ["eu", "us", "apac"];

/// Publishes one event to each tenant every `TRAFFIC_EVERY`, cycling
/// through the catalog and the regions, until `stop` is set.
struct Traffic(thread::JoinHandle<()>);

impl Traffic {
    fn start(bus: Bus, stop: Arc<AtomicBool>) -> Traffic {
        Traffic(thread::spawn(move || {
            let types = catalog();
            let mut n: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                let (name, _, example) = &types[(n as usize) % types.len()];
                for tenant in [ACME, GLOBEX] {
                    let mut payload = example.clone();
                    payload["sequence"] = json!(n);
                    let region = REGIONS[(n as usize) % REGIONS.len()];
                    let published = Event::new(*name, &payload).and_then(|e| {
                        Ok(bus.publish(e.tenant(tenant).attribute("region", region))?)
                    });
                    if let Err(e) = published {
                        eprintln!("traffic: publish failed: {e}");
                    }
                }
                n += 1;
                let next = Instant::now() + TRAFFIC_EVERY;
                while !stop.load(Ordering::SeqCst) && Instant::now() < next {
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }))
    }

    fn join(self) {
        if self.0.join().is_err() {
            eprintln!("traffic: the thread panicked");
        }
    }
}

/// The customers' servers: `/orders` and `/globex` answer 200, `/crm`
/// answers 500 (a database outage), `/erp` answers 410 Gone.
struct Receiver {
    base: String,
    server: Arc<tiny_http::Server>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Result<Receiver, Box<dyn std::error::Error + Send + Sync>> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0")?);
        let addr: SocketAddr = server
            .server_addr()
            .to_ip()
            .ok_or("the receiver has no IP address")?;
        let base = format!("http://{addr}");
        let serving = Arc::clone(&server);
        let thread = thread::spawn(move || {
            for mut request in serving.incoming_requests() {
                // Read the body so the connection can be reused.
                let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
                let (status, body) = match request.url() {
                    "/crm" => (500, r#"{"error":"database unavailable"}"#),
                    "/erp" => (410, r#"{"error":"this endpoint was removed"}"#),
                    _ => (200, r#"{"received":true}"#),
                };
                let json = tiny_http::Header::from_bytes("content-type", "application/json")
                    .expect("a valid header");
                let reply = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(json);
                let _ = request.respond(reply);
            }
        });
        Ok(Receiver {
            base,
            server,
            thread: Some(thread),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stop(mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
