//! Property tests over the internals, through `hookbus::fuzz_api`: record
//! encoding, event filters, envelopes and verification. The fuzz targets in
//! `fuzz/` drive the same entry points for longer runs.

use std::num::NonZeroU32;
use std::time::Duration;

use hookbus::fuzz_api::{
    self, AttemptFields, DeliveryFields, DeliveryStateFields, EndpointFields, EndpointSettings,
    EndpointStateFields, EnvelopeArgs, EventFields, ModeFields, RecordFields,
};
use hookbus::presets::{Grow, GrowthX, LeadCrm, Snitcher};
use hookbus::{Format, PauseReason, Signing, SuccessPolicy};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No regression files: failures print their minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// (1) Every record type survives encode → decode with arbitrary fields.

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => "[a-z.*]{0,12}",
        1 => Just(String::new()),
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::Standard),
        text().prop_map(|client| GrowthX::new(client).into()),
        text().prop_map(|id_space| LeadCrm::new(id_space).into()),
        Just(Snitcher.into()),
        Just(Grow.into()),
        Just(Format::Raw),
        text().prop_map(Format::Custom),
    ]
}

fn signing() -> impl Strategy<Value = Signing> {
    prop_oneof![
        Just(Signing::StandardWebhooks),
        text().prop_map(|header| Signing::HmacSha256Hex { header }),
        text().prop_map(|header| Signing::SecretHeader { header }),
        Just(Signing::SecretInBody),
        Just(Signing::None),
    ]
}

fn pause_reason() -> impl Strategy<Value = PauseReason> {
    prop_oneof![
        Just(PauseReason::Manual),
        any::<u32>().prop_map(PauseReason::ConsecutiveFailures),
        Just(PauseReason::Gone),
    ]
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((text(), text()), 0..4)
}

fn endpoint() -> impl Strategy<Value = EndpointFields> {
    (
        (
            text(),
            text(),
            vec(text(), 0..4),
            proptest::option::of(text()),
        ),
        (
            pairs(),
            any::<Option<u32>>(),
            proptest::option::of(vec(any::<u64>(), 0..4)),
            any::<Option<u64>>(),
            any::<Option<u32>>(),
        ),
        (format(), signing(), any::<bool>(), any::<Option<u32>>()),
        (
            vec((text(), vec(text(), 0..3)), 0..3),
            any::<bool>(),
            any::<Option<Option<u32>>>(),
            vec((text(), any::<u64>()), 0..3),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (name, url, events, secret),
                (headers, max_attempts, retry_delays_ms, timeout_ms, concurrency),
                (format, signing, exactly_200, rate_limit),
                (attribute_filters, ordered, pause_after, previous_secrets, created_ms),
            )| EndpointFields {
                name,
                url,
                events,
                secret,
                headers,
                format,
                signing,
                attribute_filters,
                settings: EndpointSettings {
                    max_attempts,
                    retry_delays: retry_delays_ms
                        .map(|v| v.into_iter().map(Duration::from_millis).collect()),
                    timeout: timeout_ms.map(Duration::from_millis),
                    concurrency,
                    rate_limit: rate_limit.and_then(NonZeroU32::new),
                    success: if exactly_200 {
                        SuccessPolicy::Exactly200
                    } else {
                        SuccessPolicy::Any2xx
                    },
                    ordered,
                    pause_after,
                },
                previous_secrets,
                created_ms,
            },
        )
}

fn endpoint_state() -> impl Strategy<Value = EndpointStateFields> {
    let mode = prop_oneof![
        Just(ModeFields::Active),
        Just(ModeFields::Disabled),
        (pause_reason(), any::<u64>())
            .prop_map(|(reason, since_ms)| ModeFields::Paused { reason, since_ms }),
    ];
    (
        mode,
        any::<u32>(),
        any::<u32>(),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
    )
        .prop_map(|(mode, a, d, s, f)| EndpointStateFields {
            mode,
            consecutive_failed_attempts: a,
            consecutive_failed_deliveries: d,
            last_success_ms: s,
            last_failure_ms: f,
        })
}

