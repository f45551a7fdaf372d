//! Read-your-writes for endpoint settings across replicas: every endpoint
//! change (added, changed, deleted, enabled, disabled, paused, resumed)
//! bumps one counter in its transaction and logs which endpoint it
//! touched. A publish compares the counter with the newest change this
//! replica has applied and catches up first if it is behind (see
//! `bus/replicas.rs`), so an endpoint added through replica A receives an
//! event published through replica B a moment later — not only once B
//! hears the notification. The same read gives the largest event id
//! stored, so that event ids follow publish order across replicas too.

use std::sync::atomic::Ordering;

use super::{event_id, pg, PgStore, Sql};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;

/// Changes kept in the log. A replica further behind than this reads every
/// endpoint again instead (one query; rare: a replica that was stalled
/// while this many changes were made).
const CHANGES_KEPT: i64 = 10_000;

impl PgStore {
    /// Records an endpoint change in the caller's transaction: the counter
    /// goes up by one (its row lock orders changes by commit) and the log
    /// names the endpoint. Returns the change's number.
    pub(super) fn bump_settings(&self, tx: &mut impl Sql, endpoint: EndpointId) -> Result<i64> {
        let bump = self
            .sql("UPDATE @.settings_version SET version = version + 1 WHERE one RETURNING version");
        let log = self.sql("INSERT INTO @.settings_changes (version, endpoint) VALUES ($1, $2)");
        let version: i64 = tx.query_one(bump.as_str(), &[]).map_err(pg)?.get(0);
        tx.execute(log.as_str(), &[&version, &(endpoint.0 as i64)])
            .map_err(pg)?;
        Ok(version)
    }

    /// After a change through this replica committed as `version`: if it
    /// was the only change since the last one applied here, this replica is
    /// current (it applies its own changes as it makes them).
    pub(super) fn applied_own(&self, version: i64) {
        let _ = self.settings_seen.compare_exchange(
            version - 1,
            version,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// The number of the newest endpoint change committed.
    pub(crate) fn settings_version(&self) -> Result<i64> {
        let q = self.sql("SELECT version FROM @.settings_version WHERE one");
        self.with_conn(|c| Ok(c.query_one(q.as_str(), &[]).map_err(pg)?.get(0)))
    }

    /// What a publish reads first: the newest endpoint change committed,
    /// and the largest event id stored (on any replica). One round trip.
    pub(crate) fn before_publish(&self) -> Result<(i64, Option<EventId>)> {
        let q = self.sql(
            "SELECT (SELECT version FROM @.settings_version WHERE one),
                    (SELECT id FROM @.events ORDER BY id DESC LIMIT 1)",
        );
        self.with_conn(|c| {
            let row = c.query_one(q.as_str(), &[]).map_err(pg)?;
            let last: Option<&[u8]> = row.get(1);
            Ok((row.get(0), last.map(event_id).transpose()?))
        })
    }

    /// The newest change this replica has applied.
    pub(crate) fn settings_seen(&self) -> i64 {
        self.settings_seen.load(Ordering::SeqCst)
    }

    /// This replica has applied every change up to `version`.
    pub(crate) fn mark_settings_seen(&self, version: i64) {
        self.settings_seen.fetch_max(version, Ordering::SeqCst);
    }

    /// The endpoints changed after `after`, by change number, or `None` if
    /// the log no longer reaches back that far.
    pub(crate) fn settings_changes(&self, after: i64) -> Result<Option<Vec<(i64, EndpointId)>>> {
        let q = self.sql(
            "SELECT version, endpoint FROM @.settings_changes WHERE version > $1 ORDER BY version",
        );
        self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[&after]).map_err(pg)?;
            let changes: Vec<(i64, EndpointId)> = rows
                .iter()
                .map(|r| (r.get::<_, i64>(0), EndpointId(r.get::<_, i64>(1) as u64)))
                .collect();
            match changes.first() {
                Some((first, _)) if *first != after + 1 => Ok(None),
                _ => Ok(Some(changes)),
            }
        })
    }

    /// Drops log entries older than the newest [`CHANGES_KEPT`].
    pub(crate) fn prune_settings_changes(&self) -> Result<()> {
        let q = self.sql(
            "DELETE FROM @.settings_changes
             WHERE version <= (SELECT version FROM @.settings_version WHERE one) - $1",
        );
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&CHANGES_KEPT])
                .map(drop)
                .map_err(pg)
        })
    }
}
