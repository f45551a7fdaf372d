//! Envelopes: the body sent to an endpoint, built from the stored event for
//! each attempt (the attempt number may be part of the body, so every
//! attempt gets its own body and its own signature).
//!
//! Built-in formats are listed in [`Format`]; hosts add their
//! own by implementing [`Envelope`] and registering it with
//! [`BusBuilder::envelope`](crate::BusBuilder::envelope).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::endpoint::{EndpointId, Format};
use crate::event::EventId;
use crate::store::records::EventRecord;
use crate::time;

/// What an envelope is built from: one event, for one attempt to one endpoint.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct EnvelopeInput<'a> {
    /// The event's id (also the `webhook-id` header).
    pub id: EventId,
    /// The event type.
    pub event_type: &'a str,
    /// The payload, JSON bytes as published.
    pub payload: &'a [u8],
    /// When the event happened.
    pub occurred_at: SystemTime,
    /// Attributes given at publish.
    pub attributes: &'a [(String, String)],
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The endpoint's current secret, when its signing scheme is
    /// [`Signing::SecretInBody`](crate::Signing::SecretInBody); `None`
    /// otherwise, so that a secret never lands in a body by accident.
    pub secret_for_body: Option<&'a str>,
}

impl fmt::Debug for EnvelopeInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeInput")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("payload_bytes", &self.payload.len())
            .field("attempt", &self.attempt)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A host-defined body format.
///
/// ```
/// use hookbus::{Envelope, EnvelopeInput};
///
/// struct Minimal;
/// impl Envelope for Minimal {
///     fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
///         let data: serde_json::Value =
///             serde_json::from_slice(input.payload).map_err(|e| e.to_string())?;
///         serde_json::to_vec(&serde_json::json!({"kind": input.event_type, "body": data}))
///             .map_err(|e| e.to_string())
///     }
/// }
/// ```
pub trait Envelope: Send + Sync + 'static {
    /// Builds the body of one attempt. An error fails the attempt (logged
    /// with kind `other` and this message), which is retried like any other.
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String>;

    /// The `content-type` header. Defaults to `application/json`.
    fn content_type(&self) -> &str {
        "application/json"
    }
}

/// Custom envelopes by name, as registered on the builder.
#[derive(Clone, Default)]
pub(crate) struct Envelopes(pub(crate) BTreeMap<String, Arc<dyn Envelope>>);

impl fmt::Debug for Envelopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// A built body and what goes with it.
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: String,
    /// The event's metadata as headers, the same for every format: see
    /// [`metadata_headers`].
    pub(crate) headers: Vec<(String, String)>,
}

/// Headers that carry the event's type, attempt number and time, sent with
/// every format (the sender adds `webhook-id`). Some bodies carry none of
/// these (Grow's flat object, the raw payload, a host's envelope), and a
/// receiver must still tell one event type from another.
fn metadata_headers(input: &EnvelopeInput<'_>) -> Vec<(String, String)> {
    vec![
        (
            "webhook-event-type".to_string(),
            input.event_type.to_string(),
        ),
        ("webhook-attempt".to_string(), input.attempt.to_string()),
        (
            "webhook-occurred-at".to_string(),
            time::rfc3339_ms(time::to_ms(input.occurred_at)),
        ),
    ]
}

/// Builds the body of one attempt in the endpoint's format. The error is a
/// message for the delivery log.
pub(crate) fn build(
    format: &Format,
    envelopes: &Envelopes,
    input: &EnvelopeInput<'_>,
) -> Result<Body, String> {
    let mut body = build_body(format, envelopes, input)?;
    body.headers = metadata_headers(input);
    Ok(body)
}

