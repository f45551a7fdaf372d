//! Guards upgrades: a database written by an earlier released format
//! (tests/fixtures/upgrade-v1, made by the program beside it with the code
//! of commit 248484b) opens with today's code and keeps every endpoint,
//! every queued, retrying and failed delivery and the delivery log; the
//! queued deliveries then go out.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{eventually, Receiver, WAIT};
use hookbus::presets::LeadCrm;
use hookbus::{
    Bus, DeliveryStatus, EndpointConfig, EndpointId, EndpointStatus, Event, EventId, Signing,
    TenantId,
};
use serde_json::json;

const HEALTHY: u64 = 0;
const EXHAUSTED: u64 = 1;
const RETRYING: u64 = 2;
const PAUSED: u64 = 3;
const DISABLED: u64 = 4;

const DELIVERED: [&str; 3] = [
    "evt_01M8MA3FZN8WQ4HTJPF94S1FER",
    "evt_01M8MA3FZP42JZZEW7K6T5AGT3",
    "evt_01M8MA3FZSC0XZ35ZVNJ8K7HWM",
];
const MIXED: &str = "evt_01M8MA3FZVDXVRY5RKGKTASRQV";
const QUEUED: [&str; 4] = [
    "evt_01M8MA3FZVDXVRY5RKGKTASRQW",
    "evt_01M8MA3FZW06EV4HP6QYEF615G",
    "evt_01M8MA3FZW06EV4HP6QYEF615H",
    "evt_01M8MA3FZW06EV4HP6QYEF615J",
];
const GROW: &str = "evt_01M8MA3FZX58X9TWN55QPGRNM3";

fn ev(s: &str) -> EventId {
    s.parse().expect("fixture event id")
}

fn ep(n: u64) -> EndpointId {
    EndpointId::from_u64(n)
}

/// A writable copy of the fixture (sled writes on open).
fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade-v1/db");
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        // Only files are committed (sled recreates its empty blobs/ dir).
        assert!(entry.file_type().unwrap().is_file(), "flat fixture");
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn status(bus: &Bus, endpoint: u64, event: &str) -> Option<DeliveryStatus> {
    bus.delivery(ep(endpoint), ev(event))
        .unwrap()
        .map(|d| d.status)
}

