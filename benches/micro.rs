//! Micro-benchmarks (criterion) of the CPU work around each publish and each
//! delivery attempt: signing, verifying, envelope building, event filters,
//! record encoding, payload validation.
//!
//! ```text
//! cargo bench --bench micro
//! cargo bench --bench micro -- envelope      # one group
//! ```
//!
//! Public API where it reaches (`hookbus::signing`, `hookbus::verify`,
//! `Event`, `EventId`); the rest goes through `hookbus::fuzz_api`, the
//! doc-hidden wrappers over the internals (not covered by semver).
//! `fuzz_api::filter_matches` compiles the endpoint's patterns before
//! matching, as `add_endpoint` does, so the filter numbers are compile +
//! match; publish only pays the match, once per endpoint.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hookbus::fuzz_api::{self, EventFields, RecordFields, KIND_EVENT};
use hookbus::verify::Verifier;
use hookbus::{Event, EventId, Signing};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const MSG_ID: &str = "evt_01JD2Z3X4Y5W6V7T8S9R0QPNMK";
const TIMESTAMP: u64 = 1_700_000_000;

/// A 1 KiB JSON payload, like the scenario benchmarks'.
fn payload() -> Vec<u8> {
    let head = r#"{"lead_id":4242,"name":"Ada Lovelace","email":"ada@example.com","source":"bench","note":""#;
    let tail = r#""}"#;
    let pad = 1024 - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

/// The body hookbus sends for that payload (standard envelope).
fn body() -> Vec<u8> {
    fuzz_api::build_envelope(0, "", &payload(), "lead.create", 1).expect("envelope")
}

fn signing(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("standard_webhooks_1KiB", |b| {
        b.iter(|| {
            hookbus::signing::sign_standard(
                black_box(SECRET),
                black_box(MSG_ID),
                TIMESTAMP,
                black_box(&body),
            )
            .expect("sign")
        })
    });
    // What the sender does per attempt: the key is decoded once per route,
    // then headers are built (fuzz_api::sign decodes the key each call).
    let secrets = vec![SECRET.to_string()];
    g.bench_function("headers_standard_1KiB_with_key_decode", |b| {
        b.iter(|| fuzz_api::sign(0, black_box(&secrets), MSG_ID, TIMESTAMP, black_box(&body)))
    });
    g.bench_function("headers_hmac_hex_1KiB_with_key_decode", |b| {
        b.iter(|| fuzz_api::sign(1, black_box(&secrets), MSG_ID, TIMESTAMP, black_box(&body)))
    });
    g.finish();
}

fn verifying(c: &mut Criterion) {
    let body = body();
    let now = UNIX_EPOCH + Duration::from_secs(TIMESTAMP);
    let signature =
        hookbus::signing::sign_standard(SECRET, MSG_ID, TIMESTAMP, &body).expect("sign");
    let ts = TIMESTAMP.to_string();
    let headers = [
        ("webhook-id", MSG_ID),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let verifier = Verifier::new(Signing::StandardWebhooks)
        .secret(SECRET)
        .now(now);
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("standard_webhooks_1KiB", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(headers), black_box(&body))
                .expect("valid")
        })
    });
    let secrets = vec![SECRET.to_string()];
    let hex = fuzz_api::sign(1, &secrets, MSG_ID, TIMESTAMP, &body).expect("sign hex");
    g.bench_function("hmac_hex_1KiB", |b| {
        b.iter(|| fuzz_api::verify_at(1, black_box(&secrets), &hex, black_box(&body), TIMESTAMP))
    });
    g.finish();
}

fn envelopes(c: &mut Criterion) {
    let payload = payload();
    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    for (format, name) in [
        (0u8, "standard"),
        (1, "growth_x"),
        (2, "lead_crm"),
        (3, "snitcher"),
        (4, "grow_flatten"),
        (5, "raw"),
    ] {
        g.bench_function(format!("{name}_1KiB"), |b| {
            b.iter(|| {
                fuzz_api::build_envelope(
                    format,
                    "client@growth-x.com",
                    black_box(&payload),
                    "lead.create",
                    1,
                )
                .expect("envelope")
            })
        });
    }
    g.finish();
}

fn filters(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter_compile_and_match");
    let exact = vec!["lead.create".to_string()];
    let prefixes = vec![
        "connection.*".to_string(),
        "message.*".to_string(),
        "tag.*".to_string(),
        "lead.*".to_string(),
    ];
    let all = vec!["*".to_string()];
    let attrs = vec![(
        "campaignId".to_string(),
        vec!["cmp_1".into(), "cmp_2".into()],
    )];
    let event_attrs = vec![
        ("tenant".to_string(), "t_42".to_string()),
        ("campaignId".to_string(), "cmp_2".to_string()),
    ];
    g.bench_function("exact", |b| {
        b.iter(|| fuzz_api::filter_matches(black_box(&exact), &[], "lead.create", &[]))
    });
    g.bench_function("four_prefixes_last_matches", |b| {
        b.iter(|| fuzz_api::filter_matches(black_box(&prefixes), &[], "lead.create", &[]))
    });
    g.bench_function("wildcard_with_attribute_filter", |b| {
        b.iter(|| {
            fuzz_api::filter_matches(
                black_box(&all),
                &attrs,
                "lead.create",
                black_box(&event_attrs),
            )
        })
    });
    g.finish();
}

fn records(c: &mut Criterion) {
    let fields = RecordFields::Event(EventFields {
        event_type: "lead.create".into(),
        payload: payload(),
        occurred_us: 1_700_000_000_123_000,
        attributes: Vec::new(),
        targets: vec![7],
        created_ms: 1_700_000_000_123,
        idempotency_key: None,
    });
    let bytes = fuzz_api::encode_record(&fields);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode_event_1KiB", |b| {
        b.iter(|| fuzz_api::encode_record(black_box(&fields)))
    });
    g.bench_function("decode_event_1KiB", |b| {
        b.iter(|| fuzz_api::decode_record(KIND_EVENT, black_box(&bytes)))
    });
    g.finish();
}

fn events(c: &mut Criterion) {
    let payload = payload();
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("from_json_bytes_1KiB", |b| {
        b.iter_batched(
            || payload.clone(),
            |p| Event::from_json_bytes("lead.create", p).expect("valid"),
            BatchSize::SmallInput,
        )
    });
    let id = EventId::from_u128(0x0190_0000_0000_0000_0000_0000_0000_002a);
    let text = id.to_string();
    g.bench_function("event_id_to_string", |b| {
        b.iter(|| black_box(id).to_string())
    });
    g.bench_function("event_id_parse", |b| {
        b.iter(|| black_box(text.as_str()).parse::<EventId>().expect("parse"))
    });
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = signing, verifying, envelopes, filters, records, events
}
criterion_main!(micro);
