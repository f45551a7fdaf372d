//! Endpoints: list, create, get, update, delete, and the actions on one
//! (enable, disable, pause, resume, rotate or reveal the secret, test send,
//! recover failed deliveries). Every change goes through the bus's own
//! methods, so every check of the Rust API applies (URL and SSRF rules,
//! header names, patterns), and a refused change writes nothing.

use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};

use super::{cursor, ok, page_json, views, Ctx, Reply};
use crate::bus::Bus;
use crate::delivery::REDACTED;
use crate::endpoint::{Endpoint, EndpointConfig, EndpointId};
use crate::event::Event;
use crate::page::Cursor;
use crate::portal::errors::ApiError;
use crate::portal::request::Fields;
use crate::signing::Secret;
use crate::tenant::TenantId;
use crate::time;

/// Longest endpoint description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Default grace period of a rotation: one day.
const DEFAULT_GRACE_SECS: u64 = 24 * 3600;
/// Longest grace period: 365 days, as the bus allows.
const MAX_GRACE_SECS: u64 = 365 * 24 * 3600;

/// The portal keeps endpoint descriptions itself (the bus has none).
fn description_name(id: EndpointId) -> String {
    format!("portal/endpoint-description/{id}")
}

fn description(bus: &Bus, id: EndpointId) -> Result<Option<String>, ApiError> {
    let stored = bus.store().meta(&description_name(id))?;
    Ok(stored
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|d| !d.is_empty()))
}

fn set_description(bus: &Bus, id: EndpointId, text: &str) -> Result<(), ApiError> {
    bus.store()
        .put_meta(&description_name(id), text.as_bytes())
        .map_err(ApiError::from_bus)
}

/// Drops the description of a deleted endpoint.
pub(crate) fn forget_description(bus: &Bus, id: EndpointId) -> Result<(), ApiError> {
    set_description(bus, id, "")
}

pub(crate) fn view(bus: &Bus, e: &Endpoint) -> Result<Value, ApiError> {
    let health = bus.endpoint_health(e.id());
    let description = description(bus, e.id())?;
    Ok(views::endpoint(e, health.as_ref(), description.as_deref()))
}

pub(crate) fn list(ctx: &mut Ctx<'_>) -> Reply {
    let tenant = ctx.listing_tenant()?;
    let (limit, after) = ctx.page()?;
    let after: Option<Cursor<Endpoint>> = cursor(after)?;
    let page = match tenant {
        None => ctx.bus.endpoints(after, limit),
        Some(t) => {
            let from = after.map(|c| c.position());
            let mut all: Vec<Endpoint> = ctx
                .bus
                .tenant_endpoints(&t)
                .into_iter()
                .filter(|e| from.is_none_or(|p| u128::from(e.id().as_u64()) > p))
                .collect();
            all.sort_by_key(Endpoint::id);
            let more = all.len() > limit;
            all.truncate(limit);
            let next = more
                .then(|| all.last().map(|e| Cursor::at(u128::from(e.id().as_u64()))))
                .flatten();
            crate::page::Page::new(all, next)
        }
    };
    let items = page
        .items
        .iter()
        .map(|e| view(ctx.bus, e))
        .collect::<Result<Vec<_>, _>>()?;
    ok(page_json(items, page.next.map(|c| c.to_string())))
}

pub(crate) fn get(ctx: &mut Ctx<'_>, id: &str) -> Reply {
    let e = ctx.endpoint(id)?;
    ok(view(ctx.bus, &e)?)
}

/// Custom headers. Values are visible ASCII, spaces and tabs: what every
/// receiver reads the same way (the bus also takes other bytes, which
/// HTTP leaves to each server to interpret).
fn read_headers(f: &mut Fields) -> Result<Option<Vec<(String, String)>>, ApiError> {
    let mut index = 0;
    f.objects("headers", |h| {
        let (name, value) = (h.required_string("name")?, h.required_string("value")?);
        if !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(ApiError::invalid_field(
                &format!("headers[{index}].value"),
                "header values are visible ASCII, spaces and tabs",
            ));
        }
        index += 1;
        Ok((name, value))
    })
}

