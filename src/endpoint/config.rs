//! Endpoint settings as the host gives them, and their validation.

use std::fmt;

use ureq::http::{HeaderName, HeaderValue, Uri};

use super::filter::EventFilter;
use super::settings::Overrides;
use crate::error::{Error, Result};
use crate::formats::Format;
use crate::signing::{Secret, Signing};

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
    pub(crate) format: Format,
    pub(crate) signing: Signing,
    pub(crate) attribute_filters: Vec<(String, Vec<String>)>,
    /// The delivery settings, each unset one taking the bus default.
    pub(crate) settings: Overrides,
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
            format: Format::Standard,
            signing: Signing::StandardWebhooks,
            attribute_filters: Vec::new(),
            settings: Overrides::default(),
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

    /// The body format: a [`Format`], or a product preset from
    /// [`presets`](crate::presets) (`.format(Grow)`). Defaults to
    /// [`Format::Standard`].
    pub fn format(mut self, format: impl Into<Format>) -> Self {
        self.format = format.into();
        self
    }

    /// The signing scheme. Defaults to [`Signing::StandardWebhooks`], which
    /// signs only when a secret is set; the other schemes need a secret.
    pub fn signing(mut self, signing: Signing) -> Self {
        self.signing = signing;
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
        self.settings.validate()?;
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
            Format::Preset(preset) => {
                if let Some(reason) = preset.invalid() {
                    return Err(invalid("format", reason));
                }
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
                if !self.format.carries_secret() {
                    return Err(invalid(
                        "signing",
                        "a secret in the body needs the LeadCrm preset or a custom envelope",
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
            .field("format", &self.format)
            .field("signing", &self.signing)
            .field("attribute_filters", &self.attribute_filters)
            .field("settings", &self.settings)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::formats::presets::{GrowthX, LeadCrm};

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
            base().format(GrowthX::new("")),
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
            .format(LeadCrm::new("x"))
            .signing(Signing::SecretInBody)
            .validate()
            .unwrap();
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
