//! The `metrics` feature, read back through a real recorder (metrics-util's
//! DebuggingRecorder installed as the process's global recorder): attempt
//! durations by status class and error kind, queue-depth gauges kept
//! current by the senders (never calling `Bus::stats`), and no endpoint
//! label unless the builder asks for it.
//!
//! Run with `cargo test --features metrics --test metrics`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{EndpointConfig, Event};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use serde_json::json;

/// A metric as the test names it: kind, name and sorted labels.
type Series = (MetricKind, String, Vec<(String, String)>);

/// Everything recorded so far. The DebuggingRecorder hands out what
/// changed since its last snapshot (counters and gauges are swapped to
/// zero, histograms drained), so values are added up here; hookbus only
/// ever moves its gauges up and down, never sets them, so sums are exact.
#[derive(Default)]
struct Seen {
    counters: BTreeMap<Series, u64>,
    gauges: BTreeMap<Series, f64>,
    histograms: BTreeMap<Series, Vec<f64>>,
}

struct Recorded {
    snapshotter: Snapshotter,
    seen: Mutex<Seen>,
    /// One test at a time: they share the global recorder.
    serial: Mutex<()>,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        Recorded {
            snapshotter,
            seen: Mutex::new(Seen::default()),
            serial: Mutex::new(()),
        }
    })
}

fn serial() -> MutexGuard<'static, ()> {
    recorded()
        .serial
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recorded {
    fn update(&self) -> MutexGuard<'_, Seen> {
        let mut seen = self.seen.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            let series = (kind, key.name().to_string(), labels);
            match value {
                DebugValue::Counter(n) => *seen.counters.entry(series).or_default() += n,
                DebugValue::Gauge(v) => *seen.gauges.entry(series).or_default() += v.0,
                DebugValue::Histogram(vs) => seen
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(vs.into_iter().map(|v| v.0)),
            }
        }
        seen
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = series(MetricKind::Counter, name, labels);
        self.update().counters.get(&key).copied().unwrap_or(0)
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series(MetricKind::Gauge, name, labels);
        self.update().gauges.get(&key).copied().unwrap_or(0.0)
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let key = series(MetricKind::Histogram, name, labels);
        self.update()
            .histograms
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    /// Every series with an `endpoint` label and its value so far (a
    /// histogram's by its number of samples).
    fn per_endpoint(&self) -> Vec<(Series, String)> {
        let seen = self.update();
        let counters = seen.counters.iter().map(|(k, v)| (k, v.to_string()));
        let gauges = seen.gauges.iter().map(|(k, v)| (k, v.to_string()));
        let histograms = seen
            .histograms
            .iter()
            .map(|(k, v)| (k, v.len().to_string()));
        counters
            .chain(gauges)
            .chain(histograms)
            .filter(|(k, _)| k.2.iter().any(|(name, _)| name == "endpoint"))
            .map(|(k, v)| (k.clone(), v))
            .collect()
    }
}

fn series(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (kind, name.to_string(), labels)
}

