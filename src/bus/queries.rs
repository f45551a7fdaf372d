//! Reading the delivery log: events, deliveries, attempts, health, stats.
//!
//! Two conventions hold for every read here (and are stated in the crate
//! docs): a getter that names one thing returns `None` when it does not
//! exist, never an error; and a listing that can grow without bound is
//! paged by cursor (`after`, `limit`, a [`Page`] back).

use crossbeam_channel::Receiver;

use super::endpoints::status_of;
use super::tenants::host_delivery;
use super::Bus;
use crate::delivery::Lane;
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::{EventId, StoredEvent};
use crate::log::{Attempt, AttemptQuery, Delivery, DeliveryFilter};
use crate::notice::Notice;
use crate::page::{Cursor, Page};
use crate::stats::{self, EndpointHealth, Stats};
use crate::store::records::{AttemptRecord, DeliveryState, EndpointStateRecord};
use crate::tenant::TenantId;
use crate::time;

impl Bus {
    /// A stored event; `None` if it was never published or was purged by
    /// retention.
    pub fn event(&self, id: EventId) -> Result<Option<StoredEvent>> {
        let Some(r) = self.inner.engine.runtime.store.event(id)? else {
            return Ok(None);
        };
        let tenant = match &r.tenant {
            Some(key) => TenantId::from_stored(key)?,
            None => TenantId::default_tenant(),
        };
        Ok(Some(StoredEvent {
            id,
            event_type: r.event_type,
            payload: r.payload,
            occurred_at: time::from_us(r.occurred_us),
            attributes: r.attributes,
            tenant,
        }))
    }

    /// A stored event if it was published to `tenant`; `None` for another
    /// tenant's event, exactly as for an unknown id, so a per-customer view
    /// cannot tell another customer's events exist.
    pub fn tenant_event(&self, tenant: &TenantId, id: EventId) -> Result<Option<StoredEvent>> {
        Ok(self.event(id)?.filter(|e| e.tenant == *tenant))
    }

    /// The delivery of one event to one endpoint; `None` if the event was
    /// never queued for it (or was purged by retention).
    pub fn delivery(&self, endpoint: EndpointId, event: EventId) -> Result<Option<Delivery>> {
        host_delivery(&self.inner.engine.runtime.store, endpoint, event, None)
    }

