//! The consumer portal: a management API (JSON over HTTP) and the web page
//! a host hands to its customers, as one framework-agnostic handler
//! (feature `portal`).
//!
//! [`Portal::handle`] takes an [`http::Request`] with its body read into a
//! `Vec<u8>` and returns an [`http::Response`], so it mounts under a path
//! prefix in any server. Everything it serves lives under the prefix
//! (`/portal` by default):
//!
//! | path | what |
//! |---|---|
//! | `{prefix}/` | the page (HTML; its script and styles at `portal.js`, `portal.css`) |
//! | `{prefix}/openapi.json` | the OpenAPI 3.1 document of the API |
//! | `{prefix}/api/v1/…` | the API: tenants, endpoints, the event-type catalog, deliveries, attempts, stats |
//!
//! # Two scopes
//!
//! - **A customer** ([`Portal::handle`]): every API route but `branding`
//!   needs `Authorization: Bearer <token>`, a session the host issued with
//!   [`Bus::portal_session`](crate::Bus::portal_session) for one tenant.
//!   Everything it reads or changes is that tenant's: another tenant's
//!   endpoint, event or attempt id answers 404, exactly as an unknown one;
//!   a missing, tampered, expired or revoked token answers 401; host-only
//!   routes (saving or deleting tenants, issuing sessions) answer 403.
//! - **The host's own backend** ([`Portal::handle_host`]): every tenant.
//!   The host authenticates the caller itself before passing the request
//!   (the portal has no notion of host credentials).
//!
//! [`Portal::handle_for_tenant`] serves one tenant to a caller the host
//! authenticated itself (with its own login cookie, say), without tokens.
//!
//! # Sessions
//!
//! ```no_run
//! # fn main() -> hookbus::Result<()> {
//! # let bus = hookbus::Bus::open("/tmp/portal-doc")?;
//! use std::time::Duration;
//! let tenant = hookbus::TenantId::new("acme-42")?;
//! let session = bus.portal_session(&tenant, Duration::from_secs(3600))?;
//! // Hand the customer: https://app.example/portal/#token=…
//! let link = format!("https://app.example/portal/{}", session.url_fragment);
//! // Later, end every session of the tenant:
//! bus.revoke_portal_sessions(&tenant)?;
//! # Ok(()) }
//! ```
//!
//! Tokens are signed (HMAC-SHA256) with a key the bus creates once and keeps
//! in its database, carry the tenant and the expiry, and are compared in
//! constant time. The page reads the token from the URL fragment (never
//! sent to a server, so it stays out of logs and `Referer`s) and sends it
//! as a bearer header: no cookies, so no cross-site request forgery.
//!
//! **If you use cookies instead** (with [`Portal::handle_for_tenant`]): set
//! them `HttpOnly; Secure; SameSite=Strict`, and refuse unsafe methods
//! (`POST`, `PATCH`, `PUT`, `DELETE`) whose `Origin` header is not your own
//! origin before calling the handler. The handler itself refuses any
//! request body that is not `application/json` (415), which HTML forms
//! cannot send cross-site.
//!
//! # Mounting
//!
//! With tiny_http (a blocking server; one thread per request here):
//!
//! ```no_run
//! use std::io::Read;
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let bus = hookbus::Bus::open("/var/lib/myapp/webhooks")?;
//! let portal = hookbus::portal::Portal::builder(bus.clone()).prefix("/portal").build()?;
//! let server = tiny_http::Server::http("127.0.0.1:8080")?;
//! for mut rq in server.incoming_requests() {
//!     let mut body = Vec::new();
//!     // Read at most one byte more than the portal accepts: it answers 413.
//!     rq.as_reader().take(1024 * 1024 + 1).read_to_end(&mut body)?;
//!     let mut req = http::Request::builder()
//!         .method(rq.method().as_str())
//!         .uri(rq.url());
//!     for h in rq.headers() {
//!         req = req.header(h.field.as_str().as_str(), h.value.as_str());
//!     }
//!     let resp = portal.handle(req.body(body)?);
//!     let headers = resp
//!         .headers()
//!         .iter()
//!         .filter_map(|(n, v)| tiny_http::Header::from_bytes(n.as_str(), v.as_bytes()).ok())
//!         .collect();
//!     let status = resp.status().as_u16();
//!     let body = resp.into_body();
//!     let len = body.len();
//!     rq.respond(tiny_http::Response::new(
//!         status.into(), headers, std::io::Cursor::new(body), Some(len), None,
//!     ))?;
//! }
//! # Ok(()) }
//! ```
//!
//! With axum (the handler blocks on the database and on test sends, so run
//! it on the blocking pool):
//!
//! ```text
//! use axum::{body::{to_bytes, Body}, extract::{Request, State}, response::Response};
//!
//! async fn portal(State(portal): State<Arc<Portal>>, req: Request) -> Response {
//!     let (parts, body) = req.into_parts();
//!     let Ok(bytes) = to_bytes(body, 1024 * 1024 + 1).await else {
//!         return Response::builder().status(413).body(Body::empty()).unwrap();
//!     };
//!     let req = http::Request::from_parts(parts, bytes.to_vec());
//!     let resp = tokio::task::spawn_blocking(move || portal.handle(req)).await.unwrap();
//!     resp.map(Body::from)
//! }
//! // Router::new().route("/portal", any(portal)).route("/portal/{*rest}", any(portal))
//! //     .with_state(Arc::new(Portal::builder(bus).prefix("/portal").build()?))
//! ```
//!
//! # What every response carries
//!
//! `Content-Security-Policy` (scripts and styles from the portal's own
//! routes only: no inline script, no `eval`; `frame-ancestors` as set with
//! [`PortalBuilder::frame_ancestors`]), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. Errors are
//! JSON: `{ "error": { "code", "message", "field" } }` with a stable code
//! (`invalid_json`, `unknown_field`, `missing_field`, `invalid_field`,
//! `invalid_query`, `unauthorized`, `forbidden`, `not_found`,
//! `method_not_allowed`, `delivery_in_progress`, `body_too_large`,
//! `unsupported_media_type`, `schema_mismatch`, `internal`, `shut_down`).
//! A request refused for bad input changes nothing.

