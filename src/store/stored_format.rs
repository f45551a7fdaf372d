//! The stored format, pinned: the bytes in `tests/fixtures/records/` decode
//! to exactly the records below, field by field, and records encode to
//! exactly those bytes. A change to a record, a tag or the codec fails here
//! instead of re-labelling what databases already hold.
//!
//! The unsuffixed fixtures were written by the code before issue 10 (record
//! version 1 for every kind); `*.v2.hex` by record version 2 of events and
//! endpoints; `*.v3.hex` by record version 3 of events (with a tenant), and
//! the tenant records (`tenant`, `tenant_deletion`, `cancelled`) by their
//! first version; `attempt_with_request.v2.hex` by record version 2 of
//! attempts (the request as sent and the response's headers).

use std::num::NonZeroU32;
use std::time::Duration;

use super::codec::{self, Record};
use super::records::{
    AttemptRecord, DeliveryRecord, DeliveryState, EndpointRecord, EndpointStateRecord, EventRecord,
    IdempotencyRecord, Mode,
};
use crate::endpoint::{Overrides, PauseReason, SuccessPolicy};
use crate::formats::Format;
use crate::signing::Signing;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/records/",
                $name,
                ".hex"
            )),
        )
    };
}

fn unhex(name: &str, hex: &str) -> Vec<u8> {
    let hex = hex.trim();
    assert!(hex.len() % 2 == 0, "{name}: odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes the fixture, checks it is `expected`, and (when `same_bytes`)
/// that `expected` encodes to the fixture's bytes.
fn pin<T: Record + PartialEq + std::fmt::Debug>(
    (name, text): (&str, &str),
    expected: T,
    same_bytes: bool,
) {
    let bytes = unhex(name, text);
    let decoded: T = codec::decode(name_of::<T>(), &bytes)
        .unwrap_or_else(|e| panic!("{name}: the stored bytes no longer decode: {e}"));
    assert_eq!(decoded, expected, "{name}: decodes to different fields");
    if same_bytes {
        assert_eq!(
            hex(&codec::encode(&expected)),
            hex(&bytes),
            "{name}: encodes to different bytes"
        );
    }
}

fn name_of<T>() -> &'static str {
    std::any::type_name::<T>()
}

fn endpoint(
    format: impl Into<Format>,
    signing: Signing,
    success: SuccessPolicy,
    full: bool,
) -> EndpointRecord {
    EndpointRecord {
        name: "orders".into(),
        url: "https://hooks.example.com/in?x=1".into(),
        events: vec!["lead.*".into(), "order.paid".into()],
        secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        headers: if full {
            vec![("X-Tenant".into(), "acme".into())]
        } else {
            vec![]
        },
        format: format.into(),
        signing,
        attribute_filters: if full {
            vec![("tenant".into(), vec!["acme".into(), "globex".into()])]
        } else {
            vec![]
        },
        settings: Overrides {
            max_attempts: full.then_some(7),
            retry_delays: full.then(|| {
                [1_000, 60_000, 3_600_000]
                    .map(Duration::from_millis)
                    .to_vec()
            }),
            timeout: full.then_some(Duration::from_millis(15_000)),
            concurrency: full.then_some(4),
            rate_limit: None,
            success,
            ordered: full,
            pause_after: if full { Some(Some(50)) } else { Some(None) },
        },
        previous_secrets: if full {
            vec![("whsec_b2xkIHNlY3JldA==".into(), 1_700_000_300_000)]
        } else {
            vec![]
        },
        created_ms: 1_700_000_000_123,
    }
}

#[test]
fn endpoint_records_of_every_format_signing_and_policy() {
    use crate::formats::presets::{Grow, GrowthX, LeadCrm, Snitcher};
    use Format::*;
    let cases = [
        (
            fixture!("endpoint_standard"),
            endpoint(
                Standard,
                Signing::StandardWebhooks,
                SuccessPolicy::Any2xx,
                true,
            ),
        ),
        (
            fixture!("endpoint_growthx"),
            endpoint(
                GrowthX::new("ops@acme.example"),
                Signing::HmacSha256Hex {
                    header: "Signature".into(),
                },
                SuccessPolicy::Exactly200,
                false,
            ),
        ),
        (
            fixture!("endpoint_leadcrm"),
            endpoint(
                LeadCrm::new("space-42"),
                Signing::SecretInBody,
                SuccessPolicy::Any2xx,
                true,
            ),
        ),
        (
            fixture!("endpoint_snitcher"),
            endpoint(
                Snitcher,
                Signing::SecretHeader {
                    header: "X-Webhook-Secret".into(),
                },
                SuccessPolicy::Any2xx,
                false,
            ),
        ),
        (
            fixture!("endpoint_grow"),
            endpoint(Grow, Signing::None, SuccessPolicy::Exactly200, false),
        ),
        (
            fixture!("endpoint_raw"),
            endpoint(Raw, Signing::StandardWebhooks, SuccessPolicy::Any2xx, false),
        ),
        (
            fixture!("endpoint_custom"),
            endpoint(
                Custom("crm-v2".into()),
                Signing::None,
                SuccessPolicy::Any2xx,
                false,
            ),
        ),
    ];
    // Written as record version 1: they read as version 2 without a rate
    // limit, and are written back as version 2.
    for (fixture, expected) in cases {
        pin(fixture, expected, false);
    }
}

#[test]
fn version_2_endpoints_keep_the_rate_limit() {
    let mut expected = endpoint(
        Format::Standard,
        Signing::StandardWebhooks,
        SuccessPolicy::Any2xx,
        true,
    );
    expected.settings.rate_limit = NonZeroU32::new(50);
    if std::env::var_os("HOOKBUS_WRITE_FIXTURE").is_some() {
        println!("{}", hex(&codec::encode(&expected)));
    }
    pin(fixture!("endpoint_rate_limited.v2"), expected, true);
}

#[test]
fn endpoint_states_of_every_mode_and_pause_reason() {
    let state = |mode| EndpointStateRecord {
        mode,
        consecutive_failed_attempts: 3,
        consecutive_failed_deliveries: 300,
        last_success_ms: Some(1_700_000_100_000),
        last_failure_ms: None,
    };
    let paused = |reason| Mode::Paused {
        reason,
        since_ms: 1_700_000_200_000,
    };
    pin(fixture!("state_active"), state(Mode::Active), true);
    pin(fixture!("state_disabled"), state(Mode::Disabled), true);
    pin(
        fixture!("state_paused_manual"),
        state(paused(PauseReason::Manual)),
        true,
    );
    pin(
        fixture!("state_paused_failures"),
        state(paused(PauseReason::ConsecutiveFailures(300))),
        true,
    );
    pin(
        fixture!("state_paused_gone"),
        state(paused(PauseReason::Gone)),
        true,
    );
}

fn event_full(occurred_us: u64) -> EventRecord {
    event_in(occurred_us, None)
}

fn event_in(occurred_us: u64, tenant: Option<&str>) -> EventRecord {
    EventRecord {
        event_type: "lead.create".into(),
        payload: br#"{"id":42,"name":"Ada"}"#.to_vec(),
        occurred_us,
        attributes: vec![("tenant".into(), "acme".into())],
        targets: vec![1, 70_000, u64::MAX],
        created_ms: 1_737_736_240_001,
        idempotency_key: Some("order-1001".into()),
        tenant: tenant.map(String::from),
    }
}

#[test]
fn version_1_events_read_with_millisecond_times() {
    // Written in milliseconds; read as the same instant in microseconds.
    // Encoding now writes version 2, so the bytes are not compared.
    pin(
        fixture!("event_full"),
        event_full(1_737_736_239_698_000),
        false,
    );
    pin(
        fixture!("event_minimal"),
        EventRecord {
            event_type: "a".into(),
            payload: b"null".to_vec(),
            occurred_us: 0,
            attributes: vec![],
            targets: vec![],
            created_ms: 5,
            idempotency_key: None,
            tenant: None,
        },
        false,
    );
}

#[test]
fn version_2_events_keep_microseconds() {
    // Read as the default tenant's; encoding now writes version 3.
    pin(
        fixture!("event_full.v2"),
        event_full(1_737_736_239_698_042),
        false,
    );
}

#[test]
fn version_3_events_carry_their_tenant() {
    pin(
        fixture!("event_full.v3"),
        event_in(1_737_736_239_698_042, Some("acme-42")),
        true,
    );
    pin(
        fixture!("event_default_tenant.v3"),
        event_full(1_737_736_239_698_042),
        true,
    );
    let bytes = codec::encode(&event_full(1));
    assert_eq!(bytes[0], 3, "events are written as record version 3");
}

#[test]
fn tenant_records() {
    use crate::store::tenants::{CancelledRecord, TenantRecord, TombstoneRecord};
    pin(
        fixture!("tenant"),
        TenantRecord {
            display_name: Some("Acme Inc.".into()),
            labels: vec![("plan".into(), "pro".into())],
            updated_ms: 1_737_736_240_001,
        },
        true,
    );
    pin(
        fixture!("tenant_deletion"),
        TombstoneRecord {
            tenant: "acme-42".into(),
            endpoints: vec![3, 70_000],
            from: Some(0x0194_9b2c_1e52_7f3a_9c41_0000_0000_002a),
            deleted_ms: 1_737_736_240_001,
        },
        true,
    );
    pin(
        fixture!("cancelled"),
        CancelledRecord {
            created_ms: 1_737_736_239_698,
            cancelled_ms: 1_737_736_240_001,
            attempts: 2,
        },
        true,
    );
}

#[test]
fn deliveries_of_every_state() {
    let delivery = |state, manual: bool| DeliveryRecord {
        state,
        created_ms: 1_700_000_000_123,
        updated_ms: 1_700_000_060_456,
        round_start: if manual { 4 } else { 1 },
        manual,
    };
    pin(
        fixture!("delivery_waiting"),
        delivery(
            DeliveryState::Waiting {
                next_attempt: 2,
                due_ms: 1_700_000_065_000,
            },
            false,
        ),
        true,
    );
    pin(
        fixture!("delivery_in_flight"),
        delivery(DeliveryState::InFlight { attempt: 3 }, false),
        true,
    );
    pin(
        fixture!("delivery_delivered"),
        delivery(DeliveryState::Delivered { attempts: 5 }, true),
        true,
    );
    pin(
        fixture!("delivery_failed"),
        delivery(DeliveryState::Failed { attempts: 260 }, false),
        true,
    );
}

#[test]
fn attempts_and_idempotency_keys() {
    // Written as record version 1: they read as version 2 with no request
    // and no response headers, and are written back as version 2.
    pin(
        fixture!("attempt_delivered"),
        AttemptRecord {
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
            request_headers: vec![],
            request_body: vec![],
            request_truncated: false,
            response_headers: vec![],
        },
        false,
    );
    pin(
        fixture!("attempt_failed"),
        AttemptRecord {
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
            request_headers: vec![],
            request_body: vec![],
            request_truncated: false,
            response_headers: vec![],
        },
        false,
    );
    pin(
        fixture!("idempotency"),
        IdempotencyRecord {
            event: 0x0194_9b2c_1e52_7f3a_9c41_0000_0000_002a,
            created_ms: 1_737_736_240_001,
        },
        true,
    );
}

#[test]
fn version_2_attempts_keep_the_request_and_response_headers() {
    let expected = AttemptRecord {
        endpoint: 7,
        event: 0x0194_9b2c_1e52_7f3a_9c41_0000_0000_002a,
        attempt: 2,
        manual: false,
        started_ms: 1_700_000_000_500,
        duration_us: 12_345,
        status: Some(503),
        succeeded: false,
        error_kind: Some(6),
        error_message: Some("status 503".into()),
        response_body: b"busy".to_vec(),
        response_truncated: false,
        request_headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-signature".into(), "[redacted]".into()),
        ],
        request_body: br#"{"id":42}"#.to_vec(),
        request_truncated: true,
        response_headers: vec![("retry-after".into(), "30".into())],
    };
    if std::env::var_os("HOOKBUS_WRITE_FIXTURE").is_some() {
        println!("{}", hex(&codec::encode(&expected)));
    }
    pin(fixture!("attempt_with_request.v2"), expected, true);
}

