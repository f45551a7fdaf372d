//! What the PostgreSQL tests share: the server from
//! `HOOKBUS_TEST_POSTGRES_URL`, skipped with a message when unset, and a
//! fresh schema per test.

#![allow(dead_code)]

use hookbus::postgres::{Client, NoTls};

/// The variable that names the server.
pub const URL_VAR: &str = "HOOKBUS_TEST_POSTGRES_URL";

/// The server's connection string, or `None` after printing why the test
/// is skipped. A server named but unreachable fails the test in `client`.
pub fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test}: {URL_VAR} is not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
            None
        }
    }
}

/// A plain client of the test server; panics loudly if it is unreachable.
pub fn client(url: &str) -> Client {
    Client::connect(url, NoTls)
        .unwrap_or_else(|e| panic!("{URL_VAR} is set but the server cannot be reached: {e}"))
}

/// A schema name for this test, dropped first if a run left it behind.
pub fn fresh_schema(url: &str, name: &str) -> String {
    let schema = format!("it_{name}");
    client(url)
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .expect("dropping a leftover schema");
    schema
}
