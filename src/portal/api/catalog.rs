//! The event-type catalog the host declared on the bus: what a customer
//! subscribes to, with descriptions, examples and schemas.

use super::{ok, views, Ctx, Reply};
use crate::portal::errors::ApiError;

pub(crate) fn list(ctx: &mut Ctx<'_>) -> Reply {
    let (limit, after) = ctx.page()?;
    // The cursor is the last name of the previous page.
    let types = ctx.bus.event_types();
    let start = match &after {
        Some(name) => types.partition_point(|t| t.name.as_str() <= name.as_str()),
        None => 0,
    };
    let page = &types[start.min(types.len())..];
    let shown = &page[..limit.min(page.len())];
    let next = (page.len() > limit)
        .then(|| shown.last().map(|t| t.name.clone()))
        .flatten();
    ok(super::page_json(
        shown.iter().map(views::event_type).collect(),
        next,
    ))
}

pub(crate) fn get(ctx: &mut Ctx<'_>, name: &str) -> Reply {
    let t = ctx
        .bus
        .event_type(name)
        .ok_or_else(|| ApiError::not_found("event type"))?;
    ok(views::event_type(t))
}
