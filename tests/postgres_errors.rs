//! What goes wrong when opening on PostgreSQL comes back typed, never as a
//! panic: a malformed connection string or setting, a server that is not
//! there, a database that does not exist.

#[path = "postgres_support/mod.rs"]
mod pg;

use std::io::ErrorKind;
use std::time::Duration;

use hookbus::{Bus, Error};

#[test]
fn malformed_connection_string_is_invalid_config_without_echoing_it() {
    let err = Bus::postgres("postgres://user:hunter2@[::1")
        .open()
        .unwrap_err();
    match &err {
        Error::InvalidConfig { setting, reason } => {
            assert_eq!(*setting, "postgres url");
            assert!(!reason.contains("hunter2"), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert!(!format!("{err:?} {err}").contains("hunter2"));
}

#[test]
fn bad_settings_are_refused_before_connecting() {
    // Nothing listens on port 9: a setting error must come first.
    let url = "postgres://postgres@127.0.0.1:9/test";
    let refused = |b: hookbus::BusBuilder| match b.open() {
        Err(Error::InvalidConfig { setting, .. }) => setting,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(
        refused(Bus::postgres(url).postgres_schema("Robert'); DROP")),
        "postgres_schema"
    );
    assert_eq!(
        refused(Bus::postgres(url).postgres_schema("")),
        "postgres_schema"
    );
    assert_eq!(
        refused(Bus::postgres(url).postgres_schema("pg_x")),
        "postgres_schema"
    );
    assert_eq!(
        refused(Bus::postgres(url).postgres_pool_size(1)),
        "postgres_pool_size"
    );
    assert_eq!(
        refused(Bus::postgres(url).postgres_lease(Duration::from_millis(999))),
        "postgres_lease"
    );
    assert_eq!(
        refused(Bus::postgres(url).postgres_poll_interval(Duration::ZERO)),
        "postgres_poll_interval"
    );
    // And the builder never prints the connection string.
    let b = Bus::postgres("postgres://u:hunter2@127.0.0.1/x");
    assert!(!format!("{b:?}").contains("hunter2"));
}

#[test]
fn unreachable_server_is_a_storage_error_of_kind_connection_refused() {
    // Port 9 (discard) has no PostgreSQL on this machine.
    let err = Bus::postgres("postgres://postgres@127.0.0.1:9/test")
        .connect_timeout(Duration::from_secs(2))
        .open()
        .unwrap_err();
    match &err {
        Error::Storage(s) => assert_eq!(
            s.io_error_kind(),
            Some(ErrorKind::ConnectionRefused),
            "{s:?}"
        ),
        other => panic!("expected Storage, got {other:?}"),
    }
}

#[test]
fn missing_database_is_a_storage_error_naming_it() {
    let Some(url) = pg::url("missing_database_is_a_storage_error_naming_it") else {
        return;
    };
    // The same server, a database that is not there.
    let mut config: hookbus::postgres::Config = url.parse().unwrap();
    config.dbname("hookbus_no_such_database");
    let host = match &config.get_hosts()[0] {
        hookbus::postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres").to_string();
    let missing = format!("postgres://{user}@{host}:{port}/hookbus_no_such_database");
    let err = Bus::postgres(missing).open().unwrap_err();
    match &err {
        Error::Storage(s) => {
            let cause = std::error::Error::source(s)
                .map(|c| c.to_string())
                .unwrap_or_default();
            assert!(
                cause.contains("3D000") && cause.contains("does not exist"),
                "{cause}"
            );
        }
        other => panic!("expected Storage, got {other:?}"),
    }
}