mod api;
mod assets;
mod branding;
mod errors;
mod openapi;
mod request;
mod response;
mod routes;
pub(crate) mod session;

use std::fmt;
use std::sync::Arc;

use http::{Request, Response};

use crate::bus::Bus;
use crate::error::{Error, Result};
use crate::tenant::TenantId;
use branding::Branding;
use response::SecurityHeaders;

/// The `http` crate the handler's request and response types come from,
/// re-exported so a host can build them without depending on it itself.
pub use http;
pub use session::{PortalSession, MAX_SESSION_TTL, MIN_SESSION_TTL};

/// The portal handler. Cheap to clone (a shared handle); every method
/// takes `&self`, so one portal serves every thread of a server.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) bus: Bus,
    pub(crate) config: PortalConfig,
    pub(crate) headers: SecurityHeaders,
    /// The bus's session key, read (or created) once.
    pub(crate) key: [u8; 32],
    /// The OpenAPI document, its server set to the prefix.
    pub(crate) openapi: String,
}

/// The portal's settings; every default is in the one `impl Default`.
#[derive(Clone, Debug)]
pub(crate) struct PortalConfig {
    pub(crate) prefix: String,
    pub(crate) branding: Branding,
    pub(crate) frame_ancestors: String,
    pub(crate) body_limit: usize,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            prefix: "/portal".into(),
            branding: Branding {
                title: "Webhooks".into(),
                logo_url: None,
                accent_color: "#2563eb".into(),
            },
            // Not framed anywhere unless the host says where.
            frame_ancestors: "'none'".into(),
            // Room for a 256 KiB payload (the bus's default limit) in a
            // test send, escaped, and then some.
            body_limit: 1024 * 1024,
        }
    }
}

/// Builds a [`Portal`]; see the setters for each default.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct PortalBuilder {
    bus: Bus,
    config: PortalConfig,
}

/// Largest accepted request body limit, in bytes.
const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

impl Portal {
    /// A builder for a portal over `bus`.
    pub fn builder(bus: Bus) -> PortalBuilder {
        PortalBuilder {
            bus,
            config: PortalConfig::default(),
        }
    }

    /// Serves one request from a customer: API routes need a session token
    /// (see the module docs). Never panics on any input.
    pub fn handle(&self, req: Request<Vec<u8>>) -> Response<Vec<u8>> {
        routes::serve(&self.inner, req, routes::Caller::Bearer)
    }