fn event() -> impl Strategy<Value = EventFields> {
    (
        text(),
        vec(any::<u8>(), 0..64),
        any::<u64>(),
        pairs(),
        vec(any::<u64>(), 0..5),
        any::<u64>(),
        proptest::option::of(text()),
    )
        .prop_map(
            |(event_type, payload, occurred_us, attributes, targets, created_ms, key)| {
                EventFields {
                    event_type,
                    payload,
                    occurred_us,
                    attributes,
                    targets,
                    created_ms,
                    idempotency_key: key,
                }
            },
        )
}

fn delivery() -> impl Strategy<Value = DeliveryFields> {
    let state = prop_oneof![
        (any::<u32>(), any::<u64>()).prop_map(|(next_attempt, due_ms)| {
            DeliveryStateFields::Waiting {
                next_attempt,
                due_ms,
            }
        }),
        any::<u32>().prop_map(|attempt| DeliveryStateFields::InFlight { attempt }),
        any::<u32>().prop_map(|attempts| DeliveryStateFields::Delivered { attempts }),
        any::<u32>().prop_map(|attempts| DeliveryStateFields::Failed { attempts }),
    ];
    (
        state,
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(state, created_ms, updated_ms, round_start, manual)| DeliveryFields {
                state,
                created_ms,
                updated_ms,
                round_start,
                manual,
            },
        )
}

fn attempt() -> impl Strategy<Value = AttemptFields> {
    (
        (any::<u64>(), any::<u128>(), any::<u32>(), any::<bool>()),
        (
            any::<u64>(),
            any::<u64>(),
            any::<Option<u16>>(),
            any::<bool>(),
        ),
        (
            any::<Option<u8>>(),
            proptest::option::of(text()),
            vec(any::<u8>(), 0..64),
            any::<bool>(),
        ),
        (
            vec((text(), text()), 0..4),
            vec(any::<u8>(), 0..64),
            any::<bool>(),
            vec((text(), text()), 0..4),
        ),
    )
        .prop_map(
            |(
                (endpoint, event, attempt, manual),
                (started_ms, duration_us, status, succeeded),
                (error_kind, error_message, response_body, response_truncated),
                (request_headers, request_body, request_truncated, response_headers),
            )| AttemptFields {
                endpoint,
                event,
                attempt,
                manual,
                started_ms,
                duration_us,
                status,
                succeeded,
                error_kind,
                error_message,
                response_body,
                response_truncated,
                request_headers,
                request_body,
                request_truncated,
                response_headers,
            },
        )
}

