//! Guards the portal's management API, over the handler itself and over a
//! real loopback server: every resource and action answers as the
//! contract (and the OpenAPI document) says, lists page with cursors, the
//! attempt detail shows the request as sent and the response, and bad
//! input answers 4xx naming the field with nothing written.

mod common;

use common::portal::{call, request, send, session, As, Server};
use common::{eventually, fast_bus, Receiver, Reply, WAIT};
use hookbus::portal::Portal;
use hookbus::{Bus, Event, EventType};
use serde_json::{json, Value};

fn open(dir: &std::path::Path) -> (Bus, Portal) {
    let bus = fast_bus(dir)
        .max_attempts(2)
        .event_type(
            EventType::new("order.paid")
                .description("An order was paid.")
                .example(json!({"order": "o_1", "amount": 42})),
        )
        .event_type(EventType::new("order.shipped").description("An order left."))
        .open()
        .unwrap();
    let portal = Portal::builder(bus.clone())
        .title("Acme webhooks")
        .accent_color("#0a7ea4")
        .build()
        .unwrap();
    (bus, portal)
}

fn create(portal: &Portal, who: As<'_>, body: Value) -> (String, String) {
    let a = call(portal, who, "POST", "/endpoints", Some(body));
    assert_eq!(a.status, 201, "{}", a.text());
    (
        a.json["endpoint"]["id"].as_str().unwrap().to_string(),
        a.json["secret"].as_str().unwrap().to_string(),
    )
}

#[test]
fn an_endpoint_goes_through_its_whole_life_over_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    let rx = Receiver::ok();
    let token = session(&bus, "acme");
    let me = As::Session(&token);

    let (id, secret) = create(
        &portal,
        me,
        json!({
            "name": "Orders", "url": rx.url("/orders"), "events": ["order.*"],
            "headers": [{"name": "X-Team", "value": "sales"}, {"name": "Authorization", "value": "Bearer k"}],
            "filters": [{"key": "region", "values": ["eu"]}],
            "description": "Our ERP"
        }),
    );
    assert!(secret.starts_with("whsec_"));
    let ep = call(&portal, me, "GET", &format!("/endpoints/{id}"), None);
    assert_eq!(ep.status, 200);
    let e = &ep.json;
    assert_eq!(e["tenant"], "acme");
    assert_eq!(e["description"], "Our ERP");
    assert_eq!(e["events"], json!(["order.*"]));
    assert_eq!(
        e["headers"][1],
        json!({"name": "Authorization", "value": "[redacted]"})
    );
    assert_eq!(e["filters"], json!([{"key": "region", "values": ["eu"]}]));
    assert_eq!(e["status"], "active");
    assert_eq!(e["has_secret"], true);
    assert!(!ep.text().contains(&secret));

    // PATCH replaces what it names; a redacted header keeps its value.
    let patched = call(
        &portal,
        me,
        "PATCH",
        &format!("/endpoints/{id}"),
        Some(json!({"name": "Orders v2", "events": ["order.paid"],
            "headers": [{"name": "Authorization", "value": "[redacted]"}], "description": ""})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json["name"], "Orders v2");
    assert_eq!(patched.json["description"], Value::Null);
    let stored = bus.endpoint(id.parse().unwrap()).unwrap();
    assert_eq!(stored.url(), rx.url("/orders"));
    assert_eq!(
        stored.config().name_str(),
        "Orders v2",
        "the bus holds the change"
    );

    for (action, status) in [
        ("disable", "disabled"),
        ("enable", "active"),
        ("pause", "paused"),
        ("resume", "active"),
    ] {
        let a = call(
            &portal,
            me,
            "POST",
            &format!("/endpoints/{id}/{action}"),
            None,
        );
        assert_eq!(a.status, 200, "{action}: {}", a.text());
        assert_eq!(a.json["status"], status, "{action}");
    }
    let paused = call(&portal, me, "POST", &format!("/endpoints/{id}/pause"), None);
    assert_eq!(paused.json["paused_reason"], "manual");
    call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/resume"),
        None,
    );

    let rotated = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/rotate-secret"),
        Some(json!({"grace_seconds": 3600})),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_secret = rotated.json["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(
        rotated.json["endpoint"]["previous_secrets_expire_ms"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let revealed = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/reveal-secret"),
        None,
    );
    assert_eq!(revealed.json["secret"], new_secret);

    let deleted = call(&portal, me, "DELETE", &format!("/endpoints/{id}"), None);
    assert_eq!(deleted.status, 204);
    assert!(deleted.raw.is_empty());
    assert_eq!(
        call(&portal, me, "GET", &format!("/endpoints/{id}"), None).status,
        404
    );
    assert!(bus.endpoint(id.parse().unwrap()).is_none());
    bus.shutdown().unwrap();
}