/// Attribute filters: a key and the values it accepts.
type Filters = Vec<(String, Vec<String>)>;

fn read_filters(f: &mut Fields) -> Result<Option<Filters>, ApiError> {
    f.objects("filters", |o| {
        Ok((
            o.required_string("key")?,
            o.strings("values")?.unwrap_or_default(),
        ))
    })
}

fn read_description(f: &mut Fields) -> Result<Option<String>, ApiError> {
    let d = f.string("description")?;
    if let Some(d) = &d {
        if d.chars().count() > MAX_DESCRIPTION_CHARS
            || d.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err(ApiError::invalid_field(
                "description",
                "at most 1000 characters, no control characters but newlines",
            ));
        }
    }
    Ok(d)
}

/// The fields a create and an update share, each optional here.
struct Settings {
    name: Option<String>,
    url: Option<String>,
    events: Option<Vec<String>>,
    headers: Option<Vec<(String, String)>>,
    filters: Option<Filters>,
    description: Option<String>,
}

fn read_settings(f: &mut Fields) -> Result<Settings, ApiError> {
    Ok(Settings {
        name: f.string("name")?,
        url: f.string("url")?,
        events: f.strings("events")?,
        headers: read_headers(f)?,
        filters: read_filters(f)?,
        description: read_description(f)?,
    })
}

/// The secret given, or a fresh one.
fn given_or_new(given: Option<String>) -> Result<Secret, ApiError> {
    Ok(match given {
        Some(s) => Secret::new(s),
        None => Secret::generate()?,
    })
}

pub(crate) fn create(ctx: &mut Ctx<'_>) -> Reply {
    let mut f = ctx.fields()?;
    let settings = read_settings(&mut f)?;
    let name = settings
        .name
        .ok_or_else(|| ApiError::missing_field("name"))?;
    let url = settings.url.ok_or_else(|| ApiError::missing_field("url"))?;
    let enabled = f.bool("enabled")?;
    let secret = f.string("secret")?;
    let tenant = f.string("tenant")?;
    f.finish()?;
    let tenant = match (ctx.own_tenant(), tenant) {
        (Some(own), Some(given)) if own.as_str() != given => {
            return Err(ApiError::forbidden_field(
                "tenant",
                "a session creates endpoints in its own tenant only",
            ))
        }
        (Some(own), _) => own.clone(),
        (None, Some(given)) => TenantId::new(&given)
            .map_err(|_| ApiError::invalid_field("tenant", "not a valid tenant key"))?,
        (None, None) => TenantId::default_tenant(),
    };
    let secret = given_or_new(secret)?;
    let mut config = EndpointConfig::new(name, url).secret(&secret);
    if !tenant.is_default() {
        config = config.tenant(tenant.as_str());
    }
    if let Some(events) = settings.events {
        config = config.events(events);
    }
    for (n, v) in settings.headers.unwrap_or_default() {
        config = config.header(n, v);
    }
    for (k, values) in settings.filters.unwrap_or_default() {
        config = config.filter_attribute(k, values);
    }
    let endpoint = ctx.bus.add_endpoint(config)?;
    let id = endpoint.id();
    if let Some(d) = settings.description.filter(|d| !d.is_empty()) {
        set_description(ctx.bus, id, &d)?;
    }
    let endpoint = if enabled == Some(false) {
        ctx.bus.disable_endpoint(id)?
    } else {
        endpoint
    };
    tracing::info!(endpoint = %id, tenant = %tenant, "endpoint created through the portal");
    Ok((
        StatusCode::CREATED,
        Some(json!({
            "endpoint": view(ctx.bus, &endpoint)?,
            "secret": secret.expose(),
        })),
    ))
}

