//! The delivery log: deliveries and attempts with filters, one attempt's
//! detail, an event with its deliveries, and resending one delivery.
//!
//! Filters the bus does not index (event type, creation time) are applied
//! page by page: a listing reads at most [`SCAN_PAGES`] pages of the bus's
//! own listing per request and returns the cursor where it stopped, so a
//! page may hold fewer items than `limit` while `next_cursor` is set.

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{json, Value};

use super::{cursor, ok, page_json, views, Ctx, Reply};
use crate::bus::Bus;
use crate::endpoint::EndpointId;
use crate::event::{validate_event_type, EventId};
use crate::log::{Attempt, AttemptQuery, Delivery, DeliveryFilter};
use crate::page::{Cursor, Page};
use crate::portal::errors::ApiError;
use crate::portal::request::canonical_u64;
use crate::tenant::TenantId;
use crate::time::{self, to_ms};

/// Pages of the bus's listing one request reads at most.
const SCAN_PAGES: usize = 20;

/// Event types by event, read once per request.
struct EventTypes<'a> {
    bus: &'a Bus,
    known: HashMap<EventId, Option<String>>,
}

impl<'a> EventTypes<'a> {
    fn new(bus: &'a Bus) -> Self {
        EventTypes {
            bus,
            known: HashMap::new(),
        }
    }

    /// The event's type if it passes the `want` filter (`None`: filtered
    /// out; `Some(None)`: the event is gone, shown without a type).
    fn passing(
        &mut self,
        event: EventId,
        want: Option<&str>,
    ) -> Result<Option<Option<String>>, ApiError> {
        let t = self.of(event)?;
        Ok(want.is_none_or(|w| t.as_deref() == Some(w)).then_some(t))
    }

    fn of(&mut self, event: EventId) -> Result<Option<String>, ApiError> {
        if let Some(t) = self.known.get(&event) {
            return Ok(t.clone());
        }
        let t = self.bus.event(event)?.map(|e| e.event_type);
        self.known.insert(event, t.clone());
        Ok(t)
    }
}

/// An `event_type` filter: a valid event type.
fn event_type_filter(ctx: &mut Ctx<'_>) -> Result<Option<String>, ApiError> {
    ctx.query.parsed("event_type", "an event type", |v| {
        validate_event_type(v).is_ok().then(|| v.to_string())
    })
}

fn parse_endpoint(text: &str) -> Option<EndpointId> {
    text.parse().ok()
}

fn parse_event(text: &str) -> Option<EventId> {
    text.parse().ok()
}

/// The time range `since_ms` (inclusive) to `until_ms` (exclusive).
fn time_range(ctx: &mut Ctx<'_>) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let since = ctx
        .query
        .parsed("since_ms", "Unix milliseconds", canonical_u64)?;
    let until = ctx
        .query
        .parsed("until_ms", "Unix milliseconds", canonical_u64)?;
    Ok((since, until))
}

/// Reads pages of `fetch` from `after` on, keeping what `keep` accepts,
/// until `limit` items are kept, the listing ends, or [`SCAN_PAGES`] pages
/// were read. Returns the kept items and where to go on.
fn scan<T, K>(
    limit: usize,
    mut after: Option<Cursor<T>>,
    mut fetch: impl FnMut(Option<Cursor<T>>, usize) -> Result<Page<T>, ApiError>,
    mut keep: impl FnMut(&T) -> Result<Option<K>, ApiError>,
) -> Result<(Vec<K>, Option<Cursor<T>>), ApiError> {
    let mut kept = Vec::new();
    for _ in 0..SCAN_PAGES {
        let page = fetch(after, limit - kept.len())?;
        for item in &page.items {
            if let Some(k) = keep(item)? {
                kept.push(k);
            }
        }
        after = page.next;
        if after.is_none() || kept.len() >= limit {
            break;
        }
    }
    Ok((kept, after))
}

