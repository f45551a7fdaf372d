//! Shared helpers for the integration tests: a real HTTP receiver on
//! 127.0.0.1 whose answers each test scripts, and small waiting helpers.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hookbus::{Bus, BusBuilder};
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

/// A loopback HTTP server that records every request and answers as told.
/// The responder gets the request and how many requests to the same path
/// came before it.
pub struct Receiver {
    server: Arc<tiny_http::Server>,
    port: u16,
    log: Arc<Log>,
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
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let log = Arc::new(Log {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let responder: Arc<Responder> = Arc::new(responder);
        let accept = {
            let (server, log) = (server.clone(), log.clone());
            thread::spawn(move || {
                for request in server.incoming_requests() {
                    let (log, responder) = (log.clone(), responder.clone());
                    // One thread per request, so a slow answer never holds
                    // up another endpoint's request.
                    thread::spawn(move || handle(request, &log, &*responder));
                }
            })
        };
        Receiver {
            server,
            port,
            log,
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
        self.server.unblock();
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut request: tiny_http::Request, log: &Log, responder: &Responder) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let received = Received {
        path: request.url().to_string(),
        method: request.method().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect(),
        body,
        at: Instant::now(),
    };
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
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    // The client may have given up (timeouts): a failed write is expected.
    let _ = request.respond(response);
}

/// A bus builder with test-friendly timings (50 ms retries without jitter,
/// a 2 s attempt timeout) that may reach the loopback receivers.
pub fn fast_bus(dir: &Path) -> BusBuilder {
    Bus::builder(dir)
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
