//! Guards the portal's security rules: one tenant's session never reads or
//! changes another tenant's data on any route (404, as an unknown id, and
//! the store unchanged after); missing, malformed, tampered, expired and
//! revoked tokens answer 401; stored markup comes back as JSON strings
//! under a Content-Security-Policy without inline scripts; secrets and
//! tokens stay out of list responses and logs.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::logs::capture_logs;
use common::portal::{call, session, As};
use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hmac::{KeyInit, Mac};
use hookbus::portal::Portal;
use hookbus::{Bus, Event, EventId, TenantId};
use serde_json::{json, Value};

struct World {
    bus: Bus,
    portal: Portal,
    acme: String,
    globex_endpoint: String,
    globex_event: EventId,
    globex_attempt: String,
    _rx: Receiver,
}

/// Two tenants, each with an endpoint, an event and a failed attempt.
fn world(dir: &std::path::Path) -> World {
    let bus = fast_bus(dir).max_attempts(1).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(500));
    let (acme, globex) = (session(&bus, "acme"), session(&bus, "globex"));
    let mut ids = Vec::new();
    for (tenant, token) in [("acme", &acme), ("globex", &globex)] {
        let a = call(
            &portal,
            As::Session(token),
            "POST",
            "/endpoints",
            Some(json!({"name": format!("{tenant} hook"), "url": rx.url("/x")})),
        );
        assert_eq!(a.status, 201, "{}", a.text());
        let ev = bus
            .publish(
                Event::new("order.paid", &json!({"t": tenant}))
                    .unwrap()
                    .tenant(tenant),
            )
            .unwrap();
        ids.push((a.json["endpoint"]["id"].as_str().unwrap().to_string(), ev));
    }
    // Both tenants' attempts are logged before any test looks.
    for (_, ev) in &ids {
        eventually(WAIT, "an attempt", || {
            !bus.attempts(*ev).unwrap().is_empty()
        });
    }
    let (globex_endpoint, globex_event) = ids.pop().unwrap();
    let mut attempt = None;
    eventually(WAIT, "globex's attempt", || {
        attempt = bus.attempts(globex_event).unwrap().into_iter().next();
        attempt.is_some()
    });
    let a = attempt.unwrap();
    World {
        globex_attempt: format!("{}.{}.{}", a.endpoint, a.event, a.number),
        bus,
        portal,
        acme,
        globex_endpoint,
        globex_event,
        _rx: rx,
    }
}

/// Everything a request could change, as text.
fn snapshot(bus: &Bus) -> String {
    let endpoints: Vec<String> = bus
        .endpoints(None, 1000)
        .items
        .iter()
        .map(|e| {
            format!(
                "{:?} {:?} {:?} {}",
                e.config(),
                e.status(),
                e.previous_secrets_expire_at(),
                e.config().name_str()
            )
        })
        .collect();
    let deliveries: Vec<String> = bus
        .endpoints(None, 1000)
        .items
        .iter()
        .flat_map(|e| {
            bus.query_attempts(hookbus::AttemptQuery::new().endpoint(e.id()), None, 1000)
                .unwrap()
                .items
        })
        .map(|a| format!("{a:?}"))
        .collect();
    let tenants = bus.tenants(None, 100).unwrap();
    format!("{endpoints:?}\n{deliveries:?}\n{:?}", tenants.tenants)
}

