//! The one storage interface the bus, the senders, the queries and the
//! janitor use: the embedded sled store, or (feature `postgres`) the
//! PostgreSQL store that many replicas share. An enum rather than a trait
//! object: the sled calls stay direct (and generic closures stay
//! possible), and each backend's own extras are reached through
//! [`Storage::shared`] where the bus must act differently.
//!
//! Where the backends differ in kind: sled implies a delivery by its
//! event's targets until its first attempt, and keeps a queue checkpoint;
//! PostgreSQL writes every delivery as a row at publish, so it has neither
//! (the checkpoint reads as "everything", and nothing is implied).

use super::records::{
    AttemptRecord, DeliveryRecord, DeliveryState, EndpointRecord, EndpointStateRecord, EventRecord,
    IdempotencyRecord,
};
use super::tenants::{CancelledRecord, TenantRecord, TombstoneRecord};
use super::{queue::Window, Store, Stored, Unfinished};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::tenant::TenantId;

#[cfg(feature = "postgres")]
use super::postgres::PgStore;

/// The storage of an open bus.
pub(crate) enum Storage {
    Sled(Store),
    #[cfg(feature = "postgres")]
    Postgres(Box<PgStore>),
}

/// Calls the same method on whichever backend it is.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Storage::Sled($s) => $e,
            #[cfg(feature = "postgres")]
            Storage::Postgres($s) => $e,
        }
    };
}

impl Storage {
    /// The PostgreSQL store, when the bus is shared by replicas.
    #[cfg(feature = "postgres")]
    pub(crate) fn shared(&self) -> Option<&PgStore> {
        match self {
            Storage::Sled(_) => None,
            Storage::Postgres(pg) => Some(pg),
        }
    }

    /// Whether deliveries are shared with other replicas (so a lane holds
    /// only what this replica serves, and the stored rows are the truth
    /// for queue depths).
    pub(crate) fn is_shared(&self) -> bool {
        !matches!(self, Storage::Sled(_))
    }

    /// The sled store, for what only it has (publish's group commit, the
    /// queue checkpoint, spilling).
    pub(crate) fn sled(&self) -> Option<&Store> {
        match self {
            Storage::Sled(s) => Some(s),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => None,
        }
    }

    pub(crate) fn commit(&self) -> Result<()> {
        match self {
            Storage::Sled(s) => s.commit(),
            // Every write committed its transaction before returning.
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => Ok(()),
        }
    }

    pub(crate) fn commit_flushes(&self) -> u64 {
        match self {
            Storage::Sled(s) => s.commit_flushes(),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => 0,
        }
    }

    pub(crate) fn flush(&self) -> Result<()> {
        match self {
            Storage::Sled(s) => s.flush(),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => Ok(()),
        }
    }

    pub(crate) fn generate_id(&self) -> Result<u64> {
        each!(self, s => s.generate_id())
    }

    pub(crate) fn last_event_id(&self) -> Result<Option<EventId>> {
        each!(self, s => s.last_event_id())
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64> {
        each!(self, s => s.size_on_disk())
    }

    // ----- meta (only the portal keeps any today) -----

    #[cfg(feature = "portal")]
    pub(crate) fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        each!(self, s => s.meta(name))
    }