fn record() -> impl Strategy<Value = RecordFields> {
    prop_oneof![
        endpoint().prop_map(RecordFields::Endpoint),
        endpoint_state().prop_map(RecordFields::EndpointState),
        event().prop_map(RecordFields::Event),
        delivery().prop_map(RecordFields::Delivery),
        attempt().prop_map(RecordFields::Attempt),
        (any::<u128>(), any::<u64>())
            .prop_map(|(event, created_ms)| RecordFields::Idempotency { event, created_ms }),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn every_record_round_trips(rec in record()) {
        prop_assert!(fuzz_api::roundtrip_record(&rec), "{rec:?}");
        let bytes = fuzz_api::encode_record(&rec);
        prop_assert!(fuzz_api::decode_record(rec.kind(), &bytes));
        // The decoded record encodes to the same bytes.
        prop_assert_eq!(fuzz_api::reencode_record(rec.kind(), &bytes), Some(bytes));
    }
}

// ---------------------------------------------------------------------------
// (2) Decoding arbitrary bytes never panics.
//
// Bytes 252 and 253 are bincode's markers for 4- and 8-byte varints: as a
// length prefix they announce up to 2^32 or 2^64 bytes, which the codec's
// record limit refuses before anything is allocated (see
// `huge_string_length_prefix_is_an_error` below). Generated bytes include
// them.

const U64_MARKER: u8 = 253;

fn damaged_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Mostly the current version byte, so decoding gets past it.
    let version = prop_oneof![4 => Just(1u8), 1 => any::<u8>()];
    (version, vec(any::<u8>(), 0..96)).prop_map(|(version, mut body)| {
        body.insert(0, version);
        body
    })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(kind in any::<u8>(), bytes in damaged_bytes()) {
        if let Some(again) = fuzz_api::reencode_record(kind, &bytes) {
            // Whatever decodes encodes to something that decodes to itself.
            prop_assert_eq!(fuzz_api::reencode_record(kind, &again), Some(again.clone()));
        }
    }

    #[test]
    fn decoding_damaged_records_never_panics(
        rec in record(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fuzz_api::encode_record(&rec);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        // Read as another kind, any integer's varint marker can land on a
        // length: see (2) above.
        for kind in 0..fuzz_api::RECORD_KINDS {
            fuzz_api::decode_record(kind, &bytes);
            fuzz_api::decode_record(kind, &bytes[..cut.index(bytes.len() + 1)]);
        }
    }
}

/// A string field whose length prefix says 2^64 - 1 bytes. bincode 2
/// (`Vec<u8>::decode`, used by `deserialize_string`) runs
/// `vec![0u8; len]` before reading; without the codec's record limit this
/// length panicked with "capacity overflow", a length between the
/// machine's memory and `isize::MAX` aborted the process, and a 4-byte
/// length allocated up to 4 GiB for a record of a few bytes (the fuzzer's
/// first find: kind 2, bytes `[1, 252, 244, 1, 0, 216, 1]`, 3.6 GB).
#[test]
fn huge_string_length_prefix_is_an_error() {
    let mut bytes = vec![1u8, U64_MARKER];
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    for kind in [fuzz_api::KIND_ENDPOINT, fuzz_api::KIND_EVENT] {
        let decoded = std::panic::catch_unwind(|| fuzz_api::decode_record(kind, &bytes));
        assert_eq!(decoded.ok(), Some(false), "kind {kind}: {bytes:?}");
    }
}

// ---------------------------------------------------------------------------
// (3) Filters agree with a reference model.

/// The documented rules, written independently of the crate.
fn model_matches(
    patterns: &[String],
    filters: &[(String, Vec<String>)],
    event_type: &str,
    attributes: &[(String, String)],
) -> bool {
    let type_ok = patterns.iter().any(|p| {
        p == "*"
            || (p.ends_with(".*") && event_type.starts_with(&p[..p.len() - 1]))
            || p == event_type
    });
    let attributes_ok = filters.iter().all(|(key, values)| {
        values.is_empty()
            || attributes
                .iter()
                .any(|(k, v)| k == key && values.contains(v))
    });
    type_ok && attributes_ok
}

/// Event types from a small alphabet so that patterns often match.
fn event_type() -> impl Strategy<Value = String> {
    vec(prop_oneof!["a", "b", "ab"], 1..4).prop_map(|segments| segments.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        3 => event_type().prop_map(|t| format!("{t}.*")),
        3 => event_type(),
    ]
}

fn small_value() -> impl Strategy<Value = String> {
    prop_oneof!["x", "y", "z"].prop_map(String::from)
}

fn small_key() -> impl Strategy<Value = String> {
    prop_oneof!["k", "tenant"].prop_map(String::from)
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn filters_agree_with_the_model(
        patterns in vec(pattern(), 1..4),
        filters in vec((small_key(), vec(small_value(), 0..3)), 0..3),
        event_type in event_type(),
        attributes in vec((small_key(), small_value()), 0..3),
    ) {
        let got = fuzz_api::filter_matches(&patterns, &filters, &event_type, &attributes);
        prop_assert_eq!(got, Ok(model_matches(&patterns, &filters, &event_type, &attributes)));
    }

    #[test]
    fn filters_never_panic(
        patterns in vec(text(), 0..4),
        filters in vec((text(), vec(text(), 0..3)), 0..3),
        event_type in text(),
        attributes in pairs(),
    ) {
        let _ = fuzz_api::filter_matches(&patterns, &filters, &event_type, &attributes);
    }
}

#[test]
fn the_model_sees_matches_and_misses() {
    // Guards the generators above: both outcomes must be common.
    let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let f = fuzz_api::filter_matches;
    assert_eq!(f(&p(&["a.*"]), &[], "a.b", &[]), Ok(true));
    assert_eq!(f(&p(&["a.*"]), &[], "ab.b", &[]), Ok(false));
    assert_eq!(f(&p(&["a.*"]), &[], "a", &[]), Ok(false));
    let filters = [("k".to_string(), vec!["x".to_string()])];
    let attrs = [("k".to_string(), "x".to_string())];
    assert_eq!(f(&p(&["*"]), &filters, "b", &attrs), Ok(true));
    assert_eq!(f(&p(&["*"]), &filters, "b", &[]), Ok(false));
    assert!(f(&p(&["a*"]), &[], "a", &[]).is_err());
    assert!(f(&[], &[], "a", &[]).is_err());
}

// ---------------------------------------------------------------------------
// (4) Every built-in envelope is valid JSON for any JSON payload.

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            vec(("[a-c.]{0,3}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn every_builtin_envelope_is_json(
        payload in json(),
        pretty in any::<bool>(),
        event_type in text(),
        param in text(),
        secret in proptest::option::of(text()),
        attempt in any::<u32>(),
        occurred_ms in any::<u64>(),
        event_id in any::<u128>(),
        attributes in pairs(),
    ) {
        let payload = if pretty {
            serde_json::to_vec_pretty(&payload).unwrap()
        } else {
            serde_json::to_vec(&payload).unwrap()
        };
        for format in 0..fuzz_api::BUILTIN_FORMATS {
            let body = fuzz_api::build_envelope_with(&EnvelopeArgs {
                format,
                param: &param,
                payload: &payload,
                event_type: &event_type,
                attempt,
                event_id,
                occurred_ms,
                attributes: &attributes,
                secret_for_body: secret.as_deref(),
            });
            let body = match body {
                Ok(body) => body,
                Err(e) => return Err(TestCaseError::fail(format!("format {format}: {e}"))),
            };
            let parsed = serde_json::from_slice::<Value>(&body);
            prop_assert!(parsed.is_ok(), "format {}: {}", format, String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn envelopes_never_panic_on_damaged_payloads(
        format in any::<u8>(),
        payload in vec(any::<u8>(), 0..48),
        event_type in text(),
        attempt in any::<u32>(),
    ) {
        let _ = fuzz_api::build_envelope(format, "p", &payload, &event_type, attempt);
    }
}

// ---------------------------------------------------------------------------
// (5) Verification never panics, and accepts what hookbus signs.

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("webhook-id".to_string()),
        Just("webhook-timestamp".to_string()),
        Just("webhook-signature".to_string()),
        Just(fuzz_api::HEX_HEADER.to_string()),
        Just(fuzz_api::SECRET_HEADER.to_lowercase()),
        text(),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "v1,[A-Za-z0-9+/=]{0,48}( v1,[A-Za-z0-9+/=]{0,48})?",
        "[0-9a-fA-F]{0,66}",
        (fuzz_api::VERIFY_NOW - 400..fuzz_api::VERIFY_NOW + 400).prop_map(|t| t.to_string()),
    ]
}

fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "whsec_[A-Za-z0-9+/=]{0,44}",
        Just("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_string()),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn verify_never_panics(
        scheme in any::<u8>(),
        secrets in vec(secret(), 0..3),
        headers in vec((header_name(), header_value()), 0..5),
        body in prop_oneof![vec(any::<u8>(), 0..64), text().prop_map(String::into_bytes)],
    ) {
        let _ = fuzz_api::verify(scheme, &secrets, &headers, &body);
    }

    #[test]
    fn what_hookbus_signs_verifies(
        scheme in 0..fuzz_api::SIGNING_SCHEMES,
        secrets in vec(secret(), 1..3),
        msg_id in text(),
        timestamp in any::<u32>(),
        body in vec(any::<u8>(), 0..64),
    ) {
        // The secret in the body is the format's job, not the signer's.
        prop_assume!(scheme != 3);
        let timestamp = u64::from(timestamp);
        let Some(headers) = fuzz_api::sign(scheme, &secrets, &msg_id, timestamp, &body) else {
            // A secret that is not valid for the scheme: the endpoint
            // would have been refused.
            return Ok(());
        };
        prop_assert_eq!(
            fuzz_api::verify_at(scheme, &secrets, &headers, &body, timestamp),
            Ok(())
        );
        // Any previous secret alone verifies too for Standard Webhooks
        // (rotation); the header schemes carry the current one only.
        let last = &secrets[secrets.len() - 1..];
        if scheme == 0 {
            prop_assert_eq!(fuzz_api::verify_at(scheme, last, &headers, &body, timestamp), Ok(()));
        }
        // The HMAC schemes bind the body.
        if scheme <= 1 {
            let mut forged = body.clone();
            forged.push(b' ');
            prop_assert!(
                fuzz_api::verify_at(scheme, &secrets, &headers, &forged, timestamp).is_err(),
                "a changed body verified"
            );
        }
    }
}
