//! Guards every setting a host can give against extreme values: each is
//! either refused with a typed error naming it, or works, and nothing a host
//! sets can make hookbus panic or send a request it does not log.

mod common;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::{AttemptQuery, Bus, DeliveryStatus, EndpointConfig, Error, Event, EventId, Secret};
use proptest::prelude::*;
use serde_json::json;

/// Every request to `path` has a logged attempt with the same event and
/// number (waits for attempts finishing in the background).
fn assert_every_request_logged(bus: &Bus, rx: &Receiver, path: &str) {
    let unlogged = |bus: &Bus| -> Vec<(String, u64)> {
        let logged: BTreeSet<(String, u64)> = all_attempts(bus)
            .into_iter()
            .map(|(event, number)| (event.to_string(), u64::from(number)))
            .collect();
        rx.requests_to(path)
            .iter()
            .map(|r| (r.webhook_id(), r.attempt()))
            .filter(|key| !logged.contains(key))
            // Retention may have purged a delivered event with its log.
            .filter(|(event, _)| {
                let id: EventId = event.parse().expect("webhook-id is an event id");
                bus.event(id).unwrap().is_some()
            })
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let missing = unlogged(bus);
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "requests received but never logged: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn all_attempts(bus: &Bus) -> Vec<(EventId, u32)> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = bus.query_attempts(AttemptQuery::new(), after, 500).unwrap();
        out.extend(page.items.iter().map(|a| (a.event, a.number)));
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => return out,
        }
    }
}

fn is_setting(result: &Result<Bus, Error>, name: &str) -> bool {
    matches!(result, Err(Error::InvalidConfig { setting, .. }) if *setting == name)
}

#[test]
fn huge_shutdown_timeout_is_refused_or_works_never_panics() {
    for t in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let dir = tempfile::tempdir().unwrap();
        let shut = catch_unwind(AssertUnwindSafe(|| {
            let opened = fast_bus(dir.path()).shutdown_timeout(t).open();
            if !is_setting(&opened, "shutdown_timeout") {
                opened.unwrap().shutdown().unwrap();
            }
        }));
        assert!(shut.is_ok(), "shutdown_timeout({t:?}) panicked");
        // Through Drop as well, with a clone outliving the first handle.
        let dropped = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(bus) = fast_bus(dir.path()).shutdown_timeout(t).open() {
                let clone = bus.clone();
                drop(bus);
                drop(clone);
            }
        }));
        assert!(
            dropped.is_ok(),
            "dropping with shutdown_timeout({t:?}) panicked"
        );
    }
}

#[test]
fn huge_rotation_grace_is_refused_or_works_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let ep = bus
        .add_endpoint(
            EndpointConfig::new("ep", "http://127.0.0.1:9/x").secret(Secret::generate().unwrap()),
        )
        .unwrap();
    for grace in [Duration::MAX, Duration::from_secs(u64::MAX / 4)] {
        let rotated = catch_unwind(AssertUnwindSafe(|| {
            bus.rotate_secret(ep.id(), Secret::generate().unwrap(), grace)
        }));
        match rotated {
            Ok(Ok(_)) => {}
            Ok(Err(Error::InvalidEndpoint { field: "grace", .. })) => {}
            Ok(Err(e)) => panic!("unexpected error for grace {grace:?}: {e}"),
            Err(_) => panic!("rotate_secret with grace {grace:?} panicked"),
        }
    }
    // The largest allowed grace works and is reported back.
    let year = Duration::from_secs(365 * 24 * 3600);
    let rotated = bus
        .rotate_secret(ep.id(), Secret::generate().unwrap(), year)
        .unwrap();
    let expires = rotated.previous_secrets_expire_at();
    assert_eq!(expires.len(), 1);
    assert!(expires[0] > SystemTime::now() + year - Duration::from_secs(60));
    bus.shutdown().unwrap();
}

