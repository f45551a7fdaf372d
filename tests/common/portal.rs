//! Helpers for the portal's tests: requests to the handler as the host or
//! as a session, answers read as JSON, a loopback server mounting the
//! handler with tiny_http.

use std::io::Read;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use hookbus::portal::Portal;
use serde_json::Value;

/// A fresh ten-minute session token for `tenant`.
pub fn session(bus: &hookbus::Bus, tenant: &str) -> String {
    bus.portal_session(
        &hookbus::TenantId::new(tenant).unwrap(),
        std::time::Duration::from_secs(600),
    )
    .unwrap()
    .token
}

/// Who sends a request.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Host,
    Session(&'a str),
    /// A customer without a token.
    Nobody,
}

/// An answer of the handler.
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub headers: http::HeaderMap,
    pub raw: Vec<u8>,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self) -> &str {
        self.json["error"]["field"].as_str().unwrap_or("")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

pub fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    b.body(body).unwrap()
}

pub fn send(portal: &Portal, who: As<'_>, req: http::Request<Vec<u8>>) -> Answer {
    let resp = match who {
        As::Host => portal.handle_host(req),
        As::Session(_) | As::Nobody => portal.handle(req),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body();
    let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Answer {
        status,
        json,
        headers,
        raw,
    }
}

/// `method` `/portal/api/v1{path}` with an optional JSON body.
pub fn call(portal: &Portal, who: As<'_>, method: &str, path: &str, body: Option<Value>) -> Answer {
    let token = match who {
        As::Session(t) => Some(t),
        _ => None,
    };
    let body = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    send(
        portal,
        who,
        request(method, &format!("/portal/api/v1{path}"), token, body),
    )
}

/// The handler mounted on a real tiny_http server on 127.0.0.1 (one
/// thread per request, as a test send waits for its receiver).
pub struct Server {
    pub base: String,
    server: Arc<tiny_http::Server>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// `host`: serve with host scope (`handle_host`), else as customers.
    pub fn start(portal: Portal, host: bool) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let accept = {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                for rq in server.incoming_requests() {
                    let portal = portal.clone();
                    thread::spawn(move || answer(&portal, host, rq));
                }
            })
        };
        Server {
            base,
            server,
            accept: Some(accept),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

fn answer(portal: &Portal, host: bool, mut rq: tiny_http::Request) {
    let mut body = Vec::new();
    let read = rq.as_reader().take(2 * 1024 * 1024).read_to_end(&mut body);
    let mut req = http::Request::builder()
        .method(rq.method().as_str())
        .uri(rq.url());
    for h in rq.headers() {
        req = req.header(h.field.as_str().as_str(), h.value.as_str());
    }
    let resp = match (read, req.body(body)) {
        (Ok(_), Ok(req)) if host => portal.handle_host(req),
        (Ok(_), Ok(req)) => portal.handle(req),
        _ => http::Response::builder()
            .status(400)
            .body(Vec::new())
            .unwrap(),
    };
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(n, v)| tiny_http::Header::from_bytes(n.as_str(), v.as_bytes()).ok())
        .collect();
    let status = resp.status().as_u16();
    let body = resp.into_body();
    let len = body.len();
    let _ = rq.respond(tiny_http::Response::new(
        status.into(),
        headers,
        std::io::Cursor::new(body),
        Some(len),
        None,
    ));
}
