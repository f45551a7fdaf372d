//! Tenants on the bus: their endpoints, deliveries, log, stats and health,
//! metadata, and deletion.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::endpoints::status_of;
use super::Bus;
use crate::delivery::Lane;
use crate::endpoint::{Endpoint, EndpointId};
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::log::{Delivery, DeliveryFilter, DeliveryStatus};
use crate::page::{Cursor, Page};
use crate::stats::{self, EndpointHealth, Stats};
use crate::store::records::{DeliveryState, EventRecord};
use crate::store::tenants::{CancelledRecord, TenantRecord, TombstoneRecord};
use crate::store::{implied_delivery, Storage, Stored};
use crate::tenant::{Tenant, TenantConfig, TenantDeletion, TenantId, TenantPage};
use crate::time;

/// Queued deliveries cancelled per step of a tenant deletion.
const CANCEL_BATCH: usize = 4096;

impl Bus {
    /// The ids of a tenant's endpoints now, in id order.
    fn endpoint_ids_of(&self, tenant: &TenantId) -> Vec<EndpointId> {
        self.inner
            .routing
            .read()
            .endpoints_of(tenant.as_str())
            .map(|(id, _)| id)
            .collect()
    }

    /// The endpoints of a tenant, in id order. Empty for a tenant with none.
    pub fn tenant_endpoints(&self, tenant: &TenantId) -> Vec<Endpoint> {
        let ids = self.endpoint_ids_of(tenant);
        ids.into_iter().filter_map(|id| self.endpoint(id)).collect()
    }

    /// Saves a tenant's metadata (replacing what was saved before). Checks
    /// it first: on an error nothing is written. A tenant needs no metadata
    /// to have endpoints or receive events.
    pub fn put_tenant(&self, config: TenantConfig) -> Result<Tenant> {
        self.check_open()?;
        let id = config.validate()?;
        let rec = TenantRecord {
            display_name: config.display_name,
            labels: config.labels,
            updated_ms: time::now_ms(),
        };
        // Under the registry lock, so a concurrent delete_tenant either
        // removes this metadata or runs after it.
        let _registry = self.inner.registry.write();
        self.inner.engine.runtime.store.put_tenant(&id, &rec)?;
        Ok(self.tenant_view(id, Some(rec)))
    }

    /// A tenant: its metadata and endpoint count. A tenant exists while it
    /// has endpoints or saved metadata; otherwise [`Error::TenantNotFound`].
    pub fn tenant(&self, id: &TenantId) -> Result<Tenant> {
        let rec = self.inner.engine.runtime.store.tenant(id)?;
        let view = self.tenant_view(id.clone(), rec);
        if view.endpoints == 0 && view.updated_at.is_none() {
            return Err(Error::TenantNotFound(id.clone()));
        }
        Ok(view)
    }

    /// Tenants in key order, `limit` (at least 1) per page, after the
    /// `after` of a previous page's [`TenantPage::next`].
    pub fn tenants(&self, after: Option<&TenantId>, limit: usize) -> Result<TenantPage> {
        let limit = limit.max(1);
        let stored = self
            .inner
            .engine
            .runtime
            .store
            .tenants_after(after, limit)?;
        let live: Vec<TenantId> = self
            .inner
            .routing
            .read()
            .tenants_after(after)
            .take(limit)
            .cloned()
            .collect();
        let mut merged: BTreeMap<TenantId, Option<TenantRecord>> =
            live.into_iter().map(|t| (t, None)).collect();
        for (t, rec) in stored {
            merged.insert(t, Some(rec));
        }
        let tenants: Vec<Tenant> = merged
            .into_iter()
            .take(limit)
            .map(|(t, rec)| self.tenant_view(t, rec))
            .collect();
        let next = (tenants.len() == limit)
            .then(|| tenants.last().map(|t| t.id.clone()))
            .flatten();
        Ok(TenantPage { tenants, next })
    }

    fn tenant_view(&self, id: TenantId, rec: Option<TenantRecord>) -> Tenant {
        let endpoints = self.inner.routing.read().count_of(id.as_str());
        let (display_name, labels, updated_at) = match rec {
            Some(r) => (r.display_name, r.labels, Some(time::from_ms(r.updated_ms))),
            None => (None, Vec::new(), None),
        };
        Tenant {
            id,
            display_name,
            labels,
            endpoints,
            updated_at,
        }
    }