#[test]
fn huge_endpoint_timeout_is_refused_or_works_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path()).open().unwrap();
    for t in [Duration::MAX, Duration::from_secs(u64::MAX / 1000)] {
        let added = bus.add_endpoint(EndpointConfig::new("ep", rx.url("/t")).timeout(t));
        match added {
            Err(Error::InvalidEndpoint {
                field: "timeout", ..
            }) => {}
            Err(e) => panic!("unexpected error for timeout {t:?}: {e}"),
            Ok(ep) => {
                // test_send runs on this thread: a panic here is the host's.
                let sent = catch_unwind(AssertUnwindSafe(|| {
                    bus.test_send(ep.id(), Event::new("a.b", &json!({})).unwrap())
                }));
                assert!(sent.is_ok(), "test_send with timeout {t:?} panicked");
            }
        }
    }
    // And on the bus: refused at open.
    let dir2 = tempfile::tempdir().unwrap();
    let opened = fast_bus(dir2.path()).timeout(Duration::MAX).open();
    assert!(is_setting(&opened, "timeout"), "{opened:?}");
    bus.shutdown().unwrap();
}

#[test]
fn huge_retry_delay_is_refused_or_every_request_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(500));
    let opened = fast_bus(dir.path())
        .retry_delays([Duration::MAX])
        .max_attempts(3)
        .open();
    if is_setting(&opened, "retry_delays") {
        // Refused at open; the same delay on an endpoint is refused too.
        let bus = fast_bus(dir.path()).open().unwrap();
        let added = bus
            .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")).retry_delays([Duration::MAX]));
        assert!(
            matches!(
                added,
                Err(Error::InvalidEndpoint {
                    field: "retry_delays",
                    ..
                })
            ),
            "{added:?}"
        );
        bus.shutdown().unwrap();
        return;
    }
    let bus = opened.unwrap();
    let ep = bus
        .add_endpoint(EndpointConfig::new("ep", rx.url("/ep")))
        .unwrap();
    let id = bus.publish(Event::new("a.b", &json!({})).unwrap()).unwrap();
    rx.wait_for("/ep", 1, WAIT);
    eventually(WAIT, "the first attempt logged", || {
        !bus.attempts(id).unwrap().is_empty()
    });
    assert_every_request_logged(&bus, &rx, "/ep");
    assert!(matches!(
        bus.delivery(ep.id(), id).unwrap().unwrap().status,
        DeliveryStatus::Queued { .. }
    ));
    bus.shutdown().unwrap();
}

// ---------------------------------------------------------------------------
// The property: any value for any setting is refused with a typed error
// naming a setting whose documented range it leaves, or works; the bus never
// panics (shutdown reports no worker panic) and logs every request it sends.

const MS: Duration = Duration::from_millis(1);
const NS: Duration = Duration::from_nanos(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const MIB: usize = 1024 * 1024;

/// Durations around every documented bound, tiny ones, huge ones, and
/// arbitrary ones.
fn duration() -> BoxedStrategy<Duration> {
    prop_oneof![
        3 => prop::sample::select(vec![
            Duration::ZERO,
            NS,
            MS,
            20 * MS,
            Duration::from_secs(1),
        ]),
        2 => prop::sample::select(vec![
            HOUR,
            HOUR + NS,
            2 * HOUR,
            2 * HOUR + NS,
            24 * HOUR,
            24 * HOUR + NS,
            30 * DAY,
            30 * DAY + NS,
            365 * DAY,
            365 * DAY + NS,
            36_525 * DAY,
            36_525 * DAY + NS,
        ]),
        2 => prop::sample::select(vec![
            Duration::from_secs(u64::from(u32::MAX)),
            Duration::from_millis(u64::MAX),
            Duration::from_nanos(u64::MAX),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ]),
        1 => any::<u64>().prop_map(Duration::from_millis),
        1 => (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
    ]
    .boxed()
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![0u32, 1, 2, 3]),
        2 => prop::sample::select(vec![256u32, 257, 1000, 1001, 1_000_000, 1_000_001, u32::MAX]),
        1 => any::<u32>(),
    ]
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => prop::sample::select(vec![0usize, 1, 16, 4096]),
        2 => prop::sample::select(vec![MIB, MIB + 1, 64 * MIB, 64 * MIB + 1, usize::MAX]),
        1 => any::<usize>(),
    ]
}

