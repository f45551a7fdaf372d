//! The HTTP side of scenarios 2 to 6: a loopback receiver, a minimal raw
//! client to measure it alone, the plain ureq sender the baselines use, and
//! the bodies they send.
//!
//! The receiver is a small HTTP/1.1 server on `std::net`: one acceptor
//! thread, one thread per connection (keep-alive, blocking I/O), which reads
//! each request whole (headers, then `content-length` bytes of body),
//! counts it and answers `200` with an empty body at once. With latency
//! tracking on, it reads the `"sent_ns":"…"` field the publisher put in the
//! payload and records receipt minus that (both wall-clock nanoseconds).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The secret every endpoint signs with (Standard Webhooks).
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
const RESPONSE_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const SENT_MARK: &[u8] = b"\"sent_ns\":\"";

/// Wall-clock nanoseconds since the epoch: comparable across threads.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A JSON object of exactly `PAYLOAD_BYTES` bytes carrying `sent_ns`.
pub fn event_payload(sent_ns: u64) -> Vec<u8> {
    let head = format!(
        r#"{{"lead_id":4242,"name":"Ada Lovelace","email":"ada@example.com","sent_ns":"{sent_ns:020}","note":""#
    );
    let tail = r#""}"#;
    let pad = crate::PAYLOAD_BYTES - head.len() - tail.len();
    let mut json = head.into_bytes();
    json.resize(json.len() + pad, b'x');
    json.extend_from_slice(tail.as_bytes());
    json
}

