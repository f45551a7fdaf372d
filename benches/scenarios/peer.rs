//! Scenario 6's peer: the outbox a team would write by hand. An SQLite
//! table (rusqlite, bundled SQLite, WAL) and polling sender threads:
//!
//! ```text
//! loop {
//!     SELECT id, type, payload FROM outbox
//!       WHERE endpoint = ? AND status = 0 [AND id % parts = part]
//!       ORDER BY id LIMIT 100;
//!     nothing?  sleep(poll: 50 ms) and try again
//!     for each row: build the body, sign it, POST it with ureq,
//!                   UPDATE outbox SET status = …, attempts = attempts + 1 WHERE id = ?
//! }
//! ```
//!
//! One sender thread per endpoint and unit of concurrency (each takes the
//! rows whose id modulo the concurrency is its own), so it runs as many
//! threads as hookbus. Publishing is one `INSERT` in its own `BEGIN
//! IMMEDIATE` transaction. Durability: WAL with `synchronous=NORMAL` by
//! default, which like hookbus's publish survives a kill -9 of the process
//! but not necessarily a power cut (`HOOKBUS_BENCH_PEER_SYNC=full` makes
//! the INSERTs fsync, as in scenario 1). The status UPDATEs use NORMAL:
//! losing one in a power cut means a resend, which at-least-once allows.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};

const SCHEMA: &str = "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        endpoint INTEGER NOT NULL,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        created INTEGER NOT NULL,
        status INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        updated INTEGER
    );
    CREATE INDEX outbox_pending ON outbox (endpoint, status, id);";

const INSERT: &str = "INSERT INTO outbox (endpoint, type, payload, created, status, attempts) \
                      VALUES (?1, ?2, ?3, ?4, 0, 0)";

pub fn connect(path: &Path, full_sync: bool) -> Connection {
    let conn = Connection::open(path).expect("open SQLite");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy_timeout");
    conn.pragma_update(
        None,
        "synchronous",
        if full_sync { "FULL" } else { "NORMAL" },
    )
    .expect("synchronous");
    conn
}

/// Creates the outbox (WAL mode is stored in the file).
pub fn create(path: &Path) {
    let conn = connect(path, false);
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("journal_mode=WAL");
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    conn.execute_batch(SCHEMA).expect("create the outbox");
}

/// Publishes one event: one INSERT in its own transaction.
pub fn publish(conn: &mut Connection, endpoint: usize, event_type: &str, payload: &[u8]) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("BEGIN IMMEDIATE");
    tx.prepare_cached(INSERT)
        .expect("prepare")
        .execute(params![
            endpoint as i64,
            event_type,
            payload,
            crate::now_ms()
        ])
        .expect("INSERT");
    tx.commit().expect("COMMIT");
}

/// Fills the outbox with a backlog in one transaction (not timed).
pub fn fill(path: &Path, total: usize, endpoints: usize) {
    let mut conn = connect(path, false);
    let tx = conn.transaction().expect("BEGIN");
    {
        let mut insert = tx.prepare(INSERT).expect("prepare");
        let payload = super::wire::event_payload(0);
        for k in 0..total {
            let ep = k % endpoints;
            insert
                .execute(params![
                    ep as i64,
                    format!("ev.{ep}"),
                    payload,
                    crate::now_ms()
                ])
                .expect("INSERT");
        }
    }
    tx.commit().expect("COMMIT");
}

/// Rows not yet delivered.
pub fn pending(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM outbox WHERE status = 0", [], |r| {
        r.get(0)
    })
    .expect("count pending")
}

/// One polling sender thread's loop, until `stop`.
pub struct Sender<'a> {
    pub path: &'a Path,
    pub agent: &'a ureq::Agent,
    pub url: String,
    pub endpoint: usize,
    pub part: usize,
    pub parts: usize,
    pub poll: Duration,
    pub stop: &'a AtomicBool,
}

impl Sender<'_> {
    pub fn run(self) {
        let conn = connect(self.path, false);
        let mut select = conn
            .prepare(
                "SELECT id, type, payload FROM outbox \
                 WHERE endpoint = ?1 AND status = 0 AND id % ?2 = ?3 ORDER BY id LIMIT 100",
            )
            .expect("prepare SELECT");
        let mut update = conn
            .prepare(
                "UPDATE outbox SET status = ?2, attempts = attempts + 1, updated = ?3 \
                 WHERE id = ?1",
            )
            .expect("prepare UPDATE");
        while !self.stop.load(Ordering::Relaxed) {
            let rows: Vec<(i64, String, Vec<u8>)> = select
                .query_map(
                    params![self.endpoint as i64, self.parts as i64, self.part as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .expect("SELECT")
                .collect::<Result<_, _>>()
                .expect("read rows");
            if rows.is_empty() {
                thread::sleep(self.poll);
                continue;
            }
            for (id, event_type, payload) in rows {
                let msg_id = hookbus::EventId::from_u128(id as u128).to_string();
                let body = super::wire::envelope(&msg_id, &event_type, &payload);
                let ok = super::wire::post(self.agent, &self.url, &msg_id, &body);
                // Failed rows stay pending (a real one would back off).
                let status = if ok { 1 } else { 0 };
                update
                    .execute(params![id, status, crate::now_ms()])
                    .expect("UPDATE");
            }
        }
    }
}