#[test]
fn a_session_never_reaches_another_tenants_data_on_any_route() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let me = As::Session(&w.acme);
    let (ep, ev, at) = (&w.globex_endpoint, w.globex_event, &w.globex_attempt);
    let reveal = |w: &World| {
        call(
            &w.portal,
            As::Host,
            "POST",
            &format!("/endpoints/{ep}/reveal-secret"),
            None,
        )
        .json["secret"]
            .clone()
    };
    let secret_before = reveal(&w);
    assert!(secret_before.is_string());
    let before = snapshot(&w.bus);
    let not_found: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/endpoints/{ep}"), None),
        (
            "PATCH",
            format!("/endpoints/{ep}"),
            Some(json!({"name": "pwned"})),
        ),
        ("DELETE", format!("/endpoints/{ep}"), None),
        ("POST", format!("/endpoints/{ep}/enable"), None),
        ("POST", format!("/endpoints/{ep}/disable"), None),
        ("POST", format!("/endpoints/{ep}/pause"), None),
        ("POST", format!("/endpoints/{ep}/resume"), None),
        ("POST", format!("/endpoints/{ep}/rotate-secret"), None),
        ("POST", format!("/endpoints/{ep}/reveal-secret"), None),
        (
            "POST",
            format!("/endpoints/{ep}/test"),
            Some(json!({"event_type": "x"})),
        ),
        (
            "POST",
            format!("/endpoints/{ep}/recover"),
            Some(json!({"since_ms": 0})),
        ),
        ("GET", format!("/deliveries/{ep}/{ev}"), None),
        ("POST", format!("/deliveries/{ep}/{ev}/resend"), None),
        ("GET", format!("/attempts/{at}"), None),
        ("GET", format!("/events/{ev}"), None),
        ("GET", "/tenants/globex".to_string(), None),
    ];
    for (method, path, body) in &not_found {
        let a = call(&w.portal, me, method, path, body.clone());
        assert_eq!(a.status, 404, "{method} {path}: {}", a.text());
        assert!(
            !a.text().contains("globex"),
            "{method} {path}: {}",
            a.text()
        );
    }
    // Listings show nothing of globex, whatever the filter.
    for path in [
        "/endpoints".to_string(),
        "/attempts".to_string(),
        format!("/attempts?endpoint={ep}"),
        format!("/attempts?event={ev}"),
        "/deliveries?state=failed".to_string(),
        "/tenants".to_string(),
        "/health".to_string(),
    ] {
        let a = call(&w.portal, me, "GET", &path, None);
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert!(!a.text().contains("globex"), "{path}: {}", a.text());
        assert!(!a.text().contains(&ev.to_string()), "{path}: {}", a.text());
    }
    let filtered = call(
        &w.portal,
        me,
        "GET",
        &format!("/deliveries?endpoint={ep}"),
        None,
    );
    assert_eq!(filtered.status, 404, "{}", filtered.text());
    // Naming the other tenant, or acting as the host, is refused.
    for (method, path, body) in [
        ("GET", "/endpoints?tenant=globex", None),
        ("GET", "/stats?tenant=globex", None),
        (
            "POST",
            "/endpoints",
            Some(json!({"name": "x", "url": "https://a.example", "tenant": "globex"})),
        ),
        ("PUT", "/tenants/globex", Some(json!({}))),
        ("DELETE", "/tenants/globex", None),
        ("POST", "/tenants/globex/sessions", None),
        ("POST", "/tenants/acme/sessions", None),
        ("POST", "/tenants/globex/sessions/revoke", None),
    ] {
        let a = call(&w.portal, me, method, path, body);
        assert_eq!(a.status, 403, "{method} {path}: {}", a.text());
        assert_eq!(a.code(), "forbidden");
    }
    assert_eq!(snapshot(&w.bus), before, "nothing changed");
    assert_eq!(reveal(&w), secret_before, "the secret is unchanged");
    assert_eq!(w.bus.stats().endpoints.len(), 2);
    w.bus.shutdown().unwrap();
}

/// The session key, read from the database after the bus closed (the
/// handler's own key: a token signed with it is genuine).
fn stored_key(dir: &std::path::Path) -> Vec<u8> {
    let db = sled::open(dir).unwrap();
    db.get(b"mmeta/portal/session-key")
        .unwrap()
        .unwrap()
        .to_vec()
}