#[test]
fn an_unknown_tag_is_a_corrupt_record_not_another_variant() {
    // state_paused_gone with the pause reason's tag (2, Gone) changed to a
    // tag no build has used, then the mode's tag (2, Paused) likewise.
    let (name, text) = fixture!("state_paused_gone");
    let good = unhex(name, text);
    // Version byte, then the mode tag, then the reason tag.
    assert_eq!(&good[..3], &[1, 2, 2]);
    for at in [1, 2] {
        let mut bad = good.clone();
        bad[at] = 9;
        let err = codec::decode::<EndpointStateRecord>("endpoint state", &bad).unwrap_err();
        assert!(
            matches!(err, crate::Error::Corrupt { ref detail, .. } if detail.contains("unknown")),
            "{err}"
        );
    }
}

#[test]
fn every_tag_is_the_documented_one() {
    // The tag of each variant is the byte after the version byte of a
    // record that starts with it: a delivery record starts with its state.
    let tag = |state| codec::encode(&DeliveryRecord::implied(0).with_state(state))[1];
    assert_eq!(
        tag(DeliveryState::Waiting {
            next_attempt: 1,
            due_ms: 0
        }),
        0
    );
    assert_eq!(tag(DeliveryState::InFlight { attempt: 1 }), 1);
    assert_eq!(tag(DeliveryState::Delivered { attempts: 1 }), 2);
    assert_eq!(tag(DeliveryState::Failed { attempts: 1 }), 3);
    let mode = |mode| {
        codec::encode(&EndpointStateRecord {
            mode,
            ..EndpointStateRecord::default()
        })[1..]
            .to_vec()
    };
    assert_eq!(mode(Mode::Active)[0], 0);
    assert_eq!(mode(Mode::Disabled)[0], 1);
    for (reason, t) in [
        (PauseReason::Manual, 0),
        (PauseReason::ConsecutiveFailures(1), 1),
        (PauseReason::Gone, 2),
    ] {
        assert_eq!(
            mode(Mode::Paused {
                reason,
                since_ms: 0
            })[..2],
            [2, t]
        );
    }
}

impl DeliveryRecord {
    fn with_state(mut self, state: DeliveryState) -> Self {
        self.state = state;
        self
    }
}