#[test]
fn a_test_send_uses_the_catalog_example_and_shows_the_receivers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    let rx = Receiver::start(|_, _| {
        Reply::Full(
            202,
            vec![("X-Seen".into(), "yes".into())],
            b"thanks".to_vec(),
        )
    });
    let token = session(&bus, "acme");
    let me = As::Session(&token);
    let (id, secret) = create(&portal, me, json!({"name": "r", "url": rx.url("/t")}));

    let a = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/test"),
        Some(json!({"event_type": "order.paid"})),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let at = &a.json["attempt"];
    assert_eq!(at["trigger"], "test");
    assert_eq!(at["succeeded"], true);
    assert_eq!(at["status_code"], 202);
    assert_eq!(at["response"]["body"]["text"], "thanks");
    assert!(at["response"]["headers"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "x-seen", "value": "yes"})));
    let sent = &rx.requests()[0];
    let got: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(got["data"], json!({"order": "o_1", "amount": 42}), "{got}");
    assert_eq!(
        at["request"]["body"]["text"].as_str().unwrap().as_bytes(),
        &sent.body[..]
    );
    let sig = at["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "webhook-signature")
        .unwrap();
    assert_eq!(sig["value"], "[redacted]");
    assert!(!a.text().contains(&secret[6..]));

    // An edited sample is sent as given; nothing is stored.
    let edited = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/test"),
        Some(json!({"event_type": "custom.kind", "payload": {"hello": "<b>world</b>"}})),
    );
    assert_eq!(edited.status, 200, "{}", edited.text());
    let got: Value = serde_json::from_slice(&rx.requests()[1].body).unwrap();
    assert_eq!(got["data"], json!({"hello": "<b>world</b>"}));
    let logged = call(&portal, me, "GET", "/attempts", None);
    assert_eq!(logged.json["items"], json!([]), "test sends are not logged");
    bus.shutdown().unwrap();
}

