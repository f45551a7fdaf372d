//! The key layout of the database: one sled tree, one leading byte per record
//! kind, integers big-endian so that iteration order is id order.
//!
//! | key                              | value                 |
//! |----------------------------------|-----------------------|
//! | `m` `format`                     | format version        |
//! | `m` `checkpoint`                 | event id (u128)       |
//! | `m` `meta/` name                 | opaque bytes (below)  |
//! | `n` endpoint(u64)                | EndpointRecord        |
//! | `s` endpoint(u64)                | EndpointStateRecord   |
//! | `e` event(u128)                  | EventRecord           |
//! | `p` endpoint(u64) event(u128)    | DeliveryRecord        |
//! | `f` endpoint(u64) event(u128)    | DeliveryRecord        |
//! | `a` endpoint(u64) seq(u64)       | AttemptRecord         |
//! | `x` event(u128) seq(u64)         | endpoint(u64)         |
//! | `g` seq(u64)                     | endpoint(u64)         |
//! | `k` [0xff tenant 0] key          | IdempotencyRecord     |
//! | `w` endpoint(u64)                | tenant key (UTF-8)    |
//! | `t` tenant key                   | TenantRecord          |
//! | `d` deletion(u64)                | TombstoneRecord       |
//! | `c` endpoint(u64) event(u128)    | CancelledRecord       |
//!
//! Deliveries have no key of their own until their first attempt: the
//! event's `targets` imply them. After an attempt they live under `p`
//! (pending: waiting for a retry, or in flight) or `f` (finished). Below the
//! checkpoint every delivery has such a key, so open only reads the events
//! above it. `a` keys sort by a database-wide counter, so an endpoint's log
//! reads newest-first backwards; `x` and `g` index the same attempts by
//! event and across endpoints.
//!
//! `m` `meta/` keys are small values a feature keeps for itself, named and
//! encoded by their owner (the portal's session-signing key and its
//! per-tenant session revocations); see [`Store::meta`](super::Store::meta).
//!
//! Tenants: an endpoint with a `w` key belongs to that tenant, one without
//! to the default tenant (so databases from before tenants need no
//! migration); `w` keys stay after the endpoint is deleted, so its log
//! stays the tenant's. `t` keys hold the host's tenant metadata. A `d` key
//! is a tenant deletion in progress, finished at the next open if the
//! process died during it; `c` keys are deliveries it cancelled.

use crate::endpoint::EndpointId;
use crate::event::EventId;

pub(crate) const FORMAT_KEY: &[u8] = b"mformat";
pub(crate) const CHECKPOINT_KEY: &[u8] = b"mcheckpoint";
#[cfg(feature = "portal")]
const META_PREFIX: &[u8] = b"mmeta/";
pub(crate) const ENDPOINT: u8 = b'n';
pub(crate) const ENDPOINT_STATE: u8 = b's';
pub(crate) const EVENT: u8 = b'e';
pub(crate) const PENDING: u8 = b'p';
pub(crate) const FINISHED: u8 = b'f';
pub(crate) const ATTEMPT: u8 = b'a';
pub(crate) const ATTEMPT_BY_EVENT: u8 = b'x';
pub(crate) const ATTEMPT_GLOBAL: u8 = b'g';
pub(crate) const IDEMPOTENCY: u8 = b'k';
pub(crate) const ENDPOINT_TENANT: u8 = b'w';
pub(crate) const TENANT: u8 = b't';
pub(crate) const TENANT_DELETION: u8 = b'd';
pub(crate) const CANCELLED: u8 = b'c';

fn with_u64(tag: u8, v: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag;
    k[1..].copy_from_slice(&v.to_be_bytes());
    k
}

fn with_u128(tag: u8, v: u128) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = tag;
    k[1..].copy_from_slice(&v.to_be_bytes());
    k
}

