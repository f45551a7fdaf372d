//! Guards the bus against hostile receivers: raw loopback TCP servers that
//! never answer, stall mid-body, reset or close the connection, send 10 MB,
//! answer garbage instead of HTTP, redirect, or drip their answer one byte
//! per second. For each, the attempt must end within the endpoint's timeout
//! (measured by the attempt itself and by the wall clock), be logged with
//! the right [`ErrorKind`], read only a bounded part of any answer, never
//! follow a redirect, and never slow down a healthy endpoint on the same
//! bus: every test delivers a batch of events to a healthy receiver while
//! the hostile one is busy, and bounds how long that takes.
//!
//! The hostile servers are written on `std::net` with raw bytes, so each
//! test controls exactly what goes on the wire. Every blocking call they
//! make has a short timeout and checks a stop flag, so no thread outlives
//! its test.

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{eventually, fast_bus, Receiver, WAIT};
use hookbus::{Attempt, Bus, EndpointConfig, EndpointId, ErrorKind, Event, EventId};
use parking_lot::Mutex;
use serde_json::json;

/// The hostile endpoint's attempt timeout.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// Slack on `Attempt::duration` past the timeout: ureq's deadline plus
/// scheduling noise on a loaded machine.
const DURATION_SLACK: Duration = Duration::from_millis(1500);
/// Slack on the wall clock from publish to the logged attempt: also covers
/// the durable publish and the lane picking the delivery up.
const WALL_SLACK: Duration = Duration::from_secs(4);
/// Events delivered to the healthy endpoint, once alone and once next to
/// the hostile one.
const LOAD: usize = 50;
/// The healthy endpoint must receive `LOAD` events within this.
const HEALTHY_BOUND: Duration = Duration::from_secs(5);
/// The big answer of case 4.
const TEN_MB: usize = 10 * 1024 * 1024;
/// The bus's `response_body_limit` in these tests.
const BODY_LIMIT: usize = 1000;

// ---------------------------------------------------------------------------
// A raw TCP server whose every connection runs a scripted behaviour.

/// What the server saw on one connection.
#[derive(Clone, Debug)]
struct ConnStats {
    accepted: Instant,
    /// The request lines of the whole requests read, in order.
    requests: Vec<String>,
    /// Response bytes the client accepted (written into the socket).
    written: usize,
    /// When and how the server noticed the client was gone (EOF on read,
    /// or a failed write).
    client_gone: Option<(Instant, String)>,
    /// The behaviour wrote everything it meant to.
    completed: bool,
}

struct ServerState {
    stop: AtomicBool,
    conns: Mutex<Vec<ConnStats>>,
}

type Behaviour = dyn Fn(&mut Conn) + Send + Sync;

/// One accepted connection, handed to the behaviour.
struct Conn {
    stream: TcpStream,
    state: Arc<ServerState>,
    index: usize,
    port: u16,
}

/// Why a server-side operation stopped.
#[derive(Debug)]
enum Halt {
    /// The test is over.
    Stopped,
    /// The client closed or reset the connection.
    Gone,
}

impl Conn {
    fn stopped(&self) -> bool {
        self.state.stop.load(Ordering::SeqCst)
    }

    fn stats(&self, f: impl FnOnce(&mut ConnStats)) {
        f(&mut self.state.conns.lock()[self.index]);
    }

    fn gone(&self, how: impl Into<String>) -> Halt {
        let how = how.into();
        self.stats(|s| {
            s.client_gone.get_or_insert((Instant::now(), how));
        });
        Halt::Gone
    }

