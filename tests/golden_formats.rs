//! Guards the product formats: publishing each seed document's own example
//! through its format yields a body that parses to the document's JSON, with
//! the headers the document describes.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{fast_bus, Receiver, Reply, WAIT};
use hmac::{KeyInit, Mac};
use hookbus::presets::{Grow, GrowthX, LeadCrm, Snitcher};
use hookbus::{EndpointConfig, Event, Format, Signing, SuccessPolicy};
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn growth_x_connection_created() {
    let doc = fixture("growthx_connection_created.json");
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("growth-x", rx.url("/gx"))
            .events([
                "connection.created",
                "connection.updated",
                "message.created",
                "tag.*",
            ])
            .format(GrowthX::new("client@growth-x.com")),
    )
    .unwrap();
    // The example's occured_at: 2025-01-24 16:30:39.698 UTC.
    let at = UNIX_EPOCH + Duration::from_millis(1_737_736_239_698);
    bus.publish(
        Event::new("connection.created", &doc["data"])
            .unwrap()
            .occurred_at(at),
    )
    .unwrap();

    let body = rx.wait_for("/gx", 1, WAIT)[0].json();
    // The document's example with the schema's spelling of its two keys,
    // and occurred_at in the schema's microsecond format.
    let mut expected = doc.clone();
    let obj = expected.as_object_mut().unwrap();
    let client = obj.remove("clinet").unwrap();
    obj.insert("client".into(), client);
    obj.remove("occured_at").unwrap();
    obj.insert("occurred_at".into(), json!("2025-01-24 16:30:39.698000"));
    assert_eq!(body, expected);
}

#[test]
fn growth_x_attempt_number_is_in_the_body_and_changes_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, nth| Reply::Status(if nth < 2 { 500 } else { 200 }));
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("growth-x", rx.url("/gx"))
            .format(GrowthX::new("c@x.com"))
            .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    )
    .unwrap();
    bus.publish(Event::new("tag.attached", &json!({"id": 1})).unwrap())
        .unwrap();
    let got = rx.wait_for("/gx", 3, WAIT);
    let numbers: Vec<u64> = got
        .iter()
        .map(|r| r.json()["attempt_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(got[0].json()["data_type"], "tag");
    // Each body differs, so each attempt carries its own signature.
    let sigs: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-signature").unwrap())
        .collect();
    assert!(sigs[0] != sigs[1] && sigs[1] != sigs[2]);
}

#[test]
fn lead_crm_secret_in_body() {
    let doc = fixture("leadcrm_lead_create.json");
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("crm", rx.url("/crm"))
            .events(["lead.*", "campaign.*", "list.*", "status.*", "tag.*"])
            .format(LeadCrm::new(doc["id_space"].as_str().unwrap()))
            .secret(doc["secret"].as_str().unwrap())
            .signing(Signing::SecretInBody)
            .max_attempts(1),
    )
    .unwrap();
    bus.publish(Event::new("lead.create", &doc["payload"]).unwrap())
        .unwrap();
    let req = &rx.wait_for("/crm", 1, WAIT)[0];
    assert_eq!(req.json(), doc);
    assert_eq!(req.header("webhook-signature"), None);
    hookbus::verify::Verifier::new(Signing::SecretInBody)
        .secret("wh_a46f35f22d9723a")
        .verify([], &req.body)
        .unwrap();
}

#[test]
fn snitcher_body_and_signature_header() {
    let doc = fixture("snitcher_new_lead.json");
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("snitcher", rx.url("/sn"))
            .events(["new_lead", "new_session", "contact_revealed"])
            .format(Snitcher)
            .secret("snitcher-secret")
            .signing(Signing::HmacSha256Hex {
                header: "Signature".into(),
            }),
    )
    .unwrap();
    bus.publish(Event::new("new_lead", &doc["subjects"]).unwrap())
        .unwrap();
    let req = &rx.wait_for("/sn", 1, WAIT)[0];
    assert_eq!(req.json(), doc);
    // Recompute the documented signature independently: hex HMAC-SHA256
    // of the raw body with the secret.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"snitcher-secret").unwrap();
    mac.update(&req.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(req.header("Signature"), Some(expected.as_str()));
}