fn forge(key: &[u8], issued_us: u64, expires_ms: u64, tenant: &str) -> String {
    let mut payload = Vec::new();
    payload.extend_from_slice(&issued_us.to_be_bytes());
    payload.extend_from_slice(&expires_ms.to_be_bytes());
    payload.extend_from_slice(tenant.as_bytes());
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(b"hookbus portal session v1\0");
    mac.update(&payload);
    let tag = mac.finalize().into_bytes();
    format!(
        "hbp1.{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn missing_malformed_tampered_expired_and_revoked_tokens_answer_401() {
    let dir = tempfile::tempdir().unwrap();
    let acme = TenantId::new("acme").unwrap();
    let old_token = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let t = bus.portal_session(&acme, Duration::from_secs(600)).unwrap();
        bus.shutdown().unwrap();
        t.token
    };
    let key = stored_key(dir.path());
    assert_eq!(key.len(), 32);
    let bus = fast_bus(dir.path()).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    // The key survived the restart: the old token still works.
    assert_eq!(
        call(&portal, As::Session(&old_token), "GET", "/session", None).status,
        200
    );
    // A token made with the real key is accepted: the forging is right.
    let genuine = forge(&key, 1, now_ms() + 60_000, "acme");
    assert_eq!(
        call(&portal, As::Session(&genuine), "GET", "/endpoints", None).status,
        200
    );

    let (payload, tag) = old_token["hbp1.".len()..].split_once('.').unwrap();
    let flip = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        b[3] = if b[3] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let expired = forge(&key, 1, now_ms() - 1, "acme");
    let other_key = forge(&[9u8; 32], 1, now_ms() + 60_000, "acme");
    let cases = [
        ("tampered payload", format!("hbp1.{}.{tag}", flip(payload))),
        ("tampered tag", format!("hbp1.{payload}.{}", flip(tag))),
        (
            "truncated tag",
            format!("hbp1.{payload}.{}", &tag[..tag.len() - 2]),
        ),
        ("another key", other_key),
        ("expired", expired),
        ("garbage", "not-a-token".to_string()),
        ("empty payload", "hbp1..".to_string()),
    ];
    for (what, token) in &cases {
        let a = call(&portal, As::Session(token), "GET", "/endpoints", None);
        assert_eq!(
            (a.status, a.code()),
            (401, "unauthorized"),
            "{what}: {}",
            a.text()
        );
    }
    assert_eq!(
        call(&portal, As::Session(&cases[4].1), "GET", "/session", None).json["error"]["message"],
        "session expired"
    );
    let none = call(&portal, As::Nobody, "GET", "/endpoints", None);
    assert_eq!(none.status, 401);
    let mut basic = common::portal::request("GET", "/portal/api/v1/endpoints", None, Vec::new());
    basic
        .headers_mut()
        .insert("authorization", "Basic YTpi".parse().unwrap());
    assert_eq!(common::portal::send(&portal, As::Nobody, basic).status, 401);

    // Revocation ends every earlier session of the tenant only.
    let globex = session(&bus, "globex");
    bus.revoke_portal_sessions(&acme).unwrap();
    for token in [&old_token, &genuine] {
        let a = call(&portal, As::Session(token), "GET", "/endpoints", None);
        assert_eq!(a.json["error"]["message"], "session revoked");
    }
    assert_eq!(
        call(&portal, As::Session(&globex), "GET", "/endpoints", None).status,
        200
    );
    let fresh = bus
        .portal_session(&acme, Duration::from_secs(600))
        .unwrap()
        .token;
    assert_eq!(
        call(&portal, As::Session(&fresh), "GET", "/endpoints", None).status,
        200
    );
    // Out-of-range lifetimes are refused.
    assert!(bus.portal_session(&acme, Duration::from_secs(59)).is_err());
    assert!(bus
        .portal_session(&acme, Duration::from_secs(8 * 24 * 3600))
        .is_err());
    bus.shutdown().unwrap();
}

