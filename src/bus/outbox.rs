//! Publishing on PostgreSQL: in a transaction of the bus's own, or in the
//! host's (the transactional outbox, [`Bus::publish_in`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{event_record, Bus};
use crate::delivery::Lane;
use crate::endpoint::EndpointId;
use crate::error::{Error, PublishError};
use crate::event::{Event, EventId};
use crate::stats;
use crate::store::postgres::{Outbox, Published};
use crate::tenant::TenantId;
use crate::time;

impl Bus {
    /// Publishes `event` inside the host's own PostgreSQL transaction: the
    /// event and its deliveries are written through `tx`, so they exist if
    /// and only if the host commits it (the transactional outbox). Nothing
    /// is sent before the commit; at commit every replica hears of the
    /// deliveries (NOTIFY is delivered at commit) and the ones serving the
    /// endpoints send them. A rolled-back transaction leaves no event, no
    /// delivery and no request.
    ///
    /// The checks are those of [`publish`](Self::publish); an idempotency
    /// key seen within the window returns the first event's id and writes
    /// nothing. `Ok` means written into `tx`, not yet durable: durable
    /// when the host's commit returns. Use the re-exported
    /// [`hookbus::postgres`](crate::postgres) crate so that the transaction
    /// type matches.
    ///
    /// Fails with [`Error::InvalidConfig`] (setting `backend`) on a bus not
    /// opened with [`Bus::postgres`]. The transaction may be on any
    /// database connection that sees the bus's schema.
    ///
    /// ```no_run
    /// # fn demo(bus: &hookbus::Bus, db: &mut hookbus::postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = db.transaction()?;
    /// tx.execute("UPDATE orders SET paid = true WHERE id = $1", &[&42i64])?;
    /// let event = hookbus::Event::new("order.paid", &serde_json::json!({"id": 42}))?;
    /// bus.publish_in(&mut tx, event)?;
    /// tx.commit()?; // the webhook exists from here on, with the order's change
    /// # Ok(()) }
    /// ```
    pub fn publish_in(
        &self,
        tx: &mut postgres::Transaction<'_>,
        event: Event,
    ) -> Result<EventId, PublishError> {
        let tenant = match self.check_publish(&event) {
            Ok(tenant) => tenant,
            Err(e) => return Err(PublishError::new(e, event)),
        };
        if !self.inner.engine.runtime.store.is_shared() {
            let e = Error::InvalidConfig {
                setting: "backend",
                reason: "publish_in needs a bus opened with Bus::postgres".to_string(),
            };
            return Err(PublishError::new(e, event));
        }
        self.publish_shared(event, &tenant, Some(tx))
    }

    /// A publish on PostgreSQL, checked already: in the bus's own
    /// transaction (committed before this returns) or the host's `tx`.
    pub(super) fn publish_shared(
        &self,
        event: Event,
        tenant: &TenantId,
        tx: Option<&mut postgres::Transaction<'_>>,
    ) -> Result<EventId, PublishError> {
        let engine = &self.inner.engine;
        let Some(pg) = engine.runtime.store.shared() else {
            return Err(PublishError::new(Error::ShutDown, event));
        };
        // Every endpoint change committed before this publish began, on any
        // replica, counts in its routing, and its id is above every event
        // stored.
        if let Err(e) = super::replicas::before_publish(&self.inner) {
            return Err(PublishError::new(e, event));
        }
        let now_us = time::now_us();
        let now = now_us / 1000;
        let lanes: Vec<Arc<Lane>> = self
            .inner
            .routing
            .read()
            .matching(tenant.as_str(), &event.event_type, &event.attributes)
            .into_iter()
            .filter(|(_, lane)| lane.receives_events())
            .map(|(_, lane)| Arc::clone(lane))
            .collect();
        // The lanes this replica serves hold a place for it from the id on,
        // as on sled, so that a concurrent later publish cannot overtake it
        // on an ordered endpoint. A host's transaction commits when the host
        // says: its deliveries come in through NOTIFY instead.
        let in_host_tx = tx.is_some();
        let served: Vec<&Arc<Lane>> = if in_host_tx {
            Vec::new()
        } else {
            lanes.iter().filter(|l| l.is_served()).collect()
        };
        let id = engine.runtime.ids.next_with(|id| {
            for lane in &served {
                lane.reserve(id);
            }
        });
        let _span =
            tracing::debug_span!("publish", event = %id, deliveries = lanes.len()).entered();
        let given_time = event.occurred_at_us;
        let record = event_record(event, tenant, &lanes, now, now_us);
        let window = time::duration_ms(engine.runtime.config.idempotency_window);
        let tenant_key = if tenant.is_default() {
            ""
        } else {
            tenant.as_str()
        };
        let outbox = Outbox {
            id,
            record: &record,
            key: record.idempotency_key.as_deref().map(|k| (tenant_key, k)),
            key_cutoff_ms: now.saturating_sub(window),
        };
        let written = match tx {
            Some(tx) => pg.publish_on(tx, &outbox),
            None => pg.publish(&outbox),
        };
        match written {
            Ok(Published::Duplicate(first)) => {
                for lane in &served {
                    lane.cancel(engine, id);
                }
                Ok(first)
            }
            Ok(Published::Stored) => {
                engine.runtime.published.fetch_add(1, Ordering::Relaxed);
                self.inner.routing.read().note_published(tenant.as_str());
                // Committed: the endpoints this replica serves send it now;
                // the replicas serving the others hear of it through NOTIFY
                // (inside the host's transaction, or coalesced after ours).
                let mut elsewhere: Vec<EndpointId> = lanes
                    .iter()
                    .filter(|l| !served.iter().any(|s| Arc::ptr_eq(s, l)))
                    .map(|l| l.id)
                    .collect();
                for lane in &served {
                    if !lane.release(engine, id, now) {
                        elsewhere.push(lane.id);
                    }
                }
                if !in_host_tx {
                    if let Some(notices) = &self.inner.notices {
                        notices.deliveries(elsewhere);
                    }
                }
                stats::published();
                tracing::debug!(event = %id, %tenant, event_type = %record.event_type, deliveries = lanes.len(), "published");
                Ok(id)
            }
            Err(e) => {
                for lane in &served {
                    lane.cancel(engine, id);
                }
                let event = Event {
                    event_type: record.event_type,
                    payload: record.payload.into_boxed_slice(),
                    occurred_at_us: given_time,
                    attributes: record.attributes,
                    idempotency_key: record.idempotency_key,
                    tenant: record.tenant,
                };
                Err(PublishError::new(e, event))
            }
        }
    }
}