    /// Deletes a tenant: its endpoints stop receiving and sending at once
    /// and are removed; its queued deliveries end
    /// [cancelled](DeliveryStatus::Cancelled), never sent; its metadata is
    /// removed. Its delivery log, finished and cancelled deliveries stay
    /// readable (until retention purges them). An attempt already in
    /// flight finishes in the background and is logged; its delivery ends
    /// cancelled too unless that attempt delivered it.
    ///
    /// Safe across a crash: the deletion is recorded durably before
    /// anything changes, and an interrupted one is finished by the next
    /// open before any endpoint is loaded, so a deleted tenant's endpoints
    /// never come back and their deliveries are never sent. If this returns
    /// a storage error after the endpoints were removed, the rest is done
    /// at the next open.
    ///
    /// The tenant key stays usable: endpoints added to it later start
    /// afresh. Every portal session issued for the tenant so far is
    /// revoked (feature `portal`), so a customer of the deleted tenant
    /// never sees what is added under its key later.
    pub fn delete_tenant(&self, tenant: &TenantId) -> Result<TenantDeletion> {
        self.check_open()?;
        let engine = &self.inner.engine;
        let store = &engine.runtime.store;
        let now = time::now_ms();
        let (seq, lanes) = {
            let mut registry = self.inner.registry.write();
            let mut routing = self.inner.routing.write();
            let ids: Vec<EndpointId> = routing
                .endpoints_of(tenant.as_str())
                .map(|(id, _)| id)
                .collect();
            if ids.is_empty() && store.tenant(tenant)?.is_none() {
                return Err(Error::TenantNotFound(tenant.clone()));
            }
            // Its customers' portal sessions end first: the key may be
            // given to someone else later, and a session of the deleted
            // tenant must never read that one's data.
            #[cfg(feature = "portal")]
            self.revoke_portal_sessions(tenant)?;
            let from = ids
                .iter()
                .filter_map(|id| registry.get(id).and_then(|r| r.lane.oldest()))
                .min();
            let seq = store.begin_tenant_deletion(&TombstoneRecord {
                tenant: tenant.as_str().to_string(),
                endpoints: ids.iter().map(|id| id.as_u64()).collect(),
                from: from.map(EventId::as_u128),
                deleted_ms: now,
            })?;
            let mut lanes: Vec<Arc<Lane>> = Vec::new();
            for id in ids {
                routing.remove(id);
                engine.lanes.write().remove(&id);
                if let Some(reg) = registry.remove(&id) {
                    reg.lane.close();
                    lanes.push(reg.lane);
                }
            }
            (seq, lanes)
        };
        // On a shared store, other replicas finish a deletion whose replica
        // died mid-way (the janitor); this one holds it while it works.
        #[cfg(feature = "postgres")]
        let _held = match store.shared() {
            Some(pg) => Some(pg.lock_tenant_deletion(seq)?),
            None => None,
        };
        // The endpoints are unreachable now; the rest needs no lock.
        let mut report = TenantDeletion {
            endpoints: lanes.len(),
            cancelled: 0,
        };
        for lane in &lanes {
            store.remove_endpoint_settings(lane.id)?;
            // In batches: a queue spilled to storage may be long.
            let mut after = None;
            loop {
                let queued = lane.queued_after(store, after, CANCEL_BATCH)?;
                let Some(last) = queued.last().copied() else {
                    break;
                };
                after = Some(last);
                report.cancelled += store.cancel_deliveries(lane.id, queued, now)?;
            }
        }
        store.commit()?;
        store.finish_tenant_deletion(seq)?;
        tracing::info!(
            %tenant,
            endpoints = report.endpoints,
            cancelled = report.cancelled,
            "tenant deleted"
        );
        Ok(report)
    }

