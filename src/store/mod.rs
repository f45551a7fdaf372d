//! Storage: the sled database and everything written to it, and (feature
//! `postgres`) the PostgreSQL store beside it, both behind [`Storage`]. The
//! only module that knows keys, trees, tables and the record encoding.
//!
//! Every write is a plain insert or remove: sled's atomic `Batch` seals its
//! write buffer twice per call (two syncs per publish, measured), so records
//! are laid out for single-key atomicity instead and multi-key updates are
//! ordered so that a crash between them is harmless. Durability comes from
//! [`Store::commit`], a group-committed `flush`.

pub(crate) mod codec;
mod commit;
pub(crate) mod keys;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod queue;
mod read_models;
pub(crate) mod records;
mod storage;
#[cfg(test)]
mod stored_format;
mod tags;
pub(crate) mod tenants;

pub(crate) use storage::Storage;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::IVec;

use crate::endpoint::EndpointId;
use crate::error::{Error, Result, StorageError};
use crate::event::EventId;
use commit::GroupCommit;
use records::{
    AttemptRecord, DeliveryRecord, DeliveryState, EndpointRecord, EndpointStateRecord, EventRecord,
    IdempotencyRecord,
};

/// Version of the database written by this build.
///
/// 1: the first layout. 2: event records may be of record version 2
/// (microsecond occurrence times), which builds of format 1 cannot read.
/// Format 2 reads every format-1 record as it is, so opening a format-1
/// database only raises the marker: builds that know only format 1 then
/// refuse it with [`Error::IncompatibleFormat`] instead of skipping the new
/// events as corrupt.
///
/// Format 2 also added tenants (`w`, `t`, `d`, `c` keys): builds of format
/// 1 would send every tenant's events to every endpoint, so they must
/// refuse a database that has tenants.
const FORMAT_VERSION: u8 = 2;

/// What the store needs to open: the bus builds it from its settings, which
/// have been validated by then.
#[derive(Clone, Debug)]
pub(crate) struct StoreOptions {
    /// The database directory, created if missing.
    pub(crate) path: PathBuf,
    /// sled's page cache, in bytes.
    pub(crate) cache_capacity_bytes: u64,
    /// How often sled flushes on its own, besides the flushes of commits.
    pub(crate) flush_every: Duration,
}

pub(crate) struct Store {
    db: sled::Db,
    group: GroupCommit,
    /// Declared after `db`, so dropped after it: see [`Released`].
    _released: Released,
}

/// Waits, when the store is dropped, until sled has let go of the
/// directory's file lock: sled's own threads hold it a moment after its
/// last handle is gone, and a bus reopened on the directory right after
/// shutting down would otherwise find it `AlreadyOpen`.
struct Released {
    dir: PathBuf,
}

/// Longest wait for sled to let go of the directory at drop.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Longest wait at open for a lock on the directory to be let go before
/// the open fails with `AlreadyOpen`: long enough for sled's threads to
/// finish with a handle dropped a moment before, short enough that a
/// directory really in use elsewhere is reported promptly.
const LOCK_WAIT: Duration = Duration::from_secs(1);