fn fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => prop::sample::select(vec![0.0, 0.1, 1.0]),
        2 => prop::sample::select(vec![
            -0.0,
            -0.1,
            1.000_001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ]),
        1 => any::<f64>(),
    ]
}

fn delays() -> impl Strategy<Value = Vec<Duration>> {
    prop_oneof![
        4 => prop::collection::vec(duration(), 0..4),
        1 => prop::collection::vec(Just(MS), 100..=101),
    ]
}

fn set<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    // Most cases change a few settings: the rest keep working values, so
    // that deliveries really run.
    prop::option::weighted(0.12, s)
}

#[derive(Clone, Debug)]
struct BusSettings {
    max_payload_bytes: Option<usize>,
    max_attempts: Option<u32>,
    retry_delays: Option<Vec<Duration>>,
    retry_jitter: Option<f64>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    concurrency: Option<u32>,
    response_body_limit: Option<usize>,
    cache_capacity: Option<u64>,
    flush_every: Option<Duration>,
    sender_idle_timeout: Option<Duration>,
    user_agent: Option<String>,
    shutdown_timeout: Option<Duration>,
    max_retry_after: Option<Duration>,
    pause_after: Option<Option<u32>>,
    retention: Option<Option<Duration>>,
    idempotency_window: Option<Duration>,
    janitor_interval: Option<Duration>,
}

fn bus_settings() -> BoxedStrategy<BusSettings> {
    let cache = prop_oneof![
        Just(0u64),
        Just(1u64 << 20),
        Just((1u64 << 20) - 1),
        Just(1u64 << 40),
        Just((1u64 << 40) + 1),
        Just(u64::MAX),
        any::<u64>(),
    ];
    let agent = prop::sample::select(vec![
        String::new(),
        "my-app/1".to_string(),
        "a".repeat(1024),
        "a".repeat(1025),
        "bad\nagent".to_string(),
        "tab\tok".to_string(),
        "del\u{7f}".to_string(),
    ]);
    (
        (
            set(size()),
            set(count()),
            set(delays()),
            set(fraction()),
            set(duration()),
            set(duration()),
            set(count()),
            set(size()),
            set(cache),
        ),
        (
            set(duration()),
            set(duration()),
            set(agent),
            set(duration()),
            set(duration()),
            set(proptest::option::of(count())),
            set(proptest::option::of(duration())),
            set(duration()),
            set(duration()),
        ),
    )
        .prop_map(|(a, b)| BusSettings {
            max_payload_bytes: a.0,
            max_attempts: a.1,
            retry_delays: a.2,
            retry_jitter: a.3,
            timeout: a.4,
            connect_timeout: a.5,
            concurrency: a.6,
            response_body_limit: a.7,
            cache_capacity: a.8,
            flush_every: b.0,
            sender_idle_timeout: b.1,
            user_agent: b.2,
            shutdown_timeout: b.3,
            max_retry_after: b.4,
            pause_after: b.5,
            retention: b.6,
            idempotency_window: b.7,
            janitor_interval: b.8,
        })
        .boxed()
}

fn within(d: Duration, min: Duration, max: Duration) -> bool {
    (min..=max).contains(&d)
}

fn delays_ok(delays: &[Duration]) -> bool {
    (1..=100).contains(&delays.len()) && delays.iter().all(|d| *d <= 30 * DAY)
}