#[test]
fn stored_markup_comes_back_as_json_strings_under_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).max_attempts(1).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let evil = "<script>alert(1)</script>\"onload=alert(2)";
    let rx = Receiver::start(move |_, _| {
        Reply::Full(
            500,
            vec![("X-Evil".into(), "\"onload=x".into())],
            evil.as_bytes().to_vec(),
        )
    });
    let token = session(&bus, "acme");
    let me = As::Session(&token);
    let created = call(
        &portal,
        me,
        "POST",
        "/endpoints",
        Some(
            json!({"name": evil, "url": rx.url("/x"), "description": evil,
            "headers": [{"name": "X-Note", "value": evil}]}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let ev = bus
        .publish(
            Event::new("order.paid", &json!({"note": evil}))
                .unwrap()
                .tenant("acme"),
        )
        .unwrap();
    eventually(WAIT, "the attempt", || {
        !bus.attempts(ev).unwrap().is_empty()
    });
    let id = created.json["endpoint"]["id"].as_str().unwrap();
    let e = call(&portal, me, "GET", &format!("/endpoints/{id}"), None);
    assert_eq!(e.json["name"], evil);
    assert_eq!(e.json["description"], evil);
    assert_eq!(e.json["headers"][0]["value"], evil);
    let event = call(&portal, me, "GET", &format!("/events/{ev}"), None);
    assert_eq!(event.json["payload"]["note"], evil);
    let a = &bus.attempts(ev).unwrap()[0];
    let detail = call(
        &portal,
        me,
        "GET",
        &format!("/attempts/{}.{}.{}", a.endpoint, a.event, a.number),
        None,
    );
    assert_eq!(detail.json["response"]["body"]["text"], evil);
    for answer in [&e, &event, &detail] {
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    }
    // The policy on every response, errors and assets included.
    let page = common::portal::send(
        &portal,
        As::Nobody,
        common::portal::request("GET", "/portal/", None, Vec::new()),
    );
    let missing = call(&portal, As::Nobody, "GET", "/endpoints", None);
    for r in [&e, &detail, &page, &missing] {
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        assert_eq!(r.headers["cache-control"], "no-store");
        assert_eq!(r.headers["x-frame-options"], "DENY");
    }
    // The page has no inline script for the policy to allow.
    let html = page.text().to_lowercase();
    for (i, tag) in html.match_indices("<script").map(|(i, _)| (i, &html[i..])) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains("src="), "inline script at {i}: {open}");
    }
    assert!(!html.contains(" onload=") && !html.contains(" onclick="));
    bus.shutdown().unwrap();
}

#[test]
fn secrets_and_tokens_stay_out_of_lists_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let rx = Receiver::ok();
    let session = bus
        .portal_session(&TenantId::new("acme").unwrap(), Duration::from_secs(600))
        .unwrap();
    assert!(!format!("{session:?}").contains(&session.token));
    let token = session.token.clone();
    let me = As::Session(&token);
    let ((secret, rotated, answers), logs) = capture_logs(|| {
        let created = call(
            &portal,
            me,
            "POST",
            "/endpoints",
            Some(json!({"name": "s", "url": rx.url("/s")})),
        );
        let id = created.json["endpoint"]["id"].as_str().unwrap().to_string();
        let secret = created.json["secret"].as_str().unwrap().to_string();
        let rotated = call(
            &portal,
            me,
            "POST",
            &format!("/endpoints/{id}/rotate-secret"),
            None,
        )
        .json["secret"]
            .as_str()
            .unwrap()
            .to_string();
        call(
            &portal,
            me,
            "POST",
            &format!("/endpoints/{id}/test"),
            Some(json!({"event_type": "a.b"})),
        );
        call(
            &portal,
            me,
            "POST",
            &format!("/endpoints/{id}/reveal-secret"),
            None,
        );
        call(
            &portal,
            As::Session("hbp1.bad.token"),
            "GET",
            "/endpoints",
            None,
        );
        let answers: Vec<String> = [
            "/endpoints".to_string(),
            format!("/endpoints/{id}"),
            "/health".to_string(),
            "/attempts".to_string(),
        ]
        .iter()
        .map(|p| call(&portal, me, "GET", p, None).text())
        .collect();
        (secret, rotated, answers)
    });
    assert!(!logs.is_empty(), "the capture saw the handler's logs");
    for s in [&secret, &rotated] {
        let key = &s[6..];
        for a in &answers {
            assert!(!a.contains(key), "a list or get shows a secret: {a}");
        }
        assert!(!logs.contains(key), "the logs show a secret:\n{logs}");
    }
    assert!(!logs.contains(&token), "the logs show the session token");
    assert!(!format!("{portal:?}").contains("key"));
    bus.shutdown().unwrap();
}

