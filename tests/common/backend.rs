//! The one place the tests choose a storage backend, so that every
//! behavioural test body runs on both.
//!
//! `HOOKBUS_TEST_BACKEND` unset or `sled`: the bus lives in the test's
//! directory, as it always did. `HOOKBUS_TEST_BACKEND=postgres` (needs the
//! cargo feature `postgres` and `HOOKBUS_TEST_POSTGRES_URL`; either missing
//! fails the test loudly): the bus lives in a PostgreSQL schema named after
//! a short hash of the test's directory path, so a test that reopens "the
//! same directory" (restart tests, child processes) reopens the same schema.
//! The first open of a directory drops whatever an earlier run left in that
//! schema; a marker file in the directory records that this was done, so a
//! reopen (in this process or a child) keeps the data. `.ci/postgres` drops
//! every leftover test schema (`hbt_` prefix) after the suite.
//!
//! Tests of sled internals (its files, locks, on-disk format) call
//! [`skip_on_postgres`] with the reason.

use std::path::Path;

use hookbus::{Bus, BusBuilder};

/// The environment variable that selects the backend.
pub const BACKEND_VAR: &str = "HOOKBUS_TEST_BACKEND";
/// The connection string of the test server.
pub const POSTGRES_URL_VAR: &str = "HOOKBUS_TEST_POSTGRES_URL";

/// Which storage the tests of this run use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sled,
    Postgres,
}

/// The backend chosen by `HOOKBUS_TEST_BACKEND`; an unknown value panics
/// (a typo must not silently run everything on sled).
pub fn backend() -> Backend {
    match std::env::var(BACKEND_VAR).ok().as_deref() {
        None | Some("") | Some("sled") => Backend::Sled,
        Some("postgres") => Backend::Postgres,
        Some(other) => panic!("{BACKEND_VAR}={other:?}: expected \"sled\" or \"postgres\""),
    }
}

/// `true` (after saying so) when the backend is PostgreSQL: the caller
/// returns at once. For tests of sled internals only.
pub fn skip_on_postgres(why: &str) -> bool {
    let skip = backend() == Backend::Postgres;
    if skip {
        println!("skipped on postgres: {why}");
    }
    skip
}

/// A builder with the library's defaults on the chosen backend, for the bus
/// that `dir` stands for.
pub fn bus_builder(dir: &Path) -> BusBuilder {
    match backend() {
        Backend::Sled => Bus::builder(dir),
        Backend::Postgres => postgres_builder(dir),
    }
}

/// Opens the bus that `dir` stands for with the library's defaults.
pub fn open_bus(dir: &Path) -> hookbus::Result<Bus> {
    bus_builder(dir).open()
}

/// The schema name the tests use for `dir`: `hbt_` and 16 hex digits of the
/// SHA-256 of its path (stable across processes, unlike std's hasher).
pub fn schema_for(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("hbt_{hex}")
}

/// The test server's connection string; panics when it is not set.
pub fn postgres_url() -> String {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR} \
             (e.g. postgres://postgres@127.0.0.1:5432/test)"
        ),
    }
}

#[cfg(not(feature = "postgres"))]
fn postgres_builder(_dir: &Path) -> BusBuilder {
    panic!("{BACKEND_VAR}=postgres needs the cargo feature: cargo test --features postgres")
}

#[cfg(feature = "postgres")]
fn postgres_builder(dir: &Path) -> BusBuilder {
    let url = postgres_url();
    let schema = schema_for(dir);
    fresh_schema_once(dir, &url, &schema);
    Bus::postgres(&url).postgres_schema(&schema)
}

/// The marker that says "this directory's schema was already reset".
#[cfg(feature = "postgres")]
const MARKER: &str = ".hookbus-test-postgres-schema";

/// Drops `schema` the first time `dir` is opened (by any process), so a
/// test starts from an empty bus as it would on a fresh sled directory.
#[cfg(feature = "postgres")]
fn fresh_schema_once(dir: &Path, url: &str, schema: &str) {
    // Two threads of one test opening the same directory at once must not
    // both reset it.
    static RESET: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    let _one_at_a_time = RESET.lock();
    let marker = dir.join(MARKER);
    if marker.exists() {
        return;
    }
    drop_schema(url, schema);
    // Tests may name a directory that does not exist yet (sled would create
    // it); the marker needs it.
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|e| panic!("creating {} for the marker: {e}", dir.display()));
    std::fs::write(&marker, schema.as_bytes())
        .unwrap_or_else(|e| panic!("writing {}: {e}", marker.display()));
}

/// A plain client on the test server; panics loudly when it is unreachable.
#[cfg(feature = "postgres")]
pub fn admin_client(url: &str) -> hookbus::postgres::Client {
    hookbus::postgres::Client::connect(url, hookbus::postgres::NoTls).unwrap_or_else(|e| {
        panic!("{POSTGRES_URL_VAR}={url} is set but the server is unreachable: {e}")
    })
}

/// Drops `schema` and everything in it, if it exists.
#[cfg(feature = "postgres")]
pub fn drop_schema(url: &str, schema: &str) {
    assert!(
        schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "schema names in tests are plain identifiers: {schema:?}"
    );
    admin_client(url)
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap_or_else(|e| panic!("dropping schema {schema}: {e}"));
}