    /// Every delivery of an event, one per endpoint it was queued for
    /// (none for an unknown event). Not paged: an event has at most one
    /// delivery per endpoint.
    pub fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>> {
        let store = &self.inner.engine.runtime.store;
        let Some(record) = store.event(event)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for &target in &record.targets {
            // The event is already read: an implied delivery needs no
            // second look at it.
            if let Some(d) = host_delivery(store, EndpointId(target), event, Some(&record))? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// An endpoint's deliveries, one page at a time: unfinished ones
    /// oldest first, delivered or failed ones newest first. An endpoint
    /// that does not exist (any more) has no unfinished deliveries; the
    /// finished deliveries of a deleted endpoint stay listed until
    /// retention purges them.
    pub fn endpoint_deliveries(
        &self,
        endpoint: EndpointId,
        filter: DeliveryFilter,
        after: Option<Cursor<Delivery>>,
        limit: usize,
    ) -> Result<Page<Delivery>> {
        let store = &self.inner.engine.runtime.store;
        let limit = limit.max(1);
        let after = after.map(|c| EventId::from_u128(c.position()));
        match filter {
            DeliveryFilter::Unfinished => {
                let Some(lane) = self.lane_of(endpoint) else {
                    return Ok(Page::new(Vec::new(), None));
                };
                let events = lane.queued_after(store, after, limit)?;
                // The cursor is the last event looked at, even if its
                // delivery finished (and left this listing) meanwhile.
                let next = (events.len() == limit)
                    .then(|| events.last().map(|e| Cursor::at(e.as_u128())))
                    .flatten();
                let mut out = Vec::new();
                for event in events {
                    if let Some((rec, _)) = store.delivery(endpoint, event)? {
                        out.push(rec.to_delivery(endpoint, event));
                    }
                }
                Ok(Page::new(out, next))
            }
            DeliveryFilter::Delivered | DeliveryFilter::Failed => {
                let want_delivered = filter == DeliveryFilter::Delivered;
                let found = store.finished_deliveries(endpoint, after, limit, |state| {
                    matches!(state, DeliveryState::Delivered { .. }) == want_delivered
                })?;
                let next = (found.len() == limit)
                    .then(|| found.last().map(|(e, _)| Cursor::at(e.as_u128())))
                    .flatten();
                Ok(Page::new(
                    found
                        .iter()
                        .map(|(event, rec)| rec.to_delivery(endpoint, *event))
                        .collect(),
                    next,
                ))
            }
        }
    }

    /// Every attempt made for an event, to any endpoint, oldest first. Not
    /// paged: an event's attempts are bounded by its endpoints' attempt
    /// limits (and by how often a person resends it).
    pub fn attempts(&self, event: EventId) -> Result<Vec<Attempt>> {
        let records = self.inner.engine.runtime.store.attempts_for_event(event)?;
        Ok(records.into_iter().map(|(_, r)| Attempt::from(r)).collect())
    }

    /// An endpoint's attempts, newest first, one page at a time: the same
    /// as [`query_attempts`](Self::query_attempts) with only an endpoint.
    pub fn endpoint_attempts(
        &self,
        endpoint: EndpointId,
        after: Option<Cursor<Attempt>>,
        limit: usize,
    ) -> Result<Page<Attempt>> {
        self.query_attempts(AttemptQuery::new().endpoint(endpoint), after, limit)
    }

    /// Attempts newest first, filtered by endpoint, event, tenant, outcome
    /// and time, one page at a time. Pages stay correct while new attempts
    /// arrive.
    pub fn query_attempts(
        &self,
        query: AttemptQuery,
        after: Option<Cursor<Attempt>>,
        limit: usize,
    ) -> Result<Page<Attempt>> {
        let store = &self.inner.engine.runtime.store;
        let limit = limit.max(1);
        // Attempt positions are log sequence numbers (u64); a cursor beyond
        // that range can only have been made up, and starts at the end.
        let before = after.map(|c| u64::try_from(c.position()).unwrap_or(u64::MAX));
        let members = self.inner.members.read();
        let in_tenant = |r: &AttemptRecord| {
            query
                .tenant
                .as_ref()
                .is_none_or(|t| members.belongs(EndpointId(r.endpoint), t))
        };
        let keep = |r: &AttemptRecord| r.matches(&query) && in_tenant(r);
        let found = match (&query.event, &query.tenant, query.endpoint) {
            (Some(event), _, _) => {
                let mut all = store.attempts_for_event(*event)?;
                all.retain(|(seq, r)| before.is_none_or(|b| *seq < b) && keep(r));
                all.reverse();
                all.truncate(limit);
                all
            }
            // A tenant other than the default: merge its endpoints' logs,
            // each read newest first from the cursor; the page is the
            // newest `limit` of their union.
            (None, Some(tenant), None) if !tenant.is_default() => {
                let mut all = Vec::new();
                for ep in members.of(tenant) {
                    all.extend(store.attempts_newest_first(Some(ep), before, limit, keep)?);
                }
                all.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
                all.truncate(limit);
                all
            }
            (None, _, endpoint) => store.attempts_newest_first(endpoint, before, limit, keep)?,
        };
        drop(members);
        let next = (found.len() == limit)
            .then(|| found.last().map(|(seq, _)| Cursor::at(u128::from(*seq))))
            .flatten();
        Ok(Page::new(
            found.into_iter().map(|(_, r)| Attempt::from(r)).collect(),
            next,
        ))
    }

    /// How many deliveries to an endpoint are queued (for a first attempt
    /// or a retry; in-flight attempts not counted); `None` if the endpoint
    /// does not exist.
    pub fn queue_depth(&self, endpoint: EndpointId) -> Option<usize> {
        let lane = self.lane_of(endpoint)?;
        Some(self.depth_of(&lane).0)
    }

    /// How an endpoint is doing: status, last success and failure, failure
    /// streaks, queue depth, oldest unfinished delivery; `None` if the
    /// endpoint does not exist.
    pub fn endpoint_health(&self, endpoint: EndpointId) -> Option<EndpointHealth> {
        let lane = self.lane_of(endpoint)?;
        let health = self
            .health_as_stored(&lane)
            .unwrap_or_else(|| lane.health.lock().clone());
        let (queued, in_flight) = self.depth_of(&lane);
        Some(EndpointHealth {
            status: status_of(health.mode),
            last_success: health.last_success_ms.map(time::from_ms),
            last_failure: health.last_failure_ms.map(time::from_ms),
            consecutive_failed_attempts: health.consecutive_failed_attempts,
            consecutive_failed_deliveries: health.consecutive_failed_deliveries,
            queued,
            in_flight,
            oldest_unfinished: self
                .oldest_of(&lane)
                .map(|e| time::from_ms(e.timestamp_ms())),
        })
    }

    /// Counts per endpoint and in total, since the bus opened.
    pub fn stats(&self) -> Stats {
        let engine = &self.inner.engine;
        let mut out = Stats {
            published: engine
                .runtime
                .published
                .load(std::sync::atomic::Ordering::Relaxed),
            commit_flushes: engine.runtime.store.commit_flushes(),
            sender_threads: engine.pool.threads(),
            sender_threads_started: engine.pool.threads_started(),
            ..Stats::default()
        };
        for (id, reg) in self.inner.registry.read().iter() {
            let depth = self.depth_of(&reg.lane);
            out.add(stats::endpoint_stats(
                *id,
                status_of(reg.lane.mode()),
                depth,
                &reg.lane.counters,
            ));
        }
        out
    }

    /// Subscribes to operational notices: deliveries exhausted, endpoints
    /// paused and recovered. Each call returns a new receiver; drop it to
    /// unsubscribe. A receiver that falls [`NOTICE_BUFFER`](crate::NOTICE_BUFFER)
    /// notices behind misses the newest ones. The receiver disconnects when
    /// the bus shuts down (a `for` loop over it ends); after shutdown it is
    /// returned already disconnected.
    pub fn notices(&self) -> Receiver<Notice> {
        self.inner.engine.runtime.notices.subscribe()
    }

    /// On PostgreSQL, the state of an endpoint another replica serves, as
    /// that replica last stored it: this replica's copy follows only its
    /// mode, not the failure counts and times of attempts it did not make.
    /// (The stored times lag the sender's by at most 10 s, its write
    /// slack.) `None` where this process's copy is the truth.
    fn health_as_stored(&self, lane: &Lane) -> Option<EndpointStateRecord> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = self.inner.engine.runtime.store.shared() {
            if lane.is_served() {
                return None;
            }
            return match pg.endpoint_state(lane.id) {
                Ok(stored) => Some(stored),
                Err(e) => {
                    tracing::warn!(endpoint = %lane.id, error = %e, "cannot read the endpoint's stored state; showing this replica's copy");
                    None
                }
            };
        }
        let _ = lane;
        None
    }

    /// An endpoint's queued and in-flight deliveries: the lane's count, or
    /// on a shared store the stored rows' (whichever replica sends them).
    pub(super) fn depth_of(&self, lane: &Lane) -> (usize, usize) {
        #[cfg(feature = "postgres")]
        if let Some(pg) = self.inner.engine.runtime.store.shared() {
            match pg.depth(lane.id) {
                Ok(depth) => return depth,
                Err(e) => {
                    tracing::warn!(endpoint = %lane.id, error = %e, "cannot count the stored queue; showing this replica's share")
                }
            }
        }
        lane.depth()
    }

    /// An endpoint's oldest unfinished delivery, as [`Bus::depth_of`] counts.
    fn oldest_of(&self, lane: &Lane) -> Option<EventId> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = self.inner.engine.runtime.store.shared() {
            match pg.oldest_unfinished(lane.id) {
                Ok(oldest) => return oldest,
                Err(e) => {
                    tracing::warn!(endpoint = %lane.id, error = %e, "cannot read the stored queue; showing this replica's share")
                }
            }
        }
        lane.oldest()
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.inner.engine.runtime.store.size_on_disk()
    }
}
