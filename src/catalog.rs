//! The event-type catalog: the event types a host declares it emits, each
//! with a description, an example payload and optionally a JSON Schema.
//!
//! The catalog is documentation first: the portal offers its types when a
//! customer subscribes, and pre-fills a test send with the example. With
//! the `schema` feature and [`BusBuilder::validate_payloads`](crate::BusBuilder::validate_payloads),
//! a publish of a declared type whose payload does not match its schema
//! fails with [`Error::PayloadMismatch`] and nothing is stored. Validation
//! uses the `jsonschema` crate (drafts 4 to 2020-12, no remote `$ref`s).

use std::fmt;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::validate_event_type;

/// Longest event-type description, in bytes.
pub const MAX_EVENT_TYPE_DESCRIPTION_LEN: usize = 4096;

/// How a payload failed its event type's JSON Schema
/// ([`Error::PayloadMismatch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayloadMismatch {
    /// The event type.
    pub event_type: String,
    /// Where in the payload, as a JSON Pointer (`""` is the whole payload).
    pub path: String,
    /// The validator's description of the mismatch (at most 256 bytes).
    pub reason: String,
}

/// One event type of the catalog.
///
/// ```
/// use hookbus::EventType;
/// use serde_json::json;
/// let paid = EventType::new("order.paid")
///     .description("An order was paid in full.")
///     .example(json!({"order": "o_1001", "amount": 4200}))
///     .schema(json!({
///         "type": "object",
///         "required": ["order", "amount"],
///         "properties": {"order": {"type": "string"}, "amount": {"type": "integer"}}
///     }));
/// assert_eq!(paid.name(), "order.paid");
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct EventType {
    /// Its name.
    pub name: String,
    /// What it means (empty if none was given).
    pub description: String,
    /// A payload such an event carries.
    pub example: Option<Value>,
    /// The JSON Schema its payloads follow.
    pub schema: Option<Value>,
}

impl EventType {
    /// An event type named `name` (an exact type, such as `order.paid`:
    /// the characters of [`Event::new`](crate::Event::new)'s types; checked
    /// when the bus opens). No description, example or schema.
    pub fn new(name: impl Into<String>) -> Self {
        EventType {
            name: name.into(),
            description: String::new(),
            example: None,
            schema: None,
        }
    }

    /// What the event means, for the people who subscribe to it. At most
    /// [`MAX_EVENT_TYPE_DESCRIPTION_LEN`] bytes. Defaults to none.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// A payload such an event carries, shown to subscribers and used as
    /// the sample of a test send. Must match the schema, if there is one
    /// (checked when the bus opens with the `schema` feature). Defaults to
    /// none.
    pub fn example(mut self, payload: Value) -> Self {
        self.example = Some(payload);
        self
    }

    /// A JSON Schema its payloads follow. Defaults to none.
    pub fn schema(mut self, schema: Value) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventType")
            .field("name", &self.name)
            .field("has_example", &self.example.is_some())
            .field("has_schema", &self.schema.is_some())
            .finish()
    }
}

/// The declared event types, sorted by name, with their schemas compiled.
pub(crate) struct Catalog {
    types: Vec<EventType>,
    #[cfg(feature = "schema")]
    validators: Vec<Option<jsonschema::Validator>>,
    /// Whether publishes are checked against the schemas.
    validate_payloads: bool,
}