#[test]
fn grow_flat_contact_and_exactly_200() {
    let doc = fixture("grow_contact.json");
    let dir = tempfile::tempdir().unwrap();
    // 201 is a 2xx, but Grow retries anything that is not 200.
    let rx = Receiver::start(|_, nth| Reply::Status(if nth < 2 { 201 } else { 200 }));
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("grow", rx.url("/grow"))
                .events(["contact.subscribed", "contact.unsubscribed"])
                .format(Grow)
                .success(SuccessPolicy::Exactly200),
        )
        .unwrap();
    let id = bus
        .publish(Event::new("contact.subscribed", &doc).unwrap())
        .unwrap();
    let got = rx.wait_for("/grow", 3, WAIT);
    assert_eq!(got[0].json(), doc);
    common::eventually(WAIT, "delivered on the 200", || {
        matches!(
            bus.delivery(ep.id(), id).unwrap().unwrap().status,
            hookbus::DeliveryStatus::Delivered { attempts: 3 }
        )
    });
    let log = bus.attempts(id).unwrap();
    assert_eq!(log[0].status, Some(201));
    assert!(!log[0].succeeded);
}

#[test]
fn genesy_secret_header_and_campaign_filter() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(
        EndpointConfig::new("genesy", rx.url("/genesy"))
            .events(["CONNECTION_REQUEST_SENT", "MESSAGE_REPLIED"])
            .secret("my-genesy-secret")
            .signing(Signing::SecretHeader {
                header: "X-Webhook-Secret".into(),
            })
            .filter_attribute("campaignId", ["cmp_1", "cmp_2"])
            .retry_delays([
                Duration::from_secs(30),
                Duration::from_secs(300),
                Duration::from_secs(3000),
            ]),
    )
    .unwrap();
    let publish = |t: &str, campaign: &str| {
        bus.publish(
            Event::new(t, &json!({"contact": {"id": 7}, "campaignId": campaign}))
                .unwrap()
                .attribute("campaignId", campaign),
        )
        .unwrap()
    };
    let wanted = publish("CONNECTION_REQUEST_SENT", "cmp_2");
    publish("CONNECTION_REQUEST_SENT", "cmp_9"); // another campaign
    publish("POST_LIKED", "cmp_1"); // not subscribed
    let last = publish("MESSAGE_REPLIED", "cmp_1");
    let got = rx.wait_for("/genesy", 2, WAIT);
    bus.shutdown().unwrap();
    assert_eq!(rx.requests().len(), 2);
    // Two senders run in parallel: either may arrive first.
    let mut ids: Vec<String> = got.iter().map(|r| r.webhook_id()).collect();
    ids.sort();
    assert_eq!(ids, [wanted.to_string(), last.to_string()]);
    for r in &got {
        assert_eq!(r.header("x-webhook-secret"), Some("my-genesy-secret"));
        assert_eq!(r.header("webhook-signature"), None);
    }
}

#[test]
fn raw_format_sends_the_payload_with_metadata_headers() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    bus.add_endpoint(EndpointConfig::new("raw", rx.url("/raw")).format(Format::Raw))
        .unwrap();
    let id = bus
        .publish(Event::from_json_bytes("a.b", br#"{"exact":  "bytes"}"#.to_vec()).unwrap())
        .unwrap();
    let req = &rx.wait_for("/raw", 1, WAIT)[0];
    assert_eq!(req.body, br#"{"exact":  "bytes"}"#);
    assert_eq!(req.header("webhook-id"), Some(id.to_string().as_str()));
    assert_eq!(req.header("webhook-event-type"), Some("a.b"));
    assert_eq!(req.header("webhook-attempt"), Some("1"));
    assert!(req.header("webhook-occurred-at").is_some());
}

#[test]
fn custom_envelope_builds_the_body() {
    struct Tagged;
    impl hookbus::Envelope for Tagged {
        fn build(&self, input: &hookbus::EnvelopeInput<'_>) -> Result<Vec<u8>, String> {
            let data: Value = serde_json::from_slice(input.payload).map_err(|e| e.to_string())?;
            Ok(serde_json::to_vec(&json!({
                "kind": input.event_type,
                "try": input.attempt,
                "endpoint": input.endpoint.to_string(),
                "body": data,
            }))
            .unwrap())
        }
        fn content_type(&self) -> &str {
            "application/vnd.acme+json"
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .envelope("acme", Tagged)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("c", rx.url("/c")).format(Format::Custom("acme".into())))
        .unwrap();
    bus.publish(Event::new("a.b", &json!([1])).unwrap())
        .unwrap();
    let req = &rx.wait_for("/c", 1, WAIT)[0];
    assert_eq!(
        req.header("content-type"),
        Some("application/vnd.acme+json")
    );
    assert_eq!(
        req.json(),
        json!({"kind": "a.b", "try": 1, "endpoint": ep.id().to_string(), "body": [1]})
    );
}