pub(crate) fn deliveries(ctx: &mut Ctx<'_>) -> Reply {
    let state = match ctx.query.take("state").as_deref() {
        None | Some("failed") => DeliveryFilter::Failed,
        Some("delivered") => DeliveryFilter::Delivered,
        Some("unfinished") => DeliveryFilter::Unfinished,
        Some(_) => {
            return Err(ApiError::invalid_query(
                "state",
                "state must be unfinished, delivered or failed",
            ))
        }
    };
    let endpoint = ctx.query.take("endpoint");
    let event_type = event_type_filter(ctx)?;
    let (since, until) = time_range(ctx)?;
    let tenant = ctx.listing_tenant()?;
    let (limit, after) = ctx.page()?;
    let after: Option<Cursor<Delivery>> = cursor(after)?;
    let endpoint = match endpoint {
        // Another tenant's endpoint lists nothing, as an unknown one.
        Some(text) => Some(
            parse_endpoint(&text)
                .and_then(|id| ctx.bus.endpoint(id))
                .filter(|e| ctx.sees(e.tenant()))
                .ok_or_else(|| ApiError::not_found("endpoint"))?
                .id(),
        ),
        None => None,
    };
    // The host naming neither lists the default tenant's, as it does
    // with the Rust API's per-tenant listing.
    let tenant = tenant.unwrap_or_else(TenantId::default_tenant);
    let bus = ctx.bus;
    let mut types = EventTypes::new(bus);
    let (items, next) = scan(
        limit,
        after,
        |after, n| {
            Ok(match endpoint {
                Some(ep) => bus.endpoint_deliveries(ep, state, after, n)?,
                None => bus.tenant_deliveries(&tenant, state, after, n)?,
            })
        },
        |d| {
            let created = to_ms(d.created_at);
            if since.is_some_and(|s| created < s) || until.is_some_and(|u| created >= u) {
                return Ok(None);
            }
            Ok(types
                .passing(d.event, event_type.as_deref())?
                .map(|t| views::delivery(d, t.as_deref())))
        },
    )?;
    ok(page_json(items, next.map(|c| c.to_string())))
}

/// A delivery the caller may see, by the ids in the path.
fn find_delivery(
    ctx: &Ctx<'_>,
    ep: &str,
    ev: &str,
) -> Result<(Delivery, Option<String>), ApiError> {
    let endpoint = ctx.endpoint(ep)?;
    let event = parse_event(ev).ok_or_else(|| ApiError::not_found("delivery"))?;
    let delivery = ctx
        .bus
        .delivery(endpoint.id(), event)?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let event_type = ctx.bus.event(event)?.map(|e| e.event_type);
    Ok((delivery, event_type))
}

pub(crate) fn delivery(ctx: &mut Ctx<'_>, ep: &str, ev: &str) -> Reply {
    let (d, event_type) = find_delivery(ctx, ep, ev)?;
    let attempts: Vec<Value> = ctx
        .bus
        .attempts(d.event)?
        .iter()
        .filter(|a| a.endpoint == d.endpoint)
        .map(|a| views::attempt(a, event_type.as_deref()))
        .collect();
    ok(json!({
        "delivery": views::delivery(&d, event_type.as_deref()),
        "attempts": attempts,
    }))
}

pub(crate) fn resend(ctx: &mut Ctx<'_>, ep: &str, ev: &str) -> Reply {
    let endpoint = ctx.endpoint(ep)?;
    let event = parse_event(ev).ok_or_else(|| ApiError::not_found("event"))?;
    ctx.fields()?.finish()?;
    // The bus refuses another tenant's event as unknown.
    ctx.bus.resend(event, endpoint.id())?;
    let (d, event_type) = find_delivery(ctx, ep, ev)?;
    Ok((
        StatusCode::ACCEPTED,
        Some(json!({ "delivery": views::delivery(&d, event_type.as_deref()) })),
    ))
}

