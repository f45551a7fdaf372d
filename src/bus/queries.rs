//! Reading the delivery log: events, deliveries, attempts, health, stats.

use crossbeam_channel::Receiver;

use super::endpoints::status_of;
use super::Bus;
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::{EventId, StoredEvent};
use crate::log::{Attempt, AttemptCursor, AttemptPage, AttemptQuery, Delivery, DeliveryFilter};
use crate::notice::Notice;
use crate::stats::{self, EndpointHealth, Stats};
use crate::store::implied_delivery;
use crate::store::records::DeliveryState;
use crate::time;

impl Bus {
    /// A stored event.
    pub fn event(&self, id: EventId) -> Result<Option<StoredEvent>> {
        Ok(self.inner.shared.store.event(id)?.map(|r| StoredEvent {
            id,
            event_type: r.event_type,
            payload: r.payload,
            occurred_at: time::from_us(r.occurred_us),
            attributes: r.attributes,
        }))
    }

    /// The delivery of one event to one endpoint, if the event was queued
    /// for it.
    pub fn delivery(&self, endpoint: EndpointId, event: EventId) -> Result<Option<Delivery>> {
        Ok(self
            .inner
            .shared
            .store
            .delivery(endpoint, event)?
            .map(|(r, _)| Delivery::from_record(endpoint, event, &r)))
    }

    /// Every delivery of an event, one per endpoint it was queued for.
    pub fn deliveries(&self, event: EventId) -> Result<Vec<Delivery>> {
        let store = &self.inner.shared.store;
        let Some(record) = store.event(event)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for &target in &record.targets {
            let ep = EndpointId(target);
            // The event is already read: an implied delivery needs no
            // second look at it.
            let rec = match store.keyed_delivery(ep, event)? {
                Some((rec, _)) => Some(rec),
                None => implied_delivery(ep, &record),
            };
            if let Some(rec) = rec {
                out.push(Delivery::from_record(ep, event, &rec));
            }
        }
        Ok(out)
    }

    /// An endpoint's deliveries: pending ones oldest first (after `after`,
    /// an event id from a previous page), delivered or failed ones newest
    /// first (before `after`).
    pub fn endpoint_deliveries(
        &self,
        endpoint: EndpointId,
        filter: DeliveryFilter,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let store = &self.inner.shared.store;
        let limit = limit.max(1);
        match filter {
            DeliveryFilter::Pending => {
                let mut out = Vec::new();
                for event in self.lane(endpoint)?.queued_after(store, after, limit)? {
                    if let Some((rec, _)) = store.delivery(endpoint, event)? {
                        out.push(Delivery::from_record(endpoint, event, &rec));
                    }
                }
                Ok(out)
            }
            DeliveryFilter::Delivered | DeliveryFilter::Failed => {
                let want_delivered = filter == DeliveryFilter::Delivered;
                let found = store.finished_deliveries(endpoint, after, limit, |state| {
                    matches!(state, DeliveryState::Delivered { .. }) == want_delivered
                })?;
                Ok(found
                    .iter()
                    .map(|(event, rec)| Delivery::from_record(endpoint, *event, rec))
                    .collect())
            }
        }
    }

    /// Every attempt made for an event, to any endpoint, oldest first.
    pub fn attempts(&self, event: EventId) -> Result<Vec<Attempt>> {
        let records = self.inner.shared.store.attempts_for_event(event)?;
        Ok(records.into_iter().map(|(_, r)| Attempt::from(r)).collect())
    }

    /// The `limit` most recent attempts to an endpoint, newest first.
    pub fn endpoint_attempts(&self, endpoint: EndpointId, limit: usize) -> Result<Vec<Attempt>> {
        let page = self.query_attempts(AttemptQuery::new().endpoint(endpoint).limit(limit))?;
        Ok(page.attempts)
    }

    /// Attempts newest first, filtered by endpoint, event, outcome and time,
    /// one page at a time. Pages stay correct while new attempts arrive.
    pub fn query_attempts(&self, query: AttemptQuery) -> Result<AttemptPage> {
        let store = &self.inner.shared.store;
        let before = query.before.map(|c| c.0);
        let found = match query.event {
            Some(event) => {
                let mut all = store.attempts_for_event(event)?;
                all.retain(|(seq, r)| before.is_none_or(|b| *seq < b) && query.keeps(r));
                all.reverse();
                all.truncate(query.limit);
                all
            }
            None => store
                .attempts_newest_first(query.endpoint, before, query.limit, |r| query.keeps(r))?,
        };
        let next = (found.len() == query.limit)
            .then(|| found.last().map(|(seq, _)| AttemptCursor(*seq)))
            .flatten();
        Ok(AttemptPage {
            attempts: found.into_iter().map(|(_, r)| Attempt::from(r)).collect(),
            next,
        })
    }

    /// Deliveries to an endpoint that are queued or waiting for a retry
    /// (in-flight attempts not counted).
    pub fn queue_depth(&self, endpoint: EndpointId) -> Result<usize> {
        Ok(self.lane(endpoint)?.depth().0)
    }

    /// How an endpoint is doing: status, last success and failure, failure
    /// streaks, queue depth, oldest pending delivery.
    pub fn endpoint_health(&self, endpoint: EndpointId) -> Result<EndpointHealth> {
        let lane = self.lane(endpoint)?;
        let health = lane.health.lock().clone();
        let (queued, in_flight) = lane.depth();
        Ok(EndpointHealth {
            status: status_of(health.mode),
            last_success: health.last_success_ms.map(time::from_ms),
            last_failure: health.last_failure_ms.map(time::from_ms),
            consecutive_failed_attempts: health.consecutive_failed_attempts,
            consecutive_failed_deliveries: health.consecutive_failed_deliveries,
            queued,
            in_flight,
            oldest_pending: lane.oldest().map(|e| time::from_ms(e.timestamp_ms())),
        })
    }

    /// Counts per endpoint and in total, since the bus opened.
    pub fn stats(&self) -> Stats {
        let mut out = Stats {
            published: self
                .inner
                .shared
                .published
                .load(std::sync::atomic::Ordering::Relaxed),
            sender_threads: self.inner.shared.pool.threads(),
            sender_threads_started: self.inner.shared.pool.threads_started(),
            ..Stats::default()
        };
        for (id, reg) in self.inner.registry.read().iter() {
            let depth = reg.lane.depth();
            stats::queue_depth(*id, depth.0);
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
        self.inner.shared.notices.subscribe()
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.inner.shared.store.size_on_disk()
    }
}
