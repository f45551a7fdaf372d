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
//! with one, and publishes an event to each tenant every second. It mounts
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

use hookbus::{Bus, EndpointConfig, Event};
use serde_json::{json, Value};

/// Where the portal is mounted on the demo server.
const PREFIX: &str = "/portal";
/// How long each printed session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// One event per tenant this often.
const TRAFFIC_EVERY: Duration = Duration::from_secs(1);
/// The demo's customers.
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
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;

    let receiver = Receiver::start()?;
    let dir = tempfile::tempdir()?;
    let bus = open_bus(dir.path())?;
    let portal = demo_portal(&bus)?;
    demo_data(&bus, &receiver)?;

    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or("the server has no IP address")?;
    let base = format!("http://{addr}");
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
