//! Creating and migrating the schema when a bus opens: versioned SQL files
//! in `migrations/`, applied by refinery, whose history table lives in the
//! bus's schema. Replicas opening at once take turns on a session advisory
//! lock, so each version is applied once and a replica never sees a
//! half-made schema.

use postgres::Client;

use super::errors::pg;
use crate::error::{Error, Result, StorageError};

refinery::embed_migrations!("src/store/postgres/migrations");

/// Makes `schema` exist at the newest version. `schema` has been validated
/// (identifier characters only), so it can be quoted into SQL.
pub(super) fn run(client: &mut Client, schema: &str) -> Result<()> {
    let lock_key = format!("hookbus migrations {schema}");
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock_key])
        .map_err(pg)?;
    let migrated = migrate(client, schema);
    // Unlocked on every path; a lost connection releases it anyway.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_key])
        .map_err(pg);
    migrated.and(unlocked.map(drop))
}

fn migrate(client: &mut Client, schema: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
        ))
        .map_err(pg)?;
    let report = migrations::runner().run(client).map_err(|e| {
        Error::Storage(StorageError::engine(format!(
            "migrating the PostgreSQL schema failed: {e}"
        )))
    });
    client.batch_execute("RESET search_path").map_err(pg)?;
    for applied in report?.applied_migrations() {
        tracing::info!(
            schema,
            version = applied.version(),
            name = applied.name(),
            "PostgreSQL schema migrated"
        );
    }
    Ok(())
}