/// The body hookbus sends by default (`Format::Standard`), for the
/// baselines that build it themselves.
pub fn envelope(id: &str, event_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 128);
    body.extend_from_slice(br#"{"id":""#);
    body.extend_from_slice(id.as_bytes());
    body.extend_from_slice(br#"","type":""#);
    body.extend_from_slice(event_type.as_bytes());
    body.extend_from_slice(br#"","occurred_at":"2026-11-22T21:14:06.123Z","attempt":1,"data":"#);
    body.extend_from_slice(payload);
    body.push(b'}');
    body
}

/// A ureq agent set up like hookbus's own (no redirects, no proxy, statuses
/// are answers, the same connection pool limits), without its SSRF guard.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .max_idle_connections(256)
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

/// How a plain loop bounds its requests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timeouts {
    /// hookbus's settings: a 15 s global timeout, 5 s to connect. With a
    /// global (or per-call, or resolve) timeout set, ureq 3.5's default
    /// resolver looks the host up on a new thread for every request, even
    /// an IP literal, even on a pooled connection.
    Global,
    /// Every phase bounded on its own (connect 5 s; sending the request,
    /// the body, awaiting the answer and reading it, 15 s each), and no
    /// global, per-call or resolve timeout: the lookup of an IP literal has
    /// no deadline, so ureq resolves it on the calling thread and spawns
    /// nothing. The fastest bounded loop ureq allows: the fair baseline.
    PerPhase,
    /// None at all (ureq's defaults): unbounded, for reference.
    Off,
}

/// Signs and POSTs one body the way hookbus does (Standard Webhooks headers,
/// 15 s timeout, at most 4 KiB of the answer read). `true` on a 2xx.
pub fn post(agent: &ureq::Agent, url: &str, id: &str, body: &[u8]) -> bool {
    post_with(agent, url, id, body, Timeouts::Global)
}

/// [`post`] with the timeouts set as `timeouts` says.
pub fn post_with(
    agent: &ureq::Agent,
    url: &str,
    id: &str,
    body: &[u8],
    timeouts: Timeouts,
) -> bool {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signature = hookbus::signing::sign_standard(SECRET, id, ts, body).expect("sign");
    let request = agent.post(url);
    let phase = Some(Duration::from_secs(15));
    let request = match timeouts {
        Timeouts::Global => request
            .config()
            .timeout_global(phase)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build(),
        Timeouts::PerPhase => request
            .config()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_send_request(phase)
            .timeout_send_body(phase)
            .timeout_recv_response(phase)
            .timeout_recv_body(phase)
            .build(),
        Timeouts::Off => request,
    };
    let sent = request
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .send(body);
    match sent {
        Ok(mut response) => {
            let mut answer = Vec::new();
            let _ = response
                .body_mut()
                .as_reader()
                .take(4097)
                .read_to_end(&mut answer);
            response.status().is_success()
        }
        Err(_) => false,
    }
}

// ----- the receiver -----

#[derive(Default)]
pub struct RecvStats {
    /// Complete requests read.
    pub requests: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now, and the most at once.
    pub open: AtomicUsize,
    pub peak_open: AtomicUsize,
    /// Wall-clock ns of the first request, 0 before it.
    pub first_ns: AtomicU64,
    /// Requests the receiver could not parse.
    pub bad: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

impl RecvStats {
    /// Publish-to-receipt latencies seen so far, ns.
    pub fn latencies(&self) -> Vec<u64> {
        self.latencies.lock().expect("latency lock").clone()
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub stats: Arc<RecvStats>,
}

impl Receiver {
    /// Listens on a free loopback port.
    pub fn start(track_latency: bool) -> Receiver {
        Receiver::start_on(0, track_latency)
    }

    /// Listens on `127.0.0.1:port` (0 for any free port). The threads live
    /// as long as the process: every measurement has its own.
    pub fn start_on(port: u16, track_latency: bool) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let stats = Arc::new(RecvStats::default());
        let for_acceptor = Arc::clone(&stats);
        thread::Builder::new()
            .name("bench-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let stats = Arc::clone(&for_acceptor);
                    stats.connections.fetch_add(1, Ordering::SeqCst);
                    let open = stats.open.fetch_add(1, Ordering::SeqCst) + 1;
                    stats.peak_open.fetch_max(open, Ordering::SeqCst);
                    let spawned = thread::Builder::new()
                        .name("bench-recv".into())
                        .stack_size(128 * 1024)
                        .spawn(move || {
                            let _ = serve(stream, &stats, track_latency);
                            stats.open.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        for_acceptor.open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })
            .expect("spawn the acceptor");
        Receiver { addr, stats }
    }

    /// The URL of endpoint `i` on this receiver.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}/ep/{i}", self.addr)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `content-length` and whether the client asked to close.
fn parse_head(head: &[u8]) -> Option<(usize, bool)> {
    let mut len = None;
    let mut close = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            len = std::str::from_utf8(value).ok()?.parse().ok();
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return None; // chunked bodies are not expected here
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    Some((len.unwrap_or(0), close))
}

fn sent_ns(body: &[u8]) -> Option<u64> {
    let at = find(body, SENT_MARK)? + SENT_MARK.len();
    std::str::from_utf8(body.get(at..at + 20)?)
        .ok()?
        .parse()
        .ok()
}

fn serve(mut stream: TcpStream, stats: &RecvStats, track_latency: bool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let mut searched: usize = 0;
    loop {
        // The head: up to the blank line.
        let head_end = loop {
            if let Some(p) = find(&buf[searched.saturating_sub(3)..], b"\r\n\r\n") {
                break searched.saturating_sub(3) + p + 4;
            }
            searched = buf.len();
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(()); // closed between requests
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let Some((len, close)) = parse_head(&buf[..head_end]) else {
            stats.bad.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        };
        while buf.len() < head_end + len {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let now = wall_ns();
        stats
            .first_ns
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
            .ok();
        if track_latency {
            if let Some(sent) = sent_ns(&buf[head_end..head_end + len]) {
                let mut l = stats.latencies.lock().expect("latency lock");
                l.push(now.saturating_sub(sent));
            }
        }
        stats.requests.fetch_add(1, Ordering::SeqCst);
        stream.write_all(if close { RESPONSE_CLOSE } else { RESPONSE })?;
        if close {
            return Ok(());
        }
        buf.drain(..head_end + len);
        searched = 0;
    }
}

// ----- a minimal client, to measure the receiver alone -----

/// A request as ureq would send it for one endpoint: the same headers and
/// body size.
fn raw_request(addr: SocketAddr, path: &str) -> Vec<u8> {
    let id = hookbus::EventId::from_u128(1 << 90).to_string();
    let body = envelope(&id, "ev.0", &event_payload(0));
    let ts = 1_800_000_000u64;
    let signature = hookbus::signing::sign_standard(SECRET, &id, ts, &body).expect("sign");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nuser-agent: bench\r\naccept: */*\r\n\
         content-type: application/json\r\nwebhook-id: {id}\r\nwebhook-timestamp: {ts}\r\n\
         webhook-signature: {signature}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}

/// Sends `count` requests over one keep-alive connection, one at a time.
pub fn raw_client(addr: SocketAddr, path: &str, count: usize) -> io::Result<()> {
    let req = raw_request(addr, path);
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = [0u8; 1024];
    for _ in 0..count {
        stream.write_all(&req)?;
        let mut got = 0;
        loop {
            let n = stream.read(&mut buf[got..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got += n;
            if find(&buf[..got], b"\r\n\r\n").is_some() {
                break;
            }
        }
    }
    Ok(())
}

/// Percentiles of a set of nanosecond samples, in ms: (p50, p99, max).
pub fn percentiles_ms(mut ns: Vec<u64>) -> (f64, f64, f64) {
    if ns.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    ns.sort_unstable();
    let at = |p: f64| ns[((ns.len() as f64 - 1.0) * p).round() as usize] as f64 / 1e6;
    (at(0.50), at(0.99), *ns.last().unwrap_or(&0) as f64 / 1e6)
}
