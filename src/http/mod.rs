//! HTTP: the one place that talks to ureq. Sends one attempt and turns
//! whatever happened into an [`HttpOutcome`].

mod guard;

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::DefaultConnector;
use ureq::Agent;

use crate::bounds;
use crate::error::{Error, Result};
use crate::log::ErrorKind;
use guard::{parse_network, Blocked, GuardedResolver, NetworkPolicy};

/// A request to send: everything already built and signed.
pub(crate) struct HttpRequest<'a> {
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) body: &'a [u8],
    pub(crate) timeout: Duration,
}

/// What one attempt produced.
#[derive(Debug)]
pub(crate) struct HttpOutcome {
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<(ErrorKind, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
    pub(crate) duration: Duration,
    /// The `Retry-After` the receiver asked for, if any.
    pub(crate) retry_after: Option<Duration>,
    /// The response's headers, at most [`KEPT_HEADERS`] of them, each value
    /// cut at [`KEPT_HEADER_VALUE_BYTES`].
    pub(crate) headers: Vec<(String, String)>,
    /// What the attempt log keeps of the request; filled by the sender,
    /// which knows which headers hold secrets.
    pub(crate) request: KeptRequest,
}

/// The request of an attempt as the attempt log keeps it: headers with
/// signatures and secrets redacted, and the start of the body.
#[derive(Debug, Default)]
pub(crate) struct KeptRequest {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
}

/// How many response headers an attempt keeps: enough for any real
/// answer, and a bound on what a hostile receiver can make the log store.
pub(crate) const KEPT_HEADERS: usize = 64;

/// How many bytes of each kept response header value an attempt keeps
/// (cut at a character boundary).
pub(crate) const KEPT_HEADER_VALUE_BYTES: usize = 1024;

/// What the HTTP client is built with: the bus builds it from its settings,
/// which have been validated by then.
#[derive(Clone, Debug)]
pub(crate) struct HttpOptions {
    /// The cap on connecting, within each attempt's own timeout.
    pub(crate) connect_timeout: Duration,
    /// Bytes of a response body kept for the attempt log.
    pub(crate) response_body_limit: usize,
    pub(crate) user_agent: String,
    /// Whether private, loopback and link-local addresses may be reached.
    pub(crate) allow_private_networks: bool,
    /// Networks (CIDR) reachable even when private ones are not.
    pub(crate) allowed_networks: Vec<String>,
    /// Whether plain `http://` URLs are refused.
    pub(crate) https_only: bool,
}

pub(crate) struct HttpClient {
    agent: Agent,
    connect_timeout: Duration,
    body_limit: usize,
}

impl HttpOutcome {
    /// An attempt that failed before anything was sent.
    pub(crate) fn failed(kind: ErrorKind, message: String) -> Self {
        HttpOutcome {
            status: None,
            error: Some((kind, message)),
            body: Vec::new(),
            truncated: false,
            duration: Duration::ZERO,
            retry_after: None,
            headers: Vec::new(),
            request: KeptRequest::default(),
        }
    }
}

impl HttpClient {
    /// Fails with [`Error::InvalidConfig`] on a malformed allowed network.
    pub(crate) fn new(options: &HttpOptions) -> Result<Self> {
        let allowed = options
            .allowed_networks
            .iter()
            .map(|n| {
                parse_network(n).map_err(|why| Error::InvalidConfig {
                    setting: "allow_network",
                    reason: format!("{n:?}: {why}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let policy = Arc::new(NetworkPolicy {
            allow_private: options.allow_private_networks,
            allowed,
        });
        let agent_config = Agent::config_builder()
            // A 4xx/5xx is an answer to record, not an error to raise.
            .http_status_as_error(false)
            // Never follow redirects: a 3xx is a failed attempt, and a POST
            // redirected with 301/302 would arrive as a GET without body.
            .max_redirects(0)
            // A proxy from the environment could send payloads elsewhere.
            .proxy(None)
            .user_agent(options.user_agent.as_str())
            .max_idle_connections(256)
            .max_idle_connections_per_host(64)
            .https_only(options.https_only)
            .build();
        Ok(HttpClient {
            agent: Agent::with_parts(
                agent_config,
                DefaultConnector::default(),
                GuardedResolver::new(policy),
            ),
            connect_timeout: options.connect_timeout,
            body_limit: options.response_body_limit,
        })
    }

    /// POSTs one attempt. Never panics and never waits past `req.timeout`
    /// (plus scheduling noise): every failure becomes an outcome.
    pub(crate) fn post(&self, req: &HttpRequest<'_>) -> HttpOutcome {
        let started = Instant::now();
        let mut builder = self
            .agent
            .post(req.url)
            .config()
            // Both are bounded when validated; ureq adds them to `Instant`s
            // and panics past the clock's range, so cap them here too.
            .timeout_global(Some(req.timeout.min(bounds::TIMEOUT.max)))
            .timeout_connect(Some(
                self.connect_timeout
                    .min(req.timeout)
                    .min(bounds::CONNECT_TIMEOUT.max),
            ))
            .build();
        for (name, value) in req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut outcome = HttpOutcome::failed(ErrorKind::Other, String::new());
        outcome.error = None;
        match builder.send(req.body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                outcome.status = Some(status);
                outcome.retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                outcome.headers = kept_headers(response.headers());
                // Read at most one byte past the limit, to know whether the
                // body was longer. The rest is never read; the connection is
                // then dropped instead of returned to the pool. So a body
                // that stalls or breaks within the first `limit` bytes fails
                // the attempt (timeout, connect), even after a 2xx status;
                // beyond them it is never seen.
                let limit = u64::try_from(self.body_limit)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1);
                let read = response
                    .body_mut()
                    .as_reader()
                    .take(limit)
                    .read_to_end(&mut outcome.body);
                if outcome.body.len() > self.body_limit {
                    outcome.body.truncate(self.body_limit);
                    outcome.truncated = true;
                }
                // Whether the status counts as success is the sender's call.
                if let Err(e) = read {
                    outcome.error = Some(classify(ureq::Error::from(e)));
                }
            }
            Err(e) => outcome.error = Some(classify(e)),
        }
        outcome.duration = started.elapsed();
        outcome
    }
}

/// The response headers an attempt keeps (see [`KEPT_HEADERS`]); values
/// that are not UTF-8 are kept with their invalid bytes replaced.
fn kept_headers(headers: &ureq::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .take(KEPT_HEADERS)
        .map(|(name, value)| {
            let mut text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if text.len() > KEPT_HEADER_VALUE_BYTES {
                let mut end = KEPT_HEADER_VALUE_BYTES;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            (name.as_str().to_string(), text)
        })
        .collect()
}

/// `Retry-After` is either seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Maps a ureq error to an error kind and a message for the log.
fn classify(e: ureq::Error) -> (ErrorKind, String) {
    use std::io::ErrorKind as Io;
    let kind = match &e {
        ureq::Error::Timeout(_) => ErrorKind::Timeout,
        ureq::Error::HostNotFound => ErrorKind::Dns,
        ureq::Error::ConnectionFailed => ErrorKind::Connect,
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => ErrorKind::Redirect,
        ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_) => ErrorKind::Tls,
        ureq::Error::RequireHttpsOnly(_) => ErrorKind::Blocked,
        ureq::Error::Other(e) if e.is::<Blocked>() => ErrorKind::Blocked,
        ureq::Error::Io(io) => match io.kind() {
            Io::TimedOut | Io::WouldBlock => ErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected
            | Io::BrokenPipe
            | Io::UnexpectedEof
            | Io::AddrNotAvailable
            | Io::HostUnreachable
            | Io::NetworkUnreachable => ErrorKind::Connect,
            // getaddrinfo failures carry no dedicated io kind.
            _ if io.to_string().contains("lookup address") => ErrorKind::Dns,
            _ => ErrorKind::Other,
        },
        _ => ErrorKind::Other,
    };
    // ureq prefixes some messages with its variant name ("io: …"); the
    // kind already says that.
    let message = match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::Other(inner) => inner.to_string(),
        other => other.to_string(),
    };
    (kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let soon = std::time::SystemTime::now() + Duration::from_secs(90);
        let d = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
    }
}