#[test]
fn the_delivery_log_filters_details_resends_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    // Fails every request until told otherwise.
    let ok = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rx = {
        let ok = ok.clone();
        Receiver::start(move |_, _| {
            if ok.load(std::sync::atomic::Ordering::SeqCst) {
                Reply::Status(200)
            } else {
                Reply::Full(
                    503,
                    vec![("Retry-After".into(), "0".into())],
                    b"down".to_vec(),
                )
            }
        })
    };
    let token = session(&bus, "acme");
    let me = As::Session(&token);
    let (id, _) = create(&portal, me, json!({"name": "r", "url": rx.url("/d")}));
    let before = std::time::SystemTime::now();
    let paid = bus
        .publish(
            Event::new("order.paid", &json!({"n": 1}))
                .unwrap()
                .tenant("acme"),
        )
        .unwrap();
    let shipped = bus
        .publish(
            Event::new("order.shipped", &json!({"n": 2}))
                .unwrap()
                .tenant("acme"),
        )
        .unwrap();
    eventually(WAIT, "both deliveries failed", || {
        let a = call(&portal, me, "GET", "/deliveries?state=failed", None);
        a.json["items"].as_array().is_some_and(|i| i.len() == 2)
    });

    let all = call(&portal, me, "GET", "/attempts", None);
    assert_eq!(
        all.json["items"].as_array().unwrap().len(),
        4,
        "{}",
        all.text()
    );
    let only_paid = call(
        &portal,
        me,
        "GET",
        "/attempts?event_type=order.paid&outcome=failed",
        None,
    );
    let items = only_paid.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|a| a["event"] == paid.to_string()));
    assert_eq!(
        call(&portal, me, "GET", "/attempts?outcome=succeeded", None).json["items"],
        json!([])
    );
    let since = hookbus_ms(before);
    let ranged = call(
        &portal,
        me,
        "GET",
        &format!(
            "/attempts?endpoint={id}&since_ms={since}&until_ms={}",
            since + 60_000
        ),
        None,
    );
    assert_eq!(ranged.json["items"].as_array().unwrap().len(), 4);
    let none = call(
        &portal,
        me,
        "GET",
        &format!("/attempts?until_ms={since}"),
        None,
    );
    assert_eq!(none.json["items"], json!([]));

    // One attempt's detail.
    let first = &items[0];
    let detail = call(
        &portal,
        me,
        "GET",
        &format!("/attempts/{}", first["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(detail.status, 200, "{}", detail.text());
    assert_eq!(detail.json["status_code"], 503);
    assert_eq!(detail.json["error_kind"], "status");
    assert_eq!(detail.json["response"]["body"]["text"], "down");
    assert!(detail.json["response"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "retry-after"));
    assert!(detail.json["request"]["body"]["text"]
        .as_str()
        .unwrap()
        .contains("\"n\":1"));

    // Deliveries by type, one delivery with its attempts, the event.
    let failed_paid = call(
        &portal,
        me,
        "GET",
        "/deliveries?state=failed&event_type=order.paid",
        None,
    );
    assert_eq!(failed_paid.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(failed_paid.json["items"][0]["attempts"], 2);
    let d = call(
        &portal,
        me,
        "GET",
        &format!("/deliveries/{id}/{shipped}"),
        None,
    );
    assert_eq!(d.json["delivery"]["state"], "failed");
    assert_eq!(d.json["attempts"].as_array().unwrap().len(), 2);
    let ev = call(&portal, me, "GET", &format!("/events/{shipped}"), None);
    assert_eq!(ev.json["payload"], json!({"n": 2}));
    assert_eq!(ev.json["deliveries"].as_array().unwrap().len(), 1);

    // Resend one, then recover the rest.
    ok.store(true, std::sync::atomic::Ordering::SeqCst);
    let resent = call(
        &portal,
        me,
        "POST",
        &format!("/deliveries/{id}/{paid}/resend"),
        None,
    );
    assert_eq!(resent.status, 202, "{}", resent.text());
    eventually(WAIT, "the resend delivered", || {
        call(
            &portal,
            me,
            "GET",
            &format!("/deliveries/{id}/{paid}"),
            None,
        )
        .json["delivery"]["state"]
            == "delivered"
    });
    let recovered = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/recover"),
        Some(json!({"since_ms": since})),
    );
    assert_eq!(recovered.json["queued"], 1, "{}", recovered.text());
    eventually(WAIT, "the recovered delivery delivered", || {
        call(&portal, me, "GET", "/deliveries?state=delivered", None).json["items"]
            .as_array()
            .is_some_and(|i| i.len() == 2)
    });
    let health = call(&portal, me, "GET", "/health", None);
    assert_eq!(health.json["endpoints"][0]["id"], id);
    assert!(health.json["endpoints"][0]["health"]["last_success_ms"].is_u64());
    let stats = call(&portal, me, "GET", "/stats", None);
    assert_eq!(stats.json["delivered"], 2, "{}", stats.text());
    bus.shutdown().unwrap();
}

fn hookbus_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn lists_page_with_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    let rx = Receiver::ok();
    for i in 0..5 {
        create(
            &portal,
            As::Host,
            json!({"name": format!("e{i}"), "url": rx.url("/p"), "tenant": "acme"}),
        );
    }
    create(
        &portal,
        As::Host,
        json!({"name": "other", "url": rx.url("/p"), "tenant": "globex"}),
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/endpoints?tenant=acme&limit=2&cursor={c}"),
            None => "/endpoints?tenant=acme&limit=2".to_string(),
        };
        let page = call(&portal, As::Host, "GET", &path, None);
        assert_eq!(page.status, 200, "{}", page.text());
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_string()),
        );
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);
    let everyone = call(&portal, As::Host, "GET", "/endpoints?limit=100", None);
    assert_eq!(everyone.json["items"].as_array().unwrap().len(), 6);
    let types = call(&portal, As::Host, "GET", "/event-types?limit=1", None);
    assert_eq!(types.json["items"][0]["name"], "order.paid");
    let next = types.json["next_cursor"].as_str().unwrap();
    let rest = call(
        &portal,
        As::Host,
        "GET",
        &format!("/event-types?cursor={next}"),
        None,
    );
    assert_eq!(rest.json["items"][0]["name"], "order.shipped");
    assert_eq!(rest.json["next_cursor"], Value::Null);
    let bad = call(&portal, As::Host, "GET", "/endpoints?cursor=zz", None);
    assert_eq!(
        (bad.status, bad.code(), bad.field()),
        (400, "invalid_query", "cursor")
    );
    bus.shutdown().unwrap();
}

