//! Storage on PostgreSQL: the same records as the sled store (the
//! versioned codec bytes, in `bytea` columns), beside the indexed columns
//! that queries, claims and leases need. Shared by every replica that opens
//! the same schema. The layout is in `migrations/` and explained in
//! `docs/postgres-schema.md`.
//!
//! Unlike sled, every delivery is an explicit row, written in the same
//! transaction as its event, so any replica can find it; `commit` is a
//! no-op because every write commits its own transaction before it returns.

mod conn;
mod deliveries;
mod errors;
#[cfg(feature = "portal")]
mod meta;
mod migrations;
pub(crate) mod notify;
mod publish;
pub(crate) mod queue;
mod settings;
mod tenants;

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use super::codec;
use super::records::{EndpointRecord, EndpointStateRecord, EventRecord};
use crate::endpoint::EndpointId;
use crate::error::{Error, Result};
use crate::event::EventId;
pub(crate) use errors::pg;
pub(crate) use publish::{Outbox, Published};

use conn::{Conn, Manager, Sql, Tx};

type Pool = r2d2::Pool<Manager>;

/// What the PostgreSQL store needs to open; the bus builds it from its
/// validated settings.
#[derive(Clone)]
pub(crate) struct PgOptions {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) pool_size: u32,
    pub(crate) statement_timeout: Duration,
    pub(crate) lease: Duration,
    /// How long a connection attempt to the server may take, unless the
    /// connection string sets `connect_timeout`. (A caller waits for a
    /// pooled connection up to the statement timeout.)
    pub(crate) connect_timeout: Duration,
}

pub(crate) struct PgStore {
    pool: Pool,
    /// The parsed connection settings, for the listener's own connection.
    config: postgres::Config,
    /// `"schema".`, prefixed to every table name.
    prefix: String,
    /// The LISTEN/NOTIFY channel of this schema.
    channel: String,
    /// This bus's name as a lease owner: unique per open.
    pub(crate) replica: String,
    pub(crate) lease: Duration,
    /// The newest endpoint change this replica has applied (see
    /// `settings.rs`).
    settings_seen: AtomicI64,
    /// When the last renewal of this replica's leases was sent (see
    /// `queue.rs`: an attempt starts only while it is recent).
    renewed_at: parking_lot::Mutex<Option<std::time::Instant>>,
}

impl PgStore {
    /// Connects, creates or migrates the schema (serialized across replicas
    /// by an advisory lock) and builds the connection pool.
    pub(crate) fn open(options: &PgOptions) -> Result<PgStore> {
        let mut config: postgres::Config =
            options
                .url
                .parse()
                .map_err(|e: postgres::Error| Error::InvalidConfig {
                    setting: "postgres url",
                    reason: errors::describe_url_error(&e),
                })?;
        let timeout_ms = options.statement_timeout.as_millis().max(1);
        // After the connection string's own `options` (kept, not replaced).
        let server_options = match config.get_options() {
            Some(given) if !given.trim().is_empty() => {
                format!("{given} -c statement_timeout={timeout_ms}")
            }
            _ => format!("-c statement_timeout={timeout_ms}"),
        };
        config.options(&server_options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("hookbus");
        }
        let mut client = config.connect(NoTls).map_err(pg)?;
        migrations::run(&mut client, &options.schema)?;
        drop(client);
        let manager = Manager(PostgresConnectionManager::new(config.clone(), NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            // Waiting for a free connection is part of an operation, which
            // may take up to the statement timeout.
            .connection_timeout(options.statement_timeout)
            .error_handler(Box::new(r2d2::LoggingErrorHandler))
            .build_unchecked(manager);
        let mut id = [0u8; 8];
        if getrandom::fill(&mut id).is_err() {
            id = fastrand::u64(..).to_be_bytes();
        }
        Ok(PgStore {
            pool,
            config,
            prefix: format!("\"{}\".", options.schema),
            channel: notify::channel(&options.schema),
            replica: format!("{}-{:016x}", std::process::id(), u64::from_be_bytes(id)),
            lease: options.lease,
            settings_seen: AtomicI64::new(0),
            renewed_at: parking_lot::Mutex::new(None),
        })
    }

    /// A pooled connection; a pool that cannot get one within the connect
    /// timeout is a storage error the caller may retry.
    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>> {
        self.pool.get().map_err(|e| {
            Error::Storage(crate::error::StorageError::io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no PostgreSQL connection available: {e}"),
            )))
        })
    }

    /// `text` with every `@.` replaced by the schema's prefix.
    fn sql(&self, text: &str) -> String {
        text.replace("@.", &self.prefix)
    }