impl Drop for Released {
    fn drop(&mut self) {
        let deadline = Instant::now() + RELEASE_WAIT;
        while lock::held_elsewhere(&self.dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One delivery that has not finished, found at open.
pub(crate) struct Unfinished {
    pub(crate) endpoint: EndpointId,
    pub(crate) event: EventId,
    pub(crate) record: DeliveryRecord,
}

/// Where a delivery's state was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Only implied by its event's targets: no attempt recorded yet.
    Implied,
    /// A `p` key: waiting for a retry or in flight.
    Pending,
    /// An `f` key: delivered or failed.
    Finished,
}

impl Store {
    pub(crate) fn open(options: &StoreOptions) -> Result<Store> {
        check_directory(&options.path)?;
        let sled_config = sled::Config::new()
            .path(&options.path)
            .cache_capacity(options.cache_capacity_bytes)
            .flush_every_ms(Some(options.flush_every.as_millis().max(1) as u64));
        // sled 0.34 can panic on some damaged files instead of returning an
        // error; a damaged directory must not take the host down. A lock
        // held by a sled handle this process just dropped is let go by
        // sled's threads a moment later: waited for, up to LOCK_WAIT.
        let deadline = Instant::now() + LOCK_WAIT;
        let opened = loop {
            let opened = catch_unwind(AssertUnwindSafe(|| sled_config.open()));
            let locked = matches!(&opened, Ok(Err(sled::Error::Io(_))))
                && lock::held_elsewhere(&options.path);
            if !locked || Instant::now() >= deadline {
                break opened;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(sled::Error::Corruption { .. })) => {
                return Err(Error::Corrupt {
                    what: "database",
                    detail: "sled reported corruption while opening".into(),
                })
            }
            Ok(Err(sled::Error::Unsupported(why))) => return Err(Error::ForeignDirectory(why)),
            // sled locks its file and reports a lock held elsewhere as an
            // I/O error in words only: look at the lock itself.
            Ok(Err(sled::Error::Io(e))) => {
                return Err(if lock::held_elsewhere(&options.path) {
                    Error::AlreadyOpen(options.path.display().to_string())
                } else {
                    Error::Storage(StorageError::io(e))
                })
            }
            Ok(Err(e)) => return Err(Error::Storage(storage_error(e))),
            Err(_) => {
                return Err(Error::Corrupt {
                    what: "database",
                    detail: "sled panicked while opening the files".into(),
                })
            }
        };
        let store = Store {
            db,
            group: GroupCommit::default(),
            _released: Released {
                dir: options.path.clone(),
            },
        };
        store.check_format()?;
        Ok(store)
    }

    fn check_format(&self) -> Result<()> {
        match self.db.get(keys::FORMAT_KEY).db()? {
            Some(v) => match v.first() {
                Some(&FORMAT_VERSION) => Ok(()),
                Some(&found) if found < FORMAT_VERSION => {
                    self.db.insert(keys::FORMAT_KEY, &[FORMAT_VERSION]).db()?;
                    tracing::info!(
                        from = found,
                        to = FORMAT_VERSION,
                        "database format marker raised"
                    );
                    self.commit()
                }
                Some(&found) => Err(Error::IncompatibleFormat {
                    found,
                    supported: FORMAT_VERSION,
                }),
                None => Err(Error::Corrupt {
                    what: "format marker",
                    detail: "empty".into(),
                }),
            },
            None if self.db.is_empty() && self.db.tree_names().len() <= 1 => {
                self.db.insert(keys::FORMAT_KEY, &[FORMAT_VERSION]).db()?;
                self.commit()
            }
            None => Err(Error::ForeignDirectory(
                "a sled database without the hookbus format marker".into(),
            )),
        }
    }

    /// Makes every write applied so far durable (survives kill -9).
    pub(crate) fn commit(&self) -> Result<()> {
        self.group.commit(|| self.db.flush().map(drop).db())
    }

    /// Flushes performed by [`Store::commit`] so far.
    pub(crate) fn commit_flushes(&self) -> u64 {
        self.group.flushes()
    }

    /// A fresh id, unique in this database, for endpoints and log entries.
    pub(crate) fn generate_id(&self) -> Result<u64> {
        self.db.generate_id().db()
    }

    pub(crate) fn last_event_id(&self) -> Result<Option<EventId>> {
        let last = self
            .db
            .scan_prefix([keys::EVENT])
            .next_back()
            .transpose()
            .db()?;
        Ok(last
            .and_then(|(k, _)| keys::u128_at(&k, 1))
            .map(EventId::from_u128))
    }

    // ----- meta (only the portal keeps any today) -----

    /// A small value a feature keeps under `name` (see `keys`: the portal's
    /// session-signing key and session revocations), as its owner encoded it.
    #[cfg(feature = "portal")]
    pub(crate) fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(keys::meta(name)).db()?.map(|v| v.to_vec()))
    }