#[test]
fn the_host_manages_tenants_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    let put = call(
        &portal,
        As::Host,
        "PUT",
        "/tenants/acme",
        Some(json!({"display_name": "Acme Inc.", "labels": [{"key": "plan", "value": "pro"}]})),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json["display_name"], "Acme Inc.");
    let many: Vec<Value> = (0..65).map(|_| json!({"key": "k", "value": "v"})).collect();
    let too_many = call(
        &portal,
        As::Host,
        "PUT",
        "/tenants/acme",
        Some(json!({"labels": many})),
    );
    assert_eq!((too_many.status, too_many.field()), (400, "labels"));
    let listed = call(&portal, As::Host, "GET", "/tenants", None);
    assert_eq!(listed.json["items"][0]["id"], "acme");
    let issued = call(
        &portal,
        As::Host,
        "POST",
        "/tenants/acme/sessions",
        Some(json!({"ttl_seconds": 120})),
    );
    assert_eq!(issued.status, 201, "{}", issued.text());
    let token = issued.json["token"].as_str().unwrap();
    assert_eq!(issued.json["url_fragment"], format!("#token={token}"));
    let me = call(&portal, As::Session(token), "GET", "/session", None);
    assert_eq!(me.json["scope"], "tenant");
    assert_eq!(me.json["tenant"], "acme");
    assert_eq!(me.json["expires_ms"], issued.json["expires_ms"]);
    let own = call(&portal, As::Session(token), "GET", "/tenants", None);
    assert_eq!(own.json["items"].as_array().unwrap().len(), 1);
    let revoked = call(
        &portal,
        As::Host,
        "POST",
        "/tenants/acme/sessions/revoke",
        None,
    );
    assert_eq!(revoked.status, 204);
    assert_eq!(
        call(&portal, As::Session(token), "GET", "/session", None).status,
        401
    );
    let host = call(&portal, As::Host, "GET", "/session", None);
    assert_eq!(host.json["scope"], "host");
    let branding = call(&portal, As::Nobody, "GET", "/branding", None);
    assert_eq!(branding.status, 200);
    assert_eq!(
        branding.json,
        json!({"title": "Acme webhooks", "logo_url": null, "accent_color": "#0a7ea4"})
    );
    let gone = call(&portal, As::Host, "DELETE", "/tenants/acme", None);
    assert_eq!(gone.status, 200, "{}", gone.text());
    bus.shutdown().unwrap();
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    let rx = Receiver::ok();
    let token = session(&bus, "acme");
    let me = As::Session(&token);
    let (id, _) = create(&portal, me, json!({"name": "keep", "url": rx.url("/k")}));
    let before = format!("{:?}", bus.endpoint(id.parse().unwrap()).unwrap().config());
    let raw = |method: &str, path: &str, body: &[u8], ct: Option<&str>| {
        let mut req = request(
            method,
            &format!("/portal/api/v1{path}"),
            Some(&token),
            body.to_vec(),
        );
        if let Some(ct) = ct {
            req.headers_mut()
                .insert("content-type", ct.parse().unwrap());
        }
        send(&portal, me, req)
    };
    let cases: Vec<(common::portal::Answer, u16, &str, &str)> = vec![
        (
            raw("POST", "/endpoints", b"{\"name\": ", None),
            400,
            "invalid_json",
            "",
        ),
        (
            raw("POST", "/endpoints", b"[]", None),
            400,
            "invalid_json",
            "",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(json!({"name": "x", "url": rx.url("/x"), "colour": 1})),
            ),
            400,
            "unknown_field",
            "colour",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(json!({"url": rx.url("/x")})),
            ),
            400,
            "missing_field",
            "name",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(json!({"name": 5, "url": rx.url("/x")})),
            ),
            400,
            "invalid_json",
            "name",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(json!({"name": "x", "url": "ftp://x.example"})),
            ),
            400,
            "invalid_field",
            "url",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(json!({"name": "x", "url": rx.url("/x"), "events": ["a.*.b"]})),
            ),
            400,
            "invalid_field",
            "events",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(
                    json!({"name": "x", "url": rx.url("/x"), "headers": [{"name": "Bad Header", "value": "v"}]}),
                ),
            ),
            400,
            "invalid_field",
            "headers",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                "/endpoints",
                Some(
                    json!({"name": "x", "url": rx.url("/x"), "headers": [{"name": "a", "value": "v", "x": 1}]}),
                ),
            ),
            400,
            "unknown_field",
            "headers[0].x",
        ),
        (
            call(
                &portal,
                me,
                "PATCH",
                &format!("/endpoints/{id}"),
                Some(json!({"url": "not a url"})),
            ),
            400,
            "invalid_field",
            "url",
        ),
        (
            call(
                &portal,
                me,
                "PATCH",
                &format!("/endpoints/{id}"),
                Some(json!({"name": ""})),
            ),
            400,
            "invalid_field",
            "name",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                &format!("/endpoints/{id}/rotate-secret"),
                Some(json!({"grace_seconds": -1})),
            ),
            400,
            "invalid_json",
            "grace_seconds",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                &format!("/endpoints/{id}/rotate-secret"),
                Some(json!({"secret": "whsec_!!"})),
            ),
            400,
            "invalid_field",
            "secret",
        ),
        (
            raw("POST", "/endpoints", &vec![b' '; 2 * 1024 * 1024], None),
            413,
            "body_too_large",
            "",
        ),
        (
            raw(
                "POST",
                "/endpoints",
                b"name=x",
                Some("application/x-www-form-urlencoded"),
            ),
            415,
            "unsupported_media_type",
            "",
        ),
        (
            call(&portal, me, "GET", "/endpoints?colour=red", None),
            400,
            "invalid_query",
            "colour",
        ),
        (
            call(&portal, me, "GET", "/attempts?outcome=maybe", None),
            400,
            "invalid_query",
            "outcome",
        ),
        (
            call(&portal, me, "GET", "/endpoints?limit=0", None),
            400,
            "invalid_query",
            "limit",
        ),
        (
            call(&portal, me, "PUT", "/endpoints", None),
            405,
            "method_not_allowed",
            "",
        ),
        (
            call(&portal, me, "GET", "/nothing-here", None),
            404,
            "not_found",
            "",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                &format!("/endpoints/{id}/test"),
                Some(json!({"payload": {}})),
            ),
            400,
            "missing_field",
            "event_type",
        ),
        (
            call(
                &portal,
                me,
                "POST",
                &format!("/endpoints/{id}/recover"),
                None,
            ),
            400,
            "missing_field",
            "since_ms",
        ),
    ];
    for (i, (a, status, code, field)) in cases.iter().enumerate() {
        assert_eq!(
            (a.status, a.code(), a.field()),
            (*status, *code, *field),
            "case {i}: {}",
            a.text()
        );
        assert!(!a.json["error"]["message"].as_str().unwrap().is_empty());
    }
    let allow = call(&portal, me, "PUT", "/endpoints", None);
    assert_eq!(allow.headers["allow"], "GET, POST");
    // Nothing was written: one endpoint, unchanged.
    assert_eq!(bus.endpoints(None, 100).items.len(), 1);
    assert_eq!(
        format!("{:?}", bus.endpoint(id.parse().unwrap()).unwrap().config()),
        before
    );
    bus.shutdown().unwrap();
}

