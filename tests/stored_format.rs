//! A database holding the records of the code before issue 10 (the bytes in
//! tests/fixtures/records/, record version 1, format marker 1) opens with
//! this build and reads back right through the public API; its format
//! marker is raised so that older builds refuse it rather than skip the
//! event records this build writes. Field-by-field decoding of every
//! fixture is pinned by the unit tests in src/store/stored_format.rs.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use hookbus::{
    Bus, DeliveryStatus, EndpointId, EndpointStatus, Envelope, EnvelopeInput, ErrorKind, EventId,
    PauseReason, Trigger,
};

/// The event the fixtures' attempts and idempotency key point to.
const EVENT: u128 = 0x0194_9b2c_1e52_7f3a_9c41_0000_0000_002a;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/records/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Writes the fixtures under the keys hookbus gives them (see
/// src/store/keys.rs), as the old code left them.
fn write_old_database(dir: &std::path::Path) {
    let db = sled::open(dir).unwrap();
    db.insert(b"mformat", &[1u8][..]).unwrap();
    let ev = EVENT.to_be_bytes();
    let ev2 = (EVENT + 1).to_be_bytes();
    let endpoints: [(u64, &str, Option<&str>); 7] = [
        (1, "endpoint_growthx", Some("state_paused_failures")),
        (70_000, "endpoint_standard", Some("state_disabled")),
        (2, "endpoint_leadcrm", Some("state_paused_manual")),
        (3, "endpoint_snitcher", Some("state_paused_gone")),
        (4, "endpoint_grow", Some("state_active")),
        (5, "endpoint_raw", Some("state_paused_manual")),
        (6, "endpoint_custom", Some("state_paused_manual")),
    ];
    for (id, rec, state) in endpoints {
        db.insert(key(b'n', &[&id.to_be_bytes()]), fixture(rec))
            .unwrap();
        if let Some(state) = state {
            db.insert(key(b's', &[&id.to_be_bytes()]), fixture(state))
                .unwrap();
        }
    }
    // Targets 1, 70000 and u64::MAX (an endpoint deleted since).
    db.insert(key(b'e', &[&ev]), fixture("event_full")).unwrap();
    db.insert(key(b'e', &[&ev2]), fixture("event_minimal"))
        .unwrap();
    db.insert(
        key(b'f', &[&1u64.to_be_bytes(), &ev]),
        fixture("delivery_failed"),
    )
    .unwrap();
    db.insert(
        key(b'f', &[&70_000u64.to_be_bytes(), &ev]),
        fixture("delivery_delivered"),
    )
    .unwrap();
    db.insert(
        key(b'p', &[&2u64.to_be_bytes(), &ev2]),
        fixture("delivery_waiting"),
    )
    .unwrap();
    db.insert(
        key(b'p', &[&3u64.to_be_bytes(), &ev2]),
        fixture("delivery_in_flight"),
    )
    .unwrap();
    // The delivered attempt: endpoint 7, the event above, sequence 1. The
    // failed one: endpoint u64::MAX, event u128::MAX, sequence 2.
    for (ep, event, seq, rec) in [
        (7u64, EVENT, 1u64, "attempt_delivered"),
        (u64::MAX, u128::MAX, 2, "attempt_failed"),
    ] {
        db.insert(
            key(b'a', &[&ep.to_be_bytes(), &seq.to_be_bytes()]),
            fixture(rec),
        )
        .unwrap();
        db.insert(
            key(b'x', &[&event.to_be_bytes(), &seq.to_be_bytes()]),
            &ep.to_be_bytes()[..],
        )
        .unwrap();
        db.insert(key(b'g', &[&seq.to_be_bytes()]), &ep.to_be_bytes()[..])
            .unwrap();
    }
    db.insert(key(b'k', &[b"order-1001"]), fixture("idempotency"))
        .unwrap();
    db.flush().unwrap();
}

/// The envelope the custom-format fixture names.
struct CrmV2;

impl Envelope for CrmV2 {
    fn build(&self, input: &EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
        Ok(input.payload.to_vec())
    }
}

#[test]
fn a_database_written_before_the_stable_format_opens_and_reads_back() {
    if common::skip_on_postgres("sled's on-disk record format") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_old_database(dir.path());
    let open = || {
        Bus::builder(dir.path())
            .envelope("crm-v2", CrmV2)
            .open()
            .unwrap()
    };
    let bus = open();
    let report = bus.recovery();
    assert_eq!(report.corrupt_records, 0, "{report:?}");
    assert_eq!(report.endpoints, 7, "{report:?}");
    // The two pending deliveries; the implied one to the deleted endpoint
    // u64::MAX stays stored and unsent.
    assert_eq!(report.resumed, 2, "{report:?}");

    // Endpoints: every format, signing scheme, policy and pause reason.
    let ep = |id| bus.endpoint(EndpointId::from_u64(id)).unwrap();
    let growthx = ep(1);
    assert_eq!(growthx.name(), "orders");
    assert_eq!(growthx.url(), "https://hooks.example.com/in?x=1");
    assert_eq!(growthx.events(), ["lead.*", "order.paid"]);
    assert!(growthx.has_secret());
    assert_eq!(
        growthx.created_at(),
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    );
    assert!(matches!(
        growthx.status(),
        EndpointStatus::Paused {
            reason: PauseReason::ConsecutiveFailures(300),
            since
        } if since == UNIX_EPOCH + Duration::from_millis(1_700_000_200_000)
    ));
    let config = |id| format!("{:?}", ep(id).config());
    let growthx = config(1);
    for part in [
        r#"format: GrowthX { client: "ops@acme.example" }"#,
        r#"signing: HmacSha256Hex { header: "Signature" }"#,
        "success: Exactly200",
        "pause_after: Some(None)",
    ] {
        assert!(growthx.contains(part), "{part} in {growthx}");
    }
    let standard = config(70_000);
    for part in [
        "format: Standard",
        "signing: StandardWebhooks",
        "success: Any2xx",
        "max_attempts: Some(7)",
        "retry_delays: Some([1s, 60s, 3600s])",
        "timeout: Some(15s)",
        "concurrency: Some(4)",
        r#"headers: ["X-Tenant"]"#,
        r#"attribute_filters: [("tenant", ["acme", "globex"])]"#,
        "ordered: true",
        "pause_after: Some(Some(50))",
    ] {
        assert!(standard.contains(part), "{part} in {standard}");
    }
    assert!(ep(70_000).has_secret());
    assert_eq!(ep(70_000).status(), EndpointStatus::Disabled);
    for (id, format, signing) in [
        (2, r#"LeadCrm { id_space: "space-42" }"#, "SecretInBody"),
        (
            3,
            "Snitcher",
            r#"SecretHeader { header: "X-Webhook-Secret" }"#,
        ),
        (4, "Grow", "None"),
        (5, "Raw", "StandardWebhooks"),
        (6, r#"Custom("crm-v2")"#, "None"),
    ] {
        let c = config(id);
        assert!(c.contains(&format!("format: {format},")), "{c}");
        assert!(c.contains(&format!("signing: {signing},")), "{c}");
    }
    assert!(matches!(
        ep(2).status(),
        EndpointStatus::Paused {
            reason: PauseReason::Manual,
            ..
        }
    ));
    assert!(matches!(
        ep(3).status(),
        EndpointStatus::Paused {
            reason: PauseReason::Gone,
            ..
        }
    ));
    assert_eq!(ep(4).status(), EndpointStatus::Active);

    // Events: millisecond times read as the same instant.
    let event = bus.event(EventId::from_u128(EVENT)).unwrap().unwrap();
    assert_eq!(event.event_type, "lead.create");
    assert_eq!(event.payload, br#"{"id":42,"name":"Ada"}"#);
    assert_eq!(
        event.occurred_at,
        UNIX_EPOCH + Duration::from_millis(1_737_736_239_698)
    );
    assert_eq!(event.attributes, [("tenant".into(), "acme".into())]);
    let minimal = bus.event(EventId::from_u128(EVENT + 1)).unwrap().unwrap();
    assert_eq!(minimal.occurred_at, UNIX_EPOCH);

    // Deliveries in every state.
    let delivery = |ep: u64, ev: u128| {
        bus.delivery(EndpointId::from_u64(ep), EventId::from_u128(ev))
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        delivery(1, EVENT).status,
        DeliveryStatus::Failed { attempts: 260 }
    );
    let delivered = delivery(70_000, EVENT);
    assert_eq!(delivered.status, DeliveryStatus::Delivered { attempts: 5 });
    assert!(delivered.manual);
    assert_eq!(
        delivered.updated_at,
        UNIX_EPOCH + Duration::from_millis(1_700_000_060_456)
    );
    assert_eq!(
        delivery(2, EVENT + 1).status,
        DeliveryStatus::Queued {
            next_attempt: 2,
            due: UNIX_EPOCH + Duration::from_millis(1_700_000_065_000)
        }
    );
    assert_eq!(
        delivery(3, EVENT + 1).status,
        DeliveryStatus::InFlight { attempt: 3 }
    );

    // The delivery log.
    let attempts = bus.attempts(EventId::from_u128(EVENT)).unwrap();
    assert_eq!(attempts.len(), 1);
    let a = &attempts[0];
    assert_eq!(a.endpoint, EndpointId::from_u64(7));
    assert_eq!(a.number, 1);
    assert_eq!(a.trigger, Trigger::Scheduled);
    assert_eq!(a.duration, Duration::from_micros(12_345));
    assert_eq!(a.status, Some(200));
    assert!(a.succeeded);
    assert_eq!(a.response_body, b"ok");
    // Recorded before attempts kept their request: none to show.
    assert!(a.request_headers.is_empty() && a.request_body.is_empty());
    assert!(a.response_headers.is_empty());
    let failed = &bus.attempts(EventId::from_u128(u128::MAX)).unwrap()[0];
    assert_eq!(failed.trigger, Trigger::Manual);
    assert_eq!(failed.status, None);
    // Kind code 3, stored by its explicit code.
    assert_eq!(failed.error, Some(ErrorKind::Dns));
    assert_eq!(failed.error_message.as_deref(), Some("connection refused"));
    assert_eq!(failed.response_body, [0, 159, 146, 150]);
    assert!(failed.response_truncated);

    bus.shutdown().unwrap();
    drop(bus);

    // The marker was raised, and the database opens again as format 2.
    {
        let db = sled::open(dir.path()).unwrap();
        assert_eq!(db.get(b"mformat").unwrap().unwrap().as_ref(), [2]);
    }
    // sled's own threads let go of the file lock a moment after its last
    // handle is dropped: wait for that, nothing else.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let bus = loop {
        match Bus::builder(dir.path()).envelope("crm-v2", CrmV2).open() {
            Ok(bus) => break bus,
            Err(hookbus::Error::AlreadyOpen(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("reopening: {e:?}"),
        }
    };
    assert_eq!(bus.recovery().corrupt_records, 0);
    assert!(bus.event(EventId::from_u128(EVENT)).unwrap().is_some());
}

#[test]
fn a_newer_format_is_refused_not_misread() {
    if common::skip_on_postgres("sled's on-disk format version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    Bus::open(dir.path()).unwrap().shutdown().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"mformat", &[3u8][..]).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Bus::open(dir.path()),
        Err(hookbus::Error::IncompatibleFormat {
            found: 3,
            supported: 2
        })
    ));
}
