//! Endpoints: where events go, which events they want, and how to reach them.
//!
//! This module validates endpoint settings and matches event types against
//! subscriptions. Persisting endpoints is the store's job; serving their
//! queues is the delivery module's.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use ureq::http::{HeaderName, HeaderValue, Uri};

use crate::error::{Error, Result};
use crate::event::is_type_byte;

/// Identifies a registered endpoint. Displayed as `ep_<n>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub(crate) u64);

impl EndpointId {
    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from its raw number.
    pub fn from_u64(v: u64) -> Self {
        EndpointId(v)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ep_{}", self.0)
    }
}

impl fmt::Debug for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A signing secret. Its `Debug` output never shows the value.
///
/// A secret of the Standard Webhooks form `whsec_<base64>` signs with the
/// decoded bytes; any other text signs with its UTF-8 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps secret text. It is checked when the endpoint is saved.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// A fresh `whsec_` secret from 32 bytes of OS randomness.
    pub fn generate() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::InvalidEndpoint {
            field: "secret",
            reason: format!("no OS randomness to generate a secret: {e}"),
        })?;
        Ok(Secret(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )))
    }

    /// The secret text as given, for showing it once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key bytes.
    pub(crate) fn key(&self) -> Result<Vec<u8>> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            field: "secret",
            reason: reason.to_string(),
        };
        match self.0.strip_prefix("whsec_") {
            Some(b64) => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| invalid("whsec_ secret is not valid base64"))?;
                if key.is_empty() {
                    return Err(invalid("whsec_ secret decodes to no bytes"));
                }
                Ok(key)
            }
            None if self.0.is_empty() => Err(invalid("empty")),
            None => Ok(self.0.as_bytes().to_vec()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Headers that hookbus sets itself and an endpoint may not override.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// The settings of an endpoint: what the host gives to add or update one.
///
/// Everything is checked when the endpoint is saved
/// ([`Bus::add_endpoint`](crate::Bus::add_endpoint)), and nothing is written
/// if a check fails. Unset overrides take the bus defaults from
/// [`BusBuilder`](crate::BusBuilder).
#[derive(Clone)]
pub struct EndpointConfig {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) secret: Option<Secret>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry_delays: Option<Vec<Duration>>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) concurrency: Option<u32>,
}

impl EndpointConfig {
    /// An endpoint named `name` at `url`, subscribed to every event (`*`).
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        EndpointConfig {
            name: name.into(),
            url: url.into(),
            events: vec!["*".to_string()],
            secret: None,
            headers: Vec::new(),
            max_attempts: None,
            retry_delays: None,
            timeout: None,
            concurrency: None,
        }
    }

    /// The event types to deliver: exact names (`lead.create`), prefix
    /// wildcards (`lead.*`, which matches `lead.create` and `lead.note.add`)
    /// or `*`. Replaces the list. Defaults to `["*"]`.
    pub fn events<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Signs every request with this secret (Standard Webhooks
    /// `webhook-signature`). Defaults to no secret and no signature.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(Secret::new(secret));
        self
    }

    /// Adds a header sent with every request (for example an API key the
    /// receiver expects). Defaults to none.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Maximum number of attempts per delivery, the first included.
    /// Defaults to the bus setting (3).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Delays before the 2nd, 3rd… attempt; the last one repeats if there
    /// are more attempts than delays. Jitter is added. Defaults to the bus
    /// setting (30 s, 5 min, 50 min).
    pub fn retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.retry_delays = Some(delays.into_iter().collect());
        self
    }

    /// Total time allowed for one attempt, from connecting to reading the
    /// response. Defaults to the bus setting (15 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many deliveries to this endpoint may be in flight at once, each
    /// on its own sender thread. Defaults to the bus setting (2).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// The name.
    pub fn name_str(&self) -> &str {
        &self.name
    }

    /// The URL.
    pub fn url_str(&self) -> &str {
        &self.url
    }

    /// Checks every field; returns the compiled event filter.
    pub(crate) fn validate(&self) -> Result<EventFilter> {
        let invalid = |field, reason: &str| Error::InvalidEndpoint {
            field,
            reason: reason.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "empty"));
        }
        if self.name.len() > 256 {
            return Err(invalid("name", "longer than 256 bytes"));
        }
        validate_url(&self.url)?;
        let filter = EventFilter::parse(&self.events)?;
        if let Some(secret) = &self.secret {
            secret.key()?;
        }
        for (name, value) in &self.headers {
            let parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("header", &format!("{name:?} is not a valid header name")))?;
            if RESERVED_HEADERS.contains(&parsed.as_str()) {
                return Err(invalid("header", &format!("{name:?} is set by hookbus")));
            }
            HeaderValue::from_str(value).map_err(|_| {
                invalid(
                    "header",
                    &format!("the value of {name:?} is not a valid header value"),
                )
            })?;
        }
        if self.max_attempts == Some(0) {
            return Err(invalid("max_attempts", "must be at least 1"));
        }
        if let Some(delays) = &self.retry_delays {
            if delays.is_empty() {
                return Err(invalid("retry_delays", "empty list"));
            }
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(invalid("timeout", "must be above zero"));
        }
        if self.concurrency == Some(0) {
            return Err(invalid("concurrency", "must be at least 1"));
        }
        Ok(filter)
    }
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values often carry credentials: show the names only.
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("EndpointConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.secret)
            .field("headers", &header_names)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delays", &self.retry_delays)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

fn validate_url(url: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidUrl {
            url: url.to_string(),
            reason,
        })
    };
    if url.len() > 2048 {
        return bad("longer than 2048 bytes");
    }
    let Ok(uri) = url.parse::<Uri>() else {
        return bad("does not parse as a URL");
    };
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(_) => return bad("scheme must be http or https"),
        None => return bad("missing http:// or https://"),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return bad("missing host"),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return bad("credentials in the URL are not allowed; use a header");
    }
    Ok(())
}