    /// Serves one request from the host's own backend, with access to every
    /// tenant. Call it only for callers the host has authenticated.
    pub fn handle_host(&self, req: Request<Vec<u8>>) -> Response<Vec<u8>> {
        routes::serve(&self.inner, req, routes::Caller::Host)
    }

    /// Serves one request as `tenant`'s customer, for a caller the host has
    /// authenticated itself (no token needed; see the module docs for the
    /// CSRF rule when that authentication is a cookie).
    pub fn handle_for_tenant(&self, req: Request<Vec<u8>>, tenant: &TenantId) -> Response<Vec<u8>> {
        routes::serve(&self.inner, req, routes::Caller::Tenant(tenant.clone()))
    }

    /// The path prefix it serves.
    pub fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }
}

impl fmt::Debug for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("prefix", &self.inner.config.prefix)
            .finish_non_exhaustive()
    }
}

impl PortalBuilder {
    /// The path the portal is mounted under: `""` (the root) or `/` and
    /// segments of `A-Z a-z 0-9 - _ . ~`, without a trailing `/`.
    /// Defaults to `/portal`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// The page's title. 1 to 100 characters. Defaults to `Webhooks`.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.config.branding.title = title.into();
        self
    }

    /// The logo the page shows: an `https://` URL, or a path on the host's
    /// own site (`/static/logo.svg`). An `http://` URL is accepted but the
    /// page's Content-Security-Policy loads it only from the portal's own
    /// origin. Defaults to none.
    pub fn logo_url(mut self, url: impl Into<String>) -> Self {
        self.config.branding.logo_url = Some(url.into());
        self
    }

    /// The page's accent colour, `#rgb` or `#rrggbb`. Defaults to `#2563eb`.
    pub fn accent_color(mut self, color: impl Into<String>) -> Self {
        self.config.branding.accent_color = color.into();
        self
    }

    /// Who may show the page in a frame: the CSP `frame-ancestors` sources,
    /// `'none'` or a space-separated list of `'self'` and origins
    /// (`https://app.example`, `https://*.example`). Defaults to `'none'`
    /// (with `X-Frame-Options: DENY` for older browsers).
    pub fn frame_ancestors(mut self, sources: impl Into<String>) -> Self {
        self.config.frame_ancestors = sources.into();
        self
    }

    /// The largest request body accepted, in bytes; a larger one answers
    /// 413. Allowed: 1 KiB to 64 MiB. Defaults to 1 MiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config.body_limit = bytes;
        self
    }

    /// Checks every setting ([`Error::InvalidConfig`] names the one
    /// refused) and reads the bus's session key (created on first use).
    pub fn build(self) -> Result<Portal> {
        let c = &self.config;
        let invalid = |setting, reason: &str| {
            Err(Error::InvalidConfig {
                setting,
                reason: reason.to_string(),
            })
        };
        if !prefix_ok(&c.prefix) {
            return invalid(
                "prefix",
                "\"\" or /segments of A-Z a-z 0-9 - _ . ~ without a trailing /",
            );
        }
        c.branding.validate()?;
        if !branding::frame_ancestors_ok(&c.frame_ancestors) {
            return invalid(
                "frame_ancestors",
                "'none', or 'self' and origins such as https://app.example, separated by spaces",
            );
        }
        if !(1024..=MAX_BODY_LIMIT).contains(&c.body_limit) {
            return invalid("body_limit", "1 KiB to 64 MiB");
        }
        let key = session::session_key(&self.bus)?;
        Ok(Portal {
            inner: Arc::new(Inner {
                headers: SecurityHeaders::new(&c.frame_ancestors),
                openapi: openapi::document(&c.prefix),
                bus: self.bus,
                config: self.config,
                key,
            }),
        })
    }
}

fn prefix_ok(prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let Some(rest) = prefix.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    })
}

#[cfg(test)]
mod tests {
    use super::prefix_ok;

    #[test]
    fn prefixes_are_plain_paths() {
        for ok in ["", "/portal", "/a/b-c/d_e.f~"] {
            assert!(prefix_ok(ok), "{ok}");
        }
        for bad in ["/", "portal", "/portal/", "//x", "/a/../b", "/a b", "/%2e"] {
            assert!(!prefix_ok(bad), "{bad}");
        }
    }
}