impl BusSettings {
    fn apply(&self, mut b: hookbus::BusBuilder) -> hookbus::BusBuilder {
        if let Some(v) = self.max_payload_bytes {
            b = b.max_payload_bytes(v);
        }
        if let Some(v) = self.max_attempts {
            b = b.max_attempts(v);
        }
        if let Some(v) = &self.retry_delays {
            b = b.retry_delays(v.clone());
        }
        if let Some(v) = self.retry_jitter {
            b = b.retry_jitter(v);
        }
        if let Some(v) = self.timeout {
            b = b.timeout(v);
        }
        if let Some(v) = self.connect_timeout {
            b = b.connect_timeout(v);
        }
        if let Some(v) = self.concurrency {
            b = b.concurrency(v);
        }
        if let Some(v) = self.response_body_limit {
            b = b.response_body_limit(v);
        }
        if let Some(v) = self.cache_capacity {
            b = b.cache_capacity(v);
        }
        if let Some(v) = self.flush_every {
            b = b.flush_every(v);
        }
        if let Some(v) = self.sender_idle_timeout {
            b = b.sender_idle_timeout(v);
        }
        if let Some(v) = &self.user_agent {
            b = b.user_agent(v.clone());
        }
        if let Some(v) = self.shutdown_timeout {
            b = b.shutdown_timeout(v);
        }
        if let Some(v) = self.max_retry_after {
            b = b.max_retry_after(v);
        }
        if let Some(v) = self.pause_after {
            b = b.pause_after(v);
        }
        if let Some(v) = self.retention {
            b = b.retention(v);
        }
        if let Some(v) = self.idempotency_window {
            b = b.idempotency_window(v);
        }
        if let Some(v) = self.janitor_interval {
            b = b.janitor_interval(v);
        }
        b
    }

    /// The settings given outside the ranges their setters document.
    fn out_of_range(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name, ok: Option<bool>| {
            if ok == Some(false) {
                out.push(name);
            }
        };
        check(
            "max_payload_bytes",
            self.max_payload_bytes.map(|n| (1..=64 * MIB).contains(&n)),
        );
        check(
            "max_attempts",
            self.max_attempts.map(|n| (1..=1000).contains(&n)),
        );
        check("retry_delays", self.retry_delays.as_deref().map(delays_ok));
        check(
            "retry_jitter",
            self.retry_jitter.map(|j| (0.0..=1.0).contains(&j)),
        );
        check("timeout", self.timeout.map(|t| within(t, MS, 2 * HOUR)));
        check(
            "connect_timeout",
            self.connect_timeout.map(|t| within(t, MS, 2 * HOUR)),
        );
        check(
            "concurrency",
            self.concurrency.map(|n| (1..=256).contains(&n)),
        );
        check(
            "response_body_limit",
            self.response_body_limit.map(|n| n <= MIB),
        );
        check(
            "cache_capacity",
            self.cache_capacity
                .map(|n| ((1 << 20)..=(1 << 40)).contains(&n)),
        );
        check("flush_every", self.flush_every.map(|t| within(t, MS, HOUR)));
        check(
            "sender_idle_timeout",
            self.sender_idle_timeout.map(|t| t <= 24 * HOUR),
        );
        check(
            "user_agent",
            self.user_agent.as_ref().map(|ua| {
                ua.len() <= 1024 && ua.bytes().all(|b| b == b'\t' || (b >= 32 && b != 127))
            }),
        );
        check(
            "shutdown_timeout",
            self.shutdown_timeout.map(|t| t <= 24 * HOUR),
        );
        check(
            "max_retry_after",
            self.max_retry_after.map(|t| t <= 30 * DAY),
        );
        check(
            "pause_after",
            self.pause_after
                .map(|p| p.is_none_or(|n| (1..=1_000_000).contains(&n))),
        );
        check(
            "retention",
            self.retention.map(|r| r.is_none_or(|t| t <= 36_525 * DAY)),
        );
        check(
            "idempotency_window",
            self.idempotency_window.map(|t| t <= 365 * DAY),
        );
        check(
            "janitor_interval",
            self.janitor_interval.map(|t| within(t, MS, HOUR)),
        );
        out
    }
}

#[derive(Clone, Debug)]
struct EndpointSettings {
    max_attempts: Option<u32>,
    retry_delays: Option<Vec<Duration>>,
    timeout: Option<Duration>,
    concurrency: Option<u32>,
    pause_after: Option<Option<u32>>,
    ordered: bool,
}