/// One compiled subscription pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    All,
    /// `lead.*` is stored as `lead.`.
    Prefix(String),
    Exact(String),
}

/// The compiled event-type subscriptions of an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventFilter {
    patterns: Vec<Pattern>,
}

impl EventFilter {
    pub(crate) fn parse(patterns: &[String]) -> Result<Self> {
        if patterns.is_empty() {
            return Err(Error::InvalidEventPattern {
                pattern: String::new(),
                reason: "an endpoint needs at least one pattern (use \"*\" for all events)",
            });
        }
        let patterns = patterns
            .iter()
            .map(|p| parse_pattern(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(EventFilter { patterns })
    }

    pub(crate) fn matches(&self, event_type: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::All => true,
            Pattern::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
            Pattern::Exact(exact) => event_type == exact,
        })
    }
}

fn parse_pattern(p: &str) -> Result<Pattern> {
    let bad = |reason| {
        Err(Error::InvalidEventPattern {
            pattern: p.to_string(),
            reason,
        })
    };
    if p == "*" {
        return Ok(Pattern::All);
    }
    let (body, is_prefix) = match p.strip_suffix(".*") {
        Some(body) => (body, true),
        None => (p, false),
    };
    if body.is_empty() {
        return bad("empty");
    }
    if body.len() > crate::event::MAX_EVENT_TYPE_LEN {
        return bad("longer than 128 bytes");
    }
    if body.contains('*') {
        return bad("a wildcard is only allowed as a whole pattern (*) or at the end (lead.*)");
    }
    if !body.bytes().all(is_type_byte) {
        return bad("only A-Z a-z 0-9 . _ - : are allowed");
    }
    if body.starts_with('.') || body.ends_with('.') || body.contains("..") {
        return bad("empty segment between dots");
    }
    Ok(if is_prefix {
        Pattern::Prefix(format!("{body}."))
    } else {
        Pattern::Exact(body.to_string())
    })
}

/// A registered endpoint, as read back from the bus.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub(crate) id: EndpointId,
    pub(crate) config: EndpointConfig,
    pub(crate) enabled: bool,
    pub(crate) created_at: SystemTime,
}

impl Endpoint {
    /// The endpoint's id.
    pub fn id(&self) -> EndpointId {
        self.id
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
    /// Its URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }
    /// The event-type patterns it subscribes to.
    pub fn events(&self) -> &[String] {
        &self.config.events
    }
    /// Whether it has a signing secret.
    pub fn has_secret(&self) -> bool {
        self.config.secret.is_some()
    }
    /// Whether it receives new events.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
    /// When it was added.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }
    /// Its full settings (the secret stays redacted in `Debug`).
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(p: &[&str]) -> EventFilter {
        EventFilter::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_match_exact_prefix_and_all() {
        let f = filter(&["lead.*", "tag.attached"]);
        assert!(f.matches("lead.create"));
        assert!(f.matches("lead.note.add"));
        assert!(!f.matches("lead"));
        assert!(!f.matches("leads.create"));
        assert!(f.matches("tag.attached"));
        assert!(!f.matches("tag.detached"));
        assert!(filter(&["*"]).matches("anything.at_all"));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for p in [
            "", "*.create", "le*d", "lead.**", ".*", "lead..x", "a b", "lead.", "**",
        ] {
            let r = EventFilter::parse(&[p.to_string()]);
            assert!(matches!(r, Err(Error::InvalidEventPattern { .. })), "{p:?}");
        }
        assert!(EventFilter::parse(&[]).is_err());
    }

    #[test]
    fn urls_must_be_http() {
        for ok in ["http://127.0.0.1:8080/hook", "https://example.com/x?y=1"] {
            validate_url(ok).unwrap();
        }
        for bad in [
            "",
            "example.com/x",
            "ftp://example.com",
            "http://",
            "https://u:p@example.com/",
            "http://exa mple.com",
        ] {
            assert!(
                matches!(validate_url(bad), Err(Error::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let cfg = EndpointConfig::new("a", "https://example.com")
            .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .header("authorization", "Bearer hunter2");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("C2FVsBQ"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn bad_fields_are_rejected() {
        let base = || EndpointConfig::new("a", "https://example.com");
        let cases = [
            EndpointConfig::new(" ", "https://example.com"),
            base().header("bad header", "x"),
            base().header("x-ok", "line\nbreak"),
            base().header("Webhook-Signature", "forged"),
            base().secret("whsec_!!!"),
            base().secret(""),
            base().max_attempts(0),
            base().timeout(Duration::ZERO),
            base().retry_delays([]),
            base().concurrency(0),
        ];
        for cfg in cases {
            assert!(
                matches!(cfg.validate(), Err(Error::InvalidEndpoint { .. })),
                "{cfg:?}"
            );
        }
        let secret = Secret::generate().unwrap();
        assert_eq!(secret.key().unwrap().len(), 32);
    }
}
