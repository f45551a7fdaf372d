//! Reading an endpoint's queue back from storage in windows: at open, and
//! when a lane whose backlog was spilled out of memory refills.

use super::{codec, corrupt_key, keys, Db, Store, Unfinished};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::store::records::{DeliveryRecord, EventRecord};

/// One window of an endpoint's stored queue.
pub(crate) struct Window {
    /// Deliveries in event order; undecodable ones as errors to report.
    pub(crate) found: Vec<Result<Unfinished>>,
    /// Where the next window starts; `None` when the queue was read to its end.
    pub(crate) next: Option<EventId>,
}

impl Store {
    /// Up to `limit` of an endpoint's deliveries stored under `p` (waiting
    /// or in flight), from event `from` on, skipping those `skip` names
    /// (already in memory). A `p` key left beside an `f` key by a crash is
    /// removed on the way: the `f` key wins.
    pub(crate) fn pending_window(
        &self,
        ep: EndpointId,
        from: EventId,
        limit: usize,
        skip: impl Fn(EventId) -> bool,
    ) -> Result<Window> {
        let mut found = Vec::new();
        let upper = keys::pending(ep, EventId::from_u128(u128::MAX));
        let mut range = self.db.range(keys::pending(ep, from)..=upper);
        for item in range.by_ref() {
            let (k, v) = item.db()?;
            let Some(ev) = keys::u128_at(&k, 9).map(EventId::from_u128) else {
                found.push(Err(corrupt_key("delivery", &k)));
                continue;
            };
            if found.len() >= limit {
                return Ok(Window {
                    found,
                    next: Some(ev),
                });
            }
            if skip(ev) {
                continue;
            }
            if self.db.contains_key(keys::finished(ep, ev)).db()? {
                self.db.remove(keys::pending(ep, ev)).db()?;
                continue;
            }
            found.push(
                codec::decode::<DeliveryRecord>("delivery", &v).map(|record| Unfinished {
                    endpoint: ep,
                    event: ev,
                    record,
                }),
            );
        }
        Ok(Window { found, next: None })
    }

    /// Whether a delivery is stored under `p` (waiting or in flight).
    pub(crate) fn has_pending_key(&self, ep: EndpointId, ev: EventId) -> Result<bool> {
        self.db.contains_key(keys::pending(ep, ev)).db()
    }

    /// How many deliveries of an endpoint are stored under `p` from event
    /// `from` on.
    pub(crate) fn count_pending(&self, ep: EndpointId, from: EventId) -> Result<usize> {
        let upper = keys::pending(ep, EventId::from_u128(u128::MAX));
        let mut n = 0;
        for item in self.db.range(keys::pending(ep, from)..=upper) {
            item.db()?;
            n += 1;
        }
        Ok(n)
    }

    /// The first deliveries implied by events from `checkpoint` on that
    /// have no key of their own yet (never attempted), in event order, to
    /// the endpoints `wanted` accepts.
    pub(crate) fn implied_since(
        &self,
        checkpoint: EventId,
        wanted: impl Fn(EndpointId) -> bool,
    ) -> Result<Vec<Result<Unfinished>>> {
        let mut out = Vec::new();
        for item in self.db.range(keys::event(checkpoint)..).take_while(|r| {
            r.as_ref()
                .map_or(true, |(k, _)| k.first() == Some(&keys::EVENT))
        }) {
            let (k, v) = item.db()?;
            let Some(ev) = keys::u128_at(&k, 1).map(EventId::from_u128) else {
                out.push(Err(corrupt_key("event", &k)));
                continue;
            };
            let event: EventRecord = match codec::decode("event", &v) {
                Ok(e) => e,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            for ep in event.targets.iter().map(|&t| EndpointId(t)) {
                if !wanted(ep) || self.has_delivery_key(ep, ev)? {
                    continue;
                }
                out.push(Ok(Unfinished {
                    endpoint: ep,
                    event: ev,
                    record: DeliveryRecord::implied(event.created_ms),
                }));
            }
        }
        Ok(out)
    }
}