fn build_body(
    format: &Format,
    envelopes: &Envelopes,
    input: &EnvelopeInput<'_>,
) -> Result<Body, String> {
    let json = |bytes: Result<Vec<u8>, serde_json::Error>| Body {
        // Serializing our own envelopes cannot fail: payloads were checked
        // to be JSON at publish and are embedded as raw JSON.
        bytes: bytes.unwrap_or_default(),
        content_type: "application/json".to_string(),
        headers: Vec::new(),
    };
    let payload = raw_payload(input.payload)?;
    Ok(match format {
        Format::Standard => json(serde_json::to_vec(&StandardEnvelope {
            id: input.id.to_string(),
            event_type: input.event_type,
            occurred_at: time::rfc3339_ms(time::to_ms(input.occurred_at)),
            attempt: input.attempt,
            data: payload,
        })),
        Format::GrowthX { client } => json(serde_json::to_vec(&GrowthXEnvelope {
            client,
            event_type: input.event_type,
            occurred_at: time::space_separated_micros(time::to_us(input.occurred_at)),
            attempt_number: input.attempt,
            data_type: input.event_type.split('.').next().unwrap_or_default(),
            data: payload,
        })),
        Format::LeadCrm { id_space } => json(serde_json::to_vec(&LeadCrmEnvelope {
            id_space,
            event: input.event_type,
            secret: input.secret_for_body,
            payload,
        })),
        Format::Snitcher => {
            let subjects = if payload.get().trim_start().starts_with('[') {
                payload.to_owned()
            } else {
                // One subject: wrap it. Embedding raw JSON keeps it as sent.
                RawValue::from_string(format!("[{}]", payload.get())).map_err(|e| e.to_string())?
            };
            json(serde_json::to_vec(&SnitcherEnvelope {
                event: input.event_type,
                subjects: &subjects,
            }))
        }
        Format::Grow => {
            let value: Value = serde_json::from_str(payload.get()).map_err(|e| e.to_string())?;
            let mut flat = Map::new();
            match value {
                Value::Object(map) => flatten("", map, &mut flat),
                other => {
                    flat.insert("value".to_string(), other);
                }
            }
            json(serde_json::to_vec(&flat))
        }
        // The metadata travels in the headers every format gets.
        Format::Raw => Body {
            bytes: input.payload.to_vec(),
            content_type: "application/json".to_string(),
            headers: Vec::new(),
        },
        Format::Custom(name) => {
            let envelope = envelopes
                .0
                .get(name)
                .ok_or_else(|| format!("no envelope named {name:?} is registered on this bus"))?;
            Body {
                bytes: envelope.build(input)?,
                content_type: envelope.content_type().to_string(),
                headers: Vec::new(),
            }
        }
    })
}

fn raw_payload(payload: &[u8]) -> Result<&RawValue, String> {
    let text =
        std::str::from_utf8(payload).map_err(|e| format!("stored payload is not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("stored payload is not JSON: {e}"))
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

#[derive(Serialize)]
struct StandardEnvelope<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: String,
    attempt: u32,
    data: &'a RawValue,
}

#[derive(Serialize)]
struct GrowthXEnvelope<'a> {
    client: &'a str,
    event_type: &'a str,
    occurred_at: String,
    attempt_number: u32,
    data_type: &'a str,
    data: &'a RawValue,
}

#[derive(Serialize)]
struct LeadCrmEnvelope<'a> {
    id_space: &'a str,
    event: &'a str,
    secret: Option<&'a str>,
    payload: &'a RawValue,
}

#[derive(Serialize)]
struct SnitcherEnvelope<'a> {
    event: &'a str,
    subjects: &'a RawValue,
}

