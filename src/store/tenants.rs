//! What the store keeps about tenants: each endpoint's tenant, the host's
//! tenant metadata, tenant deletions in progress and the deliveries they
//! cancelled. See `keys.rs` for the layout.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::codec::Record;
use super::records::{DeliveryRecord, DeliveryState};
use super::{codec, corrupt_key, decode_opt, keys, Db, Store};
use crate::endpoint::EndpointId;
use crate::error::Result;
use crate::event::EventId;
use crate::tenant::TenantId;

/// The host's metadata of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TenantRecord {
    pub(crate) display_name: Option<String>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) updated_ms: u64,
}

/// A tenant deletion that has started: these endpoints are gone, and their
/// unfinished deliveries end cancelled. `from` is the oldest event any of
/// them had queued, where a deletion resumed at open looks for deliveries
/// that have no key of their own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TombstoneRecord {
    pub(crate) tenant: String,
    pub(crate) endpoints: Vec<u64>,
    pub(crate) from: Option<u128>,
    pub(crate) deleted_ms: u64,
}

/// A delivery cancelled by a tenant deletion, never to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CancelledRecord {
    pub(crate) created_ms: u64,
    pub(crate) cancelled_ms: u64,
    /// Attempts made (or started) before it was cancelled.
    pub(crate) attempts: u32,
}

// Record version 1 of each, as first written.
impl Record for TenantRecord {}
impl Record for TombstoneRecord {}
impl Record for CancelledRecord {}

impl Store {
    /// Records the tenant of a new endpoint, before its settings are
    /// written: a crash in between leaves a tenant key that nothing uses,
    /// never an endpoint in the wrong tenant. Not yet durable.
    pub(crate) fn put_endpoint_tenant(&self, id: EndpointId, tenant: &TenantId) -> Result<()> {
        self.db
            .insert(keys::endpoint_tenant(id), tenant.as_str().as_bytes())
            .db()?;
        Ok(())
    }

    /// Whether an endpoint has a tenant key (readable or not).
    pub(crate) fn has_endpoint_tenant(&self, id: EndpointId) -> Result<bool> {
        self.db.contains_key(keys::endpoint_tenant(id)).db()
    }