#[test]
fn urls_from_the_portal_pass_the_same_ssrf_guard() {
    let dir = tempfile::tempdir().unwrap();
    // No allow_private_networks: loopback is refused, as in production.
    let bus = common::bus_builder(dir.path())
        .timeout(Duration::from_secs(2))
        .open()
        .unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let rx = Receiver::ok();
    let token = session(&bus, "acme");
    let me = As::Session(&token);
    let created = call(
        &portal,
        me,
        "POST",
        "/endpoints",
        Some(json!({"name": "inside", "url": rx.url("/x")})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json["endpoint"]["id"].as_str().unwrap();
    let test = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/test"),
        Some(json!({"event_type": "a.b"})),
    );
    assert_eq!(test.status, 200, "{}", test.text());
    assert_eq!(
        test.json["attempt"]["error_kind"],
        "blocked",
        "{}",
        test.text()
    );
    assert!(
        rx.requests().is_empty(),
        "nothing reached the private address"
    );
    for url in [
        "http://user:pw@example.com/",
        "file:///etc/passwd",
        "gopher://x.example/",
    ] {
        let a = call(
            &portal,
            me,
            "POST",
            "/endpoints",
            Some(json!({"name": "x", "url": url})),
        );
        assert_eq!((a.status, a.field()), (400, "url"), "{url}: {}", a.text());
    }
    bus.shutdown().unwrap();
}

#[test]
fn a_revocation_never_brings_back_sessions_an_earlier_one_ended() {
    let dir = tempfile::tempdir().unwrap();
    let acme = TenantId::new("acme").unwrap();
    let first = {
        let bus = fast_bus(dir.path()).open().unwrap();
        let t = session(&bus, "acme");
        bus.shutdown().unwrap();
        t
    };
    // Another process whose clock is an hour ahead revoked the tenant's
    // sessions (or this clock was stepped back an hour since).
    {
        let ahead_us = (now_ms() + 3_600_000) * 1000;
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"mmeta/portal/not-before/acme", &ahead_us.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let bus = fast_bus(dir.path()).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let get = |token: &str| call(&portal, As::Session(token), "GET", "/endpoints", None).status;
    assert_eq!(get(&first), 401);
    let since = session(&bus, "acme");
    assert_eq!(get(&since), 200);
    // Revoking again ends the session issued since, and keeps the first
    // one ended.
    bus.revoke_portal_sessions(&acme).unwrap();
    assert_eq!((get(&first), get(&since)), (401, 401));
    let after = session(&bus, "acme");
    assert_eq!(get(&after), 200);
    bus.shutdown().unwrap();
}

#[test]
fn deleting_a_tenant_ends_its_sessions_before_its_key_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let rx = Receiver::start(|_, _| Reply::Status(200));
    let old_customer = session(&bus, "acme");
    let made = call(
        &portal,
        As::Session(&old_customer),
        "POST",
        "/endpoints",
        Some(json!({"name": "old hook", "url": rx.url("/old")})),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let gone = call(&portal, As::Host, "DELETE", "/tenants/acme", None);
    assert_eq!(gone.status, 200, "{}", gone.text());
    // The key is handed to a new customer, who adds an endpoint.
    let new_customer = session(&bus, "acme");
    let added = call(
        &portal,
        As::Session(&new_customer),
        "POST",
        "/endpoints",
        Some(json!({"name": "new hook", "url": rx.url("/new")})),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let new_id = added.json["endpoint"]["id"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", "/endpoints".to_string()),
        ("GET", format!("/endpoints/{new_id}")),
        ("POST", format!("/endpoints/{new_id}/reveal-secret")),
    ] {
        let a = call(&portal, As::Session(&old_customer), method, &path, None);
        assert_eq!(
            (a.status, a.code()),
            (401, "unauthorized"),
            "{method} {path}: {}",
            a.text()
        );
    }
    // Deleting through the Rust API ends them too.
    let before = session(&bus, "acme");
    bus.delete_tenant(&TenantId::new("acme").unwrap()).unwrap();
    assert_eq!(
        call(&portal, As::Session(&before), "GET", "/endpoints", None).status,
        401
    );
    bus.shutdown().unwrap();
}

#[test]
fn a_body_without_a_content_type_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let acme = TenantId::new("acme").unwrap();
    // What a cross-site page can send without a preflight: a POST whose
    // body is a Blob without a type, so no Content-Type at all.
    let body = serde_json::to_vec(&json!({"name": "x", "url": "https://example.com/h"})).unwrap();
    let req = http::Request::builder()
        .method("POST")
        .uri("/portal/api/v1/endpoints")
        .body(body)
        .unwrap();
    let resp = portal.handle_for_tenant(req, &acme);
    assert_eq!(resp.status().as_u16(), 415);
    assert!(bus.tenant_endpoints(&acme).is_empty());
    // An action without a body needs no type.
    let req = http::Request::builder()
        .method("GET")
        .uri("/portal/api/v1/endpoints")
        .body(Vec::new())
        .unwrap();
    assert_eq!(portal.handle_for_tenant(req, &acme).status().as_u16(), 200);
    bus.shutdown().unwrap();
}

#[test]
fn a_host_authenticated_customer_is_held_to_its_tenant_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let acme = TenantId::new("acme").unwrap();
    let get = |path: &str| {
        let req =
            common::portal::request("GET", &format!("/portal/api/v1{path}"), None, Vec::new());
        let resp = w.portal.handle_for_tenant(req, &acme);
        let status = resp.status().as_u16();
        (status, String::from_utf8(resp.into_body()).unwrap())
    };
    let (status, body) = get("/endpoints");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("acme hook") && !body.contains("globex"),
        "{body}"
    );
    assert_eq!(get(&format!("/endpoints/{}", w.globex_endpoint)).0, 404);
    assert_eq!(get(&format!("/events/{}", w.globex_event)).0, 404);
    let (_, session) = get("/session");
    assert!(session.contains("\"scope\":\"tenant\""), "{session}");
    w.bus.shutdown().unwrap();
}

