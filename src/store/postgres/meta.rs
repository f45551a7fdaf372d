//! Small values a feature keeps by name (the portal's session-signing key
//! and revocations), shared by every replica.

use super::{pg, PgStore, Sql};
use crate::error::Result;

impl PgStore {
    pub(crate) fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let q = self.sql("SELECT value FROM @.meta WHERE name = $1");
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&name]).map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    pub(crate) fn put_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        let q = self.sql(
            "INSERT INTO @.meta (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        );
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&name, &value])
                .map(drop)
                .map_err(pg)
        })
    }

    /// Stores `value` unless one is there, and returns the one kept: the
    /// primary key decides between replicas racing to create it.
    pub(crate) fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        let insert = self
            .sql("INSERT INTO @.meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING");
        let read = self.sql("SELECT value FROM @.meta WHERE name = $1");
        self.in_tx(|tx| {
            tx.execute(insert.as_str(), &[&name, &value]).map_err(pg)?;
            let row = tx.query_one(read.as_str(), &[&name]).map_err(pg)?;
            Ok(row.get(0))
        })
    }
}