    /// Stores a meta value, replacing any, and makes it durable.
    #[cfg(feature = "portal")]
    pub(crate) fn put_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        self.db.insert(keys::meta(name), value).db()?;
        self.commit()
    }

    /// Stores `value` under `name` unless a value is there already, and
    /// returns the one that is kept (durable), so that two processes racing
    /// to create a value (a signing key) agree on one.
    #[cfg(feature = "portal")]
    pub(crate) fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        let key = keys::meta(name);
        let kept = match self
            .db
            .compare_and_swap(&key, None as Option<&[u8]>, Some(value))
            .db()?
        {
            Ok(()) => value.to_vec(),
            Err(sled::CompareAndSwapError { current, .. }) => match current {
                Some(current) => current.to_vec(),
                // Removed in between: meta values are never removed, so
                // this cannot happen; store ours rather than fail.
                None => {
                    self.db.insert(&key, value).db()?;
                    value.to_vec()
                }
            },
        };
        self.commit()?;
        Ok(kept)
    }

    // ----- endpoints -----

    /// Stores an endpoint's settings and makes them durable.
    pub(crate) fn put_endpoint(&self, id: EndpointId, rec: &EndpointRecord) -> Result<()> {
        self.db
            .insert(keys::endpoint(id), codec::encode(rec))
            .db()?;
        self.commit()
    }

    /// Every endpoint record; ones that fail to decode are returned as errors
    /// so the caller can report and skip them.
    pub(crate) fn endpoints(&self) -> Result<Vec<(EndpointId, Result<EndpointRecord>)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::ENDPOINT]) {
            let (k, v) = item.db()?;
            let Some(id) = keys::u64_at(&k, 1) else {
                continue;
            };
            out.push((EndpointId(id), codec::decode("endpoint", &v)));
        }
        Ok(out)
    }

    /// An endpoint's state; a missing or unreadable one reads as the default
    /// (active, no history), reported through `tracing` if unreadable.
    pub(crate) fn endpoint_state(&self, id: EndpointId) -> Result<EndpointStateRecord> {
        match decode_opt(
            "endpoint state",
            self.db.get(keys::endpoint_state(id)).db()?,
        ) {
            Ok(state) => Ok(state.unwrap_or_default()),
            Err(e) => {
                tracing::error!(endpoint = %id, error = %e, "endpoint state unreadable; using defaults");
                Ok(EndpointStateRecord::default())
            }
        }
    }

    /// Stores an endpoint's state. Not yet durable: the caller commits when
    /// it must.
    pub(crate) fn put_endpoint_state(
        &self,
        id: EndpointId,
        rec: &EndpointStateRecord,
    ) -> Result<()> {
        self.db
            .insert(keys::endpoint_state(id), codec::encode(rec))
            .db()?;
        Ok(())
    }

    /// Removes an endpoint and its queue. Its finished deliveries and its
    /// delivery log stay.
    pub(crate) fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        // The settings go first: deliveries to an endpoint that no longer
        // exists are ignored at open, so a crash halfway is harmless.
        self.db.remove(keys::endpoint(id)).db()?;
        self.db.remove(keys::endpoint_state(id)).db()?;
        for key in self.db.scan_prefix(keys::pending_of(id)).keys() {
            self.db.remove(key.db()?).db()?;
        }
        self.commit()
    }

    // ----- events -----

    /// Writes an event, which implies its first delivery to each target.
    /// One insert, so it is atomic. Not yet durable: the caller commits.
    pub(crate) fn insert_event(&self, id: EventId, event: &EventRecord) -> Result<()> {
        self.db.insert(keys::event(id), codec::encode(event)).db()?;
        Ok(())
    }

    pub(crate) fn event(&self, id: EventId) -> Result<Option<EventRecord>> {
        decode_opt("event", self.db.get(keys::event(id)).db()?)
    }

    pub(crate) fn idempotency(
        &self,
        tenant: Option<&str>,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        decode_opt(
            "idempotency key",
            self.db.get(keys::idempotency(tenant, key)).db()?,
        )
    }

    /// Remembers an idempotency key. Written after its event, so a key
    /// never points to an event that was not written.
    pub(crate) fn put_idempotency(
        &self,
        tenant: Option<&str>,
        key: &str,
        rec: &IdempotencyRecord,
    ) -> Result<()> {
        self.db
            .insert(keys::idempotency(tenant, key), codec::encode(rec))
            .db()?;
        Ok(())
    }

    // ----- deliveries -----

    /// Where a delivery stands, and where that was read from. `None` if the
    /// event was not queued for the endpoint.
    pub(crate) fn delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored)>> {
        Ok(self.delivery_and_event(ep, ev)?.map(|(d, s, _)| (d, s)))
    }

    /// [`Store::delivery`], plus the event when it had to be read to find
    /// an implied delivery (so a sender reads it once).
    pub(crate) fn delivery_and_event(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored, Option<EventRecord>)>> {
        if let Some((rec, stored)) = self.keyed_delivery(ep, ev)? {
            return Ok(Some((rec, stored, None)));
        }
        Ok(self.event(ev)?.and_then(|e| {
            implied_delivery(ep, &e).map(|implied| (implied, Stored::Implied, Some(e)))
        }))
    }

    /// A delivery's state if it has a key of its own (`p`, then `f`).
    pub(crate) fn keyed_delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored)>> {
        if let Some(v) = self.db.get(keys::pending(ep, ev)).db()? {
            return Ok(Some((codec::decode("delivery", &v)?, Stored::Pending)));
        }
        if let Some(v) = self.db.get(keys::finished(ep, ev)).db()? {
            return Ok(Some((codec::decode("delivery", &v)?, Stored::Finished)));
        }
        Ok(None)
    }

    /// Whether a delivery has a key of its own (`p` or `f`).
    pub(crate) fn has_delivery_key(&self, ep: EndpointId, ev: EventId) -> Result<bool> {
        Ok(self.db.contains_key(keys::pending(ep, ev)).db()?
            || self.db.contains_key(keys::finished(ep, ev)).db()?)
    }

    /// Stores an unfinished delivery's state (waiting or in flight). Not yet
    /// durable: the caller commits when it must.
    pub(crate) fn put_pending(
        &self,
        ep: EndpointId,
        ev: EventId,
        rec: &DeliveryRecord,
    ) -> Result<()> {
        self.db
            .insert(keys::pending(ep, ev), codec::encode(rec))
            .db()?;
        Ok(())
    }

    /// Stores a delivery's new state: under `p` while unfinished, under `f`
    /// once finished (written before the `p` key is removed, so a crash in
    /// between leaves both and `f` wins).
    pub(crate) fn put_delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
        rec: &DeliveryRecord,
        was: Stored,
    ) -> Result<()> {
        if rec.state.is_finished() {
            self.db
                .insert(keys::finished(ep, ev), codec::encode(rec))
                .db()?;
            if was == Stored::Pending {
                self.db.remove(keys::pending(ep, ev)).db()?;
            }
        } else {
            self.db
                .insert(keys::pending(ep, ev), codec::encode(rec))
                .db()?;
            if was == Stored::Finished {
                self.db.remove(keys::finished(ep, ev)).db()?;
            }
        }
        Ok(())
    }

    /// Records an attempt, then the delivery state it led to. The log entry
    /// is written first: a crash in between repeats the attempt, it never
    /// loses its record. Made durable by the background flusher; if the
    /// process dies first, the delivery is attempted again after open.
    pub(crate) fn record_attempt(
        &self,
        attempt: &AttemptRecord,
        delivery: &DeliveryRecord,
        was: Stored,
    ) -> Result<()> {
        let ep = EndpointId(attempt.endpoint);
        let ev = EventId::from_u128(attempt.event);
        let seq = self.db.generate_id().db()?;
        self.db
            .insert(keys::attempt(ep, seq), codec::encode(attempt))
            .db()?;
        self.db
            .insert(keys::attempt_by_event(ev, seq), &ep.0.to_be_bytes())
            .db()?;
        self.db
            .insert(keys::attempt_global(seq), &ep.0.to_be_bytes())
            .db()?;
        // The endpoint may have been deleted while the attempt ran: then its
        // queue is gone and must not be recreated.
        if self.db.contains_key(keys::endpoint(ep)).db()? {
            self.put_delivery(ep, ev, delivery, was)?;
        }
        Ok(())
    }

    /// Event id below which every delivery has its own key.
    pub(crate) fn checkpoint(&self) -> Result<EventId> {
        let v = self.db.get(keys::CHECKPOINT_KEY).db()?;
        Ok(EventId::from_u128(
            v.and_then(|v| keys::u128_at(&v, 0)).unwrap_or(0),
        ))
    }

    /// Moves the checkpoint. The caller has made the keys it relies on
    /// durable first.
    pub(crate) fn set_checkpoint(&self, id: EventId) -> Result<()> {
        self.db
            .insert(keys::CHECKPOINT_KEY, &id.as_u128().to_be_bytes())
            .db()?;
        Ok(())
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
        let prefix = keys::finished_of(ep);
        let upper = match before {
            Some(ev) => keys::finished(ep, ev).to_vec(),
            None => {
                let mut k = prefix.to_vec();
                k.extend_from_slice(&[0xff; 17]);
                k
            }
        };
        let mut out = Vec::new();
        for item in self.db.range(prefix.to_vec()..upper).rev() {
            let (k, v) = item.db()?;
            let Some(ev) = keys::u128_at(&k, 9) else {
                continue;
            };
            let rec: DeliveryRecord = codec::decode("delivery", &v)?;
            if keep(&rec.state) {
                out.push((EventId::from_u128(ev), rec));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Failed deliveries of an endpoint last changed at or after `since_ms`.
    pub(crate) fn failed_since(
        &self,
        ep: EndpointId,
        since_ms: u64,
    ) -> Result<Vec<(EventId, DeliveryRecord)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(keys::finished_of(ep)) {
            let (k, v) = item.db()?;
            let Some(ev) = keys::u128_at(&k, 9) else {
                continue;
            };
            let rec: DeliveryRecord = codec::decode("delivery", &v)?;
            if matches!(rec.state, DeliveryState::Failed { .. }) && rec.updated_ms >= since_ms {
                out.push((EventId::from_u128(ev), rec));
            }
        }
        Ok(out)
    }

    // ----- the delivery log -----

    fn attempt_at(&self, ep: u64, seq: u64) -> Result<Option<AttemptRecord>> {
        decode_opt(
            "attempt",
            self.db.get(keys::attempt(EndpointId(ep), seq)).db()?,
        )
    }

    pub(crate) fn attempts_for_event(&self, ev: EventId) -> Result<Vec<(u64, AttemptRecord)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(keys::attempts_by_event(ev)) {
            let (k, v) = item.db()?;
            let (Some(seq), Some(ep)) = (keys::u64_at(&k, 17), keys::u64_at(&v, 0)) else {
                continue;
            };
            if let Some(rec) = self.attempt_at(ep, seq)? {
                out.push((seq, rec));
            }
        }
        Ok(out)
    }

    /// Attempts newest first, optionally of one endpoint, with sequence
    /// numbers below `before`; `keep` filters, and the walk stops after
    /// `limit` kept ones. Returns each with its sequence number (the cursor).
    pub(crate) fn attempts_newest_first(
        &self,
        endpoint: Option<EndpointId>,
        before: Option<u64>,
        limit: usize,
        mut keep: impl FnMut(&AttemptRecord) -> bool,
    ) -> Result<Vec<(u64, AttemptRecord)>> {
        let before = before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut take = |seq: u64, rec: AttemptRecord| {
            if keep(&rec) {
                out.push((seq, rec));
            }
            out.len() < limit
        };
        match endpoint {
            Some(ep) => {
                let range = keys::attempts_of(ep).to_vec()..keys::attempt(ep, before).to_vec();
                for item in self.db.range(range).rev() {
                    let (k, v) = item.db()?;
                    let Some(seq) = keys::u64_at(&k, 9) else {
                        continue;
                    };
                    if !take(seq, codec::decode("attempt", &v)?) {
                        break;
                    }
                }
            }
            None => {
                let range = [keys::ATTEMPT_GLOBAL].to_vec()..keys::attempt_global(before).to_vec();
                for item in self.db.range(range).rev() {
                    let (k, v) = item.db()?;
                    let (Some(seq), Some(ep)) = (keys::u64_at(&k, 1), keys::u64_at(&v, 0)) else {
                        continue;
                    };
                    if let Some(rec) = self.attempt_at(ep, seq)? {
                        if !take(seq, rec) {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    // ----- retention -----

    /// Deletes events older than `cutoff` (and below the checkpoint) whose
    /// every delivery succeeded, with their deliveries, attempts and
    /// idempotency key. Events with a pending or failed delivery stay.
    /// Looks at no more than `budget` events from `from` on; returns how
    /// many were purged and where to go on next time (`None`: the end was
    /// reached, start over).
    pub(crate) fn purge_delivered(
        &self,
        from: EventId,
        cutoff: EventId,
        budget: usize,
    ) -> Result<(usize, Option<EventId>)> {
        let upper = cutoff.min(self.checkpoint()?);
        let mut purged = 0;
        let mut seen = 0;
        for item in self.db.range(keys::event(from)..keys::event(upper)) {
            let (k, v) = item.db()?;
            let Some(ev) = keys::u128_at(&k, 1).map(EventId::from_u128) else {
                continue;
            };
            seen += 1;
            if seen > budget {
                return Ok((purged, Some(ev)));
            }
            let Ok(event) = codec::decode::<EventRecord>("event", &v) else {
                // Reported at open; an unreadable event is kept for inspection.
                continue;
            };
            if !self.all_delivered(ev, &event)? {
                continue;
            }
            for item in self.db.scan_prefix(keys::attempts_by_event(ev)) {
                let (k, v) = item.db()?;
                if let (Some(seq), Some(ep)) = (keys::u64_at(&k, 17), keys::u64_at(&v, 0)) {
                    self.db.remove(keys::attempt(EndpointId(ep), seq)).db()?;
                    self.db.remove(keys::attempt_global(seq)).db()?;
                }
                self.db.remove(k).db()?;
            }
            for &t in &event.targets {
                self.db.remove(keys::finished(EndpointId(t), ev)).db()?;
                self.db.remove(keys::cancelled(EndpointId(t), ev)).db()?;
            }
            if let Some(key) = &event.idempotency_key {
                self.db
                    .remove(keys::idempotency(event.tenant.as_deref(), key))
                    .db()?;
            }
            self.db.remove(keys::event(ev)).db()?;
            purged += 1;
        }
        Ok((purged, None))
    }

    fn all_delivered(&self, ev: EventId, event: &EventRecord) -> Result<bool> {
        for &t in &event.targets {
            let ep = EndpointId(t);
            if self.db.contains_key(keys::pending(ep, ev)).db()? {
                return Ok(false);
            }
            match self.db.get(keys::finished(ep, ev)).db()? {
                Some(v) => {
                    let rec: DeliveryRecord = codec::decode("delivery", &v)?;
                    if !matches!(rec.state, DeliveryState::Delivered { .. }) {
                        return Ok(false);
                    }
                }
                // No key below the checkpoint: the endpoint was deleted.
                None if !self.db.contains_key(keys::endpoint(ep)).db()? => {}
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Forgets idempotency keys recorded before `cutoff_ms`.
    pub(crate) fn purge_idempotency(&self, cutoff_ms: u64) -> Result<usize> {
        let mut purged = 0;
        for item in self.db.scan_prefix([keys::IDEMPOTENCY]) {
            let (k, v) = item.db()?;
            let expired = codec::decode::<IdempotencyRecord>("idempotency key", &v)
                .map_or(true, |r| r.created_ms < cutoff_ms);
            if expired {
                self.db.remove(k).db()?;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Bytes the database takes on disk.
    pub(crate) fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().db()
    }

    /// Flushes everything (used at shutdown).
    pub(crate) fn flush(&self) -> Result<()> {
        self.db.flush().db()?;
        Ok(())
    }
}

/// The first delivery an event implies for an endpoint, if it targets it.
pub(crate) fn implied_delivery(ep: EndpointId, event: &EventRecord) -> Option<DeliveryRecord> {
    event
        .targets
        .contains(&ep.0)
        .then(|| DeliveryRecord::implied(event.created_ms))
}

fn corrupt_key(what: &'static str, key: &[u8]) -> Error {
    Error::Corrupt {
        what,
        detail: format!("malformed key of {} bytes", key.len()),
    }
}

impl records::DeliveryState {
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self, Self::Delivered { .. } | Self::Failed { .. })
    }
}

fn decode_opt<T: codec::Record>(what: &'static str, v: Option<IVec>) -> Result<Option<T>> {
    v.map(|bytes| codec::decode(what, &bytes)).transpose()
}

/// Refuses a path that is a file, or a non-empty directory that holds no
/// sled database: hookbus must not scatter its files among someone else's.
/// Creates the directory if it does not exist.
fn check_directory(path: &Path) -> Result<()> {
    let io = |action| move |source| Error::Io { action, source };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fs::create_dir_all(path).map_err(io("creating the database directory"));
        }
        Err(e) => return Err(io("reading the database directory")(e)),
    };
    if !meta.is_dir() {
        return Err(Error::ForeignDirectory(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    if path.join("conf").is_file() {
        return Ok(());
    }
    // No `conf` yet: an empty directory, or one whose database creation
    // was cut short (a kill while sled created its files) — both fine. A
    // directory holding anything else is someone else's.
    for entry in fs::read_dir(path).map_err(io("reading the database directory"))? {
        let entry = entry.map_err(io("reading the database directory"))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let sled_own = matches!(name.as_ref(), "db" | "blobs") || name.starts_with("snap.");
        if !sled_own {
            return Err(Error::ForeignDirectory(format!(
                "{} holds other files and no database",
                path.display()
            )));
        }
    }
    Ok(())
}

/// sled's failures as hookbus's opaque storage error. There is no
/// `From<sled::Error>` on the public error type, so that the API does not
/// depend on the engine's version.
fn storage_error(e: sled::Error) -> StorageError {
    match e {
        sled::Error::Io(e) => StorageError::io(e),
        other => StorageError::engine(other.to_string()),
    }
}

/// `.db()?` on a sled result: its error as [`Error::Storage`].
trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for std::result::Result<T, sled::Error> {
    fn db(self) -> Result<T> {
        self.map_err(|e| Error::Storage(storage_error(e)))
    }
}

/// Whether another handle holds the lock sled takes on its data file.
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
mod lock {
    use std::fs::File;
    use std::path::Path;

    use fs2::FileExt;

    /// sled locks `<dir>/db` exclusively with `fs2` (an OS file lock, held
    /// per open file, so another open of the same file in this process
    /// conflicts too). Trying the same lock tells a lock held by another bus
    /// from other I/O failures. If the lock is free, it is released at once.
    pub(super) fn held_elsewhere(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join("db")) else {
            return false;
        };
        match file.try_lock_exclusive() {
            Ok(()) => {
                // Closing the file releases the lock anyway.
                let _ = FileExt::unlock(&file);
                false
            }
            Err(e) => {
                e.raw_os_error().is_some()
                    && e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
            }
        }
    }
}

/// sled takes no file lock on other platforms, so a lock is never the cause.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod lock {
    pub(super) fn held_elsewhere(_dir: &std::path::Path) -> bool {
        false
    }
}

#[cfg(all(test, feature = "portal"))]
mod meta_tests {
    use super::*;

    #[test]
    fn meta_values_are_kept_and_the_first_insert_wins() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            path: dir.path().join("db"),
            cache_capacity_bytes: 1024 * 1024,
            flush_every: Duration::from_millis(500),
        };
        {
            let store = Store::open(&options).unwrap();
            assert_eq!(store.meta("a").unwrap(), None);
            assert_eq!(store.meta_or_insert("a", b"first").unwrap(), b"first");
            assert_eq!(store.meta_or_insert("a", b"second").unwrap(), b"first");
            store.put_meta("b", b"x").unwrap();
            store.put_meta("b", b"y").unwrap();
            // Meta keys never read as the format marker or the checkpoint.
            store.put_meta("format", &[99]).unwrap();
            assert_eq!(store.checkpoint().unwrap().as_u128(), 0);
        }
        let store = Store::open(&options).unwrap();
        assert_eq!(store.meta("a").unwrap().as_deref(), Some(&b"first"[..]));
        assert_eq!(store.meta("b").unwrap().as_deref(), Some(&b"y"[..]));
    }
}
