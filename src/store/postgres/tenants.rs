//! Tenants on PostgreSQL: each endpoint's tenant, the host's tenant
//! metadata, tenant deletions in progress and the deliveries they
//! cancelled. Same records and rules as the sled store's `tenants.rs`.

use super::{codec, event_id, event_key, pg, PgStore, Sql};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::store::records::{DeliveryRecord, DeliveryState};
use crate::store::tenants::{CancelledRecord, TenantRecord, TombstoneRecord};
use crate::tenant::TenantId;

impl PgStore {
    pub(crate) fn put_endpoint_tenant(&self, id: EndpointId, tenant: &TenantId) -> Result<()> {
        let q = self.sql(
            "INSERT INTO @.endpoint_tenants (endpoint, tenant) VALUES ($1, $2)
             ON CONFLICT (endpoint) DO UPDATE SET tenant = EXCLUDED.tenant",
        );
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&(id.0 as i64), &tenant.as_str()])
                .map(drop)
                .map_err(pg)
        })
    }

    pub(crate) fn has_endpoint_tenant(&self, id: EndpointId) -> Result<bool> {
        let q = self.sql("SELECT 1 FROM @.endpoint_tenants WHERE endpoint = $1");
        self.with_conn(|c| {
            Ok(c.query_opt(q.as_str(), &[&(id.0 as i64)])
                .map_err(pg)?
                .is_some())
        })
    }

    pub(crate) fn endpoint_tenants(&self) -> Result<Vec<Result<(EndpointId, TenantId)>>> {
        let q = self.sql("SELECT endpoint, tenant FROM @.endpoint_tenants ORDER BY endpoint");
        self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[]).map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let id = EndpointId(r.get::<_, i64>(0) as u64);
                    TenantId::from_stored(r.get(1)).map(|t| (id, t))
                })
                .collect())
        })
    }

    /// The tenant of one endpoint, if it has one of its own.
    pub(crate) fn endpoint_tenant(&self, id: EndpointId) -> Result<Option<TenantId>> {
        let q = self.sql("SELECT tenant FROM @.endpoint_tenants WHERE endpoint = $1");
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&(id.0 as i64)]).map_err(pg)?;
            row.map(|r| TenantId::from_stored(r.get(0))).transpose()
        })
    }

    pub(crate) fn put_tenant(&self, tenant: &TenantId, rec: &TenantRecord) -> Result<()> {
        let q = self.sql(
            "INSERT INTO @.tenants (key, record) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record",
        );
        let bytes = codec::encode(rec);
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&tenant.as_str(), &bytes])
                .map(drop)
                .map_err(pg)
        })
    }

    pub(crate) fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantRecord>> {
        let q = self.sql("SELECT record FROM @.tenants WHERE key = $1");
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&tenant.as_str()]).map_err(pg)?;
            row.map(|r| codec::decode("tenant", r.get::<_, &[u8]>(0)))
                .transpose()
        })
    }

    /// Tenants with metadata, in key order (bytewise, as sled orders them),
    /// after `after`, at most `limit`.
    pub(crate) fn tenants_after(
        &self,
        after: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<(TenantId, TenantRecord)>> {
        let q = self.sql(
            "SELECT key, record FROM @.tenants WHERE key COLLATE \"C\" > $1
             ORDER BY key COLLATE \"C\" LIMIT $2",
        );
        let after = after.map_or("", |t| t.as_str()).to_string();
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.with_conn(|c| c.query(q.as_str(), &[&after, &limit]).map_err(pg))?;
        let mut out = Vec::new();
        for r in rows {
            match TenantId::from_stored(r.get(0))
                .and_then(|t| Ok((t, codec::decode("tenant", r.get(1))?)))
            {
                Ok(found) => out.push(found),
                Err(e) => {
                    tracing::error!(error = %e, "skipping tenant metadata that cannot be read")
                }
            }
        }
        Ok(out)
    }

    /// Starts a tenant deletion: removes its metadata and writes the
    /// tombstone, in one transaction. Returns the tombstone's key.
    pub(crate) fn begin_tenant_deletion(&self, rec: &TombstoneRecord) -> Result<u64> {
        let seq = self.generate_id()?;
        let put = self.sql("INSERT INTO @.tenant_deletions (seq, record) VALUES ($1, $2)");
        let drop_meta = self.sql("DELETE FROM @.tenants WHERE key = $1");
        let bytes = codec::encode(rec);
        self.in_tx(|tx| {
            tx.execute(put.as_str(), &[&(seq as i64), &bytes])
                .map_err(pg)?;
            tx.execute(drop_meta.as_str(), &[&rec.tenant]).map_err(pg)?;
            Ok(())
        })?;
        Ok(seq)
    }

    pub(crate) fn tenant_deletions(&self) -> Result<Vec<(u64, Result<TombstoneRecord>)>> {
        let q = self.sql("SELECT seq, record FROM @.tenant_deletions ORDER BY seq");
        self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[]).map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0) as u64,
                        codec::decode("tenant deletion", r.get::<_, &[u8]>(1)),
                    )
                })
                .collect())
        })
    }

    /// Holds tenant deletion `seq` for this replica until the guard is
    /// dropped (or the process dies), waiting for a replica finishing it.
    pub(crate) fn lock_tenant_deletion(&self, seq: u64) -> Result<HeldLock> {
        let mut client = self.dedicated()?;
        client
            .execute(
                "SELECT pg_advisory_lock(hashtext($1))",
                &[&self.deletion_lock_key(seq)],
            )
            .map_err(pg)?;
        Ok(HeldLock { _session: client })
    }

    /// Holds tenant deletion `seq` if no live replica does, and it is still
    /// unfinished; `None` otherwise.
    pub(crate) fn try_lock_tenant_deletion(&self, seq: u64) -> Result<Option<HeldLock>> {
        let mut client = self.dedicated()?;
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtext($1))",
                &[&self.deletion_lock_key(seq)],
            )
            .map_err(pg)?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        // Finished by its own replica since the caller read the list?
        let q = self.sql("SELECT 1 FROM @.tenant_deletions WHERE seq = $1");
        let open = client
            .query_opt(q.as_str(), &[&(seq as i64)])
            .map_err(pg)?
            .is_some();
        Ok(open.then_some(HeldLock { _session: client }))
    }

    fn deletion_lock_key(&self, seq: u64) -> String {
        format!("hookbus tenant deletion {}{seq}", self.prefix)
    }

    pub(crate) fn finish_tenant_deletion(&self, seq: u64) -> Result<()> {
        let q = self.sql("DELETE FROM @.tenant_deletions WHERE seq = $1");
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&(seq as i64)])
                .map(drop)
                .map_err(pg)
        })
    }

    /// Removes an endpoint's settings, state and lease, and tells the
    /// replicas; its tenant row stays (its log stays the tenant's).
    pub(crate) fn remove_endpoint_settings(&self, id: EndpointId) -> Result<()> {
        self.remove_endpoint_rows(id, false)
    }

    /// Cancels every unfinished delivery of a removed endpoint (the
    /// `events` given are all among them: every delivery has a row here).
    /// Returns how many were cancelled.
    pub(crate) fn cancel_deliveries(
        &self,
        ep: EndpointId,
        events: impl IntoIterator<Item = EventId>,
        now_ms: u64,
    ) -> Result<usize> {
        // Every delivery is a row: the queue's events are among them.
        drop(events.into_iter());
        let take = self.sql(
            "DELETE FROM @.deliveries WHERE endpoint = $1 AND NOT finished RETURNING event, record",
        );
        let put = self.sql(
            "INSERT INTO @.cancelled (endpoint, event, record) VALUES ($1, $2, $3)
             ON CONFLICT (endpoint, event) DO NOTHING",
        );
        self.in_tx(|tx| {
            let rows = tx.query(take.as_str(), &[&(ep.0 as i64)]).map_err(pg)?;
            for r in &rows {
                let ev = event_id(r.get(0))?;
                let (created_ms, attempts) =
                    match codec::decode::<DeliveryRecord>("delivery", r.get(1)) {
                        Ok(rec) => (
                            rec.created_ms,
                            match rec.state {
                                DeliveryState::Waiting { next_attempt, .. } => {
                                    next_attempt.saturating_sub(1)
                                }
                                DeliveryState::InFlight { attempt } => attempt,
                                DeliveryState::Delivered { attempts }
                                | DeliveryState::Failed { attempts } => attempts,
                            },
                        ),
                        Err(_) => (ev.timestamp_ms(), 0),
                    };
                let rec = CancelledRecord {
                    created_ms,
                    cancelled_ms: now_ms,
                    attempts,
                };
                tx.execute(
                    put.as_str(),
                    &[&(ep.0 as i64), &event_key(ev), &codec::encode(&rec)],
                )
                .map_err(pg)?;
            }
            Ok(rows.len())
        })
    }

    pub(crate) fn cancelled(&self, ep: EndpointId, ev: EventId) -> Result<Option<CancelledRecord>> {
        let q = self.sql("SELECT record FROM @.cancelled WHERE endpoint = $1 AND event = $2");
        let key = event_key(ev);
        self.with_conn(|c| {
            let row = c
                .query_opt(q.as_str(), &[&(ep.0 as i64), &key])
                .map_err(pg)?;
            row.map(|r| codec::decode("cancelled delivery", r.get::<_, &[u8]>(0)))
                .transpose()
        })
    }
}

/// A session advisory lock, held on a connection of its own (a deletion
/// then never waits for its own pool) and released when this is dropped or
/// the process dies.
pub(crate) struct HeldLock {
    _session: postgres::Client,
}