fn endpoint_settings() -> BoxedStrategy<EndpointSettings> {
    (
        set(count()),
        set(delays()),
        set(duration()),
        set(count()),
        set(proptest::option::of(count())),
        any::<bool>(),
    )
        .prop_map(|(a, d, t, c, p, o)| EndpointSettings {
            max_attempts: a,
            retry_delays: d,
            timeout: t,
            concurrency: c,
            pause_after: p,
            ordered: o,
        })
        .boxed()
}

impl EndpointSettings {
    fn apply(&self, mut c: EndpointConfig) -> EndpointConfig {
        if let Some(v) = self.max_attempts {
            c = c.max_attempts(v);
        }
        if let Some(v) = &self.retry_delays {
            c = c.retry_delays(v.clone());
        }
        if let Some(v) = self.timeout {
            c = c.timeout(v);
        }
        if let Some(v) = self.concurrency {
            c = c.concurrency(v);
        }
        if let Some(v) = self.pause_after {
            c = c.pause_after(v);
        }
        c.ordered(self.ordered)
    }

    fn out_of_range(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.max_attempts.is_some_and(|n| !(1..=1000).contains(&n)) {
            out.push("max_attempts");
        }
        if self.retry_delays.as_deref().is_some_and(|d| !delays_ok(d)) {
            out.push("retry_delays");
        }
        if self.timeout.is_some_and(|t| !within(t, MS, 2 * HOUR)) {
            out.push("timeout");
        }
        if self.concurrency.is_some_and(|n| !(1..=256).contains(&n)) {
            out.push("concurrency");
        }
        if self
            .pause_after
            .is_some_and(|p| p.is_some_and(|n| !(1..=1_000_000).contains(&n)))
        {
            out.push("pause_after");
        }
        out
    }
}