    #[cfg(feature = "portal")]
    pub(crate) fn put_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        each!(self, s => s.put_meta(name, value))
    }

    #[cfg(feature = "portal")]
    pub(crate) fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        each!(self, s => s.meta_or_insert(name, value))
    }

    // ----- endpoints -----

    pub(crate) fn put_endpoint(&self, id: EndpointId, rec: &EndpointRecord) -> Result<()> {
        each!(self, s => s.put_endpoint(id, rec))
    }

    pub(crate) fn endpoints(&self) -> Result<Vec<(EndpointId, Result<EndpointRecord>)>> {
        each!(self, s => s.endpoints())
    }

    pub(crate) fn endpoint_state(&self, id: EndpointId) -> Result<EndpointStateRecord> {
        each!(self, s => s.endpoint_state(id))
    }

    /// Writes an endpoint's state if the stored one is still `was` (what
    /// this process last wrote or read); `false` if another replica
    /// changed it meanwhile (never on sled, where this process is the only
    /// writer). Without `was`, writes whatever is stored. `mode_changed`
    /// tells other replicas to read it.
    pub(crate) fn put_endpoint_state(
        &self,
        id: EndpointId,
        rec: &EndpointStateRecord,
        was: Option<&EndpointStateRecord>,
        mode_changed: bool,
    ) -> Result<bool> {
        // Only other replicas care, and sled has none.
        #[cfg(not(feature = "postgres"))]
        let _ = (was, mode_changed);
        match self {
            Storage::Sled(s) => s.put_endpoint_state(id, rec).map(|()| true),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => pg.put_endpoint_state(id, rec, was, mode_changed),
        }
    }

    pub(crate) fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        each!(self, s => s.delete_endpoint(id))
    }

    // ----- events (the sled publish path; PostgreSQL publishes through
    // its own transaction, see `PgStore::publish`) -----

    pub(crate) fn event(&self, id: EventId) -> Result<Option<EventRecord>> {
        each!(self, s => s.event(id))
    }

    pub(crate) fn idempotency(
        &self,
        tenant: Option<&str>,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        match self {
            Storage::Sled(s) => s.idempotency(tenant, key),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => Ok(None),
        }
    }

    // ----- deliveries -----

    pub(crate) fn delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored)>> {
        each!(self, s => s.delivery(ep, ev))
    }

    pub(crate) fn delivery_and_event(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored, Option<EventRecord>)>> {
        match self {
            Storage::Sled(s) => s.delivery_and_event(ep, ev),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => Ok(pg.delivery(ep, ev)?.map(|(d, s)| (d, s, None))),
        }
    }

    pub(crate) fn keyed_delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
    ) -> Result<Option<(DeliveryRecord, Stored)>> {
        match self {
            Storage::Sled(s) => s.keyed_delivery(ep, ev),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => pg.delivery(ep, ev),
        }
    }

    pub(crate) fn put_delivery(
        &self,
        ep: EndpointId,
        ev: EventId,
        rec: &DeliveryRecord,
        was: Stored,
    ) -> Result<()> {
        match self {
            Storage::Sled(s) => s.put_delivery(ep, ev, rec, was),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => pg.put_delivery(ep, ev, rec),
        }
    }

    /// Marks a delivery in flight before an attempt. On sled only needed
    /// for attempts after the first of a round (`needed`), and made
    /// durable; on PostgreSQL always, fenced on this replica's lease.
    /// `false`: the delivery is not this replica's to attempt.
    pub(crate) fn begin_attempt(
        &self,
        ep: EndpointId,
        ev: EventId,
        was: (&DeliveryRecord, Stored),
        in_flight: &DeliveryRecord,
        needed: bool,
    ) -> Result<bool> {
        match self {
            Storage::Sled(s) => {
                if needed {
                    s.put_delivery(ep, ev, in_flight, was.1)?;
                    s.commit()?;
                }
                Ok(true)
            }
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => pg.begin_attempt(ep, ev, was.0, in_flight, needed),
        }
    }

    /// Records an attempt and the delivery state it led to. `false`: on
    /// PostgreSQL, this replica lost the endpoint's lease and nothing was
    /// written.
    pub(crate) fn record_attempt(
        &self,
        attempt: &AttemptRecord,
        delivery: &DeliveryRecord,
        was: Stored,
    ) -> Result<bool> {
        match self {
            Storage::Sled(s) => s.record_attempt(attempt, delivery, was).map(|()| true),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => pg.record_attempt(attempt, delivery),
        }
    }

    pub(crate) fn finished_deliveries(
        &self,
        ep: EndpointId,
        before: Option<EventId>,
        limit: usize,
        keep: impl Fn(&DeliveryState) -> bool,
    ) -> Result<Vec<(EventId, DeliveryRecord)>> {
        each!(self, s => s.finished_deliveries(ep, before, limit, keep))
    }

    pub(crate) fn failed_since(
        &self,
        ep: EndpointId,
        since_ms: u64,
    ) -> Result<Vec<(EventId, DeliveryRecord)>> {
        each!(self, s => s.failed_since(ep, since_ms))
    }

    pub(crate) fn pending_window(
        &self,
        ep: EndpointId,
        from: EventId,
        limit: usize,
        skip: impl Fn(EventId) -> bool,
    ) -> Result<Window> {
        each!(self, s => s.pending_window(ep, from, limit, skip))
    }

    /// The oldest delivery of `ep`'s stored queue whose round has begun
    /// ([`DeliveryRecord::begun`]), looked for past `window` (a first window
    /// of that queue) when the window holds none: an ordered endpoint's
    /// lane must hold it to send it first. Reads on in windows of `limit`
    /// rows, through at most `search` rows in all.
    pub(crate) fn begun_past(
        &self,
        ep: EndpointId,
        window: &Window,
        limit: usize,
        search: usize,
    ) -> Result<Option<Unfinished>> {
        let begun_in = |found: &[Result<Unfinished>]| {
            found
                .iter()
                .filter_map(|u| u.as_ref().ok())
                .any(|u| u.record.begun())
        };
        if begun_in(&window.found) {
            return Ok(None);
        }
        let mut from = window.next;
        let mut read = window.found.len();
        while let Some(at) = from.filter(|_| read < search) {
            let next = self.pending_window(ep, at, limit.max(1), |_| false)?;
            read += next.found.len();
            if let Some(u) = next
                .found
                .into_iter()
                .filter_map(Result::ok)
                .find(|u| u.record.begun())
            {
                return Ok(Some(u));
            }
            from = next.next;
        }
        Ok(None)
    }

    pub(crate) fn has_pending_key(&self, ep: EndpointId, ev: EventId) -> Result<bool> {
        match self {
            Storage::Sled(s) => s.has_pending_key(ep, ev),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => Ok(pg
                .delivery(ep, ev)?
                .is_some_and(|(_, stored)| stored == Stored::Pending)),
        }
    }

    pub(crate) fn count_pending(&self, ep: EndpointId, from: EventId) -> Result<usize> {
        match self {
            Storage::Sled(s) => s.count_pending(ep, from),
            #[cfg(feature = "postgres")]
            Storage::Postgres(pg) => pg.depth(ep).map(|(queued, flying)| queued + flying),
        }
    }

    /// Event id below which every delivery has a stored state of its own:
    /// on PostgreSQL, every one does.
    pub(crate) fn checkpoint(&self) -> Result<EventId> {
        match self {
            Storage::Sled(s) => s.checkpoint(),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => Ok(EventId::from_u128(u128::MAX)),
        }
    }

    /// First deliveries implied by events from `checkpoint` on (sled);
    /// PostgreSQL implies none.
    pub(crate) fn implied_since(
        &self,
        checkpoint: EventId,
        wanted: impl Fn(EndpointId) -> bool,
    ) -> Result<Vec<Result<Unfinished>>> {
        match self {
            Storage::Sled(s) => s.implied_since(checkpoint, wanted),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => Ok(Vec::new()),
        }
    }

    // ----- the delivery log -----

    pub(crate) fn attempts_for_event(&self, ev: EventId) -> Result<Vec<(u64, AttemptRecord)>> {
        each!(self, s => s.attempts_for_event(ev))
    }

    pub(crate) fn attempts_newest_first(
        &self,
        endpoint: Option<EndpointId>,
        before: Option<u64>,
        limit: usize,
        keep: impl FnMut(&AttemptRecord) -> bool,
    ) -> Result<Vec<(u64, AttemptRecord)>> {
        each!(self, s => s.attempts_newest_first(endpoint, before, limit, keep))
    }

    // ----- retention -----

    pub(crate) fn purge_delivered(
        &self,
        from: EventId,
        cutoff: EventId,
        budget: usize,
    ) -> Result<(usize, Option<EventId>)> {
        each!(self, s => s.purge_delivered(from, cutoff, budget))
    }

    pub(crate) fn purge_idempotency(&self, cutoff_ms: u64) -> Result<usize> {
        each!(self, s => s.purge_idempotency(cutoff_ms))
    }

    // ----- tenants -----

    pub(crate) fn put_endpoint_tenant(&self, id: EndpointId, tenant: &TenantId) -> Result<()> {
        each!(self, s => s.put_endpoint_tenant(id, tenant))
    }

    pub(crate) fn has_endpoint_tenant(&self, id: EndpointId) -> Result<bool> {
        each!(self, s => s.has_endpoint_tenant(id))
    }

    pub(crate) fn endpoint_tenants(&self) -> Result<Vec<Result<(EndpointId, TenantId)>>> {
        each!(self, s => s.endpoint_tenants())
    }

    pub(crate) fn put_tenant(&self, tenant: &TenantId, rec: &TenantRecord) -> Result<()> {
        each!(self, s => s.put_tenant(tenant, rec))
    }

    pub(crate) fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantRecord>> {
        each!(self, s => s.tenant(tenant))
    }

    pub(crate) fn tenants_after(
        &self,
        after: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<(TenantId, TenantRecord)>> {
        each!(self, s => s.tenants_after(after, limit))
    }

    pub(crate) fn begin_tenant_deletion(&self, rec: &TombstoneRecord) -> Result<u64> {
        each!(self, s => s.begin_tenant_deletion(rec))
    }

    pub(crate) fn tenant_deletions(&self) -> Result<Vec<(u64, Result<TombstoneRecord>)>> {
        each!(self, s => s.tenant_deletions())
    }

    pub(crate) fn finish_tenant_deletion(&self, seq: u64) -> Result<()> {
        each!(self, s => s.finish_tenant_deletion(seq))
    }

    pub(crate) fn remove_endpoint_settings(&self, id: EndpointId) -> Result<()> {
        each!(self, s => s.remove_endpoint_settings(id))
    }

    pub(crate) fn cancel_deliveries(
        &self,
        ep: EndpointId,
        events: impl IntoIterator<Item = EventId>,
        now_ms: u64,
    ) -> Result<usize> {
        each!(self, s => s.cancel_deliveries(ep, events, now_ms))
    }

    pub(crate) fn cancelled(&self, ep: EndpointId, ev: EventId) -> Result<Option<CancelledRecord>> {
        each!(self, s => s.cancelled(ep, ev))
    }

    pub(crate) fn implied_deliveries_since(
        &self,
        from: EventId,
        endpoints: &std::collections::BTreeSet<u64>,
    ) -> Result<Vec<(EndpointId, EventId)>> {
        match self {
            Storage::Sled(s) => s.implied_deliveries_since(from, endpoints),
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => Ok(Vec::new()),
        }
    }
}
