//! Endpoints: where events go, which events they want, and how to reach them.
//!
//! This module validates endpoint settings and matches event types against
//! subscriptions. Persisting endpoints is the store's job; serving their
//! queues is the delivery module's.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde::{Deserialize, Serialize};
use ureq::http::{HeaderName, HeaderValue, Uri};

use crate::config as bounds;
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

/// A string that is not an endpoint id's text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEndpointIdError;

impl fmt::Display for ParseEndpointIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an endpoint id (expected ep_ and a decimal number)")
    }
}

impl std::error::Error for ParseEndpointIdError {}

/// Reads the form `Display` writes, and only that one (no sign, no leading
/// zeros), so that each id has one text form.
impl std::str::FromStr for EndpointId {
    type Err = ParseEndpointIdError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let digits = s.strip_prefix("ep_").ok_or(ParseEndpointIdError)?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return Err(ParseEndpointIdError);
        }
        digits
            .parse()
            .map(EndpointId)
            .map_err(|_| ParseEndpointIdError)
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

    /// The HMAC key for a signing scheme. Standard Webhooks secrets are
    /// base64, with or without the `whsec_` prefix (as the reference
    /// libraries read them); the other schemes use the text's bytes.
    pub(crate) fn key_for(&self, signing: &Signing) -> Result<Vec<u8>> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            field: "secret",
            reason: reason.to_string(),
        };
        if self.0.is_empty() {
            return Err(invalid("empty"));
        }
        if !matches!(signing, Signing::StandardWebhooks) {
            return Ok(self.0.as_bytes().to_vec());
        }
        let b64 = self.0.strip_prefix("whsec_").unwrap_or(&self.0);
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| invalid("a Standard Webhooks secret must be base64 (whsec_...); Secret::generate makes one"))?;
        if key.is_empty() {
            return Err(invalid("the secret decodes to no bytes"));
        }
        Ok(key)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret(text.to_string())
    }
}

impl From<&Secret> for Secret {
    fn from(secret: &Secret) -> Self {
        secret.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The body an endpoint receives: which envelope wraps the payload.
///
/// Each built-in format reproduces one documented product's body; see the
/// crate docs for the endpoint configuration of each product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Format {
    /// `{"id", "type", "occurred_at", "attempt", "data"}`: the default.
    Standard,
    /// Growth-X: `{"client", "event_type", "occurred_at", "attempt_number",
    /// "data_type", "data"}`, with `occurred_at` as
    /// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) and `data_type` the event type's
    /// first segment (`connection.created` → `connection`). Field names
    /// follow Growth-X's schema (`client`, `occurred_at`), not the
    /// misspellings of its examples (`clinet`, `occured_at`).
    GrowthX {
        /// The `client` field: the Growth-X customer's email.
        client: String,
    },
    /// The lead CRM of seed 001: `{"id_space", "event", "secret",
    /// "payload"}`. `secret` is the endpoint's current secret (use
    /// [`Signing::SecretInBody`]), or `null` without one.
    LeadCrm {
        /// The `id_space` field: the workspace the event happened in.
        id_space: String,
    },
    /// Snitcher: `{"event", "subjects": [...]}`. A payload that is an array
    /// becomes `subjects`; any other payload becomes its only element.
    Snitcher,
    /// Grow: the contact's flat attribute object. Nested objects of the
    /// payload are flattened into dotted keys (`geo.city`); a payload that
    /// is not an object is sent as `{"value": payload}`.
    Grow,
    /// The payload exactly as published. The event type, attempt number and
    /// occurrence time travel in the `webhook-event-type`, `webhook-attempt`
    /// and `webhook-occurred-at` headers.
    Raw,
    /// A host-defined envelope registered under this name with
    /// [`BusBuilder::envelope`](crate::BusBuilder::envelope).
    Custom(String),
}

/// How requests to an endpoint prove they come from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Signing {
    /// Standard Webhooks `webhook-signature: v1,<base64>` over
    /// `id.timestamp.body`; one entry per active secret during a rotation.
    /// Without a secret, no signature is sent. The default.
    StandardWebhooks,
    /// Hex HMAC-SHA256 of the raw body in the named header, with the
    /// current secret (Snitcher: `Signature`).
    HmacSha256Hex {
        /// The header carrying the signature.
        header: String,
    },
    /// The current secret itself in the named header (Genesy:
    /// `X-Webhook-Secret`).
    SecretHeader {
        /// The header carrying the secret.
        header: String,
    },
    /// The current secret inside the body (seed 001). Needs a format that
    /// has a place for it: [`Format::LeadCrm`] or a custom envelope.
    SecretInBody,
    /// No signature, even if a secret is set.
    None,
}