/// Waits (a bounded while) until no attempt is due soon: every delivery
/// is finished or waits well ahead (on an ordered endpoint, the oldest
/// unfinished one does and holds back the rest), or the endpoint is paused.
fn settle(bus: &Bus, ep: hookbus::EndpointId, ordered: bool, events: &[EventId]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if bus.endpoint(ep).is_none_or(|e| e.is_paused()) {
            return;
        }
        let soon = SystemTime::now() + Duration::from_millis(200);
        let mut quiet = true;
        for id in events {
            let Ok(Some(d)) = bus.delivery(ep, *id) else {
                continue;
            };
            match d.status {
                DeliveryStatus::Queued { due, .. } if due > soon => {
                    if ordered {
                        break;
                    }
                }
                DeliveryStatus::Delivered { .. } | DeliveryStatus::Failed { .. } => {}
                _ => {
                    quiet = false;
                    break;
                }
            }
        }
        if quiet {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn extreme_case(
    bus_settings: &BusSettings,
    endpoint: &EndpointSettings,
    grace: Duration,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    // Fails, then asks to wait "forever", then accepts: retries, the
    // Retry-After cap and success all happen.
    let rx = Receiver::start(|r, nth| {
        if r.path == "/t" {
            return Reply::Status(200);
        }
        match nth % 3 {
            0 => Reply::Status(500),
            1 => Reply::Full(
                503,
                vec![("retry-after".into(), u64::MAX.to_string())],
                Vec::new(),
            ),
            _ => Reply::Status(200),
        }
    });
    let opened = bus_settings.apply(fast_bus(dir.path())).open();
    let refused = bus_settings.out_of_range();
    let bus = match opened {
        Err(Error::InvalidConfig { setting, reason }) => {
            prop_assert!(
                refused.contains(&setting),
                "{setting} refused ({reason}) though in range; out of range: {refused:?}"
            );
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
        Ok(bus) => bus,
    };
    prop_assert!(refused.is_empty(), "opened with {refused:?} out of range");
    OPENED.fetch_add(1, Ordering::SeqCst);

    let secret = Secret::generate().unwrap();
    let refused = endpoint.out_of_range();
    let added = bus.add_endpoint(
        endpoint.apply(EndpointConfig::new("d", rx.url("/d")).secret(secret.clone())),
    );
    let ep = match added {
        Err(Error::InvalidEndpoint { field, reason }) => {
            prop_assert!(
                refused.contains(&field),
                "{field} refused ({reason}) though in range; out of range: {refused:?}"
            );
            prop_assert!(bus.shutdown().is_ok());
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
        Ok(ep) => ep,
    };
    prop_assert!(refused.is_empty(), "added with {refused:?} out of range");
    DELIVERING.fetch_add(1, Ordering::SeqCst);
    // Same settings, a path of its own, no subscriptions that match: it
    // only ever gets test sends, which are never logged.
    let tester = bus
        .add_endpoint(
            endpoint.apply(
                EndpointConfig::new("t", rx.url("/t"))
                    .events(["never.published"])
                    .secret(secret),
            ),
        )
        .unwrap();

    let mut events = Vec::new();
    for (i, key) in [None, Some("k"), Some("k")].into_iter().enumerate() {
        let mut event = Event::new("a.b", &json!({ "n": i })).unwrap();
        if let Some(key) = key {
            event = event.idempotency_key(key);
        }
        match bus.publish(event).map_err(Error::from) {
            Ok(id) => events.push(id),
            Err(Error::PayloadTooLarge { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("publish: {e}"))),
        }
    }
    let mut test_sends = 0;
    match bus.test_send(tester.id(), Event::new("a.b", &json!({})).unwrap()) {
        Ok(_) => test_sends += 1,
        Err(Error::PayloadTooLarge { .. }) => {}
        Err(e) => return Err(TestCaseError::fail(format!("test_send: {e}"))),
    }
    match bus.rotate_secret(tester.id(), Secret::generate().unwrap(), grace) {
        Ok(_) => prop_assert!(grace <= 365 * DAY, "grace {grace:?} accepted"),
        Err(Error::InvalidEndpoint { field: "grace", .. }) => {
            prop_assert!(grace > 365 * DAY, "grace {grace:?} refused")
        }
        Err(e) => return Err(TestCaseError::fail(format!("rotate_secret: {e}"))),
    }
    match bus.test_send(tester.id(), Event::new("a.b", &json!({})).unwrap()) {
        Ok(_) => test_sends += 1,
        Err(Error::PayloadTooLarge { .. }) => {}
        Err(e) => return Err(TestCaseError::fail(format!("test_send: {e}"))),
    }
    settle(&bus, ep.id(), endpoint.ordered, &events);
    let shut = bus.shutdown();
    prop_assert!(shut.is_ok(), "shutdown: {shut:?}");
    assert_every_request_logged(&bus, &rx, "/d");
    prop_assert!(rx.requests_to("/t").len() <= test_sends);
    REQUESTS.fetch_add(rx.requests().len(), Ordering::SeqCst);
    Ok(())
}

/// How the cases went, so the test can show it ran deliveries, not only
/// refusals.
static OPENED: AtomicUsize = AtomicUsize::new(0);
static DELIVERING: AtomicUsize = AtomicUsize::new(0);
static REQUESTS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn any_setting_is_refused_or_works_and_every_request_is_logged() {
    // Each case opens a real database and serves real requests: some
    // dozens cover every setter many times over in a few seconds.
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    // Half the cases keep every value within its documented range, so that
    // extreme but allowed values are seen delivering, not only refused.
    let strategy = (
        prop_oneof![
            bus_settings(),
            bus_settings().prop_filter("in range", |b| b.out_of_range().is_empty()),
        ],
        prop_oneof![
            endpoint_settings(),
            endpoint_settings().prop_filter("in range", |e| e.out_of_range().is_empty()),
        ],
        duration(),
    );
    let result = runner.run(&strategy, |(bus_settings, endpoint, grace)| {
        extreme_case(&bus_settings, &endpoint, grace)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (opened, delivering, requests) = (
        OPENED.load(Ordering::SeqCst),
        DELIVERING.load(Ordering::SeqCst),
        REQUESTS.load(Ordering::SeqCst),
    );
    println!(
        "64 cases: {opened} opened, {delivering} delivered to an endpoint, {requests} requests"
    );
    // Not a test of refusals only: buses opened and really sent (about
    // half the cases deliver; these floors are far below that).
    assert!(opened >= 16 && delivering >= 8 && requests >= 16);
}