    /// Reads one whole request (headers and `content-length` body) and
    /// returns its path.
    fn read_request(&mut self) -> Result<String, Halt> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head_end, content_length) = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, len);
            }
            let n = self.read_some(&mut chunk)?;
            buf.extend_from_slice(&chunk[..n]);
        };
        while buf.len() < head_end + content_length {
            let n = self.read_some(&mut chunk)?;
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf[..find(&buf, b"\r\n").unwrap_or(0)]).into_owned();
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        self.stats(|s| s.requests.push(line));
        Ok(path)
    }

    /// One read of at least a byte, giving up when the test stops.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Halt> {
        loop {
            if self.stopped() {
                return Err(Halt::Stopped);
            }
            match self.stream.read(buf) {
                Ok(0) => return Err(self.gone("eof")),
                Ok(n) => return Ok(n),
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(self.gone(format!("read: {:?}", e.kind()))),
            }
        }
    }

    /// Writes everything, counting what the socket accepted, giving up when
    /// the client goes away or the test stops.
    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Halt> {
        while !bytes.is_empty() {
            if self.stopped() {
                return Err(Halt::Stopped);
            }
            match self.stream.write(bytes) {
                Ok(0) => return Err(self.gone("write: 0")),
                Ok(n) => {
                    self.stats(|s| s.written += n);
                    bytes = &bytes[n..];
                }
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(self.gone(format!("write: {:?}", e.kind()))),
            }
        }
        Ok(())
    }

    /// Sleeps, giving up when the test stops.
    fn nap(&self, d: Duration) -> Result<(), Halt> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopped() {
                return Err(Halt::Stopped);
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Says nothing more and waits until the client closes the connection
    /// (or the test stops), discarding anything it sends.
    fn hold(&mut self) -> Halt {
        let mut scratch = [0u8; 1024];
        loop {
            if let Err(halt) = self.read_some(&mut scratch) {
                return halt;
            }
        }
    }

    /// Writes `bytes` one byte per second.
    fn drip(&mut self, bytes: &[u8]) -> Result<(), Halt> {
        for b in bytes {
            self.write(std::slice::from_ref(b))?;
            self.nap(Duration::from_secs(1))?;
        }
        Ok(())
    }

    fn completed(&self) {
        self.stats(|s| s.completed = true);
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A loopback server on 127.0.0.1 running `behaviour` on every connection,
/// each on its own thread. Dropping it stops and joins every thread.
struct Hostile {
    port: u16,
    state: Arc<ServerState>,
    accept: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Hostile {
    fn start(behaviour: impl Fn(&mut Conn) + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ServerState {
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let handlers = Arc::new(Mutex::new(Vec::new()));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let accept = {
            let (state, handlers) = (state.clone(), handlers.clone());
            thread::spawn(move || {
                while !state.stop.load(Ordering::SeqCst) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(_) => continue,
                    };
                    stream.set_nonblocking(false).unwrap();
                    // Short timeouts so every handler notices the stop flag.
                    let tick = Some(Duration::from_millis(50));
                    stream.set_read_timeout(tick).unwrap();
                    stream.set_write_timeout(tick).unwrap();
                    let index = {
                        let mut conns = state.conns.lock();
                        conns.push(ConnStats {
                            accepted: Instant::now(),
                            requests: Vec::new(),
                            written: 0,
                            client_gone: None,
                            completed: false,
                        });
                        conns.len() - 1
                    };
                    let mut conn = Conn {
                        stream,
                        state: state.clone(),
                        index,
                        port,
                    };
                    let behaviour = behaviour.clone();
                    handlers
                        .lock()
                        .push(thread::spawn(move || behaviour(&mut conn)));
                }
            })
        };
        Hostile {
            port,
            state,
            accept: Some(accept),
            handlers,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    fn conns(&self) -> Vec<ConnStats> {
        self.state.conns.lock().clone()
    }

    fn paths_requested(&self) -> Vec<String> {
        self.conns()
            .into_iter()
            .flat_map(|c| c.requests)
            .filter_map(|l| l.split(' ').nth(1).map(str::to_string))
            .collect()
    }

    /// Stops accepting, ends every connection and joins every thread.
    fn stop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            if t.join().is_err() && !thread::panicking() {
                panic!("the accept thread panicked");
            }
        }
        let handlers = std::mem::take(&mut *self.handlers.lock());
        for h in handlers {
            // Not a second panic while a failed test unwinds.
            if h.join().is_err() && !thread::panicking() {
                panic!("a hostile handler panicked");
            }
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// One scenario: a healthy endpoint and hostile endpoints on the same bus.

struct Scenario {
    // Dropped in this order: the hostile server first (which ends its
    // connections, so in-flight attempts finish), then the bus.
    hostile: Hostile,
    bus: Bus,
    _healthy_rx: Receiver,
    _dir: tempfile::TempDir,
    /// The probe attempt of each hostile endpoint, in the order of the
    /// paths given to `run`.
    attempts: Vec<Attempt>,
}

impl Scenario {
    /// Opens a bus with a healthy endpoint, measures a baseline of `LOAD`
    /// deliveries to it, adds one hostile endpoint per path, publishes a
    /// probe event, and once the hostile server has a connection, delivers
    /// `LOAD` more events (which go to the hostile endpoints too) while
    /// waiting for the probe's attempts.
    fn run(
        name: &str,
        paths: &[&str],
        behaviour: impl Fn(&mut Conn) + Send + Sync + 'static,
    ) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let hostile = Hostile::start(behaviour);
        let healthy_rx = Receiver::ok();
        let bus = fast_bus(dir.path())
            .max_attempts(1)
            .response_body_limit(BODY_LIMIT)
            .shutdown_timeout(Duration::from_secs(3))
            .open()
            .unwrap();
        bus.add_endpoint(EndpointConfig::new("healthy", healthy_rx.url("/ok")))
            .unwrap();
        let baseline = deliver_load(&bus, &healthy_rx, 0);

        let ids: Vec<EndpointId> = paths
            .iter()
            .map(|p| {
                bus.add_endpoint(
                    EndpointConfig::new(format!("hostile{}", p.replace('/', "-")), hostile.url(p))
                        .timeout(TIMEOUT)
                        .pause_after(None),
                )
                .unwrap()
                .id()
            })
            .collect();
        let started = Instant::now();
        let probe = bus
            .publish(Event::new("probe.sent", &json!({"probe": true})).unwrap())
            .unwrap();
        eventually(WAIT, "the hostile server to get a connection", || {
            !hostile.conns().is_empty()
        });

        let (attempts, wall, loaded) = thread::scope(|s| {
            let loaded = s.spawn(|| deliver_load(&bus, &healthy_rx, LOAD));
            let attempts = probe_attempts(&bus, probe, &ids);
            let wall = started.elapsed();
            (attempts, wall, loaded.join().expect("healthy load"))
        });

        println!(
            "[{name}] healthy endpoint: {LOAD} deliveries in {baseline:?} alone, \
             {loaded:?} next to the hostile endpoint"
        );
        for (path, a) in paths.iter().zip(&attempts) {
            println!(
                "[{name}] {path}: error {:?}, status {:?}, duration {:?}, wall {wall:?}, \
                 body {} bytes (truncated: {}), message {:?}",
                a.error,
                a.status,
                a.duration,
                a.response_body.len(),
                a.response_truncated,
                a.error_message,
            );
            assert!(
                a.duration < TIMEOUT + DURATION_SLACK,
                "[{name}] {path}: the attempt took {:?}, timeout {TIMEOUT:?}",
                a.duration
            );
        }
        assert!(
            wall < TIMEOUT + WALL_SLACK,
            "[{name}] the probe's attempts were logged {wall:?} after publish"
        );
        assert!(
            loaded < HEALTHY_BOUND,
            "[{name}] the healthy endpoint took {loaded:?} for {LOAD} deliveries \
             (alone: {baseline:?})"
        );
        Scenario {
            hostile,
            bus,
            _healthy_rx: healthy_rx,
            _dir: dir,
            attempts,
        }
    }

    fn attempt(&self) -> &Attempt {
        assert_eq!(self.attempts.len(), 1);
        &self.attempts[0]
    }

    /// Stops the hostile server, then the bus, and checks both stop
    /// promptly.
    fn finish(mut self) {
        let started = Instant::now();
        self.hostile.stop();
        self.bus.shutdown().expect("clean shutdown");
        let took = started.elapsed();
        println!("stopping the hostile server and the bus took {took:?}");
        assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    }
}

/// Publishes `LOAD` events and waits until the healthy receiver has
/// `already + LOAD` requests; returns how long that took.
fn deliver_load(bus: &Bus, rx: &Receiver, already: usize) -> Duration {
    let started = Instant::now();
    for i in 0..LOAD {
        bus.publish(Event::new("load.tick", &json!({ "i": i })).unwrap())
            .unwrap();
    }
    rx.wait_until(
        HEALTHY_BOUND * 2,
        "the healthy endpoint's deliveries",
        |r| r.len() >= already + LOAD,
    );
    started.elapsed()
}

/// Waits until `event` has an attempt for each endpoint; returns them in
/// the order of `endpoints`.
fn probe_attempts(bus: &Bus, event: EventId, endpoints: &[EndpointId]) -> Vec<Attempt> {
    let mut found = Vec::new();
    eventually(WAIT, "the probe's attempts in the log", || {
        let logged = bus.attempts(event).unwrap();
        found = endpoints
            .iter()
            .filter_map(|id| logged.iter().find(|a| a.endpoint == *id).cloned())
            .collect();
        found.len() == endpoints.len()
    });
    found
}

fn assert_failed(a: &Attempt, kind: ErrorKind, status: Option<u16>) {
    assert_eq!(a.error, Some(kind), "{a:?}");
    assert_eq!(a.status, status, "{a:?}");
    assert!(!a.succeeded, "{a:?}");
}

/// Deterministic bytes that are not HTTP (xorshift).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Never answers.

#[test]
fn silent_receiver_times_out() {
    let s = Scenario::run("silent", &["/silent"], |c| {
        if c.read_request().is_ok() {
            c.hold();
        }
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Timeout, None);
    assert!(a.duration >= TIMEOUT - Duration::from_millis(100), "{a:?}");
    // The server saw the client give up around the timeout (its handler
    // may notice a little after the attempt is logged).
    let mut first = s.hostile.conns()[0].clone();
    eventually(WAIT, "the server to see the client close", || {
        first = s.hostile.conns()[0].clone();
        first.client_gone.is_some()
    });
    let (gone, how) = first.client_gone.clone().unwrap();
    let after = gone - first.accepted;
    println!("[silent] server saw the client close ({how}) {after:?} after accept");
    assert!(after < TIMEOUT + DURATION_SLACK, "{after:?}");
    s.finish();
}

// ---------------------------------------------------------------------------
// 2. Answers the head, then stalls the body.

#[test]
fn stalled_body_times_out() {
    let s = Scenario::run("stalled-body", &["/stall"], |c| {
        if c.read_request().is_err() {
            return;
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nfirst bytes";
        if c.write(head).is_ok() {
            c.hold();
        }
    });
    let a = s.attempt();
    // The status arrived, but the answer never completed: not delivered.
    assert_failed(a, ErrorKind::Timeout, Some(200));
    assert!(a.duration >= TIMEOUT - Duration::from_millis(100), "{a:?}");
    s.finish();
}

// ---------------------------------------------------------------------------
// 3. Resets or closes the connection without answering.

#[test]
fn reset_connection_is_a_connect_failure() {
    // Waits until the request is in the receive buffer, then closes without
    // reading it: the kernel answers with a RST, not a FIN.
    let s = Scenario::run("reset", &["/reset"], |c| {
        let mut one = [0u8; 1];
        loop {
            match c.stream.peek(&mut one) {
                Ok(_) => break,
                Err(e) if is_timeout(&e) && !c.stopped() => continue,
                Err(_) => return,
            }
        }
        c.completed();
        // Dropping `c.stream` (when the handler returns) sends the RST.
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Connect, None);
    assert!(a.duration < TIMEOUT, "{a:?}");
    assert!(s.hostile.conns()[0].completed);
    s.finish();
}

#[test]
fn connection_closed_after_the_request_is_a_connect_failure() {
    // Reads the whole request, then closes cleanly (FIN) without a word.
    let s = Scenario::run("closed", &["/closed"], |c| {
        if c.read_request().is_ok() {
            // Marked first: the client may log the attempt as soon as the
            // FIN arrives.
            c.completed();
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Connect, None);
    assert!(a.duration < TIMEOUT, "{a:?}");
    assert!(s.hostile.conns()[0].completed);
    s.finish();
}

// ---------------------------------------------------------------------------
// 4. Answers 200 with a 10 MB body.

/// Checks that a 10 MB answer was read only up to the limit, counted as
/// delivered, and that the server saw the client stop reading early.
fn check_big_answer(s: &Scenario, name: &str) {
    let a = s.attempt();
    // A 2xx is a delivery whatever follows it: the receiver took the event.
    // The body is only kept for the log, truncated to the limit.
    assert!(a.succeeded, "{a:?}");
    assert_eq!(a.error, None, "{a:?}");
    assert_eq!(a.status, Some(200));
    assert_eq!(a.response_body.len(), BODY_LIMIT, "{a:?}");
    assert!(a.response_truncated, "{a:?}");
    assert!(a.response_body.iter().all(|&b| b == b'x'), "{a:?}");
    assert!(a.duration < TIMEOUT, "{a:?}");

    // The server's writes to the probe's connection fail once the client
    // drops it, long before 10 MB: the body was not drained.
    let first = s.hostile.conns()[0].clone();
    let mut gone = None;
    eventually(WAIT, "the server to see the client close", || {
        gone = s.hostile.conns()[0].client_gone.clone();
        gone.is_some()
    });
    let (at, how) = gone.unwrap();
    let written = s.hostile.conns()[0].written;
    // The client hung up with unread data: the server's write is reset.
    assert!(how.starts_with("write"), "{how}");
    println!(
        "[{name}] server wrote {written} of {TEN_MB} bytes before the client closed \
         ({how}, {:?} after accept)",
        at - first.accepted
    );
    // Had the client drained the body, the server would have finished
    // (10 MB over loopback takes milliseconds). What it did write is what
    // the kernel buffers took (about 4 MB with Linux's default 4 MB
    // `tcp_wmem` maximum) plus ureq's read buffer.
    assert!(!s.hostile.conns()[0].completed, "the whole 10 MB was read");
    assert!(written < TEN_MB / 2, "{written} bytes written");
    assert!(at - first.accepted < TIMEOUT + DURATION_SLACK);
}

#[test]
fn ten_megabyte_body_is_read_only_up_to_the_limit() {
    let s = Scenario::run("10MB", &["/big"], |c| {
        if c.read_request().is_err() {
            return;
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {TEN_MB}\r\n\r\n");
        if c.write(head.as_bytes()).is_err() {
            return;
        }
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..TEN_MB / block.len() {
            if c.write(&block).is_err() {
                return;
            }
        }
        c.completed();
        c.hold();
    });
    check_big_answer(&s, "10MB");
    s.finish();
}

#[test]
fn ten_megabyte_chunked_body_is_read_only_up_to_the_limit() {
    let s = Scenario::run("10MB-chunked", &["/big-chunked"], |c| {
        if c.read_request().is_err() {
            return;
        }
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        if c.write(head.as_bytes()).is_err() {
            return;
        }
        let size = 16 * 1024;
        let mut chunk = format!("{size:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b'x', size));
        chunk.extend_from_slice(b"\r\n");
        for _ in 0..TEN_MB / size {
            if c.write(&chunk).is_err() {
                return;
            }
        }
        if c.write(b"0\r\n\r\n").is_ok() {
            c.completed();
            c.hold();
        }
    });
    check_big_answer(&s, "10MB-chunked");
    s.finish();
}

// ---------------------------------------------------------------------------
// 5. Answers something that is not HTTP.

#[test]
fn non_http_answer_is_other() {
    // A complete "head" that is not a status line; the connection stays
    // open, so only the parse can end the attempt early.
    let s = Scenario::run("garbage", &["/hello"], |c| {
        if c.read_request().is_ok() && c.write(b"HELLO\r\n\r\n").is_ok() {
            c.hold();
        }
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Other, None);
    assert!(a.duration < TIMEOUT, "{a:?}");
    s.finish();
}

#[test]
fn binary_noise_answer_is_other() {
    let s = Scenario::run("noise", &["/noise"], |c| {
        if c.read_request().is_ok() && c.write(&noise(4096)).is_ok() {
            c.hold();
        }
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Other, None);
    assert!(a.duration < TIMEOUT, "{a:?}");
    s.finish();
}

#[test]
fn endless_response_head_is_other() {
    // A valid status line, then headers forever: the head must be bounded
    // like the body, not buffered until the timeout (or memory) runs out.
    let s = Scenario::run("endless-head", &["/endless-head"], |c| {
        if c.read_request().is_err() || c.write(b"HTTP/1.1 200 OK\r\n").is_err() {
            return;
        }
        let line = format!("X-Junk: {}\r\n", "a".repeat(1000));
        for _ in 0..TEN_MB / line.len() {
            if c.write(line.as_bytes()).is_err() {
                return;
            }
        }
        c.completed();
        c.hold();
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Other, None);
    assert!(a.duration < TIMEOUT, "{a:?}");
    assert!(
        !s.hostile.conns()[0].completed,
        "the whole 10 MB head was read"
    );
    s.finish();
}

// ---------------------------------------------------------------------------
// 6. Redirects to another path of the same server.

#[test]
fn redirects_are_never_followed() {
    const CODES: [u16; 4] = [301, 302, 307, 308];
    let paths: Vec<String> = CODES.iter().map(|c| format!("/r{c}")).collect();
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    // Serves every request of a kept-alive connection, like a real server.
    let s = Scenario::run("redirect", &path_refs, |c| {
        while let Ok(path) = c.read_request() {
            let answer = match path.strip_prefix("/r").and_then(|c| c.parse::<u16>().ok()) {
                Some(code) => format!(
                    "HTTP/1.1 {code} Moved\r\nLocation: http://127.0.0.1:{}/target\r\n\
                     Content-Length: 0\r\n\r\n",
                    c.port
                ),
                // Reached only if a redirect was followed.
                None => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string(),
            };
            if c.write(answer.as_bytes()).is_err() {
                return;
            }
        }
    });
    for (code, a) in CODES.iter().zip(&s.attempts) {
        assert_failed(a, ErrorKind::Redirect, Some(*code));
        assert!(a.duration < TIMEOUT, "{a:?}");
    }
    // The load events kept every redirecting endpoint busy meanwhile: each
    // attempt so far got its redirect, and none reached the target.
    thread::sleep(Duration::from_millis(300));
    for (code, probe) in CODES.iter().zip(&s.attempts) {
        let logged = s
            .bus
            .endpoint_attempts(probe.endpoint, None, 1000)
            .unwrap()
            .items;
        assert!(logged.len() > 1, "{code}: only {} attempts", logged.len());
        for a in &logged {
            assert_failed(a, ErrorKind::Redirect, Some(*code));
        }
    }
    let paths_seen = s.hostile.paths_requested();
    assert!(!paths_seen.is_empty());
    assert!(
        paths_seen.iter().all(|p| p.starts_with("/r3")),
        "a redirect was followed: {paths_seen:?}"
    );
    s.finish();
}

// ---------------------------------------------------------------------------
// 7. Drips a valid answer one byte per second.

#[test]
fn answer_dripped_one_byte_per_second_times_out() {
    let s = Scenario::run("drip", &["/drip"], |c| {
        if c.read_request().is_ok()
            && c.drip(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_ok()
        {
            c.completed();
            c.hold();
        }
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Timeout, None);
    assert!(a.duration >= TIMEOUT - Duration::from_millis(100), "{a:?}");
    assert!(!s.hostile.conns()[0].completed);
    s.finish();
}

#[test]
fn body_dripped_one_byte_per_second_times_out() {
    let s = Scenario::run("drip-body", &["/drip-body"], |c| {
        if c.read_request().is_err() {
            return;
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n";
        if c.write(head).is_ok() && c.drip(&[b'y'; 32]).is_ok() {
            c.completed();
            c.hold();
        }
    });
    let a = s.attempt();
    assert_failed(a, ErrorKind::Timeout, Some(200));
    assert!(a.duration >= TIMEOUT - Duration::from_millis(100), "{a:?}");
    assert!(!s.hostile.conns()[0].completed);
    s.finish();
}
