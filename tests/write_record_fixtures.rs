//! One-off generator, run on the code before the stored-format change
//! (issue 10, item 4): encodes one representative record of every kind and
//! variant with the codec of that code and writes the bytes as hex to
//! tests/fixtures/records/. Run with
//! `cargo test --test write_record_fixtures -- --ignored`.

use hookbus::fuzz_api::{
    encode_record, AttemptFields, DeliveryFields, DeliveryStateFields, EndpointFields,
    EndpointStateFields, EventFields, ModeFields, RecordFields,
};
use hookbus::{Format, PauseReason, Signing, SuccessPolicy};

fn endpoint(format: Format, signing: Signing, success: SuccessPolicy, full: bool) -> RecordFields {
    RecordFields::Endpoint(EndpointFields {
        name: "orders".into(),
        url: "https://hooks.example.com/in?x=1".into(),
        events: vec!["lead.*".into(), "order.paid".into()],
        // Always set: the signing schemes of some fixtures need one.
        secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        headers: if full {
            vec![("X-Tenant".into(), "acme".into())]
        } else {
            vec![]
        },
        max_attempts: full.then_some(7),
        retry_delays_ms: full.then(|| vec![1_000, 60_000, 3_600_000]),
        timeout_ms: full.then_some(15_000),
        concurrency: full.then_some(4),
        format,
        signing,
        success,
        attribute_filters: if full {
            vec![("tenant".into(), vec!["acme".into(), "globex".into()])]
        } else {
            vec![]
        },
        ordered: full,
        pause_after: if full { Some(Some(50)) } else { Some(None) },
        previous_secrets: if full {
            vec![("whsec_b2xkIHNlY3JldA==".into(), 1_700_000_300_000)]
        } else {
            vec![]
        },
        created_ms: 1_700_000_000_123,
    })
}

fn state(mode: ModeFields) -> RecordFields {
    RecordFields::EndpointState(EndpointStateFields {
        mode,
        consecutive_failed_attempts: 3,
        consecutive_failed_deliveries: 300,
        last_success_ms: Some(1_700_000_100_000),
        last_failure_ms: None,
    })
}

fn delivery(state: DeliveryStateFields, manual: bool) -> RecordFields {
    RecordFields::Delivery(DeliveryFields {
        state,
        created_ms: 1_700_000_000_123,
        updated_ms: 1_700_000_060_456,
        round_start: if manual { 4 } else { 1 },
        manual,
    })
}

fn all() -> Vec<(&'static str, RecordFields)> {
    vec![
        (
            "endpoint_standard",
            endpoint(
                Format::Standard,
                Signing::StandardWebhooks,
                SuccessPolicy::Any2xx,
                true,
            ),
        ),
        (
            "endpoint_growthx",
            endpoint(
                Format::GrowthX {
                    client: "ops@acme.example".into(),
                },
                Signing::HmacSha256Hex {
                    header: "Signature".into(),
                },
                SuccessPolicy::Exactly200,
                false,
            ),
        ),
        (
            "endpoint_leadcrm",
            endpoint(
                Format::LeadCrm {
                    id_space: "space-42".into(),
                },
                Signing::SecretInBody,
                SuccessPolicy::Any2xx,
                true,
            ),
        ),
        (
            "endpoint_snitcher",
            endpoint(
                Format::Snitcher,
                Signing::SecretHeader {
                    header: "X-Webhook-Secret".into(),
                },
                SuccessPolicy::Any2xx,
                false,
            ),
        ),
        (
            "endpoint_grow",
            endpoint(
                Format::Grow,
                Signing::None,
                SuccessPolicy::Exactly200,
                false,
            ),
        ),
        (
            "endpoint_raw",
            endpoint(
                Format::Raw,
                Signing::StandardWebhooks,
                SuccessPolicy::Any2xx,
                false,
            ),
        ),
        (
            "endpoint_custom",
            endpoint(
                Format::Custom("crm-v2".into()),
                Signing::None,
                SuccessPolicy::Any2xx,
                false,
            ),
        ),
        ("state_active", state(ModeFields::Active)),
        ("state_disabled", state(ModeFields::Disabled)),
        (
            "state_paused_manual",
            state(ModeFields::Paused {
                reason: PauseReason::Manual,
                since_ms: 1_700_000_200_000,
            }),
        ),
        (
            "state_paused_failures",
            state(ModeFields::Paused {
                reason: PauseReason::ConsecutiveFailures(300),
                since_ms: 1_700_000_200_000,
            }),
        ),
        (
            "state_paused_gone",
            state(ModeFields::Paused {
                reason: PauseReason::Gone,
                since_ms: 1_700_000_200_000,
            }),
        ),
        (
            "event_full",
            RecordFields::Event(EventFields {
                event_type: "lead.create".into(),
                payload: br#"{"id":42,"name":"Ada"}"#.to_vec(),
                occurred_ms: 1_737_736_239_698,
                attributes: vec![("tenant".into(), "acme".into())],
                targets: vec![1, 70_000, u64::MAX],
                created_ms: 1_737_736_240_001,
                idempotency_key: Some("order-1001".into()),
            }),
        ),
        (
            "event_minimal",
            RecordFields::Event(EventFields {
                event_type: "a".into(),
                payload: b"null".to_vec(),
                occurred_ms: 0,
                attributes: vec![],
                targets: vec![],
                created_ms: 5,
                idempotency_key: None,
            }),
        ),
        (
            "delivery_waiting",
            delivery(
                DeliveryStateFields::Waiting {
                    next_attempt: 2,
                    due_ms: 1_700_000_065_000,
                },
                false,
            ),
        ),
        (
            "delivery_in_flight",
            delivery(DeliveryStateFields::InFlight { attempt: 3 }, false),
        ),
        (
            "delivery_delivered",
            delivery(DeliveryStateFields::Delivered { attempts: 5 }, true),
        ),
        (
            "delivery_failed",
            delivery(DeliveryStateFields::Failed { attempts: 260 }, false),
        ),
        (
            "attempt_delivered",
            RecordFields::Attempt(AttemptFields {
                endpoint: 7,
                event: 0x0194_9b2c_1e52_7f3a_9c41_0000_0000_002a,
                attempt: 1,
                manual: false,
                started_ms: 1_700_000_000_500,
                duration_us: 12_345,
                status: Some(200),
                succeeded: true,
                error_kind: None,
                error_message: None,
                response_body: b"ok".to_vec(),
                response_truncated: false,
            }),
        ),
        (
            "attempt_failed",
            RecordFields::Attempt(AttemptFields {
                endpoint: u64::MAX,
                event: u128::MAX,
                attempt: 4,
                manual: true,
                started_ms: 1_700_000_000_900,
                duration_us: 30_000_000,
                status: None,
                succeeded: false,
                error_kind: Some(3),
                error_message: Some("connection refused".into()),
                response_body: vec![0, 159, 146, 150],
                response_truncated: true,
            }),
        ),
        (
            "idempotency",
            RecordFields::Idempotency {
                event: 0x0194_9b2c_1e52_7f3a_9c41_0000_0000_002a,
                created_ms: 1_737_736_240_001,
            },
        ),
    ]
}

#[test]
#[ignore = "writes the fixtures; run by hand on the code whose format they pin"]
fn write_record_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, rec) in all() {
        let hex: String = encode_record(&rec)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join(format!("{name}.hex")), hex + "\n").unwrap();
    }
}
