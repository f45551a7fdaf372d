//! Log capture: every `tracing` event and span (with their fields) as
//! text, to prove secrets stay out of the logs. `capture_logs` sees one
//! thread; `process_logs` installs itself for the whole process (its test
//! binary's only subscriber), so sender threads are seen too.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// Every log line (`tracing` event, with its fields and its spans'
/// fields) emitted on this thread while `f` runs.
pub fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
    let sink = Arc::new(Mutex::new(String::new()));
    let subscriber = Capture {
        sink: Arc::clone(&sink),
        next_id: std::sync::atomic::AtomicU64::new(1),
    };
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = sink.lock().clone();
    (out, text)
}

struct Capture {
    sink: Arc<Mutex<String>>,
    next_id: std::sync::atomic::AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut line = String::from("span");
        attrs.record(&mut Fields(&mut line));
        self.sink.lock().push_str(&(line + "\n"));
        tracing::span::Id::from_u64(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = String::from("record");
        values.record(&mut Fields(&mut line));
        self.sink.lock().push_str(&(line + "\n"));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = String::from("event");
        event.record(&mut Fields(&mut line));
        self.sink.lock().push_str(&(line + "\n"));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Everything logged in this process from the first call on, by any
/// thread. Installs a global subscriber: call it only from a test binary
/// that has no other.
pub fn process_logs() -> Arc<Mutex<String>> {
    static SINK: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    Arc::clone(SINK.get_or_init(|| {
        let sink = Arc::new(Mutex::new(String::new()));
        let subscriber = Capture {
            sink: Arc::clone(&sink),
            next_id: std::sync::atomic::AtomicU64::new(1),
        };
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        sink
    }))
}
