//! Sharing the queue among replicas: endpoint leases, and the attempt
//! writes fenced on them.
//!
//! Every endpoint is served by one replica at a time: the one holding its
//! lease (a row in `endpoint_leases` with an owner and an expiry). A
//! replica claims free or expired leases with `FOR UPDATE SKIP LOCKED`,
//! renews its own every third of the lease, and gives back idle ones above
//! its fair share so that replicas that join later get work. Serving a
//! whole endpoint (rather than single deliveries) is what keeps an
//! endpoint's `concurrency`, rate limit and order true across replicas.
//!
//! Fencing: an attempt starts only while this replica holds the lease, and
//! its outcome is written only if it still does (the lease row is locked
//! `FOR SHARE` meanwhile, so no claim can slip in between). A replica that
//! lost its lease (killed, or stalled past the lease) therefore neither
//! starts nor records an attempt; the new owner resends the delivery with
//! the attempt number its row holds, which never goes backwards.

use std::time::{Duration, Instant};

use super::{codec, event_key, pg, PgStore, Sql};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::store::records::{AttemptRecord, DeliveryRecord, DeliveryState};

/// `d` as whole milliseconds, for `interval` arithmetic in SQL.
fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl PgStore {
    /// Says this replica is alive; forgets replicas gone for ten leases.
    pub(crate) fn heartbeat(&self) -> Result<()> {
        let up = self.sql(
            "INSERT INTO @.replicas (id, seen_at) VALUES ($1, now())
             ON CONFLICT (id) DO UPDATE SET seen_at = now()",
        );
        let gone = self.sql(
            "DELETE FROM @.replicas WHERE seen_at < now() - $1::bigint * interval '1 millisecond'",
        );
        let lease = ms(self.lease);
        self.in_tx(|tx| {
            tx.execute(up.as_str(), &[&self.replica]).map_err(pg)?;
            tx.execute(gone.as_str(), &[&(lease.saturating_mul(10))])
                .map_err(pg)?;
            Ok(())
        })
    }

    /// Gives every endpoint a lease row (free), so that it can be claimed.
    pub(crate) fn ensure_leases(&self) -> Result<()> {
        let q = self.sql(
            "INSERT INTO @.endpoint_leases (endpoint, owner, until)
             SELECT id, '', '-infinity' FROM @.endpoints ON CONFLICT (endpoint) DO NOTHING",
        );
        self.with_conn(|c| c.execute(q.as_str(), &[]).map(drop).map_err(pg))
    }

    /// Extends every lease this replica holds; returns the endpoints it
    /// still serves (a lease another replica took after it expired is gone).
    pub(crate) fn renew_leases(&self) -> Result<Vec<EndpointId>> {
        let q = self.sql(
            "UPDATE @.endpoint_leases SET until = now() + $2::bigint * interval '1 millisecond'
             WHERE owner = $1 RETURNING endpoint",
        );
        let lease = ms(self.lease);
        // Taken before the query: every lease renewed (or claimed after it)
        // runs at least a lease from here, whatever the server's clock says.
        let sent = Instant::now();
        let kept = self.with_conn(|c| {
            let rows = c.query(q.as_str(), &[&self.replica, &lease]).map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| EndpointId(r.get::<_, i64>(0) as u64))
                .collect())
        })?;
        *self.renewed_at.lock() = Some(sent);
        Ok(kept)
    }

    /// Whether this replica's leases were renewed recently enough that an
    /// attempt may start now: within the first two thirds of the lease.
    /// The check before every request on a shared store: a replica that
    /// stalled (a pause, a starved CPU) past it may have lost its leases
    /// without having heard yet, and must not send what another replica
    /// may be sending already. Renewals come every third of the lease at
    /// most, so a live replica is never held up by it.
    pub(crate) fn leases_fresh(&self) -> bool {
        self.renewed_at
            .lock()
            .is_some_and(|at| at.elapsed() < self.lease.saturating_mul(2) / 3)
    }

    /// How many endpoints one replica should serve: all of them spread
    /// over the replicas alive now, rounded up.
    pub(crate) fn fair_share(&self) -> Result<usize> {
        let q = self.sql(
            "SELECT (SELECT count(*) FROM @.endpoints),
                    (SELECT count(*) FROM @.replicas WHERE seen_at > now() - $1::bigint * interval '1 millisecond')",
        );
        let lease = ms(self.lease);
        self.with_conn(|c| {
            let row = c.query_one(q.as_str(), &[&lease]).map_err(pg)?;
            let endpoints = row.get::<_, i64>(0).max(0) as usize;
            let replicas = row.get::<_, i64>(1).max(1) as usize;
            Ok(endpoints.div_ceil(replicas))
        })
    }

    /// Claims up to `n` free or expired endpoint leases.
    pub(crate) fn claim_leases(&self, n: usize) -> Result<Vec<EndpointId>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let q = self.sql(
            "UPDATE @.endpoint_leases l SET owner = $1, until = now() + $3::bigint * interval '1 millisecond'
             WHERE l.endpoint IN (
                 SELECT f.endpoint FROM @.endpoint_leases f
                 WHERE f.until < now() ORDER BY f.until, f.endpoint LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING l.endpoint",
        );
        let lease = ms(self.lease);
        let n = n.min(i64::MAX as usize) as i64;
        self.with_conn(|c| {
            let rows = c
                .query(q.as_str(), &[&self.replica, &n, &lease])
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| EndpointId(r.get::<_, i64>(0) as u64))
                .collect())
        })
    }

    /// Says this replica is gone (at shutdown, after its replica thread
    /// stopped), so the others' fair share counts it out at once instead of
    /// one lease later.
    pub(crate) fn leave(&self) -> Result<()> {
        let q = self.sql("DELETE FROM @.replicas WHERE id = $1");
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&self.replica])
                .map(drop)
                .map_err(pg)
        })
    }

    /// Gives leases back at once (an idle endpoint above the fair share, or
    /// every lease at shutdown), so another replica need not wait for them
    /// to expire.
    pub(crate) fn release_leases(&self, endpoints: &[EndpointId]) -> Result<()> {
        if endpoints.is_empty() {
            return Ok(());
        }
        let q = self.sql(
            "UPDATE @.endpoint_leases SET owner = '', until = '-infinity'
             WHERE owner = $1 AND endpoint = ANY($2)",
        );
        let ids: Vec<i64> = endpoints.iter().map(|e| e.0 as i64).collect();
        self.with_conn(|c| {
            c.execute(q.as_str(), &[&self.replica, &ids])
                .map(drop)
                .map_err(pg)
        })
    }

    /// Marks a delivery in flight before its attempt, if this replica
    /// still serves the endpoint with a lease that has not expired and the
    /// row is still as read (`was`). `false`: someone else has it now.
    ///
    /// `durable`: the mark must survive a server crash before the attempt
    /// (an attempt after the first of a round, as on sled); otherwise it is
    /// committed without waiting for the WAL flush — the stored state
    /// already names this attempt, and the next synchronous commit (or the
    /// WAL writer, within `wal_writer_delay`) makes it durable.
    pub(crate) fn begin_attempt(
        &self,
        ep: EndpointId,
        ev: EventId,
        was: &DeliveryRecord,
        in_flight: &DeliveryRecord,
        durable: bool,
    ) -> Result<bool> {
        let q = self.sql(
            "UPDATE @.deliveries SET record = $3, in_flight = true, updated_ms = $5
             WHERE endpoint = $1 AND event = $2 AND NOT finished AND record = $4
               AND EXISTS (SELECT 1 FROM @.endpoint_leases l
                           WHERE l.endpoint = $1 AND l.owner = $6 AND l.until > now())",
        );
        let key = event_key(ev);
        let (new, old) = (codec::encode(in_flight), codec::encode(was));
        let at = in_flight.updated_ms as i64;
        self.in_tx(|tx| {
            if !durable {
                tx.batch_execute("SET LOCAL synchronous_commit = off")
                    .map_err(pg)?;
            }
            let n = tx
                .execute(
                    q.as_str(),
                    &[&(ep.0 as i64), &key, &new, &old, &at, &self.replica],
                )
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    /// Records an attempt and the delivery's next state in one transaction,
    /// fenced on this replica's lease. An endpoint deleted meanwhile gets
    /// the log entry only. `false`: the lease is another replica's now and
    /// nothing was written.
    ///
    /// Committed without waiting for the WAL flush, like sled's attempt
    /// records (made durable by its background flush): if the server
    /// crashes first, the attempt is made again (at least once). Every
    /// later synchronous commit — the in-flight mark of the next attempt,
    /// so also the next delivery of an ordered endpoint — flushes it first.
    pub(crate) fn record_attempt(
        &self,
        attempt: &AttemptRecord,
        delivery: &DeliveryRecord,
    ) -> Result<bool> {
        let fence = self.sql(
            "SELECT (SELECT owner FROM @.endpoint_leases WHERE endpoint = $1 FOR SHARE),
                    EXISTS (SELECT 1 FROM @.endpoints WHERE id = $1)",
        );
        let log = self.sql(
            "INSERT INTO @.attempts (endpoint, event, attempt, started_ms, record)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        );
        let state = self.sql(
            "UPDATE @.deliveries SET record = $3, finished = $4, failed = $5, in_flight = false,
                    updated_ms = $6
             WHERE endpoint = $1 AND event = $2",
        );
        let ep = attempt.endpoint as i64;
        let key = event_key(EventId::from_u128(attempt.event));
        let entry = codec::encode(attempt);
        let next = codec::encode(delivery);
        let finished = delivery.state.is_finished();
        let failed = matches!(delivery.state, DeliveryState::Failed { .. });
        self.in_tx(|tx| {
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .map_err(pg)?;
            let row = tx.query_one(fence.as_str(), &[&ep]).map_err(pg)?;
            let owner: Option<String> = row.get(0);
            let exists: bool = row.get(1);
            if exists && owner.as_deref() != Some(self.replica.as_str()) {
                return Ok(false);
            }
            tx.execute(
                log.as_str(),
                &[
                    &ep,
                    &key,
                    &(attempt.attempt as i32),
                    &(attempt.started_ms as i64),
                    &entry,
                ],
            )
            .map_err(pg)?;
            if exists {
                tx.execute(
                    state.as_str(),
                    &[
                        &ep,
                        &key,
                        &next,
                        &finished,
                        &failed,
                        &(delivery.updated_ms as i64),
                    ],
                )
                .map_err(pg)?;
            }
            Ok(true)
        })
    }

    /// Runs `f` only if this replica holds the session advisory lock for
    /// background work (retention), taken and released around it on one
    /// connection: one replica at a time does it. `None` if another holds it.
    pub(crate) fn as_leader<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
        let key = format!("hookbus background {}", self.prefix);
        let mut conn = self.conn()?;
        let row = conn
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
            .map_err(pg)?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        let out = f();
        let unlocked = conn
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
            .map_err(pg);
        let out = out?;
        unlocked?;
        Ok(Some(out))
    }
}