    /// The tenant of every endpoint that has one (deleted ones included);
    /// unreadable keys come back as errors to report.
    pub(crate) fn endpoint_tenants(&self) -> Result<Vec<Result<(EndpointId, TenantId)>>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::ENDPOINT_TENANT]) {
            let (k, v) = item.db()?;
            let Some(id) = keys::u64_at(&k, 1) else {
                out.push(Err(corrupt_key("endpoint tenant", &k)));
                continue;
            };
            let key = std::str::from_utf8(&v).unwrap_or("\u{fffd}");
            out.push(TenantId::from_stored(key).map(|t| (EndpointId(id), t)));
        }
        Ok(out)
    }

    /// Saves a tenant's metadata and makes it durable.
    pub(crate) fn put_tenant(&self, tenant: &TenantId, rec: &TenantRecord) -> Result<()> {
        self.db
            .insert(keys::tenant(tenant.as_str()), codec::encode(rec))
            .db()?;
        self.commit()
    }

    pub(crate) fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantRecord>> {
        decode_opt("tenant", self.db.get(keys::tenant(tenant.as_str())).db()?)
    }

    /// Tenants with metadata, in key order, after `after`, at most `limit`.
    pub(crate) fn tenants_after(
        &self,
        after: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<(TenantId, TenantRecord)>> {
        let mut lower = keys::tenant(after.map_or("", |t| t.as_str()));
        if after.is_some() {
            // Just past `after` itself.
            lower.push(0);
        }
        let mut out = Vec::new();
        for item in self.db.range(lower..) {
            let (k, v) = item.db()?;
            if k.first() != Some(&keys::TENANT) || out.len() >= limit {
                break;
            }
            let key = std::str::from_utf8(&k[1..]).unwrap_or("\u{fffd}");
            match TenantId::from_stored(key).and_then(|t| Ok((t, codec::decode("tenant", &v)?))) {
                Ok(found) => out.push(found),
                Err(e) => {
                    tracing::error!(error = %e, "skipping tenant metadata that cannot be read")
                }
            }
        }
        Ok(out)
    }

    /// Starts a tenant deletion: removes its metadata and writes the
    /// tombstone, durably. Returns the tombstone's key.
    pub(crate) fn begin_tenant_deletion(&self, rec: &TombstoneRecord) -> Result<u64> {
        let seq = self.generate_id()?;
        self.db
            .insert(keys::tenant_deletion(seq), codec::encode(rec))
            .db()?;
        self.db.remove(keys::tenant(&rec.tenant)).db()?;
        self.commit()?;
        Ok(seq)
    }

    /// Deletions that started and did not finish (the process died).
    pub(crate) fn tenant_deletions(&self) -> Result<Vec<(u64, Result<TombstoneRecord>)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::TENANT_DELETION]) {
            let (k, v) = item.db()?;
            let Some(seq) = keys::u64_at(&k, 1) else {
                continue;
            };
            out.push((seq, codec::decode("tenant deletion", &v)));
        }
        Ok(out)
    }

    /// Ends a deletion once its work is durable.
    pub(crate) fn finish_tenant_deletion(&self, seq: u64) -> Result<()> {
        self.db.remove(keys::tenant_deletion(seq)).db()?;
        self.commit()
    }

    /// Removes an endpoint's settings and state, so that nothing loads or
    /// resumes it and an attempt still in flight records no new delivery
    /// state. Its tenant key stays (its log stays the tenant's).
    pub(crate) fn remove_endpoint_settings(&self, id: EndpointId) -> Result<()> {
        self.db.remove(keys::endpoint(id)).db()?;
        self.db.remove(keys::endpoint_state(id)).db()?;
        Ok(())
    }

    /// Cancels the unfinished deliveries of a removed endpoint: `events`
    /// (the ones its queue held, some only implied by their event) and every
    /// one with a pending key. A finished delivery stays as it is. Not yet
    /// durable. Returns how many were cancelled.
    pub(crate) fn cancel_deliveries(
        &self,
        ep: EndpointId,
        events: impl IntoIterator<Item = EventId>,
        now_ms: u64,
    ) -> Result<usize> {
        let mut all: BTreeSet<EventId> = events.into_iter().collect();
        for key in self.db.scan_prefix(keys::pending_of(ep)).keys() {
            if let Some(ev) = keys::u128_at(&key.db()?, 9) {
                all.insert(EventId::from_u128(ev));
            }
        }
        let mut cancelled = 0;
        for ev in all {
            if self.db.contains_key(keys::finished(ep, ev)).db()?
                || self.db.contains_key(keys::cancelled(ep, ev)).db()?
            {
                self.db.remove(keys::pending(ep, ev)).db()?;
                continue;
            }
            let pending: Option<DeliveryRecord> =
                decode_opt("delivery", self.db.get(keys::pending(ep, ev)).db()?).unwrap_or(None);
            let (created_ms, attempts) = match pending {
                Some(rec) => (
                    rec.created_ms,
                    match rec.state {
                        DeliveryState::Waiting { next_attempt, .. } => {
                            next_attempt.saturating_sub(1)
                        }
                        DeliveryState::InFlight { attempt } => attempt,
                        DeliveryState::Delivered { attempts }
                        | DeliveryState::Failed { attempts } => attempts,
                    },
                ),
                None => (ev.timestamp_ms(), 0),
            };
            let rec = CancelledRecord {
                created_ms,
                cancelled_ms: now_ms,
                attempts,
            };
            self.db
                .insert(keys::cancelled(ep, ev), codec::encode(&rec))
                .db()?;
            self.db.remove(keys::pending(ep, ev)).db()?;
            cancelled += 1;
        }
        Ok(cancelled)
    }

    /// A delivery cancelled by a tenant deletion.
    pub(crate) fn cancelled(&self, ep: EndpointId, ev: EventId) -> Result<Option<CancelledRecord>> {
        decode_opt(
            "cancelled delivery",
            self.db.get(keys::cancelled(ep, ev)).db()?,
        )
    }

    /// Deliveries to any of `endpoints` implied by events from `from` on
    /// that have no key of their own: what a deletion resumed at open must
    /// still cancel.
    pub(crate) fn implied_deliveries_since(
        &self,
        from: EventId,
        endpoints: &BTreeSet<u64>,
    ) -> Result<Vec<(EndpointId, EventId)>> {
        let found = self.implied_since(from, |ep| endpoints.contains(&ep.as_u64()))?;
        // An unreadable event was reported at open; it has no deliveries
        // that could be sent.
        Ok(found
            .into_iter()
            .filter_map(|u| u.ok())
            .map(|u| (u.endpoint, u.event))
            .collect())
    }
}
