//! Envelopes: the body sent to an endpoint, built from the stored event.
//!
//! The default envelope is a JSON object:
//!
//! ```json
//! {"id":"evt_…","type":"lead.create","occurred_at":"2026-11-22T21:14:06.123Z","attempt":1,"data":{…}}
//! ```
//!
//! `data` is the payload exactly as published. The attempt number is part of
//! the body, so the body is rebuilt (and re-signed) for every attempt.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::event::EventId;
use crate::store::records::EventRecord;
use crate::time;

#[derive(Serialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: String,
    attempt: u32,
    data: &'a RawValue,
}

/// Builds the default JSON envelope for one attempt.
pub(crate) fn default_envelope(id: EventId, event: &EventRecord, attempt: u32) -> Result<Vec<u8>> {
    let corrupt = |e: serde_json::Error| Error::Corrupt {
        what: "event payload",
        detail: e.to_string(),
    };
    let text = std::str::from_utf8(&event.payload).map_err(|e| Error::Corrupt {
        what: "event payload",
        detail: e.to_string(),
    })?;
    let data: &RawValue = serde_json::from_str(text).map_err(corrupt)?;
    serde_json::to_vec(&Envelope {
        id: id.to_string(),
        event_type: &event.event_type,
        occurred_at: time::rfc3339_ms(event.occurred_ms),
        attempt,
        data,
    })
    .map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_id_type_time_attempt_and_payload() {
        let ev = EventRecord {
            event_type: "lead.create".into(),
            payload: br#"{"name": "Ada", "n": [1, 2]}"#.to_vec(),
            occurred_ms: 1_649_367_553_042,
            attributes: vec![],
        };
        let id = EventId::from_u128(42);
        let body = default_envelope(id, &ev, 2).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": id.to_string(),
                "type": "lead.create",
                "occurred_at": "2022-04-07T21:39:13.042Z",
                "attempt": 2,
                "data": {"name": "Ada", "n": [1, 2]},
            })
        );
    }
}
