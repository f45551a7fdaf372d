//! What a person does from an admin page: resend one delivery, recover an
//! endpoint's failures, send a test event.

use super::Bus;
use crate::delivery;
use crate::endpoint::EndpointId;
use crate::error::{Error, Result};
use crate::event::{validate_event_type, Event, EventId};
use crate::log::Attempt;
use crate::store::records::{DeliveryRecord, DeliveryState, EventRecord};
use crate::store::Stored;
use crate::time;

impl Bus {
    /// Sends an event to an endpoint again: a new round of attempts
    /// (numbered after the earlier ones, logged as manual), whether the
    /// delivery succeeded, failed, or never existed (an endpoint added after
    /// the event). Durable before it returns, like a publish.
    ///
    /// Fails with [`Error::DeliveryInProgress`] if the delivery is still
    /// queued or being attempted, and with [`Error::EventNotFound`] if the
    /// event is unknown or was published to another tenant than the
    /// endpoint's.
    pub fn resend(&self, event: EventId, endpoint: EndpointId) -> Result<()> {
        self.check_open()?;
        let lane = self.lane(endpoint)?;
        let store = &self.inner.engine.runtime.store;
        // Another tenant's event is unknown here, as in every per-tenant
        // view: a resend never crosses tenants.
        let Some(stored_event) = store
            .event(event)?
            .filter(|e| self.of_tenant_of(endpoint, e))
        else {
            return Err(Error::EventNotFound(event));
        };
        let _one_at_a_time = self.inner.manual.lock();
        if lane.holds(store, event)? {
            return Err(Error::DeliveryInProgress { endpoint, event });
        }
        let now = time::now_ms();
        let (round, was) = match store.delivery(endpoint, event)? {
            Some((rec, stored)) => match rec.state {
                DeliveryState::Delivered { attempts } | DeliveryState::Failed { attempts } => {
                    (new_round(&rec, attempts + 1, now), stored)
                }
                // Stored as unfinished but not queued: the endpoint's lane
                // lost it (it cannot, short of a bug); queue it again.
                DeliveryState::Waiting { .. } | DeliveryState::InFlight { .. } => (rec, stored),
            },
            None => (
                new_round(&DeliveryRecord::implied(stored_event.created_ms), 1, now),
                Stored::Implied,
            ),
        };
        store.put_delivery(endpoint, event, &round, was)?;
        store.commit()?;
        lane.schedule(&self.inner.engine, now, event, false);
        tracing::info!(%endpoint, %event, "delivery resent");
        Ok(())
    }

    /// Resends every delivery to an endpoint that failed (its last attempt
    /// failed) at or after `since`, as [`resend`](Self::resend) does.
    /// Returns how many were requeued.
    pub fn recover(&self, endpoint: EndpointId, since: std::time::SystemTime) -> Result<usize> {
        self.check_open()?;
        let lane = self.lane(endpoint)?;
        let store = &self.inner.engine.runtime.store;
        let _one_at_a_time = self.inner.manual.lock();
        let now = time::now_ms();
        let mut requeued = Vec::new();
        for (event, rec) in store.failed_since(endpoint, time::to_ms(since))? {
            if lane.holds(store, event)? {
                continue;
            }
            let DeliveryState::Failed { attempts } = rec.state else {
                continue;
            };
            store.put_delivery(
                endpoint,
                event,
                &new_round(&rec, attempts + 1, now),
                Stored::Finished,
            )?;
            requeued.push(event);
        }
        store.commit()?;
        for event in &requeued {
            lane.schedule(&self.inner.engine, now, *event, false);
        }
        tracing::info!(%endpoint, count = requeued.len(), "failed deliveries recovered");
        Ok(requeued.len())
    }

    /// Sends `event` to an endpoint right now, in the endpoint's format and
    /// signed as usual, and returns what happened. Nothing is stored and the
    /// endpoint's queue is untouched (Grow's "Test connection"). Works on
    /// disabled and paused endpoints too.
    pub fn test_send(&self, endpoint: EndpointId, event: Event) -> Result<Attempt> {
        self.check_open()?;
        validate_event_type(&event.event_type)?;
        let engine = &self.inner.engine;
        if event.payload.len() > engine.runtime.config.max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                size: event.payload.len(),
                limit: engine.runtime.config.max_payload_bytes,
            });
        }
        let lane = self.lane(endpoint)?;
        let now_us = time::now_us();
        let now = now_us / 1000;
        let record = EventRecord {
            occurred_us: event.occurred_at_us.unwrap_or(now_us),
            event_type: event.event_type,
            payload: event.payload.into_vec(),
            attributes: event.attributes,
            targets: Vec::new(),
            created_ms: now,
            idempotency_key: None,
            tenant: None,
        };
        // A real, unique id, so receivers treat it like any event; it is
        // never stored.
        let id = engine.runtime.ids.next();
        Ok(delivery::test_send(engine, &lane, id, &record))
    }
}

impl Bus {
    /// Whether `event` was published to `endpoint`'s tenant.
    fn of_tenant_of(&self, endpoint: EndpointId, event: &EventRecord) -> bool {
        self.inner.registry.read().get(&endpoint).is_some_and(|r| {
            let tenant = r.endpoint.tenant();
            match &event.tenant {
                Some(key) => tenant.as_str() == key,
                None => tenant.is_default(),
            }
        })
    }
}

/// A new round of attempts starting at `first`, started by hand.
fn new_round(rec: &DeliveryRecord, first: u32, now: u64) -> DeliveryRecord {
    DeliveryRecord {
        state: DeliveryState::Waiting {
            next_attempt: first,
            due_ms: now,
        },
        created_ms: rec.created_ms,
        updated_ms: now,
        round_start: first,
        manual: true,
    }
}