impl Catalog {
    /// Checks every declared type: a valid, unique name, a description
    /// within bounds, and (with the `schema` feature) a schema that
    /// compiles and an example that matches it. Fails with
    /// [`Error::InvalidConfig`] (setting `event_type`) naming the type.
    pub(crate) fn new(mut types: Vec<EventType>, validate_payloads: bool) -> Result<Catalog> {
        let invalid = |name: &str, why: String| Error::InvalidConfig {
            setting: "event_type",
            reason: format!("{name:?}: {why}"),
        };
        types.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in types.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(invalid(&pair[0].name, "declared twice".into()));
            }
        }
        for t in &types {
            validate_event_type(&t.name).map_err(|e| invalid(&t.name, e.to_string()))?;
            if t.description.len() > MAX_EVENT_TYPE_DESCRIPTION_LEN {
                return Err(invalid(
                    &t.name,
                    "description longer than 4096 bytes".into(),
                ));
            }
            if t.schema
                .as_ref()
                .is_some_and(|s| !s.is_object() && !s.is_boolean())
            {
                return Err(invalid(
                    &t.name,
                    "a JSON Schema is an object or a boolean".into(),
                ));
            }
        }
        #[cfg(feature = "schema")]
        let validators = types
            .iter()
            .map(|t| {
                let Some(schema) = &t.schema else {
                    return Ok(None);
                };
                let validator = jsonschema::validator_for(schema)
                    .map_err(|e| invalid(&t.name, format!("schema does not compile: {e}")))?;
                if let Some(example) = &t.example {
                    if let Err(e) = validator.validate(example) {
                        return Err(invalid(
                            &t.name,
                            format!(
                                "the example does not match the schema at {:?}: {e}",
                                e.instance_path().as_str()
                            ),
                        ));
                    }
                }
                Ok(Some(validator))
            })
            .collect::<Result<Vec<_>>>()?;
        if validate_payloads && !cfg!(feature = "schema") {
            return Err(Error::InvalidConfig {
                setting: "validate_payloads",
                reason: "needs hookbus's `schema` feature".into(),
            });
        }
        Ok(Catalog {
            types,
            #[cfg(feature = "schema")]
            validators,
            validate_payloads,
        })
    }

    /// Every declared type, by name.
    pub(crate) fn types(&self) -> &[EventType] {
        &self.types
    }

    pub(crate) fn get(&self, name: &str) -> Option<&EventType> {
        self.position(name).map(|i| &self.types[i])
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.types
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
    }

    /// Checks a payload of `event_type` against its schema when publishes
    /// are validated: [`Error::PayloadMismatch`] if it does not match.
    /// Types without a schema, and undeclared types, always pass.
    pub(crate) fn check_publish(&self, event_type: &str, payload: &[u8]) -> Result<()> {
        if !self.validate_payloads {
            return Ok(());
        }
        self.check(event_type, payload)
    }

    /// Checks a payload of `event_type` against its schema, whether or not
    /// publishes are validated (a test send always is, with the `schema`
    /// feature). Without the feature every payload passes.
    pub(crate) fn check(&self, event_type: &str, payload: &[u8]) -> Result<()> {
        #[cfg(feature = "schema")]
        {
            let Some(Some(validator)) = self.position(event_type).map(|i| &self.validators[i])
            else {
                return Ok(());
            };
            let value: Value = serde_json::from_slice(payload).map_err(Error::InvalidPayload)?;
            if let Err(e) = validator.validate(&value) {
                return Err(Error::PayloadMismatch(Box::new(PayloadMismatch {
                    event_type: event_type.to_string(),
                    path: e.instance_path().as_str().to_string(),
                    reason: mismatch_reason(&e),
                })));
            }
        }
        #[cfg(not(feature = "schema"))]
        let _ = (event_type, payload);
        Ok(())
    }
}

/// The validator's words for a mismatch, cut so a large payload echoed in
/// them cannot make the error huge.
#[cfg(feature = "schema")]
fn mismatch_reason(e: &jsonschema::ValidationError<'_>) -> String {
    const MAX: usize = 256;
    let mut text = e.to_string();
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_checked_and_unique() {
        assert!(Catalog::new(vec![EventType::new("a.b"), EventType::new("a.b")], false).is_err());
        assert!(Catalog::new(vec![EventType::new("bad type")], false).is_err());
        assert!(Catalog::new(vec![EventType::new("x").schema(json!(3))], false).is_err());
        let c = Catalog::new(vec![EventType::new("b"), EventType::new("a")], false).unwrap();
        assert_eq!(c.types()[0].name(), "a");
        assert!(c.get("b").is_some() && c.get("c").is_none());
    }

    #[cfg(feature = "schema")]
    #[test]
    fn payloads_are_checked_against_their_schema() {
        let schema =
            json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
        let bad_example = Catalog::new(
            vec![EventType::new("t")
                .schema(schema.clone())
                .example(json!({}))],
            true,
        );
        assert!(matches!(bad_example, Err(Error::InvalidConfig { .. })));
        let c = Catalog::new(
            vec![EventType::new("t").schema(schema).example(json!({"n": 1}))],
            true,
        )
        .unwrap();
        c.check_publish("t", br#"{"n": 2}"#).unwrap();
        c.check_publish("other", br#""anything""#).unwrap();
        match c.check_publish("t", br#"{"n": "two"}"#) {
            Err(Error::PayloadMismatch(m)) => assert_eq!(m.path, "/n"),
            other => panic!("{other:?}"),
        }
    }
}