    /// A tenant's deliveries, across its endpoints, one page at a time:
    /// unfinished ones oldest first, delivered or failed ones newest first
    /// (by event, then endpoint); at most `limit` (at least 1) after the
    /// previous page's cursor.
    pub fn tenant_deliveries(
        &self,
        tenant: &TenantId,
        filter: DeliveryFilter,
        after: Option<Cursor<Delivery>>,
        limit: usize,
    ) -> Result<Page<Delivery>> {
        let limit = limit.max(1);
        let ids = self.endpoint_ids_of(tenant);
        let oldest_first = filter == DeliveryFilter::Unfinished;
        // The cursor's tie is the endpoint plus one (0: none, as in a
        // cursor of one endpoint's listing).
        let after = after.map(|c| {
            (
                EventId::from_u128(c.position()),
                c.tie().checked_sub(1).map(EndpointId),
            )
        });
        let mut all: Vec<Delivery> = Vec::new();
        for id in ids {
            // Each endpoint's page starts where the cursor falls for it:
            // endpoints after the cursor's one may repeat its event.
            let bound = after.map(|(event, endpoint)| {
                let same_event_next = endpoint.is_none_or(|e| id > e);
                let raw = event.as_u128();
                Cursor::at(match (oldest_first, same_event_next) {
                    (true, true) => raw.saturating_sub(1),
                    (false, true) => raw.saturating_add(1),
                    _ => raw,
                })
            });
            // An endpoint deleted meanwhile lists nothing.
            all.extend(self.endpoint_deliveries(id, filter, bound, limit)?.items);
        }
        if oldest_first {
            all.sort_by_key(|d| (d.event, d.endpoint));
        } else {
            all.sort_by_key(|d| (std::cmp::Reverse(d.event), d.endpoint));
        }
        all.truncate(limit);
        let next = (all.len() == limit)
            .then(|| {
                all.last().map(|d| {
                    Cursor::at_tie(d.event.as_u128(), d.endpoint.as_u64().saturating_add(1))
                })
            })
            .flatten();
        Ok(Page::new(all, next))
    }

    /// [`Bus::stats`] for one tenant's endpoints. `published` counts the
    /// events published to the tenant since the bus opened.
    pub fn tenant_stats(&self, tenant: &TenantId) -> Stats {
        let routing = self.inner.routing.read();
        let mut out = Stats {
            published: routing.published_to(tenant.as_str()),
            ..Stats::default()
        };
        for (id, lane) in routing.endpoints_of(tenant.as_str()) {
            out.add(stats::endpoint_stats(
                id,
                status_of(lane.mode()),
                self.depth_of(lane),
                &lane.counters,
            ));
        }
        out
    }

    /// [`Bus::endpoint_health`] of each of a tenant's endpoints, in id order.
    pub fn tenant_health(&self, tenant: &TenantId) -> Result<Vec<(EndpointId, EndpointHealth)>> {
        let ids = self.endpoint_ids_of(tenant);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // An endpoint deleted meanwhile is left out.
            if let Some(h) = self.endpoint_health(id) {
                out.push((id, h));
            }
        }
        Ok(out)
    }
}

/// A delivery as the host sees it: a finished state wins, then a
/// cancellation, then a pending key, then what the event implies.
/// `event` is the event record if the caller has read it already.
pub(super) fn host_delivery(
    store: &Storage,
    ep: EndpointId,
    ev: EventId,
    event: Option<&EventRecord>,
) -> Result<Option<Delivery>> {
    let keyed = store.keyed_delivery(ep, ev)?;
    if let Some((rec, Stored::Finished)) = &keyed {
        return Ok(Some(rec.to_delivery(ep, ev)));
    }
    if let Some(c) = store.cancelled(ep, ev)? {
        return Ok(Some(cancelled(ep, ev, &c)));
    }
    if let Some((rec, _)) = keyed {
        return Ok(Some(rec.to_delivery(ep, ev)));
    }
    let implied = match event {
        Some(e) => implied_delivery(ep, e),
        None => store.event(ev)?.and_then(|e| implied_delivery(ep, &e)),
    };
    Ok(implied.map(|rec| rec.to_delivery(ep, ev)))
}

fn cancelled(ep: EndpointId, ev: EventId, c: &CancelledRecord) -> Delivery {
    let mut d = crate::store::records::DeliveryRecord {
        state: DeliveryState::Failed {
            attempts: c.attempts,
        },
        created_ms: c.created_ms,
        updated_ms: c.cancelled_ms,
        round_start: 1,
        manual: false,
    }
    .to_delivery(ep, ev);
    d.status = DeliveryStatus::Cancelled {
        attempts: c.attempts,
        at: time::from_ms(c.cancelled_ms),
    };
    d
}