pub(crate) fn update(ctx: &mut Ctx<'_>, id: &str) -> Reply {
    let endpoint = ctx.endpoint(id)?;
    let mut f = ctx.fields()?;
    let settings = read_settings(&mut f)?;
    f.finish()?;
    let mut config = endpoint.config().clone();
    if let Some(name) = settings.name {
        config.name = name;
    }
    if let Some(url) = settings.url {
        config.url = url;
    }
    if let Some(events) = settings.events {
        config.events = events;
    }
    if let Some(headers) = settings.headers {
        // A credential header is shown redacted; sent back redacted, it
        // keeps its stored value.
        let old = &endpoint.config().headers;
        let mut kept = Vec::with_capacity(headers.len());
        for (n, v) in headers {
            if v == REDACTED {
                match old.iter().find(|(o, _)| o.eq_ignore_ascii_case(&n)) {
                    Some((_, stored)) => kept.push((n, stored.clone())),
                    None => {
                        return Err(ApiError::invalid_field(
                            "headers",
                            format!("{n:?} has no stored value to keep"),
                        ))
                    }
                }
            } else {
                kept.push((n, v));
            }
        }
        config.headers = kept;
    }
    if let Some(filters) = settings.filters {
        config.attribute_filters = filters;
    }
    let updated = ctx.bus.update_endpoint(endpoint.id(), config)?;
    if let Some(d) = settings.description {
        set_description(ctx.bus, updated.id(), &d)?;
    }
    ok(view(ctx.bus, &updated)?)
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, id: &str) -> Reply {
    let endpoint = ctx.endpoint(id)?;
    ctx.fields()?.finish()?;
    ctx.bus.delete_endpoint(endpoint.id())?;
    forget_description(ctx.bus, endpoint.id())?;
    Ok((StatusCode::NO_CONTENT, None))
}

pub(crate) fn action(ctx: &mut Ctx<'_>, id: &str, action: &str) -> Reply {
    let endpoint = ctx.endpoint(id)?;
    let id = endpoint.id();
    let mut f = ctx.fields()?;
    let bus = ctx.bus;
    match action {
        "enable" | "disable" | "pause" | "resume" => {
            f.finish()?;
            let changed = match action {
                "enable" => bus.enable_endpoint(id)?,
                "disable" => bus.disable_endpoint(id)?,
                "pause" => bus.pause_endpoint(id)?,
                _ => bus.resume_endpoint(id)?,
            };
            ok(view(bus, &changed)?)
        }
        "rotate-secret" => {
            let grace = f
                .u64_in("grace_seconds", 0, MAX_GRACE_SECS)?
                .unwrap_or(DEFAULT_GRACE_SECS);
            let given = f.string("secret")?;
            f.finish()?;
            let secret = given_or_new(given)?;
            let rotated = bus.rotate_secret(id, &secret, Duration::from_secs(grace))?;
            ok(json!({ "endpoint": view(bus, &rotated)?, "secret": secret.expose() }))
        }
        "reveal-secret" => {
            f.finish()?;
            let secret = endpoint
                .config()
                .secret
                .as_ref()
                .map(|s| s.expose().to_string());
            ok(json!({ "secret": secret }))
        }
        "test" => test_send(ctx, f, id),
        "recover" => {
            let since = f.u64_in("since_ms", 0, u64::MAX)?;
            f.finish()?;
            let since = since.ok_or_else(|| ApiError::missing_field("since_ms"))?;
            let queued = bus.recover(id, time::from_ms(since))?;
            ok(json!({ "queued": queued }))
        }
        _ => Err(ApiError::not_found("route")),
    }
}

/// Sends a sample event now and answers what the receiver did. The payload
/// defaults to the catalog's example of the type (else `{}`), and must
/// match the type's schema (with the `schema` feature).
fn test_send(ctx: &Ctx<'_>, mut f: Fields, id: EndpointId) -> Reply {
    let event_type = f.required_string("event_type")?;
    let given = f
        .has("payload")
        .then(|| f.take("payload").unwrap_or(Value::Null));
    f.finish()?;
    let payload = match given {
        Some(p) => p,
        None => ctx
            .bus
            .event_type(&event_type)
            .and_then(|t| t.example.clone())
            .unwrap_or_else(|| json!({})),
    };
    let bytes = serde_json::to_vec(&payload).map_err(|e| ApiError::invalid_json(e.to_string()))?;
    ctx.bus.check_payload(&event_type, &bytes)?;
    let event = Event::from_json_bytes(event_type.clone(), bytes)?;
    let attempt = ctx.bus.test_send(id, event)?;
    ok(json!({ "attempt": views::attempt_detail(&attempt, Some(&event_type)) }))
}
