//! The key layout of the database: one sled tree, one leading byte per record
//! kind, integers big-endian so that iteration order is id order.
//!
//! | key                                   | value            |
//! |---------------------------------------|------------------|
//! | `m` `format`                          | format version    |
//! | `n` endpoint(u64)                     | EndpointRecord   |
//! | `e` event(u128)                       | EventRecord      |
//! | `d` endpoint(u64) event(u128)         | DeliveryRecord   |
//! | `a` endpoint(u64) seq(u64)            | AttemptRecord    |
//! | `x` event(u128) seq(u64)              | endpoint(u64)    |
//!
//! `d` keys of one endpoint sort by event id, which is publish order: the
//! endpoint's queue. `a` keys sort by a database-wide counter, so an
//! endpoint's log reads newest-first by iterating backwards; `x` indexes the
//! same attempts by event.

use crate::endpoint::EndpointId;
use crate::event::EventId;

pub(crate) const FORMAT_KEY: &[u8] = b"mformat";
pub(crate) const ENDPOINT: u8 = b'n';
pub(crate) const EVENT: u8 = b'e';
pub(crate) const DELIVERY: u8 = b'd';
pub(crate) const ATTEMPT: u8 = b'a';
pub(crate) const ATTEMPT_BY_EVENT: u8 = b'x';

pub(crate) fn endpoint(id: EndpointId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = ENDPOINT;
    k[1..].copy_from_slice(&id.0.to_be_bytes());
    k
}

pub(crate) fn event(id: EventId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = EVENT;
    k[1..].copy_from_slice(&id.as_u128().to_be_bytes());
    k
}

pub(crate) fn delivery(ep: EndpointId, ev: EventId) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = DELIVERY;
    k[1..9].copy_from_slice(&ep.0.to_be_bytes());
    k[9..].copy_from_slice(&ev.as_u128().to_be_bytes());
    k
}

pub(crate) fn deliveries_of(ep: EndpointId) -> [u8; 9] {
    let mut k = endpoint(ep);
    k[0] = DELIVERY;
    k
}

pub(crate) fn attempt(ep: EndpointId, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = ATTEMPT;
    k[1..9].copy_from_slice(&ep.0.to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn attempts_of(ep: EndpointId) -> [u8; 9] {
    let mut k = endpoint(ep);
    k[0] = ATTEMPT;
    k
}

pub(crate) fn attempt_by_event(ev: EventId, seq: u64) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = ATTEMPT_BY_EVENT;
    k[1..17].copy_from_slice(&ev.as_u128().to_be_bytes());
    k[17..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn attempts_by_event(ev: EventId) -> [u8; 17] {
    let mut k = event(ev);
    k[0] = ATTEMPT_BY_EVENT;
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
        let a = delivery(EndpointId(1), EventId::from_u128(u128::MAX));
        let b = delivery(EndpointId(2), EventId::from_u128(0));
        let c = delivery(EndpointId(2), EventId::from_u128(1));
        assert!(a < b && b < c);
        assert!(b.starts_with(&deliveries_of(EndpointId(2))));
        assert_eq!(u64_at(&c, 1), Some(2));
        assert_eq!(u128_at(&c, 9), Some(1));
        assert_eq!(u128_at(&c, 10), None);
    }
}
