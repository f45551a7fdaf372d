//! Product presets: the bodies of products whose webhooks hookbus
//! reproduces, built on the public [`Envelope`] trait as a host's own
//! envelope would be.
//!
//! A preset is given to an endpoint as a value, and is stored with it
//! (unlike an envelope registered by name, which the host registers again
//! at every open):
//!
//! ```
//! use hookbus::presets::GrowthX;
//! use hookbus::EndpointConfig;
//!
//! let config = EndpointConfig::new("growth-x", "https://receiver.example/gx")
//!     .format(GrowthX::new("client@growth-x.com"));
//! ```
//!
//! The README shows the whole endpoint configuration of each product
//! (events, signing, success policy, attempts).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{raw_payload, Envelope, EnvelopeInput, Format};
use crate::time;

/// Growth-X: `{"client", "event_type", "occurred_at", "attempt_number",
/// "data_type", "data"}`, with `occurred_at` as `YYYY-MM-DD HH:MM:SS.ffffff`
/// (UTC) and `data_type` the event type's first segment
/// (`connection.created` → `connection`). Field names follow Growth-X's
/// schema (`client`, `occurred_at`), not the misspellings of its examples
/// (`clinet`, `occured_at`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrowthX {
    client: String,
}

impl GrowthX {
    /// The preset for one Growth-X customer: `client` is the `client` field,
    /// the customer's email. It may not be empty.
    pub fn new(client: impl Into<String>) -> Self {
        GrowthX {
            client: client.into(),
        }
    }

    /// The `client` field.
    pub fn client(&self) -> &str {
        &self.client
    }
}

/// The lead CRM: `{"id_space", "event", "secret", "payload"}`. `secret` is
/// the endpoint's current secret when it signs with
/// [`Signing::SecretInBody`](crate::Signing::SecretInBody), as the CRM
/// expects, and `null` otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCrm {
    id_space: String,
}

impl LeadCrm {
    /// The preset for one space: `id_space` is the workspace the events
    /// happen in.
    pub fn new(id_space: impl Into<String>) -> Self {
        LeadCrm {
            id_space: id_space.into(),
        }
    }

    /// The `id_space` field.
    pub fn id_space(&self) -> &str {
        &self.id_space
    }
}

/// Snitcher: `{"event", "subjects": [...]}`. A payload that is an array
/// becomes `subjects`; any other payload becomes its only element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snitcher;

/// Grow: the contact's flat attribute object. Nested objects of the payload
/// are flattened into dotted keys (`geo.city`); a payload that is not an
/// object is sent as `{"value": payload}`. The event type travels in the
/// `webhook-event-type` header, as with every format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grow;

/// One of the presets above, as [`Format::Preset`] holds it. Made with
/// `From` (or [`EndpointConfig::format`](crate::EndpointConfig::format),
/// which takes a preset directly).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preset(pub(crate) Kind);

/// The presets. The store gives each a frozen tag (`store::tags`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    GrowthX(GrowthX),
    LeadCrm(LeadCrm),
    Snitcher(Snitcher),
    Grow(Grow),
}

impl Preset {
    /// The preset's envelope.
    pub(crate) fn envelope(&self) -> &dyn Envelope {
        match &self.0 {
            Kind::GrowthX(p) => p,
            Kind::LeadCrm(p) => p,
            Kind::Snitcher(p) => p,
            Kind::Grow(p) => p,
        }
    }

    /// Whether the body has a place for the secret
    /// ([`Signing::SecretInBody`](crate::Signing::SecretInBody)).
    pub(crate) fn carries_secret(&self) -> bool {
        matches!(self.0, Kind::LeadCrm(_))
    }

    /// Why the preset's own values are unusable, if they are.
    pub(crate) fn invalid(&self) -> Option<&'static str> {
        match &self.0 {
            Kind::GrowthX(p) if p.client.is_empty() => Some("Growth-X needs a client"),
            _ => None,
        }
    }
}

/// Shows the preset itself (`GrowthX { client: ".." }`), as the format
/// variant of the same name showed it before presets.
impl fmt::Debug for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::GrowthX(p) => p.fmt(f),
            Kind::LeadCrm(p) => p.fmt(f),
            Kind::Snitcher(p) => p.fmt(f),
            Kind::Grow(p) => p.fmt(f),
        }
    }
}

macro_rules! into_format {
    ($($preset:ident),*) => {$(
        impl From<$preset> for Preset {
            fn from(p: $preset) -> Self {
                Preset(Kind::$preset(p))
            }
        }

        impl From<$preset> for Format {
            fn from(p: $preset) -> Self {
                Format::Preset(p.into())
            }
        }
    )*};
}

into_format!(GrowthX, LeadCrm, Snitcher, Grow);

impl From<Preset> for Format {
    fn from(p: Preset) -> Self {
        Format::Preset(p)
    }
}

/// Our own envelopes serialize borrowed fields and raw JSON already
/// checked at publish; an error here is reported, never unwrapped.
fn json(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

impl Envelope for GrowthX {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        #[derive(Serialize)]
        struct Body<'a> {
            client: &'a str,
            event_type: &'a str,
            occurred_at: String,
            attempt_number: u32,
            data_type: &'a str,
            data: &'a RawValue,
        }
        json(&Body {
            client: &self.client,
            event_type: input.event_type,
            occurred_at: time::space_separated_micros(time::to_us(input.occurred_at)),
            attempt_number: input.attempt,
            data_type: input.event_type.split('.').next().unwrap_or_default(),
            data: raw_payload(input.payload)?,
        })
    }
}

impl Envelope for LeadCrm {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        #[derive(Serialize)]
        struct Body<'a> {
            id_space: &'a str,
            event: &'a str,
            secret: Option<&'a str>,
            payload: &'a RawValue,
        }
        json(&Body {
            id_space: &self.id_space,
            event: input.event_type,
            secret: input.secret_for_body,
            payload: raw_payload(input.payload)?,
        })
    }
}

impl Envelope for Snitcher {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        #[derive(Serialize)]
        struct Body<'a> {
            event: &'a str,
            subjects: &'a RawValue,
        }
        let payload = raw_payload(input.payload)?;
        let subjects = if payload.get().trim_start().starts_with('[') {
            payload.to_owned()
        } else {
            // One subject: wrap it. Embedding raw JSON keeps it as sent.
            RawValue::from_string(format!("[{}]", payload.get())).map_err(|e| e.to_string())?
        };
        json(&Body {
            event: input.event_type,
            subjects: &subjects,
        })
    }
}

impl Envelope for Grow {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        let value: Value =
            serde_json::from_str(raw_payload(input.payload)?.get()).map_err(|e| e.to_string())?;
        let mut flat = Map::new();
        match value {
            Value::Object(map) => flatten("", map, &mut flat),
            other => {
                flat.insert("value".to_string(), other);
            }
        }
        json(&flat)
    }
}

/// Nested objects become dotted keys; arrays and scalars stay as they are.
fn flatten(prefix: &str, map: Map<String, Value>, out: &mut Map<String, Value>) {
    for (key, value) in map {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) => flatten(&key, inner, out),
            other => {
                out.insert(key, other);
            }
        }
    }
}
