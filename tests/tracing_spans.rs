//! Every stage of a delivery runs in a `tracing` span that names what it
//! works on: `publish` (the event), `attempt` and `outcome` (endpoint,
//! event, attempt number). Checked with a small real subscriber installed
//! for the whole process, since the spans open on sender threads.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use common::{fast_bus, first_attempt, Receiver, WAIT};
use hookbus::{EndpointConfig, Event};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Metadata, Subscriber};

/// A span as opened: its name and fields, as text.
type Opened = (String, BTreeMap<String, String>);

/// Keeps every span opened in the process.
struct Spans {
    next: AtomicU64,
    opened: Mutex<Vec<Opened>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl Subscriber for &'static Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        self.opened
            .lock()
            .unwrap()
            .push((span.metadata().name().to_string(), fields));
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &TracingEvent<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn spans() -> &'static Spans {
    static SPANS: OnceLock<&'static Spans> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans: &'static Spans = Box::leak(Box::new(Spans {
            next: AtomicU64::new(1),
            opened: Mutex::new(Vec::new()),
        }));
        tracing::subscriber::set_global_default(spans).expect("the only subscriber");
        spans
    })
}

#[test]
fn publish_attempt_and_outcome_spans_carry_the_ids() {
    let spans = spans();
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("a", rx.url("/a")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    rx.wait_for("/a", 1, WAIT);
    first_attempt(&bus, id);
    bus.shutdown().unwrap();

    let opened = spans.opened.lock().unwrap().clone();
    let find = |name: &str| {
        opened
            .iter()
            .find(|(n, f)| n == name && f.get("event") == Some(&id.to_string()))
            .unwrap_or_else(|| panic!("no {name} span for {id}: {opened:?}"))
            .1
            .clone()
    };
    let publish = find("publish");
    assert_eq!(publish["deliveries"], "1");
    for stage in ["attempt", "outcome"] {
        let fields = find(stage);
        assert_eq!(fields["endpoint"], ep.id().to_string(), "{stage}");
        assert_eq!(fields["attempt"], "1", "{stage}");
    }
    assert_eq!(find("outcome")["succeeded"], "true");
}