/// Which answers count as delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SuccessPolicy {
    /// Any 2xx status. The default.
    #[default]
    Any2xx,
    /// Exactly 200 (Grow: "if the webhook URL does not return a 200").
    Exactly200,
}

impl SuccessPolicy {
    /// Whether `status` counts as delivered.
    pub fn accepts(self, status: u16) -> bool {
        match self {
            SuccessPolicy::Any2xx => (200..300).contains(&status),
            SuccessPolicy::Exactly200 => status == 200,
        }
    }
}

/// Why an endpoint stopped sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PauseReason {
    /// The host paused it.
    Manual,
    /// This many deliveries in a row failed after their last attempt.
    ConsecutiveFailures(u32),
    /// The receiver answered 410 Gone.
    Gone,
}

/// Whether an endpoint receives and sends events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointStatus {
    /// Receives new events and sends them.
    Active,
    /// Receives no new events; its queued deliveries wait.
    Disabled,
    /// Receives new events and keeps them queued, in order, without
    /// sending, until [`Bus::resume_endpoint`](crate::Bus::resume_endpoint).
    Paused {
        /// Why.
        reason: PauseReason,
        /// Since when.
        since: SystemTime,
    },
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseReason::Manual => f.write_str("paused by hand"),
            PauseReason::ConsecutiveFailures(n) => write!(f, "{n} failed deliveries in a row"),
            PauseReason::Gone => f.write_str("the receiver answered 410 Gone"),
        }
    }
}

impl fmt::Display for EndpointStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointStatus::Active => f.write_str("active"),
            EndpointStatus::Disabled => f.write_str("disabled"),
            EndpointStatus::Paused { reason, .. } => write!(f, "paused ({reason})"),
        }
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
    "webhook-event-type",
    "webhook-attempt",
    "webhook-occurred-at",
];