/// The input for an event record, for the sender.
pub(crate) fn input<'a>(
    id: EventId,
    event: &'a EventRecord,
    attempt: u32,
    endpoint: EndpointId,
    secret_for_body: Option<&'a str>,
) -> EnvelopeInput<'a> {
    EnvelopeInput {
        id,
        event_type: &event.event_type,
        payload: &event.payload,
        occurred_at: time::from_us(event.occurred_us),
        attributes: &event.attributes,
        attempt,
        endpoint,
        secret_for_body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(t: &str, payload: &str) -> EventRecord {
        EventRecord {
            event_type: t.into(),
            payload: payload.as_bytes().to_vec(),
            occurred_us: 1_649_367_553_042_000,
            attributes: vec![],
            targets: vec![],
            created_ms: 0,
            idempotency_key: None,
            tenant: None,
        }
    }

    fn body(format: Format, ev: &EventRecord, attempt: u32, secret: Option<&str>) -> Value {
        let input = input(EventId::from_u128(42), ev, attempt, EndpointId(1), secret);
        let b = build(&format, &Envelopes::default(), &input).unwrap();
        serde_json::from_slice(&b.bytes).unwrap()
    }

    #[test]
    fn standard_envelope_carries_id_type_time_attempt_and_payload() {
        let ev = record("lead.create", r#"{"name": "Ada", "n": [1, 2]}"#);
        assert_eq!(
            body(Format::Standard, &ev, 2, None),
            json!({
                "id": EventId::from_u128(42).to_string(),
                "type": "lead.create",
                "occurred_at": "2022-04-07T21:39:13.042Z",
                "attempt": 2,
                "data": {"name": "Ada", "n": [1, 2]},
            })
        );
    }

    #[test]
    fn growth_x_uses_schema_names_and_its_time_format() {
        let ev = record("connection.created", r#"{"id": 1}"#);
        assert_eq!(
            body(
                Format::GrowthX {
                    client: "c@x.com".into()
                },
                &ev,
                3,
                None
            ),
            json!({
                "client": "c@x.com",
                "event_type": "connection.created",
                "occurred_at": "2022-04-07 21:39:13.042000",
                "attempt_number": 3,
                "data_type": "connection",
                "data": {"id": 1},
            })
        );
    }

    #[test]
    fn snitcher_wraps_a_single_subject() {
        let one = record("new_lead", r#"{"id": 1}"#);
        let many = record("new_lead", r#"[{"id": 1}, {"id": 2}]"#);
        assert_eq!(
            body(Format::Snitcher, &one, 1, None),
            json!({"event": "new_lead", "subjects": [{"id": 1}]})
        );
        assert_eq!(
            body(Format::Snitcher, &many, 1, None),
            json!({"event": "new_lead", "subjects": [{"id": 1}, {"id": 2}]})
        );
    }

    #[test]
    fn grow_flattens_nested_objects() {
        let ev = record(
            "contact.subscribe",
            r#"{"msisdn": 1, "geo": {"city": "X", "p": {"q": true}}, "tags": [1]}"#,
        );
        assert_eq!(
            body(Format::Grow, &ev, 1, None),
            json!({"msisdn": 1, "geo.city": "X", "geo.p.q": true, "tags": [1]})
        );
        let scalar = record("x", "5");
        assert_eq!(body(Format::Grow, &scalar, 1, None), json!({"value": 5}));
    }

    #[test]
    fn lead_crm_carries_the_secret_only_when_given() {
        let ev = record("lead.create", r#"{"id": "e1"}"#);
        let f = Format::LeadCrm {
            id_space: "sp".into(),
        };
        assert_eq!(
            body(f.clone(), &ev, 1, Some("wh_1")),
            json!({"id_space": "sp", "event": "lead.create", "secret": "wh_1", "payload": {"id": "e1"}})
        );
        assert_eq!(body(f, &ev, 1, None)["secret"], Value::Null);
    }

    #[test]
    fn raw_sends_the_payload_and_metadata_in_headers() {
        let ev = record("a.b", r#" {"x": 1} "#);
        let input = input(EventId::from_u128(42), &ev, 2, EndpointId(1), None);
        let b = build(&Format::Raw, &Envelopes::default(), &input).unwrap();
        assert_eq!(b.bytes, br#" {"x": 1} "#);
        assert!(b.headers.contains(&("webhook-attempt".into(), "2".into())));
        assert!(b
            .headers
            .contains(&("webhook-event-type".into(), "a.b".into())));
    }

    #[test]
    fn every_format_carries_the_event_type_attempt_and_time_in_headers() {
        struct Bare;
        impl Envelope for Bare {
            fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
                Ok(input.payload.to_vec())
            }
        }
        let mut envelopes = Envelopes::default();
        envelopes.0.insert("bare".into(), Arc::new(Bare));
        let ev = record("contact.unsubscribe", r#"{"msisdn": 1}"#);
        for format in [
            Format::Standard,
            Format::GrowthX { client: "c".into() },
            Format::LeadCrm {
                id_space: "s".into(),
            },
            Format::Snitcher,
            Format::Grow,
            Format::Raw,
            Format::Custom("bare".into()),
        ] {
            let input = input(EventId::from_u128(42), &ev, 3, EndpointId(1), None);
            let b = build(&format, &envelopes, &input).unwrap();
            assert_eq!(
                b.headers,
                [
                    ("webhook-event-type".into(), "contact.unsubscribe".into()),
                    ("webhook-attempt".into(), "3".into()),
                    (
                        "webhook-occurred-at".into(),
                        "2022-04-07T21:39:13.042Z".into()
                    ),
                ],
                "{format:?}"
            );
        }
    }

    #[test]
    fn unknown_custom_envelope_is_an_error_not_a_panic() {
        let ev = record("a.b", "1");
        let input = input(EventId::from_u128(42), &ev, 1, EndpointId(1), None);
        assert!(build(
            &Format::Custom("nope".into()),
            &Envelopes::default(),
            &input
        )
        .is_err());
    }
}