#[test]
fn any_request_gets_an_answer_with_the_policy_and_never_a_server_error() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let mut rng = fastrand::Rng::with_seed(11);
    // Path segments by position below /portal/api/v1: resources, then
    // ids (real ones of both tenants and made-up ones), then actions.
    let ids: Vec<String> = w
        .bus
        .endpoints(None, 10)
        .items
        .iter()
        .map(|e| e.id().to_string())
        .chain([
            w.globex_event.to_string(),
            w.globex_attempt.clone(),
            "ep_99999999999999999999".into(),
            "evt_00000000000000000000000000".into(),
            "acme".into(),
            "globex".into(),
            "~default".into(),
            "order.paid".into(),
            "%ff".into(),
            "..".into(),
            String::new(),
        ])
        .collect();
    let levels: [Vec<&str>; 3] = [
        vec![
            "endpoints",
            "tenants",
            "attempts",
            "deliveries",
            "events",
            "event-types",
            "branding",
            "session",
            "stats",
            "health",
            "nope",
        ],
        ids.iter().map(String::as_str).collect(),
        vec![
            "enable",
            "disable",
            "pause",
            "resume",
            "rotate-secret",
            "reveal-secret",
            "test",
            "recover",
            "sessions",
            "resend",
            "x",
        ],
    ];
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    let bodies: [&[u8]; 8] = [
        b"",
        b"{}",
        b"null",
        b"{\"name\":\"x\",\"url\":\"https://a.example\"}",
        b"{\"since_ms\":1e400}",
        b"\xff\xfe",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
        b"{\"event_type\":\"a\",\"payload\":{\"deep\":[1,2,{\"x\":null}]}}",
    ];
    let tokens = [
        Some(w.acme.as_str()),
        Some(w.acme.as_str()),
        Some("hbp1.x.y"),
        None,
    ];
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..3000 {
        // Mostly below the API's root, where the routes are.
        let mut path = String::from(if rng.u8(..8) == 0 {
            "/portal"
        } else {
            "/portal/api/v1"
        });
        for level in levels.iter().take(rng.usize(0..=3)) {
            path.push('/');
            path.push_str(level[rng.usize(..level.len())]);
        }
        if rng.bool() {
            path.push_str(
                [
                    "?limit=5",
                    "?cursor=zz",
                    "?tenant=acme",
                    "?x=%",
                    "?limit=1&limit=2",
                ][rng.usize(..5)],
            );
        }
        let method = methods[rng.usize(..methods.len())];
        let token = tokens[rng.usize(..tokens.len())];
        let body = bodies[rng.usize(..bodies.len())].to_vec();
        let Ok(req) = http::Request::builder()
            .method(method)
            .uri(path.as_str())
            .header("content-type", "application/json")
            .body(body)
        else {
            continue;
        };
        let mut req = req;
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let host = rng.u8(..8) == 0;
        let resp = if host {
            w.portal.handle_host(req)
        } else {
            w.portal.handle(req)
        };
        let status = resp.status().as_u16();
        *seen.entry(status).or_insert(0) += 1;
        if !host && token == Some(w.acme.as_str()) {
            let text = String::from_utf8_lossy(resp.body());
            let leaked = text.contains("globex hook")
                || text.contains(&w.globex_event.to_string())
                || text.contains(&format!("\"{}\"", w.globex_endpoint));
            assert!(!leaked, "case {i}: {method} {path} leaked globex: {text}");
        }
        assert!(status < 500, "case {i}: {method} {path} -> {status}");
        assert!(
            resp.headers().contains_key("content-security-policy"),
            "case {i}: {method} {path}"
        );
        if status >= 400 {
            let v: Value = serde_json::from_slice(resp.body()).unwrap();
            assert!(v["error"]["code"].is_string(), "case {i}: {v}");
        }
    }
    // The requests reached the routes: answers of every kind came back.
    for status in [200, 400, 401, 404, 405] {
        assert!(seen.get(&status).is_some_and(|n| *n > 20), "{seen:?}");
    }
    w.bus.shutdown().unwrap();
}