/// The settings of an endpoint: what the host gives to add or update one.
///
/// Everything is checked when the endpoint is saved
/// ([`Bus::add_endpoint`](crate::Bus::add_endpoint)), and nothing is written
/// if a check fails: a value outside the range its setter documents fails
/// with [`Error::InvalidEndpoint`], naming the field and the range. Unset overrides take the bus defaults from
/// [`BusBuilder`](crate::BusBuilder).
#[derive(Clone)]
#[must_use = "settings do nothing until passed to Bus::add_endpoint or Bus::update_endpoint"]
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
    pub(crate) rate_limit: Option<std::num::NonZeroU32>,
    pub(crate) format: Format,
    pub(crate) signing: Signing,
    pub(crate) success: SuccessPolicy,
    pub(crate) attribute_filters: Vec<(String, Vec<String>)>,
    pub(crate) ordered: bool,
    pub(crate) pause_after: Option<Option<u32>>,
    /// The tenant key as given; `None` is the default tenant.
    pub(crate) tenant: Option<String>,
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
            rate_limit: None,
            format: Format::Standard,
            signing: Signing::StandardWebhooks,
            success: SuccessPolicy::Any2xx,
            attribute_filters: Vec::new(),
            ordered: false,
            pause_after: None,
            tenant: None,
        }
    }

    /// The tenant the endpoint belongs to: the customer whose events it
    /// receives (see [`TenantId`](crate::TenantId) for the key's charset).
    /// Events published to another tenant never reach it, whatever its
    /// patterns. Defaults to the default tenant. An endpoint stays in its
    /// tenant: an update naming another one is refused.
    pub fn tenant(mut self, key: impl AsRef<str>) -> Self {
        self.tenant = Some(key.as_ref().to_string());
        self
    }

    /// Delivers strictly in publish order: one delivery at a time, and a
    /// delivery waiting for a retry holds back every later one, across
    /// crashes and restarts too. Defaults to `false` (deliveries flow
    /// independently, up to the endpoint's concurrency).
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Pauses the endpoint after this many deliveries in a row fail their
    /// last attempt; `None` never pauses for failures.
    /// Allowed: `None`, or 1 to 1,000,000. Defaults to the bus setting (10).
    pub fn pause_after(mut self, failed_deliveries: Option<u32>) -> Self {
        self.pause_after = Some(failed_deliveries);
        self
    }

    /// The body format. Defaults to [`Format::Standard`].
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The signing scheme. Defaults to [`Signing::StandardWebhooks`], which
    /// signs only when a secret is set; the other schemes need a secret.
    pub fn signing(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }

    /// Which answers count as delivered. Defaults to any 2xx.
    pub fn success(mut self, policy: SuccessPolicy) -> Self {
        self.success = policy;
        self
    }

    /// Delivers only events whose attribute `key` has one of `values`
    /// (Genesy's `campaignIds`). An empty list accepts every event, with or
    /// without the attribute. Several keys must all match. Defaults to none.
    pub fn filter_attribute<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let key = key.into();
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        self.attribute_filters.retain(|(k, _)| *k != key);
        self.attribute_filters.push((key, values));
        self
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

    /// The secret requests are signed with, by the endpoint's [`Signing`]
    /// scheme (Standard Webhooks by default: it then must be base64, as
    /// made by [`Secret::generate`]). Defaults to none: no signature.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Adds a header sent with every request (for example an API key the
    /// receiver expects). Defaults to none.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Maximum number of attempts per delivery, the first included.
    /// Allowed: 1 to 1000. Defaults to the bus setting (3).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Delays before the 2nd, 3rd… attempt; the last one repeats if there
    /// are more attempts than delays. Jitter is added.
    /// Allowed: 1 to 100 delays, each from 0 to 30 days.
    /// Defaults to the bus setting (30 s, 5 min, 50 min).
    pub fn retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.retry_delays = Some(delays.into_iter().collect());
        self
    }

    /// Total time allowed for one attempt, from connecting to reading the
    /// response. Allowed: 1 ms to 2 h. Defaults to the bus setting (15 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many deliveries to this endpoint may be in flight at once, each
    /// on its own sender thread. Allowed: 1 to 256. Defaults to the bus
    /// setting (2).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// At most `per_second` attempts start per second, evenly spaced
    /// (Svix's and Convoy's per-endpoint rate limit). Deliveries held back
    /// wait in the queue: no attempt is spent on them. `0` removes the
    /// limit; otherwise 1 to 100,000 per second. Defaults to no limit.
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = std::num::NonZeroU32::new(per_second);
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
        // Ranges live with the bus's, in the config module.
        let ranged = |field, checked: std::result::Result<(), String>| {
            checked.map_err(|reason| Error::InvalidEndpoint { field, reason })
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
            secret.key_for(&self.signing)?;
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
        if let Some(n) = self.max_attempts {
            ranged("max_attempts", bounds::ATTEMPTS.check(n))?;
        }
        if let Some(delays) = &self.retry_delays {
            ranged("retry_delays", bounds::check_retry_delays(delays))?;
        }
        if let Some(t) = self.timeout {
            ranged("timeout", bounds::TIMEOUT.check(t))?;
        }
        if let Some(n) = self.concurrency {
            ranged("concurrency", bounds::CONCURRENCY.check(n))?;
        }
        if let Some(Some(n)) = self.pause_after {
            ranged("pause_after", bounds::PAUSE_AFTER.check(n))?;
        }
        if let Some(n) = self.rate_limit {
            ranged("rate_limit", bounds::RATE_LIMIT.check(n.get()))?;
        }
        self.validate_format_and_signing()?;
        for (key, values) in &self.attribute_filters {
            if key.is_empty() || key.len() > 256 {
                return Err(invalid("filter_attribute", "keys must be 1 to 256 bytes"));
            }
            if values.iter().any(|v| v.is_empty() || v.len() > 256) {
                return Err(invalid("filter_attribute", "values must be 1 to 256 bytes"));
            }
        }
        Ok(filter.with_attributes(self.attribute_filters.clone()))
    }

    fn validate_format_and_signing(&self) -> Result<()> {
        let invalid = |field, reason: &str| Error::InvalidEndpoint {
            field,
            reason: reason.to_string(),
        };
        match &self.format {
            Format::Custom(name) if name.is_empty() => {
                return Err(invalid("format", "a custom envelope needs a name"))
            }
            Format::GrowthX { client } if client.is_empty() => {
                return Err(invalid("format", "Growth-X needs a client"))
            }
            _ => {}
        }
        let needs_secret = |scheme: &str| {
            if self.secret.is_none() {
                Err(invalid("signing", &format!("{scheme} needs a secret")))
            } else {
                Ok(())
            }
        };
        match &self.signing {
            Signing::StandardWebhooks | Signing::None => {}
            Signing::HmacSha256Hex { header } | Signing::SecretHeader { header } => {
                needs_secret("a header signature")?;
                let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    invalid("signing", &format!("{header:?} is not a valid header name"))
                })?;
                if RESERVED_HEADERS.contains(&name.as_str())
                    || self
                        .headers
                        .iter()
                        .any(|(h, _)| h.eq_ignore_ascii_case(header))
                {
                    return Err(invalid("signing", &format!("{header:?} is already used")));
                }
            }
            Signing::SecretInBody => {
                needs_secret("a secret in the body")?;
                if !matches!(self.format, Format::LeadCrm { .. } | Format::Custom(_)) {
                    return Err(invalid(
                        "signing",
                        "a secret in the body needs the LeadCrm format or a custom envelope",
                    ));
                }
            }
        }
        Ok(())
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
            .field("rate_limit", &self.rate_limit)
            .field("format", &self.format)
            .field("signing", &self.signing)
            .field("success", &self.success)
            .field("attribute_filters", &self.attribute_filters)
            .field("ordered", &self.ordered)
            .field("pause_after", &self.pause_after)
            .field("tenant", &self.tenant)
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
pub(crate) enum Pattern {
    All,
    /// `lead.*` is stored as `lead.`.
    Prefix(String),
    Exact(String),
}

