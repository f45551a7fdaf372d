//! Says, in every `cargo test`, which suites need more than the Rust
//! toolchain and did not run, and why; `.ci/run` runs all of them for real.
//! With the `postgres` feature and `HOOKBUS_TEST_POSTGRES_URL` set, it also
//! checks that the server answers, so a missing one fails loudly here too.

use std::io::Write;

/// Straight to the process's stderr: the test harness keeps `eprintln!` of a
/// passing test to itself.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[test]
fn optional_suites_run_or_say_why_not() {
    if !cfg!(feature = "postgres") {
        say(
            "SKIPPED PostgreSQL tests (tests/postgres_*.rs, and the whole suite on \
             PostgreSQL): they need `--features postgres` and HOOKBUS_TEST_POSTGRES_URL \
             (see .ci/postgres)",
        );
    }
    if !cfg!(feature = "portal") {
        say(
            "SKIPPED portal API tests (tests/portal_*.rs, tests/event_catalog.rs): they \
             need `--features portal,schema`; schemathesis also needs \
             HOOKBUS_TEST_SCHEMATHESIS=1 and the browser tests HOOKBUS_TEST_BROWSER=1 \
             (see .ci/run and .ci/portal-e2e)",
        );
    }
    #[cfg(feature = "postgres")]
    match std::env::var("HOOKBUS_TEST_POSTGRES_URL") {
        Err(_) => say(
            "SKIPPED PostgreSQL tests: HOOKBUS_TEST_POSTGRES_URL is not set \
             (for example postgres://postgres@127.0.0.1:5432/test)",
        ),
        Ok(url) => {
            let mut client = hookbus::postgres::Client::connect(&url, hookbus::postgres::NoTls)
                .unwrap_or_else(|e| {
                    panic!("HOOKBUS_TEST_POSTGRES_URL is set but the server is unreachable: {e}")
                });
            let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
            assert_eq!(one, 1);
        }
    }
}
