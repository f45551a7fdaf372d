//! Text forms: every id and cursor that displays parses back to itself,
//! and only its own form parses.

mod common;

use common::{fast_bus, first_attempt, Receiver, WAIT};
use hookbus::{
    AttemptQuery, Cursor, Delivery, DeliveryFilter, Endpoint, EndpointConfig, EndpointId, Event,
    EventId,
};
use serde_json::json;

#[test]
fn ids_round_trip_through_their_text_form() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("a", rx.url("/a")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();

    let text = ep.id().to_string();
    assert_eq!(text.parse::<EndpointId>(), Ok(ep.id()));
    let text = id.to_string();
    assert_eq!(text.parse::<EventId>(), Ok(id));
    for raw in [0, 1, 10, u64::MAX] {
        let ep = EndpointId::from_u64(raw);
        assert_eq!(ep.to_string().parse::<EndpointId>(), Ok(ep));
    }
    for bad in [
        "",
        "ep_",
        "ep_01",
        "ep_+1",
        "ep_-1",
        "ep_1x",
        "EP_1",
        "1",
        "ep_18446744073709551616",
    ] {
        assert!(bad.parse::<EndpointId>().is_err(), "{bad:?} parsed");
    }
    first_attempt(&bus, id);
    rx.wait_for("/a", 1, WAIT);
}

#[test]
fn cursors_round_trip_and_resume_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    for n in 0..5 {
        bus.add_endpoint(EndpointConfig::new(format!("e{n}"), rx.url("/e")))
            .unwrap();
    }
    // Endpoints, two at a time, each page asked for with the cursor's
    // text form as a host would carry it in a URL.
    let mut names = Vec::new();
    let mut after: Option<Cursor<Endpoint>> = None;
    loop {
        let page = bus.endpoints(after, 2);
        names.extend(page.items.iter().map(|e| e.name().to_string()));
        match page.next {
            Some(cursor) => {
                let text = cursor.to_string();
                let parsed: Cursor<Endpoint> = text.parse().unwrap();
                assert_eq!(parsed, cursor);
                after = Some(parsed);
            }
            None => break,
        }
    }
    assert_eq!(names, ["e0", "e1", "e2", "e3", "e4"]);

    let first = bus.endpoints(None, 1).items[0].id();
    let ids: Vec<EventId> = (0..3)
        .map(|n| {
            bus.publish(Event::new("a.b", &json!({ "n": n })).unwrap())
                .unwrap()
        })
        .collect();
    rx.wait_for("/e", 15, WAIT);
    common::eventually(WAIT, "15 attempts logged", || bus.stats().attempts == 15);
    let page = bus
        .query_attempts(AttemptQuery::new().endpoint(first), None, 2)
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let next: Cursor<hookbus::Attempt> = page.next.unwrap().to_string().parse().unwrap();
    let rest = bus
        .query_attempts(AttemptQuery::new().endpoint(first), Some(next), 10)
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());
    // Attempts are listed in the order their outcomes were logged, which
    // concurrent senders may interleave: the pages hold each event once.
    let mut events: Vec<EventId> = page
        .items
        .iter()
        .chain(&rest.items)
        .map(|a| a.event)
        .collect();
    events.sort();
    assert_eq!(events, ids);

    common::eventually(WAIT, "3 delivered", || {
        bus.endpoint_deliveries(first, DeliveryFilter::Delivered, None, 10)
            .unwrap()
            .items
            .len()
            == 3
    });
    let page = bus
        .endpoint_deliveries(first, DeliveryFilter::Delivered, None, 2)
        .unwrap();
    let next: Cursor<Delivery> = page.next.unwrap().to_string().parse().unwrap();
    let rest = bus
        .endpoint_deliveries(first, DeliveryFilter::Delivered, Some(next), 2)
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|d| d.event).collect::<Vec<_>>(),
        [ids[0]]
    );

    for bad in ["", "0x1", "G", "00", "-1"] {
        assert!(bad.parse::<Cursor<Delivery>>().is_err(), "{bad:?} parsed");
    }
}
