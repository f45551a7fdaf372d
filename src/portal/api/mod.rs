//! The API routes: one table ([`METHODS`] and [`route`]), the request
//! context every handler gets (who is asking, the query, the body), and
//! the access rules every handler goes through: a tenant's customer sees
//! only its tenant, and anything else answers 404 exactly as an unknown
//! id does.

mod catalog;
mod endpoints;
mod log;
mod overview;
mod tenants;
mod views;

use http::{Method, StatusCode};
use serde_json::Value;

use super::errors::ApiError;
use super::request::{Fields, Query};
use super::PortalConfig;
use crate::bus::Bus;
use crate::endpoint::{Endpoint, EndpointId};
use crate::tenant::TenantId;

/// A handler's answer: a status and a JSON body (`None`: no body).
pub(crate) type Reply = Result<(StatusCode, Option<Value>), ApiError>;

/// Whom a request is answered for.
pub(crate) enum Scope {
    /// Nobody in particular: public routes only (the branding).
    Public,
    /// The host's backend: every tenant.
    Host,
    /// One tenant's customer.
    Tenant {
        tenant: TenantId,
        /// When the session ends, if the caller has one.
        expires_ms: Option<u64>,
    },
}

pub(crate) struct Ctx<'a> {
    pub(crate) bus: &'a Bus,
    pub(crate) config: &'a PortalConfig,
    pub(crate) scope: Scope,
    pub(crate) query: Query,
    pub(crate) body: &'a [u8],
}

/// Default and largest page sizes of every list.
const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;

impl Ctx<'_> {
    /// The caller's tenant, in a customer's scope.
    pub(crate) fn own_tenant(&self) -> Option<&TenantId> {
        match &self.scope {
            Scope::Tenant { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    pub(crate) fn host_only(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Host => Ok(()),
            _ => Err(ApiError::forbidden("only the host may do this")),
        }
    }

    /// Whether the caller may see `tenant`'s data.
    pub(crate) fn sees(&self, tenant: &TenantId) -> bool {
        self.own_tenant().is_none_or(|own| own == tenant)
    }

    /// The tenant a listing is narrowed to: the caller's own, or the
    /// host's `tenant` query parameter. A customer naming another tenant
    /// is refused.
    pub(crate) fn listing_tenant(&mut self) -> Result<Option<TenantId>, ApiError> {
        let given = self
            .query
            .parsed("tenant", "a tenant key", |v| TenantId::new(v).ok())?;
        match (self.own_tenant(), given) {
            (Some(own), Some(given)) if *own != given => Err(ApiError::forbidden_field(
                "tenant",
                "a session sees its own tenant only",
            )),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, given) => Ok(given),
        }
    }

    /// An endpoint the caller may see, by its id in the path.
    pub(crate) fn endpoint(&self, id: &str) -> Result<Endpoint, ApiError> {
        id.parse::<EndpointId>()
            .ok()
            .and_then(|id| self.bus.endpoint(id))
            .filter(|e| self.sees(e.tenant()))
            .ok_or_else(|| ApiError::not_found("endpoint"))
    }

    /// The body as a JSON object, field by field.
    pub(crate) fn fields(&self) -> Result<Fields, ApiError> {
        Fields::parse(self.body)
    }

    /// `limit` (1 to 100, default 20) and the `cursor` text.
    pub(crate) fn page(&mut self) -> Result<(usize, Option<String>), ApiError> {
        let limit = self
            .query
            .u64_in("limit", 1, MAX_LIMIT)?
            .unwrap_or(DEFAULT_LIMIT);
        Ok((limit as usize, self.query.take("cursor")))
    }

    /// Refuses query parameters no handler took.
    pub(crate) fn done(&mut self) -> Result<(), ApiError> {
        std::mem::replace(&mut self.query, Query::parse(None)?).finish()
    }
}

/// A parsed cursor parameter, or `invalid_query`.
pub(crate) fn cursor<T: std::str::FromStr>(text: Option<String>) -> Result<Option<T>, ApiError> {
    text.map(|t| {
        t.parse()
            .map_err(|_| ApiError::invalid_query("cursor", "not a cursor this API returned"))
    })
    .transpose()
}

