//! Event times are kept to the microsecond: Growth-X's `occurred_at`
//! (`YYYY-MM-DD HH:MM:SS.ffffff`) carries all six digits the host gave,
//! formats that print milliseconds truncate, and the stored event reads back
//! the exact time, also after a restart.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{fast_bus, Receiver, WAIT};
use hookbus::presets::GrowthX;
use hookbus::{EndpointConfig, Event};
use serde_json::json;

#[test]
fn growth_x_prints_the_microseconds_the_host_gave() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    // 2025-01-24 16:30:39.698042 UTC, plus 900 ns that no format keeps.
    let at = UNIX_EPOCH + Duration::from_nanos(1_737_736_239_698_042_900);
    let id = {
        let bus = fast_bus(dir.path()).open().unwrap();
        bus.add_endpoint(
            EndpointConfig::new("growth-x", rx.url("/gx"))
                .format(GrowthX::new("client@growth-x.com")),
        )
        .unwrap();
        bus.add_endpoint(EndpointConfig::new("standard", rx.url("/std")))
            .unwrap();
        let id = bus
            .publish(
                Event::new("connection.created", &json!({"id": 1}))
                    .unwrap()
                    .occurred_at(at),
            )
            .unwrap();
        let gx = rx.wait_for("/gx", 1, WAIT)[0].json();
        assert_eq!(
            gx,
            json!({
                "client": "client@growth-x.com",
                "event_type": "connection.created",
                "occurred_at": "2025-01-24 16:30:39.698042",
                "attempt_number": 1,
                "data_type": "connection",
                "data": {"id": 1},
            })
        );
        let std = rx.wait_for("/std", 1, WAIT)[0].json();
        assert_eq!(std["occurred_at"], "2025-01-24T16:30:39.698Z");
        bus.shutdown().unwrap();
        id
    };
    let bus = fast_bus(dir.path()).open().unwrap();
    assert_eq!(
        bus.event(id).unwrap().unwrap().occurred_at,
        UNIX_EPOCH + Duration::from_micros(1_737_736_239_698_042)
    );
}
