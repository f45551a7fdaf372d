//! Guards decoding of damaged records: a stored record that fails to decode
//! is reported (counted in the recovery report) and skipped, never a panic,
//! and the rest of the database keeps working.

mod common;

use common::{fast_bus, Receiver, WAIT};
use hookbus::{EndpointConfig, Event};
use serde_json::json;

#[test]
fn undecodable_records_are_reported_and_skipped() {
    if common::skip_on_postgres("damages records inside sled's trees") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let good_event = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let ep = bus
            .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
            .unwrap();
        bus.pause_endpoint(ep.id()).unwrap();
        let id = bus.publish(Event::new("a.b", &json!(1)).unwrap()).unwrap();
        bus.shutdown().unwrap();
        drop(bus);
        id
    };
    // Damage records behind hookbus's back, the way a bad disk would: an
    // endpoint record, an event record and a pending delivery whose bytes
    // are garbage, with keys laid out as hookbus lays them out.
    {
        let db = sled::open(dir.path()).unwrap();
        let mut endpoint_key = vec![b'n'];
        endpoint_key.extend_from_slice(&u64::MAX.to_be_bytes());
        db.insert(endpoint_key, &[1, 0xff, 0xfe][..]).unwrap();
        let mut event_key = vec![b'e'];
        event_key.extend_from_slice(&(good_event.as_u128() + 1).to_be_bytes());
        db.insert(event_key, &[7u8; 40][..]).unwrap();
        let mut pending_key = vec![b'p'];
        pending_key.extend_from_slice(&1u64.to_be_bytes());
        pending_key.extend_from_slice(&5u128.to_be_bytes());
        db.insert(pending_key, &[1u8][..]).unwrap();
        db.flush().unwrap();
    }
    let bus = fast_bus(dir.path()).open().unwrap();
    let report = bus.recovery();
    assert!(report.corrupt_records >= 2, "{report:?}");
    assert_eq!(report.endpoints, 1, "the good endpoint still loads");
    // The good event is still delivered once the endpoint resumes.
    let ep = bus.endpoints(None, usize::MAX).items.pop().unwrap();
    bus.resume_endpoint(ep.id()).unwrap();
    let got = rx.wait_for("/ep", 1, WAIT);
    assert_eq!(got[0].webhook_id(), good_event.to_string());
    // Reading the damaged event is an error, not a panic.
    let damaged = hookbus::EventId::from_u128(good_event.as_u128() + 1);
    assert!(matches!(
        bus.event(damaged),
        Err(hookbus::Error::Corrupt { .. })
    ));
}
