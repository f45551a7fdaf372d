//! Shared helpers for the integration tests: a real HTTP receiver on
//! 127.0.0.1 whose answers each test scripts, and small waiting helpers.
//!
//! The receiver is a friendly one: requests are parsed by `httparse` (the
//! parser hyper uses), and each connection gets its own thread so no
//! connection ever waits for another. Receivers that misbehave on purpose
//! (tests/hostile_receivers.rs) write raw bytes on their own sockets.
#![allow(dead_code)]

mod backend;

pub use backend::*;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hookbus::{Bus, BusBuilder};

pub mod logs;
#[cfg(feature = "portal")]
pub mod portal;
use parking_lot::{Condvar, Mutex};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    /// The `attempt` field of the default envelope.
    pub fn attempt(&self) -> u64 {
        self.json()["attempt"].as_u64().expect("attempt number")
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id").expect("webhook-id").to_string()
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    /// Status plus extra headers and a body.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Waits, then answers.
    After(Duration, u16),
}

type Responder = dyn Fn(&Received, usize) -> Reply + Send + Sync;

struct Log {
    requests: Mutex<Vec<Received>>,
    arrived: Condvar,
}

/// A loopback HTTP/1.1 server that records every request and answers as
/// told. The responder gets the request and how many requests to the same
/// path came before it.
///
/// One thread per connection (keep-alive honoured), so however many
/// connections arrive at once, none waits for another; a slow answer holds
/// only its own connection.
pub struct Receiver {
    port: u16,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub fn ok() -> Receiver {
        Receiver::start(|_, _| Reply::Status(200))
    }

    pub fn start(
        responder: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let log = Arc::new(Log {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let responder: Arc<Responder> = Arc::new(responder);
        let accept = {
            let (log, stop) = (log.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, responder, stop) = (log.clone(), responder.clone(), stop.clone());
                    thread::spawn(move || serve(conn, &log, &*responder, &stop));
                }
            })
        };
        Receiver {
            port,
            log,
            stop,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.log.requests.lock().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `done` holds for the requests received, or panics after
    /// `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut requests = self.log.requests.lock();
        loop {
            if done(&requests) {
                return requests.clone();
            }
            if self
                .log
                .arrived
                .wait_until(&mut requests, deadline)
                .timed_out()
                && !done(&requests)
            {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; got {} requests",
                    requests.len()
                );
            }
        }
    }

    /// Waits for at least `n` requests to `path`.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, &format!("{n} requests to {path}"), |r| {
            r.iter().filter(|x| x.path == path).count() >= n
        })
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection: requests one after another until the client
/// closes it or the receiver is dropped.
fn serve(conn: TcpStream, log: &Log, responder: &Responder, stop: &AtomicBool) {
    // A read wakes up every second to see whether the receiver was dropped.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut conn = Connection {
        stream: conn,
        buf: Vec::new(),
    };
    while !stop.load(Ordering::SeqCst) {
        let received = match conn.read_request(stop) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return,
        };
        let close = received
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let nth = {
            let mut requests = log.requests.lock();
            let nth = requests.iter().filter(|r| r.path == received.path).count();
            requests.push(received.clone());
            log.arrived.notify_all();
            nth
        };
        let (status, headers, body) = match responder(&received, nth) {
            Reply::Status(s) => (s, vec![], Vec::new()),
            Reply::Full(s, h, b) => (s, h, b),
            Reply::After(wait, s) => {
                thread::sleep(wait);
                (s, vec![], Vec::new())
            }
        };
        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // The client may have given up (timeouts): a failed write ends the
        // connection, nothing more.
        if conn
            .stream
            .write_all(head.as_bytes())
            .and_then(|()| conn.stream.write_all(&body))
            .is_err()
            || close
        {
            return;
        }
    }
}

