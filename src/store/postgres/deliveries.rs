//! Delivery rows, the delivery log and retention on PostgreSQL.

use super::{codec, event_id, event_key, pg, PgStore, Sql};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::store::queue::Window;
use crate::store::records::{AttemptRecord, DeliveryRecord, DeliveryState};
use crate::store::{Stored, Unfinished};

/// Rows read per round trip when a filter runs on this side.
const PAGE: i64 = 500;

impl PgStore {
    /// A delivery's row, and whether it is finished.
    pub(crate) fn delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored)>> {
        let q = self
            .sql("SELECT finished, record FROM @.deliveries WHERE endpoint = $1 AND event = $2");
        let key = event_key(ev);
        self.with_conn(|c| {
            let Some(row) = c
                .query_opt(q.as_str(), &[&(ep.0 as i64), &key])
                .map_err(pg)?
            else {
                return Ok(None);
            };
            let stored = if row.get(0) {
                Stored::Finished
            } else {
                Stored::Pending
            };
            Ok(Some((codec::decode("delivery", row.get(1))?, stored)))
        })
    }

    /// Writes a delivery's state as it is (a resend, a recover, a lowered
    /// `max_attempts`), and tells the replica serving the endpoint when it
    /// is to be sent.
    pub(crate) fn put_delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
        rec: &DeliveryRecord,
    ) -> Result<()> {
        let q = self.sql(
            "INSERT INTO @.deliveries (endpoint, event, finished, failed, in_flight, updated_ms, record)
             VALUES ($1, $2, $3, $4, $7, $5, $6)
             ON CONFLICT (endpoint, event) DO UPDATE SET finished = EXCLUDED.finished,
               failed = EXCLUDED.failed, in_flight = EXCLUDED.in_flight,
               updated_ms = EXCLUDED.updated_ms, record = EXCLUDED.record",
        );
        let key = event_key(ev);
        let bytes = codec::encode(rec);
        let finished = rec.state.is_finished();
        let failed = matches!(rec.state, DeliveryState::Failed { .. });
        self.in_tx(|tx| {
            tx.execute(
                q.as_str(),
                &[
                    &(ep.0 as i64),
                    &key,
                    &finished,
                    &failed,
                    &(rec.updated_ms as i64),
                    &bytes,
                    &matches!(rec.state, DeliveryState::InFlight { .. }),
                ],
            )
            .map_err(pg)?;
            if !finished {
                self.notify(tx, &format!("d:{}", ep.0))?;
            }
            Ok(())
        })
    }

    /// Up to `limit` unfinished deliveries of an endpoint from event `from`
    /// on, in event order, skipping those `skip` names.
    pub(crate) fn pending_window(
        &self,
        ep: EndpointId,
        from: EventId,
        limit: usize,
        skip: impl Fn(EventId) -> bool,
    ) -> Result<Window> {
        let q = self.sql(
            "SELECT event, record FROM @.deliveries
             WHERE endpoint = $1 AND NOT finished AND event >= $2
             ORDER BY event LIMIT $3",
        );
        let mut found = Vec::new();
        let mut cursor = event_key(from);
        loop {
            let rows = self.with_conn(|c| {
                c.query(q.as_str(), &[&(ep.0 as i64), &cursor, &PAGE])
                    .map_err(pg)
            })?;
            let full = rows.len() as i64 == PAGE;
            for row in &rows {
                let ev = event_id(row.get(0))?;
                if found.len() >= limit {
                    return Ok(Window {
                        found,
                        next: Some(ev),
                    });
                }
                if skip(ev) {
                    continue;
                }
                found.push(unfinished(ep, ev, row.get(1)));
            }
            match rows.last() {
                Some(last) if full => {
                    let mut next = last.get::<_, Vec<u8>>(0);
                    // Just past the last row read.
                    next.push(0);
                    cursor = next;
                }
                _ => return Ok(Window { found, next: None }),
            }
        }
    }

    /// An endpoint's unfinished deliveries of events older than `before`
    /// that `skip` does not name, oldest first, up to `limit`. For an
    /// ordered endpoint: what must go before `before`.
    pub(crate) fn unfinished_before(
        &self,
        ep: EndpointId,
        before: EventId,
        limit: usize,
        skip: impl Fn(EventId) -> bool,
    ) -> Result<Vec<Result<Unfinished>>> {
        let q = self.sql(
            "SELECT event, record FROM @.deliveries
             WHERE endpoint = $1 AND NOT finished AND event < $2
             ORDER BY event LIMIT $3",
        );
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.with_conn(|c| {
            c.query(q.as_str(), &[&(ep.0 as i64), &event_key(before), &limit])
                .map_err(pg)
        })?;
        let mut found = Vec::new();
        for row in &rows {
            let ev = event_id(row.get(0))?;
            if skip(ev) {
                continue;
            }
            found.push(unfinished(ep, ev, row.get(1)));
        }
        Ok(found)
    }

    /// How many deliveries of an endpoint are unfinished, and how many of
    /// those are in flight.
    pub(crate) fn depth(&self, ep: EndpointId) -> Result<(usize, usize)> {
        let q = self.sql(
            "SELECT count(*), count(*) FILTER (WHERE in_flight)
             FROM @.deliveries WHERE endpoint = $1 AND NOT finished",
        );
        self.with_conn(|c| {
            let row = c.query_one(q.as_str(), &[&(ep.0 as i64)]).map_err(pg)?;
            let all = row.get::<_, i64>(0).max(0) as usize;
            let flying = row.get::<_, i64>(1).max(0) as usize;
            Ok((all.saturating_sub(flying), flying))
        })
    }

    /// Unfinished deliveries of each of `endpoints` that has any.
    pub(crate) fn unfinished_counts(
        &self,
        endpoints: &[EndpointId],
    ) -> Result<Vec<(EndpointId, usize)>> {
        let q = self.sql(
            "SELECT endpoint, count(*) FROM @.deliveries
             WHERE NOT finished AND endpoint = ANY($1) GROUP BY endpoint",
        );
        let ids: Vec<i64> = endpoints.iter().map(|e| e.0 as i64).collect();
        self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[&ids]).map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        EndpointId(r.get::<_, i64>(0) as u64),
                        r.get::<_, i64>(1).max(0) as usize,
                    )
                })
                .collect())
        })
    }

    /// Unfinished deliveries in the whole shared queue.
    pub(crate) fn unfinished_total(&self) -> Result<usize> {
        let q = self.sql("SELECT count(*) FROM @.deliveries WHERE NOT finished");
        self.with_conn(|c| {
            let row = c.query_one(q.as_str(), &[]).map_err(pg)?;
            Ok(row.get::<_, i64>(0).max(0) as usize)
        })
    }

    /// The oldest unfinished delivery of an endpoint.
    pub(crate) fn oldest_unfinished(&self, ep: EndpointId) -> Result<Option<EventId>> {
        let q = self.sql(
            "SELECT event FROM @.deliveries WHERE endpoint = $1 AND NOT finished ORDER BY event LIMIT 1",
        );
        self.with_conn(|c| {
            let row = c.query_opt(q.as_str(), &[&(ep.0 as i64)]).map_err(pg)?;
            row.map(|r| event_id(r.get(0))).transpose()
        })
    }

    /// Finished deliveries of an endpoint whose state `keep` accepts,
    /// newest event first, below `before` if given.
    pub(crate) fn finished_deliveries(
        &self,
        ep: EndpointId,
        before: Option<EventId>,
        limit: usize,
        keep: impl Fn(&DeliveryState) -> bool,
    ) -> Result<Vec<(EventId, DeliveryRecord)>> {
        let q = self.sql(
            "SELECT event, record FROM @.deliveries
             WHERE endpoint = $1 AND finished AND event < $2
             ORDER BY event DESC LIMIT $3",
        );
        let mut cursor = before.map_or(vec![0xff; 17], event_key);
        let mut out = Vec::new();
        loop {
            let rows = self.with_conn(|c| {
                c.query(q.as_str(), &[&(ep.0 as i64), &cursor, &PAGE])
                    .map_err(pg)
            })?;
            for row in &rows {
                let rec: DeliveryRecord = codec::decode("delivery", row.get(1))?;
                if keep(&rec.state) {
                    out.push((event_id(row.get(0))?, rec));
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == PAGE => cursor = last.get(0),
                _ => return Ok(out),
            }
        }
    }

    /// Failed deliveries of an endpoint last changed at or after `since_ms`.
    pub(crate) fn failed_since(
        &self,
        ep: EndpointId,
        since_ms: u64,
    ) -> Result<Vec<(EventId, DeliveryRecord)>> {
        let q = self.sql(
            "SELECT event, record FROM @.deliveries
             WHERE endpoint = $1 AND finished AND failed AND updated_ms >= $2 ORDER BY event",
        );
        self.with_conn(|c| {
            let rows = c
                .query(q.as_str(), &[&(ep.0 as i64), &(since_ms as i64)])
                .map_err(pg)?;
            rows.iter()
                .map(|r| Ok((event_id(r.get(0))?, codec::decode("delivery", r.get(1))?)))
                .collect()
        })
    }

    // ----- the delivery log -----

    pub(crate) fn attempts_for_event(&self, ev: EventId) -> Result<Vec<(u64, AttemptRecord)>> {
        let q = self.sql("SELECT seq, record FROM @.attempts WHERE event = $1 ORDER BY seq");
        let key = event_key(ev);
        self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[&key]).map_err(pg)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.get::<_, i64>(0) as u64,
                        codec::decode("attempt", r.get(1))?,
                    ))
                })
                .collect()
        })
    }

    /// Attempts newest first, optionally of one endpoint, with sequence
    /// numbers below `before`; `keep` filters, and the walk stops after
    /// `limit` kept ones.
    pub(crate) fn attempts_newest_first(
        &self,
        endpoint: Option<EndpointId>,
        before: Option<u64>,
        limit: usize,
        mut keep: impl FnMut(&AttemptRecord) -> bool,
    ) -> Result<Vec<(u64, AttemptRecord)>> {
        let q = self.sql(
            "SELECT seq, record FROM @.attempts
             WHERE ($1::bigint IS NULL OR endpoint = $1) AND seq < $2
             ORDER BY seq DESC LIMIT $3",
        );
        let ep = endpoint.map(|e| e.0 as i64);
        let mut cursor = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let mut out = Vec::new();
        loop {
            let rows =
                self.with_conn(|c| c.query(q.as_str(), &[&ep, &cursor, &PAGE]).map_err(pg))?;
            for row in &rows {
                let rec: AttemptRecord = codec::decode("attempt", row.get(1))?;
                if keep(&rec) {
                    out.push((row.get::<_, i64>(0) as u64, rec));
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == PAGE => cursor = last.get(0),
                _ => return Ok(out),
            }
        }
    }

    // ----- retention -----

    /// Deletes events below `cutoff` whose every delivery succeeded (or was
    /// cancelled, or belonged to a deleted endpoint), with their
    /// deliveries, attempts and idempotency key. Looks at no more than
    /// `budget` events from `from` on.
    pub(crate) fn purge_delivered(
        &self,
        from: EventId,
        cutoff: EventId,
        budget: usize,
    ) -> Result<(usize, Option<EventId>)> {
        let pick =
            self.sql("SELECT id FROM @.events WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3");
        let doomed = self.sql(
            "SELECT e FROM unnest($1::bytea[]) AS e
             WHERE NOT EXISTS (SELECT 1 FROM @.deliveries d
                               WHERE d.event = e AND (NOT d.finished OR d.failed))",
        );
        let deletes = [
            self.sql("DELETE FROM @.attempts WHERE event = ANY($1)"),
            self.sql("DELETE FROM @.deliveries WHERE event = ANY($1)"),
            self.sql("DELETE FROM @.cancelled WHERE event = ANY($1)"),
            self.sql("DELETE FROM @.idempotency WHERE event = ANY($1)"),
            self.sql("DELETE FROM @.events WHERE id = ANY($1)"),
        ];
        let (lo, hi) = (event_key(from), event_key(cutoff));
        let budget = budget.min(i64::MAX as usize) as i64;
        self.in_tx(|tx| {
            let picked: Vec<Vec<u8>> = tx
                .query(pick.as_str(), &[&lo, &hi, &budget])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let next = if picked.len() as i64 == budget {
                picked
                    .last()
                    .map(|k| event_id(k))
                    .transpose()?
                    .map(|e| EventId::from_u128(e.as_u128().saturating_add(1)))
            } else {
                None
            };
            let gone: Vec<Vec<u8>> = tx
                .query(doomed.as_str(), &[&picked])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !gone.is_empty() {
                for q in &deletes {
                    tx.execute(q.as_str(), &[&gone]).map_err(pg)?;
                }
            }
            Ok((gone.len(), next))
        })
    }

    /// Forgets idempotency keys recorded before `cutoff_ms`.
    pub(crate) fn purge_idempotency(&self, cutoff_ms: u64) -> Result<usize> {
        let q = self.sql("DELETE FROM @.idempotency WHERE created_ms < $1");
        self.with_conn(|c| Ok(c.execute(q.as_str(), &[&(cutoff_ms as i64)]).map_err(pg)? as usize))
    }
}

/// A delivery row read for a queue: its record decoded, or the reason it
/// cannot be.
fn unfinished(ep: EndpointId, ev: EventId, record: &[u8]) -> Result<Unfinished> {
    codec::decode::<DeliveryRecord>("delivery", record).map(|record| Unfinished {
        endpoint: ep,
        event: ev,
        record,
    })
}