    /// Runs `f` in one transaction, retried once if the connection was
    /// lost before anything was committed (every caller's work is
    /// idempotent or rolled back whole).
    fn in_tx<T>(&self, f: impl Fn(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut tries = 0;
        loop {
            tries += 1;
            let attempt = (|| {
                let mut conn = self.conn()?;
                let mut tx = conn.transaction().map_err(pg)?;
                let out = f(&mut tx)?;
                tx.commit().map_err(pg)?;
                Ok(out)
            })();
            match attempt {
                Err(e) if tries < 3 && errors::is_transient(&e) => {
                    tracing::warn!(error = %e, "PostgreSQL connection lost; retrying the transaction");
                    std::thread::sleep(Duration::from_millis(50 * tries));
                }
                other => return other,
            }
        }
    }

    /// Runs one read (or one single-statement write) with a retry on a
    /// lost connection.
    fn with_conn<T>(&self, f: impl Fn(&mut Conn) -> Result<T>) -> Result<T> {
        let mut tries = 0;
        loop {
            tries += 1;
            let attempt = (|| {
                let mut conn = self.conn()?;
                f(&mut conn)
            })();
            match attempt {
                Err(e) if tries < 3 && errors::is_transient(&e) => {
                    std::thread::sleep(Duration::from_millis(50 * tries));
                }
                other => return other,
            }
        }
    }

    /// Tells every replica (this one included) about a change, at commit.
    fn notify(&self, tx: &mut impl Sql, payload: &str) -> Result<()> {
        tx.execute("SELECT pg_notify($1, $2)", &[&self.channel, &payload])
            .map_err(pg)?;
        Ok(())
    }

    pub(crate) fn generate_id(&self) -> Result<u64> {
        let q = self.sql("SELECT nextval('@.ids')");
        self.with_conn(|c| {
            let row = c.query_one(q.as_str(), &[]).map_err(pg)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    pub(crate) fn last_event_id(&self) -> Result<Option<EventId>> {
        let q = self.sql("SELECT id FROM @.events ORDER BY id DESC LIMIT 1");
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[]).map_err(pg)?;
            row.map(|r| event_id(&r.get::<_, Vec<u8>>(0))).transpose()
        })
    }

    // ----- endpoints -----

    pub(crate) fn put_endpoint(&self, id: EndpointId, rec: &EndpointRecord) -> Result<()> {
        let q = self.sql(
            "INSERT INTO @.endpoints (id, record) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
        );
        // A new endpoint's lease starts free, for a replica to claim.
        let lease = self.sql(
            "INSERT INTO @.endpoint_leases (endpoint, owner, until)
             VALUES ($1, '', '-infinity') ON CONFLICT (endpoint) DO NOTHING",
        );
        let bytes = codec::encode(rec);
        let version = self.in_tx(|tx| {
            tx.execute(q.as_str(), &[&(id.0 as i64), &bytes])
                .map_err(pg)?;
            tx.execute(lease.as_str(), &[&(id.0 as i64)]).map_err(pg)?;
            self.notify(tx, &format!("n:{}", id.0))?;
            self.bump_settings(tx, id)
        })?;
        self.applied_own(version);
        Ok(())
    }

    pub(crate) fn endpoints(&self) -> Result<Vec<(EndpointId, Result<EndpointRecord>)>> {
        let q = self.sql("SELECT id, record FROM @.endpoints ORDER BY id");
        self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[]).map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let id = EndpointId(r.get::<_, i64>(0) as u64);
                    (id, codec::decode("endpoint", r.get::<_, &[u8]>(1)))
                })
                .collect())
        })
    }

    /// One endpoint's settings, if it exists.
    pub(crate) fn endpoint(&self, id: EndpointId) -> Result<Option<EndpointRecord>> {
        let q = self.sql("SELECT record FROM @.endpoints WHERE id = $1");
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&(id.0 as i64)]).map_err(pg)?;
            row.map(|r| codec::decode("endpoint", r.get::<_, &[u8]>(0)))
                .transpose()
        })
    }

    pub(crate) fn endpoint_state(&self, id: EndpointId) -> Result<EndpointStateRecord> {
        let q = self.sql("SELECT record FROM @.endpoint_states WHERE endpoint = $1");
        let found = self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&(id.0 as i64)]).map_err(pg)?;
            Ok(row.map(|r| codec::decode::<EndpointStateRecord>("endpoint state", r.get(0))))
        })?;
        match found {
            None => Ok(EndpointStateRecord::default()),
            Some(Ok(state)) => Ok(state),
            Some(Err(e)) => {
                tracing::error!(endpoint = %id, error = %e, "endpoint state unreadable; using defaults");
                Ok(EndpointStateRecord::default())
            }
        }
    }

    /// Writes an endpoint's state if the stored record is still `was`
    /// (byte for byte; a missing row counts as any `was`); `false`, and
    /// nothing written, if another replica changed it meanwhile. Without
    /// `was`, writes over whatever is stored. Other replicas hear of it
    /// when `mode` changed (`announce`).
    pub(crate) fn put_endpoint_state(
        &self,
        id: EndpointId,
        rec: &EndpointStateRecord,
        was: Option<&EndpointStateRecord>,
        announce: bool,
    ) -> Result<bool> {
        let q = self.sql(
            "INSERT INTO @.endpoint_states AS s (endpoint, record) VALUES ($1, $2)
             ON CONFLICT (endpoint) DO UPDATE SET record = EXCLUDED.record
             WHERE $3::bytea IS NULL OR s.record = $3",
        );
        let bytes = codec::encode(rec);
        let expected = was.map(codec::encode);
        let version = self.in_tx(|tx| {
            let written = tx
                .execute(q.as_str(), &[&(id.0 as i64), &bytes, &expected])
                .map_err(pg)?;
            if written == 0 {
                return Ok(None);
            }
            if !announce {
                return Ok(Some(None));
            }
            self.notify(tx, &format!("s:{}", id.0))?;
            self.bump_settings(tx, id).map(|v| Some(Some(v)))
        })?;
        match version {
            None => Ok(false),
            Some(version) => {
                if let Some(version) = version {
                    self.applied_own(version);
                }
                Ok(true)
            }
        }
    }

    /// Removes an endpoint, its state, its lease and its unfinished
    /// deliveries; finished ones and its log stay.
    pub(crate) fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        self.remove_endpoint_rows(id, true)
    }

    /// Removes an endpoint's settings, state and lease (with `queue`, its
    /// unfinished deliveries too) in one transaction, and tells the
    /// replicas.
    pub(super) fn remove_endpoint_rows(&self, id: EndpointId, queue: bool) -> Result<()> {
        let mut statements = vec![
            self.sql("DELETE FROM @.endpoints WHERE id = $1"),
            self.sql("DELETE FROM @.endpoint_states WHERE endpoint = $1"),
            self.sql("DELETE FROM @.endpoint_leases WHERE endpoint = $1"),
        ];
        if queue {
            statements
                .push(self.sql("DELETE FROM @.deliveries WHERE endpoint = $1 AND NOT finished"));
        }
        let version = self.in_tx(|tx| {
            for q in &statements {
                tx.execute(q.as_str(), &[&(id.0 as i64)]).map_err(pg)?;
            }
            self.notify(tx, &format!("n:{}", id.0))?;
            self.bump_settings(tx, id)
        })?;
        self.applied_own(version);
        Ok(())
    }

    // ----- events -----

    pub(crate) fn event(&self, id: EventId) -> Result<Option<EventRecord>> {
        let q = self.sql("SELECT record FROM @.events WHERE id = $1");
        let key = id.as_u128().to_be_bytes();
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&&key[..]]).map_err(pg)?;
            row.map(|r| codec::decode("event", r.get::<_, &[u8]>(0)))
                .transpose()
        })
    }

    /// Bytes the schema's tables and indexes take.
    pub(crate) fn size_on_disk(&self) -> Result<u64> {
        let schema = self
            .prefix
            .trim_end_matches('.')
            .trim_matches('"')
            .to_string();
        self.with_conn(|c| {
            let row = c
                .query_one(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relkind IN ('r', 'S')",
                    &[&schema],
                )
                .map_err(pg)?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    /// A connection of its own (not pooled): for LISTEN, and for session
    /// locks held while other work uses the pool.
    pub(crate) fn dedicated(&self) -> Result<postgres::Client> {
        self.config.connect(NoTls).map_err(pg)
    }

    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }
}

/// An event id stored as 16 big-endian bytes.
fn event_id(bytes: &[u8]) -> Result<EventId> {
    <[u8; 16]>::try_from(bytes)
        .map(|b| EventId::from_u128(u128::from_be_bytes(b)))
        .map_err(|_| Error::Corrupt {
            what: "event id",
            detail: format!("{} bytes instead of 16", bytes.len()),
        })
}

fn event_key(id: EventId) -> Vec<u8> {
    id.as_u128().to_be_bytes().to_vec()
}