/// A meta value's key: its name after `m` `meta/`, so it never meets the
/// other `m` keys (`format`, `checkpoint`).
#[cfg(feature = "portal")]
pub(crate) fn meta(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(META_PREFIX.len() + name.len());
    k.extend_from_slice(META_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn endpoint(id: EndpointId) -> [u8; 9] {
    with_u64(ENDPOINT, id.0)
}

pub(crate) fn endpoint_state(id: EndpointId) -> [u8; 9] {
    with_u64(ENDPOINT_STATE, id.0)
}

pub(crate) fn event(id: EventId) -> [u8; 17] {
    with_u128(EVENT, id.as_u128())
}

fn delivery(tag: u8, ep: EndpointId, ev: EventId) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = tag;
    k[1..9].copy_from_slice(&ep.0.to_be_bytes());
    k[9..].copy_from_slice(&ev.as_u128().to_be_bytes());
    k
}

pub(crate) fn pending(ep: EndpointId, ev: EventId) -> [u8; 25] {
    delivery(PENDING, ep, ev)
}

pub(crate) fn finished(ep: EndpointId, ev: EventId) -> [u8; 25] {
    delivery(FINISHED, ep, ev)
}

pub(crate) fn cancelled(ep: EndpointId, ev: EventId) -> [u8; 25] {
    delivery(CANCELLED, ep, ev)
}

pub(crate) fn endpoint_tenant(id: EndpointId) -> [u8; 9] {
    with_u64(ENDPOINT_TENANT, id.0)
}

pub(crate) fn tenant_deletion(seq: u64) -> [u8; 9] {
    with_u64(TENANT_DELETION, seq)
}

pub(crate) fn tenant(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(TENANT);
    k.extend_from_slice(key.as_bytes());
    k
}

pub(crate) fn pending_of(ep: EndpointId) -> [u8; 9] {
    with_u64(PENDING, ep.0)
}

pub(crate) fn finished_of(ep: EndpointId) -> [u8; 9] {
    with_u64(FINISHED, ep.0)
}

pub(crate) fn attempt(ep: EndpointId, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = ATTEMPT;
    k[1..9].copy_from_slice(&ep.0.to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn attempts_of(ep: EndpointId) -> [u8; 9] {
    with_u64(ATTEMPT, ep.0)
}

pub(crate) fn attempt_by_event(ev: EventId, seq: u64) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = ATTEMPT_BY_EVENT;
    k[1..17].copy_from_slice(&ev.as_u128().to_be_bytes());
    k[17..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn attempts_by_event(ev: EventId) -> [u8; 17] {
    with_u128(ATTEMPT_BY_EVENT, ev.as_u128())
}

pub(crate) fn attempt_global(seq: u64) -> [u8; 9] {
    with_u64(ATTEMPT_GLOBAL, seq)
}

/// An idempotency key within a tenant. The default tenant's keys are laid
/// out as before tenants; another tenant's start with 0xff, which no UTF-8
/// key can, then the tenant key and a 0 byte (neither can hold one), so
/// keys of different tenants never collide.
pub(crate) fn idempotency(tenant: Option<&str>, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + tenant.map_or(0, |t| t.len() + 2) + 1);
    k.push(IDEMPOTENCY);
    if let Some(t) = tenant {
        k.push(0xff);
        k.extend_from_slice(t.as_bytes());
        k.push(0);
    }
    k.extend_from_slice(key.as_bytes());
    k
}

/// Reads a big-endian u64 at `at`; `None` if the key is too short.
pub(crate) fn u64_at(key: &[u8], at: usize) -> Option<u64> {
    key.get(at..at + 8)?.try_into().ok().map(u64::from_be_bytes)
}

/// Reads a big-endian u128 at `at`; `None` if the key is too short.
pub(crate) fn u128_at(key: &[u8], at: usize) -> Option<u128> {
    key.get(at..at + 16)?
        .try_into()
        .ok()
        .map(u128::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_keys_sort_by_endpoint_then_event() {
        let a = pending(EndpointId(1), EventId::from_u128(u128::MAX));
        let b = pending(EndpointId(2), EventId::from_u128(0));
        let c = pending(EndpointId(2), EventId::from_u128(1));
        assert!(a < b && b < c);
        assert!(b.starts_with(&pending_of(EndpointId(2))));
        assert!(
            !finished(EndpointId(2), EventId::from_u128(1)).starts_with(&pending_of(EndpointId(2)))
        );
        assert_eq!(u64_at(&c, 1), Some(2));
        assert_eq!(u128_at(&c, 9), Some(1));
        assert_eq!(u128_at(&c, 10), None);
    }
}