/// A page as the API returns it.
pub(crate) fn page_json(items: Vec<Value>, next: Option<String>) -> Value {
    serde_json::json!({ "items": items, "next_cursor": next })
}

pub(crate) fn ok(body: Value) -> Reply {
    Ok((StatusCode::OK, Some(body)))
}

/// The methods each route answers; everything else is 405 (with `Allow`)
/// on a known path and 404 elsewhere.
fn methods(segments: &[&str]) -> Option<&'static [Method]> {
    const GET: &[Method] = &[Method::GET];
    const POST: &[Method] = &[Method::POST];
    Some(match segments {
        ["branding" | "session" | "stats" | "health" | "event-types" | "deliveries" | "attempts"] => {
            GET
        }
        ["tenants"] => GET,
        ["tenants", _] => &[Method::GET, Method::PUT, Method::DELETE],
        ["tenants", _, "sessions"] | ["tenants", _, "sessions", "revoke"] => POST,
        ["event-types", _] | ["attempts", _] | ["events", _] => GET,
        ["endpoints"] => &[Method::GET, Method::POST],
        ["endpoints", _] => &[Method::GET, Method::PATCH, Method::DELETE],
        ["endpoints", _, "enable" | "disable" | "pause" | "resume" | "rotate-secret" | "reveal-secret" | "test"
        | "recover"] => POST,
        ["deliveries", _, _] => GET,
        ["deliveries", _, _, "resend"] => POST,
        _ => return None,
    })
}

/// `Allow` for a known path.
pub(crate) fn allowed_methods(segments: &[&str]) -> String {
    methods(segments)
        .unwrap_or(&[])
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn route(ctx: &mut Ctx<'_>, method: &Method, segments: &[&str]) -> Reply {
    let Some(allowed) = methods(segments) else {
        return Err(ApiError::not_found("route"));
    };
    if !allowed.contains(method) {
        return Err(ApiError::method_not_allowed());
    }
    // Changes take no query parameters: refuse any before anything is
    // written. Reads refuse unknown ones after taking theirs.
    let m = method.as_str();
    if m != "GET" {
        ctx.done()?;
    }
    let reply = match (m, segments) {
        (_, ["branding"]) => overview::branding(ctx),
        (_, ["session"]) => overview::session(ctx),
        (_, ["stats"]) => overview::stats(ctx),
        (_, ["health"]) => overview::health(ctx),
        ("GET", ["tenants"]) => tenants::list(ctx),
        ("GET", ["tenants", t]) => tenants::get(ctx, t),
        ("PUT", ["tenants", t]) => tenants::put(ctx, t),
        ("DELETE", ["tenants", t]) => tenants::delete(ctx, t),
        (_, ["tenants", t, "sessions"]) => tenants::issue_session(ctx, t),
        (_, ["tenants", t, "sessions", "revoke"]) => tenants::revoke_sessions(ctx, t),
        (_, ["event-types"]) => catalog::list(ctx),
        (_, ["event-types", name]) => catalog::get(ctx, name),
        ("GET", ["endpoints"]) => endpoints::list(ctx),
        ("POST", ["endpoints"]) => endpoints::create(ctx),
        ("GET", ["endpoints", id]) => endpoints::get(ctx, id),
        ("PATCH", ["endpoints", id]) => endpoints::update(ctx, id),
        ("DELETE", ["endpoints", id]) => endpoints::delete(ctx, id),
        (_, ["endpoints", id, action]) => endpoints::action(ctx, id, action),
        (_, ["deliveries"]) => log::deliveries(ctx),
        (_, ["deliveries", ep, ev]) => log::delivery(ctx, ep, ev),
        (_, ["deliveries", ep, ev, "resend"]) => log::resend(ctx, ep, ev),
        (_, ["attempts"]) => log::attempts(ctx),
        (_, ["attempts", id]) => log::attempt(ctx, id),
        (_, ["events", id]) => log::event(ctx, id),
        _ => Err(ApiError::not_found("route")),
    }?;
    ctx.done()?;
    Ok(reply)
}
