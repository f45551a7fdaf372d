//! Publishing on PostgreSQL: the event, one delivery row per target and
//! the idempotency key, in one transaction — the bus's own, or the host's
//! (the transactional outbox: the event exists if and only if the host's
//! transaction commits). In the host's transaction, a NOTIFY sent inside
//! it reaches the replicas at commit; the bus's own publishes notify after
//! their commit, coalesced (`bus/notices.rs`).

use super::{codec, event_id, event_key, pg, PgStore, Sql};
use crate::endpoint::EndpointId;
use crate::error::{Error, Result, StorageError};
use crate::event::EventId;
use crate::store::records::{DeliveryRecord, EventRecord};

/// Everything one publish writes.
pub(crate) struct Outbox<'a> {
    pub(crate) id: EventId,
    pub(crate) record: &'a EventRecord,
    /// The idempotency key's tenant (`""` for the default tenant) and key.
    pub(crate) key: Option<(&'a str, &'a str)>,
    /// Keys recorded before this (ms since the epoch) have expired.
    pub(crate) key_cutoff_ms: u64,
}

/// What a publish did.
pub(crate) enum Published {
    /// The event and its deliveries were written.
    Stored,
    /// The idempotency key was seen within the window: nothing was
    /// written; the first event's id.
    Duplicate(EventId),
}

impl PgStore {
    /// Writes a publish in a transaction of the bus's own and commits it,
    /// without a notification: the caller tells the other replicas once it
    /// committed (coalesced, see `bus/notices.rs`).
    pub(crate) fn publish(&self, outbox: &Outbox<'_>) -> Result<Published> {
        self.in_tx(|tx| self.write_publish(tx, outbox, false))
    }

    /// Writes a publish through `tx`, a transaction the host commits, with
    /// the notification inside it (delivered if and when it commits).
    pub(crate) fn publish_on(&self, tx: &mut impl Sql, outbox: &Outbox<'_>) -> Result<Published> {
        self.write_publish(tx, outbox, true)
    }

    fn write_publish(
        &self,
        client: &mut impl Sql,
        outbox: &Outbox<'_>,
        notify: bool,
    ) -> Result<Published> {
        let id = event_key(outbox.id);
        let now = outbox.record.created_ms as i64;
        if let Some((tenant, key)) = outbox.key {
            // The unique key decides between concurrent publishes: the
            // second waits for the first's commit, then finds its row. An
            // expired key, or one whose event is gone, is taken over.
            let claim = self.sql(
                "INSERT INTO @.idempotency AS k (tenant, key, event, created_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, key) DO UPDATE
                 SET event = EXCLUDED.event, created_ms = EXCLUDED.created_ms
                 WHERE k.created_ms < $5
                    OR NOT EXISTS (SELECT 1 FROM @.events e WHERE e.id = k.event)
                 RETURNING event",
            );
            let cutoff = outbox.key_cutoff_ms as i64;
            let won = client
                .query_opt(claim.as_str(), &[&tenant, &key, &id, &now, &cutoff])
                .map_err(pg)?;
            if won.is_none() {
                let first =
                    self.sql("SELECT event FROM @.idempotency WHERE tenant = $1 AND key = $2");
                let row = client
                    .query_one(first.as_str(), &[&tenant, &key])
                    .map_err(pg)?;
                return Ok(Published::Duplicate(event_id(row.get::<_, &[u8]>(0))?));
            }
        }
        // A conflict means an earlier try of this same publish committed
        // and only its acknowledgement was lost (ids are unique per
        // publish): it is stored, deliveries and all.
        let insert_event = self
            .sql("INSERT INTO @.events (id, record) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING");
        let record = codec::encode(outbox.record);
        let inserted = client
            .execute(insert_event.as_str(), &[&id, &record])
            .map_err(pg)?;
        if inserted == 0 {
            // Only if the stored event is this one: another replica's event
            // under the same id (ids are unique with odds of 2^-40 per
            // pair, not by construction) must not make this publish look
            // stored.
            let stored = self.sql("SELECT record FROM @.events WHERE id = $1");
            let row = client.query_one(stored.as_str(), &[&id]).map_err(pg)?;
            if row.get::<_, &[u8]>(0) != record.as_slice() {
                return Err(Error::Storage(StorageError::engine(format!(
                    "event id {} is taken by another event; publish again",
                    outbox.id
                ))));
            }
            return Ok(Published::Stored);
        }
        if !outbox.record.targets.is_empty() {
            let targets: Vec<i64> = outbox.record.targets.iter().map(|&t| t as i64).collect();
            let first = codec::encode(&DeliveryRecord::implied(outbox.record.created_ms));
            let insert = self.sql(
                "INSERT INTO @.deliveries (endpoint, event, finished, failed, updated_ms, record)
                 SELECT t, $2, false, false, $3, $4 FROM unnest($1::bigint[]) AS t",
            );
            client
                .execute(insert.as_str(), &[&targets, &id, &now, &first])
                .map_err(pg)?;
            if notify {
                let ids: Vec<EndpointId> = targets.iter().map(|&t| EndpointId(t as u64)).collect();
                self.notify(client, &super::notify::deliveries_payload(&ids))?;
            }
        }
        Ok(Published::Stored)
    }
}
