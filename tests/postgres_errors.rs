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
    let err = Bus::postgres("postgres://postgres@127.0.0.1:9/test?connect_timeout=2")
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

#[test]
fn connections_killed_by_the_server_are_replaced_and_nothing_acknowledged_is_lost() {
    let Some(url) =
        pg::url("connections_killed_by_the_server_are_replaced_and_nothing_acknowledged_is_lost")
    else {
        return;
    };
    let schema = pg::fresh_schema(&url, "errors_lost_connection");
    let app = "hookbus_it_lost_connection";
    let sep = if url.contains('?') { '&' } else { '?' };
    let bus = Bus::postgres(format!("{url}{sep}application_name={app}"))
        .postgres_schema(schema)
        .postgres_poll_interval(Duration::from_millis(100))
        .open()
        .unwrap();
    let mut admin = pg::client(&url);
    let mut acknowledged = Vec::new();
    for round in 0..5 {
        for n in 0..10 {
            let event =
                hookbus::Event::new("a.b", &serde_json::json!({ "round": round, "n": n })).unwrap();
            // A publish racing the kill may fail, typed; never a panic.
            match bus.publish(event) {
                Ok(id) => acknowledged.push(id),
                Err(e) => assert!(matches!(e.error(), Error::Storage(_)), "{:?}", e.error()),
            }
        }
        // Every connection of this bus, pooled and listening, killed.
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        assert!(killed >= 1, "round {round}: no connection to kill");
    }
    // The bus goes on with fresh connections.
    let last = bus
        .publish(hookbus::Event::new("a.b", &serde_json::json!("after")).unwrap())
        .unwrap();
    acknowledged.push(last);
    for id in &acknowledged {
        assert!(bus.event(*id).unwrap().is_some(), "acknowledged {id} lost");
    }
    bus.shutdown().unwrap();
}

#[test]
fn a_statement_past_the_timeout_is_a_storage_error_of_kind_timed_out() {
    let Some(url) = pg::url("a_statement_past_the_timeout_is_a_storage_error_of_kind_timed_out")
    else {
        return;
    };
    let schema = pg::fresh_schema(&url, "errors_statement_timeout");
    let bus = Bus::postgres(url.clone())
        .postgres_schema(schema.clone())
        .postgres_statement_timeout(Duration::from_millis(200))
        .open()
        .unwrap();
    // Another session holds the events table: the publish waits on it
    // until its statement timeout.
    let mut admin = pg::client(&url);
    let mut tx = admin.transaction().unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE \"{schema}\".events IN ACCESS EXCLUSIVE MODE"
    ))
    .unwrap();
    let failed = bus
        .publish(hookbus::Event::new("a.b", &serde_json::json!(1)).unwrap())
        .unwrap_err();
    match failed.error() {
        Error::Storage(s) => assert_eq!(s.io_error_kind(), Some(ErrorKind::TimedOut), "{s:?}"),
        other => panic!("expected Storage, got {other:?}"),
    }
    let event = failed.into_event();
    tx.rollback().unwrap();
    // Handed back whole, it publishes once the table is free.
    let id = bus.publish(event).unwrap();
    assert!(bus.event(id).unwrap().is_some());
    bus.shutdown().unwrap();
}