#[test]
fn a_database_of_the_earlier_format_keeps_everything() {
    if common::skip_on_postgres("a sled database fixture of the earlier format") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let bus = common::fast_bus(dir.path()).open().unwrap();
    let report = bus.recovery();
    assert_eq!(report.endpoints, 5);
    assert_eq!(report.corrupt_records, 0);

    let names: Vec<String> = bus
        .endpoints(None, 100)
        .items
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(
        names,
        ["healthy", "exhausted", "retrying", "paused", "disabled"]
    );
    // Databases from before tenants put every endpoint in the default one.
    assert!(bus
        .endpoints(None, 100)
        .items
        .iter()
        .all(|e| e.tenant().is_default()));
    assert_eq!(bus.tenant_endpoints(&TenantId::default_tenant()).len(), 5);
    assert_eq!(bus.tenants(None, 10).unwrap().tenants.len(), 1);
    // Events stored before tenants read as the default tenant's.
    for e in DELIVERED.iter().chain([&MIXED, &GROW]).chain(QUEUED.iter()) {
        let stored = bus.event(ev(e)).unwrap().expect("event kept");
        assert!(stored.tenant.is_default(), "{e}");
    }
    let healthy = bus.endpoint(ep(HEALTHY)).unwrap();
    assert_eq!(healthy.events(), ["lead.*"]);
    assert!(healthy.has_secret());
    assert!(bus.endpoint(ep(PAUSED)).unwrap().is_paused());
    assert_eq!(
        bus.endpoint(ep(DISABLED)).unwrap().status(),
        EndpointStatus::Disabled
    );

    // Delivered, with their logs.
    for e in DELIVERED.iter().chain([&MIXED]) {
        assert!(
            matches!(
                status(&bus, HEALTHY, e),
                Some(DeliveryStatus::Delivered { attempts: 1 })
            ),
            "{e}"
        );
    }
    // The first also reached `paused` before its pause; the other two
    // wait there.
    assert_eq!(bus.attempts(ev(DELIVERED[0])).unwrap().len(), 2);
    assert!(matches!(
        status(&bus, PAUSED, DELIVERED[0]),
        Some(DeliveryStatus::Delivered { attempts: 1 })
    ));
    for e in &DELIVERED[1..] {
        assert_eq!(bus.attempts(ev(e)).unwrap().len(), 1, "{e}");
    }
    assert!(matches!(
        status(&bus, DISABLED, GROW),
        Some(DeliveryStatus::Delivered { attempts: 1 })
    ));
    // Exhausted: failed after 2 attempts, both logged.
    assert!(matches!(
        status(&bus, EXHAUSTED, MIXED),
        Some(DeliveryStatus::Failed { attempts: 2 })
    ));
    let mixed_log = bus.attempts(ev(MIXED)).unwrap();
    assert_eq!(
        mixed_log
            .iter()
            .filter(|a| a.endpoint == ep(EXHAUSTED))
            .map(|a| (a.number, a.status))
            .collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(500))]
    );
    // Retrying: attempt 2 due in about 30 days, attempt 1 logged.
    match status(&bus, RETRYING, MIXED) {
        Some(DeliveryStatus::Queued {
            next_attempt: 2,
            due,
        }) => {
            let at = bus
                .delivery(ep(RETRYING), ev(MIXED))
                .unwrap()
                .unwrap()
                .updated_at;
            let wait = due.duration_since(at).unwrap();
            assert!(wait > Duration::from_secs(25 * 24 * 3600), "{wait:?}");
        }
        other => panic!("retrying delivery: {other:?}"),
    }
    // Paused: everything published after the pause, never attempted.
    let behind_pause: Vec<&str> = DELIVERED[1..]
        .iter()
        .copied()
        .chain([MIXED])
        .chain(QUEUED)
        .chain([GROW])
        .collect();
    for e in &behind_pause {
        assert!(
            matches!(
                status(&bus, PAUSED, e),
                Some(DeliveryStatus::Queued {
                    next_attempt: 1,
                    ..
                })
            ),
            "{e}"
        );
    }
    assert_eq!(bus.queue_depth(ep(PAUSED)).unwrap(), 8);

    // The queue still goes out, in publish order (the endpoint is ordered),
    // in the lead CRM's envelope.
    let receiver = Receiver::ok();
    let stored = format!("{:?}", bus.endpoint(ep(PAUSED)).unwrap().config());
    for part in [
        "LeadCrm { id_space: \"space-7\" }",
        "SecretInBody",
        "ordered: true",
    ] {
        assert!(stored.contains(part), "{part} in {stored}");
    }
    assert!(!stored.contains("crm-secret"), "secret redacted: {stored}");
    let moved = EndpointConfig::new("paused", receiver.url("/crm"))
        .ordered(true)
        .format(LeadCrm::new("space-7"))
        .signing(Signing::SecretInBody)
        .secret("crm-secret");
    bus.update_endpoint(ep(PAUSED), moved).unwrap();
    bus.resume_endpoint(ep(PAUSED)).unwrap();
    let got = receiver.wait_for("/crm", 8, WAIT);
    let ids: Vec<String> = got.iter().map(|r| r.webhook_id()).collect();
    let expected: Vec<String> = behind_pause.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids, expected);
    let body = got[0].json();
    assert_eq!(body["id_space"], "space-7");
    assert_eq!(body["secret"], "crm-secret");
    eventually(WAIT, "the paused endpoint's queue drained", || {
        bus.queue_depth(ep(PAUSED)).unwrap() == 0
    });

    // Publishing to the default tenant (named or not) reaches them; an
    // event to another tenant does not.
    let unnamed = bus
        .publish(Event::new("lead.create", &json!({})).unwrap())
        .unwrap();
    let named = bus
        .publish(
            Event::new("lead.create", &json!({}))
                .unwrap()
                .tenant(TenantId::default_tenant()),
        )
        .unwrap();
    let got = receiver.wait_for("/crm", 10, WAIT);
    assert_eq!(got[8].webhook_id(), unnamed.to_string());
    assert_eq!(got[9].webhook_id(), named.to_string());
    let elsewhere = bus
        .publish(
            Event::new("lead.create", &json!({}))
                .unwrap()
                .tenant("acme"),
        )
        .unwrap();
    assert!(bus.deliveries(elsewhere).unwrap().is_empty());
    bus.shutdown().unwrap();
}