#[test]
fn the_api_and_the_page_work_over_a_real_loopback_server() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, portal) = open(dir.path());
    let rx = Receiver::ok();
    let token = session(&bus, "acme");
    let server = Server::start(portal, false);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();

    let page = agent
        .get(format!("{}/portal/", server.base))
        .call()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let bare = agent.get(format!("{}/portal", server.base)).call().unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/portal/");
    for asset in ["portal.js", "portal.css", "openapi.json"] {
        let r = agent
            .get(format!("{}/portal/{asset}", server.base))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }

    let mut created = agent
        .post(format!("{}/portal/api/v1/endpoints", server.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(json!({"name": "over http", "url": rx.url("/h")}).to_string())
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["endpoint"]["name"], "over http");
    let mut listed = agent
        .get(format!("{}/portal/api/v1/endpoints", server.base))
        .header("authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let list: Value = serde_json::from_str(&listed.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let anonymous = agent
        .get(format!("{}/portal/api/v1/endpoints", server.base))
        .call()
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    drop(server);
    bus.shutdown().unwrap();
}

/// With the `schema` feature a test send is held to its type's schema,
/// whether or not publishes are.
#[cfg(feature = "schema")]
#[test]
fn a_test_payload_that_breaks_its_schema_answers_422_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path())
        .event_type(
            EventType::new("order.paid")
                .example(json!({"amount": 1}))
                .schema(json!({"type": "object", "required": ["amount"],
                    "properties": {"amount": {"type": "integer"}}})),
        )
        .open()
        .unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let rx = Receiver::ok();
    let token = session(&bus, "acme");
    let me = As::Session(&token);
    let (id, _) = create(&portal, me, json!({"name": "r", "url": rx.url("/s")}));
    let bad = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/test"),
        Some(json!({"event_type": "order.paid", "payload": {"amount": "lots"}})),
    );
    assert_eq!(
        (bad.status, bad.code(), bad.field()),
        (422, "schema_mismatch", "payload")
    );
    assert!(bad.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/amount"));
    assert!(rx.requests().is_empty());
    let good = call(
        &portal,
        me,
        "POST",
        &format!("/endpoints/{id}/test"),
        Some(json!({"event_type": "order.paid"})),
    );
    assert_eq!(good.status, 200, "{}", good.text());
    assert_eq!(rx.requests().len(), 1);
    bus.shutdown().unwrap();
}