/// The compiled subscriptions of an endpoint: event-type patterns, and
/// attribute values the event must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventFilter {
    patterns: Vec<Pattern>,
    attributes: Vec<(String, Vec<String>)>,
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
        Ok(EventFilter {
            patterns,
            attributes: Vec::new(),
        })
    }

    /// The compiled event-type patterns (the routing index keys on them).
    pub(crate) fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    fn with_attributes(mut self, filters: Vec<(String, Vec<String>)>) -> Self {
        // An empty value list accepts everything: nothing to check.
        self.attributes = filters.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        self
    }

    /// Whether an event of this type and with these attributes is wanted.
    // The reference model the index is tested (and fuzzed) against.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn matches(&self, event_type: &str, attributes: &[(String, String)]) -> bool {
        let type_ok = self.patterns.iter().any(|p| match p {
            Pattern::All => true,
            Pattern::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
            Pattern::Exact(exact) => event_type == exact,
        });
        type_ok && self.matches_attributes(attributes)
    }

    /// Whether the event's attributes satisfy every attribute filter.
    pub(crate) fn matches_attributes(&self, attributes: &[(String, String)]) -> bool {
        self.attributes.iter().all(|(key, wanted)| {
            attributes
                .iter()
                .any(|(k, v)| k == key && wanted.iter().any(|w| w == v))
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
    pub(crate) tenant: crate::tenant::TenantId,
    pub(crate) config: EndpointConfig,
    pub(crate) status: EndpointStatus,
    pub(crate) created_at: SystemTime,
    /// Secrets replaced by a rotation, still signing until they expire.
    pub(crate) previous_secrets: Vec<(Secret, SystemTime)>,
}

impl Endpoint {
    /// The endpoint's id.
    pub fn id(&self) -> EndpointId {
        self.id
    }
    /// The tenant it belongs to.
    pub fn tenant(&self) -> &crate::tenant::TenantId {
        &self.tenant
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
    /// Whether it receives new events (it is active or paused).
    pub fn is_enabled(&self) -> bool {
        !matches!(self.status, EndpointStatus::Disabled)
    }
    /// Whether it is paused: receiving events but holding them.
    pub fn is_paused(&self) -> bool {
        matches!(self.status, EndpointStatus::Paused { .. })
    }
    /// Active, disabled or paused, as of when this copy was read.
    pub fn status(&self) -> EndpointStatus {
        self.status
    }
    /// When it was added.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }
    /// Its full settings (the secret stays redacted in `Debug`).
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }
    /// When each secret replaced by [`Bus::rotate_secret`](crate::Bus::rotate_secret)
    /// stops signing, for the ones still active.
    pub fn previous_secrets_expire_at(&self) -> Vec<SystemTime> {
        let now = SystemTime::now();
        self.previous_secrets
            .iter()
            .map(|(_, at)| *at)
            .filter(|at| *at > now)
            .collect()
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
        assert!(f.matches("lead.create", &[]));
        assert!(f.matches("lead.note.add", &[]));
        assert!(!f.matches("lead", &[]));
        assert!(!f.matches("leads.create", &[]));
        assert!(f.matches("tag.attached", &[]));
        assert!(!f.matches("tag.detached", &[]));
        assert!(filter(&["*"]).matches("anything.at_all", &[]));
    }

    #[test]
    fn attribute_filters_require_one_of_the_values() {
        let cfg = EndpointConfig::new("g", "https://example.com")
            .filter_attribute("campaign", ["c1", "c2"])
            .filter_attribute("tenant", Vec::<String>::new());
        let f = cfg.validate().unwrap();
        let attrs = |c: &str| vec![("campaign".to_string(), c.to_string())];
        assert!(f.matches("x", &attrs("c1")));
        assert!(f.matches("x", &attrs("c2")));
        assert!(!f.matches("x", &attrs("c3")));
        assert!(!f.matches("x", &[]), "the attribute is required");
        let bad = EndpointConfig::new("g", "https://example.com").filter_attribute("", ["a"]);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn signing_schemes_are_checked_against_the_rest() {
        let base = || EndpointConfig::new("a", "https://example.com");
        let header = |h: &str| Signing::HmacSha256Hex { header: h.into() };
        for bad in [
            base().signing(header("Signature")),
            base().secret("s").signing(header("bad header")),
            base().secret("s").signing(header("webhook-id")),
            base()
                .secret("s")
                .header("Signature", "x")
                .signing(header("Signature")),
            base().secret("s").signing(Signing::SecretInBody),
            base().format(Format::GrowthX {
                client: String::new(),
            }),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidEndpoint { .. })),
                "{bad:?}"
            );
        }
        base()
            .secret("s")
            .signing(header("Signature"))
            .validate()
            .unwrap();
        base()
            .secret("s")
            .format(Format::LeadCrm {
                id_space: "x".into(),
            })
            .signing(Signing::SecretInBody)
            .validate()
            .unwrap();
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
    fn durations_and_counts_outside_their_ranges_name_field_and_range() {
        let base = || EndpointConfig::new("a", "https://example.com");
        let cases = [
            (base().max_attempts(1001), "max_attempts", "from 1 to 1000"),
            (
                base().retry_delays([Duration::MAX]),
                "retry_delays",
                "30 days",
            ),
            (
                base().retry_delays(vec![Duration::ZERO; 101]),
                "retry_delays",
                "from 1 to 100",
            ),
            (base().timeout(Duration::MAX), "timeout", "from 1 ms to 2 h"),
            (
                base().timeout(Duration::from_nanos(1)),
                "timeout",
                "from 1 ms to 2 h",
            ),
            (base().concurrency(u32::MAX), "concurrency", "from 1 to 256"),
            (
                base().pause_after(Some(u32::MAX)),
                "pause_after",
                "from 1 to 1000000",
            ),
        ];
        for (cfg, field, range) in cases {
            match cfg.validate() {
                Err(Error::InvalidEndpoint { field: f, reason }) => {
                    assert_eq!(f, field);
                    assert!(reason.contains(range), "{field}: {reason}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        base()
            .max_attempts(1000)
            .retry_delays(vec![Duration::from_secs(30 * 86_400); 100])
            .timeout(Duration::from_secs(2 * 3600))
            .concurrency(256)
            .pause_after(Some(1_000_000))
            .validate()
            .unwrap();
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
            base().secret("not base64!"),
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
        assert_eq!(
            secret.key_for(&Signing::StandardWebhooks).unwrap().len(),
            32
        );
        // Plain text is a fine secret for the header schemes, not for
        // Standard Webhooks, whose secrets are base64.
        let plain = |s: Signing| base().secret("plain text").signing(s).validate();
        assert!(plain(Signing::StandardWebhooks).is_err());
        assert!(plain(Signing::SecretHeader {
            header: "X-S".into()
        })
        .is_ok());
    }
}