#[test]
fn framing_and_branding_are_the_hosts_choice_within_safe_values() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let framed = Portal::builder(bus.clone())
        .frame_ancestors("'self' https://app.acme.example")
        .logo_url("https://cdn.acme.example/logo.svg")
        .build()
        .unwrap();
    let a = call(&framed, As::Nobody, "GET", "/branding", None);
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.ends_with("frame-ancestors 'self' https://app.acme.example"),
        "{csp}"
    );
    assert!(!a.headers.contains_key("x-frame-options"));
    assert_eq!(a.json["logo_url"], "https://cdn.acme.example/logo.svg");
    let refused = |b: hookbus::portal::PortalBuilder| match b.build() {
        Err(hookbus::Error::InvalidConfig { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    let builder = || Portal::builder(bus.clone());
    assert_eq!(
        refused(builder().frame_ancestors("*; script-src *")),
        "frame_ancestors"
    );
    assert_eq!(
        refused(builder().logo_url("javascript:alert(1)")),
        "logo_url"
    );
    assert_eq!(refused(builder().accent_color("red;}")), "accent_color");
    assert_eq!(refused(builder().title("")), "title");
    assert_eq!(refused(builder().prefix("/portal/")), "prefix");
    assert_eq!(refused(builder().body_limit(10)), "body_limit");
    bus.shutdown().unwrap();
}