pub(crate) fn attempts(ctx: &mut Ctx<'_>) -> Reply {
    let mut query = AttemptQuery::new();
    if let Some(ep) = ctx
        .query
        .parsed("endpoint", "an endpoint id", parse_endpoint)?
    {
        query = query.endpoint(ep);
    }
    if let Some(ev) = ctx.query.parsed("event", "an event id", parse_event)? {
        query = query.event(ev);
    }
    let event_type = event_type_filter(ctx)?;
    match ctx.query.take("outcome").as_deref() {
        None => {}
        Some("succeeded") => query = query.succeeded(true),
        Some("failed") => query = query.succeeded(false),
        Some(_) => {
            return Err(ApiError::invalid_query(
                "outcome",
                "outcome must be succeeded or failed",
            ))
        }
    }
    let (since, until) = time_range(ctx)?;
    if let Some(s) = since {
        query = query.since(time::from_ms(s));
    }
    if let Some(u) = until {
        query = query.until(time::from_ms(u));
    }
    // The bus keeps another tenant's attempts out, deleted endpoints'
    // included.
    if let Some(t) = ctx.listing_tenant()? {
        query = query.tenant(&t);
    }
    let (limit, after) = ctx.page()?;
    let after: Option<Cursor<Attempt>> = cursor(after)?;
    let bus = ctx.bus;
    let mut types = EventTypes::new(bus);
    let (items, next) = scan(
        limit,
        after,
        |after, n| Ok(bus.query_attempts(query.clone(), after, n)?),
        |a| {
            Ok(types
                .passing(a.event, event_type.as_deref())?
                .map(|t| views::attempt(a, t.as_deref())))
        },
    )?;
    ok(page_json(items, next.map(|c| c.to_string())))
}

/// `ep_3.evt_….2`: endpoint, event, attempt number.
fn parse_attempt_id(id: &str) -> Option<(EndpointId, EventId, u32)> {
    let mut parts = id.split('.');
    let ep = parse_endpoint(parts.next()?)?;
    let ev = parse_event(parts.next()?)?;
    let n = canonical_u64(parts.next()?).and_then(|n| u32::try_from(n).ok())?;
    parts.next().is_none().then_some((ep, ev, n))
}

pub(crate) fn attempt(ctx: &mut Ctx<'_>, id: &str) -> Reply {
    let not_found = || ApiError::not_found("attempt");
    let (ep, ev, number) = parse_attempt_id(id).ok_or_else(not_found)?;
    // The event tells the tenant: its attempts went to its tenant's
    // endpoints only (deleted ones included).
    let event = ctx.bus.event(ev)?.ok_or_else(not_found)?;
    if !ctx.sees(&event.tenant) {
        return Err(not_found());
    }
    let attempt = ctx
        .bus
        .attempts(ev)?
        .into_iter()
        .find(|a| a.endpoint == ep && a.number == number)
        .ok_or_else(not_found)?;
    ok(views::attempt_detail(&attempt, Some(&event.event_type)))
}

pub(crate) fn event(ctx: &mut Ctx<'_>, id: &str) -> Reply {
    let not_found = || ApiError::not_found("event");
    let id = parse_event(id).ok_or_else(not_found)?;
    let event = ctx
        .bus
        .event(id)?
        .filter(|e| ctx.sees(&e.tenant))
        .ok_or_else(not_found)?;
    let payload = serde_json::from_slice::<Value>(&event.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&event.payload).into_owned()));
    let deliveries: Vec<Value> = ctx
        .bus
        .deliveries(id)?
        .iter()
        .map(|d| views::delivery(d, Some(&event.event_type)))
        .collect();
    ok(json!({
        "id": id.to_string(),
        "tenant": event.tenant.as_str(),
        "event_type": event.event_type,
        "payload": payload,
        "attributes": event.attributes.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "occurred_ms": to_ms(event.occurred_at),
        "deliveries": deliveries,
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_attempt_id;

    #[test]
    fn attempt_ids_round_trip_and_refuse_junk() {
        let ev = crate::event::EventId::from_u128(42);
        let id = format!("ep_3.{ev}.2");
        let (ep, e, n) = parse_attempt_id(&id).unwrap();
        assert_eq!((ep.as_u64(), e, n), (3, ev, 2));
        for bad in [
            "",
            "ep_3",
            &format!("ep_3.{ev}"),
            &format!("ep_3.{ev}.02"),
            &format!("ep_3.{ev}.2.x"),
        ] {
            assert!(parse_attempt_id(bad).is_none(), "{bad}");
        }
    }
}