#[test]
fn attempts_durations_and_queue_depth_without_endpoint_labels() {
    let _one_at_a_time = serial();
    let m = recorded();
    let published_before = m.counter("hookbus_published_total", &[]);
    let ok_before = m.histogram(
        "hookbus_attempt_duration_seconds",
        &[("status_class", "2xx"), ("error_kind", "none")],
    );
    let bad_before = m.histogram(
        "hookbus_attempt_duration_seconds",
        &[("status_class", "5xx"), ("error_kind", "status")],
    );
    let successes_before = m.counter("hookbus_attempts_total", &[("outcome", "success")]);
    // The other test may have run first and left its labelled series.
    let labelled_before = m.per_endpoint();
    let exhausted_before = m.counter("hookbus_exhausted_total", &[]);

    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|r, _| Reply::Status(if r.path == "/bad" { 503 } else { 200 }));
    let bus = fast_bus(dir.path())
        .max_attempts(1)
        .pause_after(None)
        .open()
        .unwrap();
    let good = bus
        .add_endpoint(EndpointConfig::new("good", rx.url("/good")))
        .unwrap();
    bus.add_endpoint(EndpointConfig::new("bad", rx.url("/bad")))
        .unwrap();
    for n in 0..6 {
        bus.publish(Event::new("a.b", &json!({ "n": n })).unwrap())
            .unwrap();
    }
    rx.wait_for("/good", 6, WAIT);
    rx.wait_for("/bad", 6, WAIT);
    eventually(WAIT, "12 attempts counted", || {
        m.counter("hookbus_attempts_total", &[("outcome", "success")]) - successes_before == 6
            && m.counter("hookbus_exhausted_total", &[]) - exhausted_before == 6
    });
    assert_eq!(
        m.counter("hookbus_published_total", &[]) - published_before,
        6
    );

    // One duration per attempt, under its status class and error kind.
    let ok = m.histogram(
        "hookbus_attempt_duration_seconds",
        &[("status_class", "2xx"), ("error_kind", "none")],
    );
    let bad = m.histogram(
        "hookbus_attempt_duration_seconds",
        &[("status_class", "5xx"), ("error_kind", "status")],
    );
    assert_eq!(ok.len() - ok_before.len(), 6, "{ok:?}");
    assert_eq!(bad.len() - bad_before.len(), 6, "{bad:?}");
    // Seconds: a loopback answer takes well under the 2 s attempt timeout.
    assert!(ok.iter().chain(&bad).all(|s| *s >= 0.0 && *s < 2.0));

    // The gauges follow the queue as it changes, with no call to stats():
    // a paused endpoint keeps what is published for it queued.
    eventually(WAIT, "nothing queued or in flight", || {
        m.gauge("hookbus_queue_depth", &[]) == 0.0 && m.gauge("hookbus_in_flight", &[]) == 0.0
    });
    bus.pause_endpoint(good.id()).unwrap();
    bus.delete_endpoint(
        bus.endpoints(None, 10)
            .items
            .iter()
            .find(|e| e.name() == "bad")
            .unwrap()
            .id(),
    )
    .unwrap();
    for n in 0..5 {
        bus.publish(Event::new("a.b", &json!({ "n": n })).unwrap())
            .unwrap();
    }
    assert_eq!(m.gauge("hookbus_queue_depth", &[]), 5.0);
    bus.resume_endpoint(good.id()).unwrap();
    rx.wait_for("/good", 11, WAIT);
    eventually(WAIT, "the queue gauge back to zero", || {
        m.gauge("hookbus_queue_depth", &[]) == 0.0 && m.gauge("hookbus_in_flight", &[]) == 0.0
    });

    // Queued deliveries of a bus that shuts down are no longer this
    // process's: they leave the gauge.
    bus.pause_endpoint(good.id()).unwrap();
    bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    assert_eq!(m.gauge("hookbus_queue_depth", &[]), 1.0);
    bus.shutdown().unwrap();
    assert_eq!(m.gauge("hookbus_queue_depth", &[]), 0.0);

    assert_eq!(
        m.per_endpoint(),
        labelled_before,
        "no per-endpoint series by default"
    );
}

#[test]
fn per_endpoint_labels_are_an_opt_in() {
    let _one_at_a_time = serial();
    let m = recorded();
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .per_endpoint_metrics(true)
        .open()
        .unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("one", rx.url("/one")))
        .unwrap();
    let label = ep.id().to_string();
    let by_endpoint = [("endpoint", label.as_str())];

    bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    rx.wait_for("/one", 1, WAIT);
    eventually(WAIT, "the delivery counted", || {
        m.counter("hookbus_delivered_total", &by_endpoint) == 1
    });
    let durations = m.histogram(
        "hookbus_attempt_duration_seconds",
        &[
            ("status_class", "2xx"),
            ("error_kind", "none"),
            ("endpoint", &label),
        ],
    );
    assert_eq!(durations.len(), 1);

    bus.pause_endpoint(ep.id()).unwrap();
    for _ in 0..3 {
        bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    }
    assert_eq!(m.gauge("hookbus_queue_depth", &by_endpoint), 3.0);
    bus.shutdown().unwrap();
    assert_eq!(m.gauge("hookbus_queue_depth", &by_endpoint), 0.0);
}
