//! Envelopes built from any stored event, in every built-in format:
//! building never panics, and whatever builds is JSON.

#![no_main]

use arbitrary::Arbitrary;
use hookbus::fuzz_api::{self, EnvelopeArgs};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    param: String,
    payload: Vec<u8>,
    event_type: String,
    attempt: u32,
    event_id: u128,
    occurred_ms: u64,
    attributes: Vec<(String, String)>,
    secret_for_body: Option<String>,
}

fuzz_target!(|input: Input| {
    let args = EnvelopeArgs {
        format: input.format,
        param: &input.param,
        payload: &input.payload,
        event_type: &input.event_type,
        attempt: input.attempt,
        event_id: input.event_id,
        occurred_ms: input.occurred_ms,
        attributes: &input.attributes,
        secret_for_body: input.secret_for_body.as_deref(),
    };
    let Ok(body) = fuzz_api::build_envelope_with(&args) else {
        return;
    };
    let format = input.format % fuzz_api::BUILTIN_FORMATS;
    // Always JSON by the grammar (what publish checks the payload against)...
    assert!(
        serde_json::from_slice::<&RawValue>(&body).is_ok(),
        "format {format} built a body that is not JSON: {:?}",
        String::from_utf8_lossy(&body)
    );
    // ...and readable by a strict parser whenever the payload is: a payload
    // such as `1e400` is JSON by the grammar, but out of serde_json's range.
    if serde_json::from_slice::<Value>(&input.payload).is_ok() {
        assert!(
            serde_json::from_slice::<Value>(&body).is_ok(),
            "format {format} made a readable payload unreadable: {:?}",
            String::from_utf8_lossy(&body)
        );
    }
});