/// A read that timed out: nothing arrived yet, try again.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One client connection and the bytes read from it but not yet used (a
/// keep-alive client may send the next request right behind a body).
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Most headers a request may have; hookbus sends about ten.
const MAX_HEADERS: usize = 64;

impl Connection {
    /// Reads more bytes into the buffer; `false` when the client closed
    /// the connection. A timeout before a request has started is returned
    /// (the caller checks whether to stop); once one has started, the rest
    /// is waited for unless the receiver is being dropped.
    fn fill(&mut self, stop: &AtomicBool) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if is_timeout(&e) && !self.buf.is_empty() => {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one request (head parsed by httparse, then the body framed by
    /// `content-length` or chunked); `None` when the client closed the
    /// connection first.
    fn read_request(&mut self, stop: &AtomicBool) -> io::Result<Option<Received>> {
        let (method, path, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut slots);
            match request.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let headers: Vec<(String, String)> = request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    let method = request.method.unwrap_or_default().to_string();
                    let path = request.path.unwrap_or_default().to_string();
                    break (method, path, headers, len);
                }
                Ok(httparse::Status::Partial) => {
                    if !self.fill(stop)? {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        };
        self.buf.drain(..head_len);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let chunked = header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked"));
        let body = if chunked {
            match self.read_chunked(stop)? {
                Some(body) => body,
                None => return Ok(None),
            }
        } else {
            let length: usize = match header("content-length").map(str::parse) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bad content-length",
                    ))
                }
            };
            while self.buf.len() < length {
                if !self.fill(stop)? {
                    return Ok(None);
                }
            }
            self.buf.drain(..length).collect()
        };
        Ok(Some(Received {
            path,
            method,
            headers,
            body,
            at: Instant::now(),
        }))
    }

    /// A chunked body: chunk sizes parsed by httparse, then the trailer
    /// section (ignored) up to its empty line.
    fn read_chunked(&mut self, stop: &AtomicBool) -> io::Result<Option<Vec<u8>>> {
        let mut body = Vec::new();
        loop {
            let (size_len, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((len, size))) => break (len, size),
                    Ok(httparse::Status::Partial) => {
                        if !self.fill(stop)? {
                            return Ok(None);
                        }
                    }
                    Err(_) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))
                    }
                }
            };
            self.buf.drain(..size_len);
            if size == 0 {
                break;
            }
            let size = usize::try_from(size)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "huge chunk"))?;
            // The chunk, then its CRLF.
            while self.buf.len() < size + 2 {
                if !self.fill(stop)? {
                    return Ok(None);
                }
            }
            body.extend(self.buf.drain(..size));
            if self.buf.drain(..2).as_slice() != b"\r\n" {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk without CRLF",
                ));
            }
        }
        // Trailer lines, up to and including the empty one.
        loop {
            match self.buf.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buf.drain(..2);
                    return Ok(Some(body));
                }
                Some(end) => {
                    self.buf.drain(..end + 2);
                }
                None => {
                    if !self.fill(stop)? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// A bus builder with test-friendly timings (50 ms retries without jitter,
/// a 2 s attempt timeout) that may reach the loopback receivers, on the
/// backend `HOOKBUS_TEST_BACKEND` chose (see `backend.rs`).
pub fn fast_bus(dir: &Path) -> BusBuilder {
    bus_builder(dir)
        .allow_private_networks(true)
        .retry_delays([Duration::from_millis(50)])
        .retry_jitter(0.0)
        .timeout(Duration::from_secs(2))
}

/// Polls `done` every few milliseconds until it holds, or panics.
pub fn eventually(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

pub const WAIT: Duration = Duration::from_secs(10);

/// Waits for the first attempt of an event to be logged, and returns it.
pub fn first_attempt(bus: &Bus, id: hookbus::EventId) -> hookbus::Attempt {
    let mut got = None;
    eventually(WAIT, "an attempt in the log", || {
        got = bus.attempts(id).unwrap().into_iter().next();
        got.is_some()
    });
    got.unwrap()
}
