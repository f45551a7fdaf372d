//! The page's own needs and the overview: branding, who the session is,
//! stats and per-endpoint health.

use serde_json::json;

use super::{ok, views, Ctx, Reply, Scope};

pub(crate) fn branding(ctx: &mut Ctx<'_>) -> Reply {
    ok(ctx.config.branding.to_json())
}

pub(crate) fn session(ctx: &mut Ctx<'_>) -> Reply {
    let (scope, tenant, expires) = match &ctx.scope {
        Scope::Tenant { tenant, expires_ms } => ("tenant", Some(tenant.as_str()), *expires_ms),
        Scope::Host | Scope::Public => ("host", None, None),
    };
    ok(json!({ "scope": scope, "tenant": tenant, "expires_ms": expires }))
}

pub(crate) fn stats(ctx: &mut Ctx<'_>) -> Reply {
    let s = match ctx.listing_tenant()? {
        Some(t) => ctx.bus.tenant_stats(&t),
        None => ctx.bus.stats(),
    };
    ok(json!({
        "published": s.published,
        "queued": s.queued,
        "in_flight": s.in_flight,
        "attempts": s.attempts,
        "retried": s.retried,
        "delivered": s.delivered,
        "failed": s.failed,
        "paused_endpoints": s.paused_endpoints,
    }))
}

pub(crate) fn health(ctx: &mut Ctx<'_>) -> Reply {
    let endpoints = match ctx.listing_tenant()? {
        Some(t) => ctx.bus.tenant_endpoints(&t),
        None => ctx.bus.endpoints(None, usize::MAX).items,
    };
    let items: Vec<_> = endpoints
        .iter()
        .filter_map(|e| {
            let h = ctx.bus.endpoint_health(e.id())?;
            Some(json!({
                "id": e.id().to_string(),
                "name": e.name(),
                "status": views::endpoint_status(e.status()),
                "health": views::health(&h),
            }))
        })
        .collect();
    ok(json!({ "endpoints": items }))
}
