//! Guards the portal's OpenAPI 3.1 document: it is served, lists exactly
//! the routes the handler answers, and (with `HOOKBUS_TEST_SCHEMATHESIS`
//! set) schemathesis, an OpenAPI fuzzer, finds no disagreement between the
//! document and a running loopback server.
//!
//! Without the variable the fuzzing test prints that it was skipped; with
//! it set, a missing `schemathesis` command fails the test.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::portal::{call, request, send, As, Server};
use common::{fast_bus, Receiver};
use hookbus::portal::Portal;
use hookbus::{Event, EventType, TenantId};
use serde_json::{json, Value};

/// Every operation the handler answers, as the route table has them.
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/api/v1/branding"),
    ("get", "/api/v1/session"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/tenants"),
    ("get", "/api/v1/tenants/{tenant}"),
    ("put", "/api/v1/tenants/{tenant}"),
    ("delete", "/api/v1/tenants/{tenant}"),
    ("post", "/api/v1/tenants/{tenant}/sessions"),
    ("post", "/api/v1/tenants/{tenant}/sessions/revoke"),
    ("get", "/api/v1/event-types"),
    ("get", "/api/v1/event-types/{name}"),
    ("get", "/api/v1/endpoints"),
    ("post", "/api/v1/endpoints"),
    ("get", "/api/v1/endpoints/{endpoint}"),
    ("patch", "/api/v1/endpoints/{endpoint}"),
    ("delete", "/api/v1/endpoints/{endpoint}"),
    ("post", "/api/v1/endpoints/{endpoint}/enable"),
    ("post", "/api/v1/endpoints/{endpoint}/disable"),
    ("post", "/api/v1/endpoints/{endpoint}/pause"),
    ("post", "/api/v1/endpoints/{endpoint}/resume"),
    ("post", "/api/v1/endpoints/{endpoint}/rotate-secret"),
    ("post", "/api/v1/endpoints/{endpoint}/reveal-secret"),
    ("post", "/api/v1/endpoints/{endpoint}/test"),
    ("post", "/api/v1/endpoints/{endpoint}/recover"),
    ("get", "/api/v1/deliveries"),
    ("get", "/api/v1/deliveries/{endpoint}/{event}"),
    ("post", "/api/v1/deliveries/{endpoint}/{event}/resend"),
    ("get", "/api/v1/attempts"),
    ("get", "/api/v1/attempts/{attempt}"),
    ("get", "/api/v1/events/{event}"),
];

fn document(portal: &Portal) -> Value {
    let a = send(
        portal,
        As::Nobody,
        request("GET", "/portal/openapi.json", None, Vec::new()),
    );
    assert_eq!(a.status, 200);
    a.json
}

#[test]
fn the_document_lists_exactly_the_routes_the_handler_answers() {
    let dir = tempfile::tempdir().unwrap();
    let bus = fast_bus(dir.path()).open().unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let doc = document(&portal);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"], json!([{"url": "/portal"}]));
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Each answers as a route (not 404 "route", not 405), even for ids
    // that do not exist; every $ref resolves.
    for (method, path) in OPERATIONS {
        let concrete = path
            .replace("{tenant}", "acme")
            .replace("{name}", "order.paid")
            .replace("{endpoint}", "ep_999")
            .replace("{event}", "evt_00000000000000000000000000")
            .replace("{attempt}", "ep_1.evt_00000000000000000000000000.1");
        let a = call(
            &portal,
            As::Host,
            &method.to_uppercase(),
            concrete.trim_start_matches("/api/v1"),
            None,
        );
        assert_ne!(a.status, 405, "{method} {path}");
        assert_ne!(
            a.json["error"]["message"], "route not found",
            "{method} {path}"
        );
    }
    let text = doc.to_string();
    let marker = "\"$ref\":\"#/components/schemas/";
    for (i, _) in text.match_indices(marker) {
        let name = text[i + marker.len()..].split('"').next().unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
    let moved = Portal::builder(bus.clone()).prefix("").build().unwrap();
    let a = send(
        &moved,
        As::Nobody,
        request("GET", "/openapi.json", None, Vec::new()),
    );
    assert_eq!(a.json["servers"], json!([{"url": "/"}]));
    bus.shutdown().unwrap();
}

const SCHEMATHESIS_ENV: &str = "HOOKBUS_TEST_SCHEMATHESIS";

/// Runs schemathesis (every check it has, every phase but stateful) against
/// the handler on a loopback server, as a tenant's session with data to
/// find. Prints the operations and cases it checked.
#[test]
fn schemathesis_finds_the_server_true_to_its_document() {
    if std::env::var_os(SCHEMATHESIS_ENV).is_none() {
        // Straight to stderr: the test harness hides `eprintln!` of a
        // passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED schemathesis_finds_the_server_true_to_its_document: set \
             {SCHEMATHESIS_ENV}=1 (needs `pip install schemathesis`) to fuzz the API"
        );
        return;
    }
    let found = Command::new("schemathesis").arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "{SCHEMATHESIS_ENV} is set but the schemathesis command is missing: {found:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::ok();
    let bus = fast_bus(dir.path())
        .timeout(Duration::from_millis(500))
        .event_type(
            EventType::new("order.paid")
                .description("An order was paid.")
                .example(json!({"order": "o_1"})),
        )
        .open()
        .unwrap();
    let portal = Portal::builder(bus.clone()).build().unwrap();
    let token = bus
        .portal_session(&TenantId::new("acme").unwrap(), Duration::from_secs(3600))
        .unwrap()
        .token;
    let created = call(
        &portal,
        As::Session(&token),
        "POST",
        "/endpoints",
        Some(json!({"name": "seed", "url": rx.url("/s")})),
    );
    assert_eq!(created.status, 201);
    bus.publish(
        Event::new("order.paid", &json!({"order": "o_2"}))
            .unwrap()
            .tenant("acme"),
    )
    .unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/portal_schemathesis.toml"
    );
    // A fixed seed, so a failure repeats; another seed explores further.
    let seed = std::env::var("HOOKBUS_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    // First as the tenant's customer, then as the host's backend, which
    // the handler trusts without a token: the two checks that a request
    // without credentials is refused do not apply there.
    for (scope, host) in [("tenant", false), ("host", true)] {
        let server = Server::start(portal.clone(), host);
        let report = dir.path().join(format!("schemathesis-{scope}.xml"));
        let mut cmd = Command::new("schemathesis");
        cmd.args(["--config-file", config])
            .args(["run", &format!("{}/portal/openapi.json", server.base)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", "25", "--seed", &seed, "--no-color"])
            .args(["--request-timeout", "10"])
            .args(["--report", "junit", "--report-junit-path"])
            .arg(&report);
        if host {
            cmd.args(["--exclude-checks", "ignored_auth,missing_required_header"]);
        }
        let out = cmd.output().expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // What it checked: the warnings and the summary, as schemathesis
        // prints them.
        let tail = stdout
            .find("WARNINGS")
            .or_else(|| stdout.find("SUMMARY"))
            .map_or("", |i| &stdout[i..]);
        let summary: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
        let _ = writeln!(
            std::io::stderr(),
            "schemathesis, {scope} scope:\n{}",
            summary.join("\n")
        );
        assert!(
            out.status.success(),
            "schemathesis found problems in the {scope} scope:\n{stdout}\n{stderr}"
        );
    }
    bus.shutdown().unwrap();
}
