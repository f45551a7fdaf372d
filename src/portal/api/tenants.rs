//! Tenants: the host lists, saves and deletes them and issues their
//! sessions; a customer sees its own tenant only.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use super::{ok, page_json, views, Ctx, Reply};
use crate::portal::errors::ApiError;
use crate::portal::session::{MAX_SESSION_TTL, MIN_SESSION_TTL};
use crate::tenant::{TenantConfig, TenantId, MAX_TENANT_LABELS};
use crate::time::to_ms;

/// Default session length when the host gives none: one hour.
const DEFAULT_SESSION_TTL_SECS: u64 = 3600;

/// A tenant the caller may see, by the key in the path.
fn visible(ctx: &Ctx<'_>, key: &str) -> Result<TenantId, ApiError> {
    TenantId::new(key)
        .ok()
        .filter(|t| ctx.sees(t))
        .ok_or_else(|| ApiError::not_found("tenant"))
}

pub(crate) fn list(ctx: &mut Ctx<'_>) -> Reply {
    let own = ctx.listing_tenant()?;
    let (limit, after) = ctx.page()?;
    let after = super::cursor::<TenantId>(after)?;
    if let Some(own) = own {
        // A customer's list is its own tenant, if it exists yet.
        let items = match ctx.bus.tenant(&own) {
            Ok(t) if after.as_ref().is_none_or(|a| *a < t.id) => vec![views::tenant(&t)],
            Ok(_) | Err(crate::Error::TenantNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        return ok(page_json(items, None));
    }
    let page = ctx.bus.tenants(after.as_ref(), limit)?;
    ok(page_json(
        page.tenants.iter().map(views::tenant).collect(),
        page.next.map(|t| t.as_str().to_string()),
    ))
}

pub(crate) fn get(ctx: &mut Ctx<'_>, key: &str) -> Reply {
    let tenant = visible(ctx, key)?;
    ok(views::tenant(&ctx.bus.tenant(&tenant)?))
}

pub(crate) fn put(ctx: &mut Ctx<'_>, key: &str) -> Reply {
    ctx.host_only()?;
    let mut f = ctx.fields()?;
    let display_name = f.string("display_name")?;
    let labels = f.objects("labels", |l| {
        Ok((l.required_string("key")?, l.required_string("value")?))
    })?;
    f.finish()?;
    // Counted as given: the bus keeps the last of repeated keys, and the
    // limit is on what the caller sent.
    if labels.as_ref().is_some_and(|l| l.len() > MAX_TENANT_LABELS) {
        return Err(ApiError::invalid_field("labels", "at most 64 labels"));
    }
    let mut config = TenantConfig::new(key);
    if let Some(name) = display_name {
        config = config.display_name(name);
    }
    for (k, v) in labels.unwrap_or_default() {
        config = config.label(k, v);
    }
    ok(views::tenant(&ctx.bus.put_tenant(config)?))
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, key: &str) -> Reply {
    ctx.host_only()?;
    let tenant = TenantId::new(key).map_err(|_| ApiError::not_found("tenant"))?;
    ctx.fields()?.finish()?;
    let endpoints: Vec<_> = ctx
        .bus
        .tenant_endpoints(&tenant)
        .iter()
        .map(|e| e.id())
        .collect();
    let report = ctx.bus.delete_tenant(&tenant)?;
    // The descriptions the portal kept for them go too.
    for id in endpoints {
        super::endpoints::forget_description(ctx.bus, id)?;
    }
    ok(json!({ "endpoints": report.endpoints, "cancelled": report.cancelled }))
}

pub(crate) fn issue_session(ctx: &mut Ctx<'_>, key: &str) -> Reply {
    ctx.host_only()?;
    let tenant = TenantId::new(key).map_err(|_| ApiError::not_found("tenant"))?;
    let mut f = ctx.fields()?;
    let ttl = f
        .u64_in(
            "ttl_seconds",
            MIN_SESSION_TTL.as_secs(),
            MAX_SESSION_TTL.as_secs(),
        )?
        .unwrap_or(DEFAULT_SESSION_TTL_SECS);
    f.finish()?;
    let session = ctx.bus.portal_session(&tenant, Duration::from_secs(ttl))?;
    Ok((
        StatusCode::CREATED,
        Some(json!({
            "token": session.token,
            "expires_ms": to_ms(session.expires_at),
            "url_fragment": session.url_fragment,
        })),
    ))
}

pub(crate) fn revoke_sessions(ctx: &mut Ctx<'_>, key: &str) -> Reply {
    ctx.host_only()?;
    let tenant = TenantId::new(key).map_err(|_| ApiError::not_found("tenant"))?;
    ctx.fields()?.finish()?;
    ctx.bus.revoke_portal_sessions(&tenant)?;
    Ok((StatusCode::NO_CONTENT, None))
}
