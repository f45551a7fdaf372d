//! From a request to a response: the prefix, the static routes, who the
//! caller is, the body checks, then the API route.

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::api::{self, Ctx, Reply, Scope};
use super::assets;
use super::errors::ApiError;
use super::request::{decode_component, Query};
use super::session::{self, TokenError};
use super::Inner;
use crate::tenant::TenantId;

/// Who is calling, as the host's choice of `handle*` method says.
pub(crate) enum Caller {
    /// A customer with a session token (or none yet).
    Bearer,
    /// The host's backend: every tenant.
    Host,
    /// A customer of this tenant the host authenticated itself.
    Tenant(TenantId),
}

pub(crate) fn serve(inner: &Inner, req: Request<Vec<u8>>, caller: Caller) -> Response<Vec<u8>> {
    let headers = &inner.headers;
    let path = req.uri().path();
    let Some(rest) = below_prefix(path, &inner.config.prefix) else {
        return headers.error(&ApiError::not_found("route"));
    };
    if rest.is_empty() {
        // The page's relative links need the trailing `/`.
        let mut r = headers.empty(StatusCode::PERMANENT_REDIRECT);
        if let Ok(v) = HeaderValue::from_str(&format!("{}/", inner.config.prefix)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    let static_body = match rest {
        "/openapi.json" => Some(("application/json", inner.openapi.as_str())),
        _ => assets::asset(rest),
    };
    if let Some((content_type, body)) = static_body {
        return match *req.method() {
            Method::GET => headers.bytes(StatusCode::OK, content_type, body.as_bytes().to_vec()),
            _ => allow(headers.error(&ApiError::method_not_allowed()), "GET"),
        };
    }
    let Some(api_path) = rest.strip_prefix("/api/v1/") else {
        return headers.error(&ApiError::not_found("route"));
    };
    let segments: Option<Vec<String>> = api_path
        .split('/')
        .map(|s| decode_component(s, false))
        .collect();
    let Some(segments) = segments else {
        return headers.error(&ApiError::not_found("route"));
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match answer(inner, &req, &segments, caller) {
        Ok((status, Some(body))) => headers.json(status, &body),
        Ok((status, None)) => headers.empty(status),
        Err(e) => {
            let mut response = headers.error(&e);
            if e.status == StatusCode::METHOD_NOT_ALLOWED {
                let allowed = api::allowed_methods(&segments);
                response = allow(response, &allowed);
            }
            response
        }
    }
}

fn allow(mut response: Response<Vec<u8>>, methods: &str) -> Response<Vec<u8>> {
    if let Ok(v) = HeaderValue::from_str(methods) {
        response.headers_mut().insert(header::ALLOW, v);
    }
    response
}

/// The path below the prefix: `""`, or starting with `/`.
fn below_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn answer(inner: &Inner, req: &Request<Vec<u8>>, segments: &[&str], caller: Caller) -> Reply {
    let body = req.body();
    if body.len() > inner.config.body_limit {
        return Err(ApiError::body_too_large(inner.config.body_limit));
    }
    // Unsafe methods take JSON only: an HTML form (which a cross-site page
    // can submit with the user's cookies) always sends another type.
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    if unsafe_method {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let json = ct
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(ApiError::unsupported_media_type());
            }
        }
    }
    // The branding is public: the page shows it before it has a session.
    let public = segments == ["branding"];
    let scope = if public {
        Scope::Public
    } else {
        match caller {
            Caller::Host => Scope::Host,
            Caller::Tenant(t) => Scope::Tenant {
                tenant: t,
                expires_ms: None,
            },
            Caller::Bearer => {
                let token = bearer(req)?;
                match session::verify(&inner.bus, &inner.key, token) {
                    Ok(claims) => Scope::Tenant {
                        tenant: claims.tenant,
                        expires_ms: Some(claims.expires_ms),
                    },
                    Err(TokenError::Refused(why)) => {
                        tracing::debug!(reason = why.message(), "portal session refused");
                        return Err(ApiError::unauthorized(why.message()));
                    }
                    Err(TokenError::Storage(e)) => return Err(ApiError::from_bus(e)),
                }
            }
        }
    };
    let query = Query::parse(req.uri().query())?;
    let mut ctx = Ctx {
        bus: &inner.bus,
        config: &inner.config,
        scope,
        query,
        body,
    };
    api::route(&mut ctx, req.method(), segments)
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(req: &Request<Vec<u8>>) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "expected Authorization: Bearer <token>",
        ));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::below_prefix;

    #[test]
    fn only_paths_below_the_prefix_are_served() {
        assert_eq!(below_prefix("/portal", "/portal"), Some(""));
        assert_eq!(below_prefix("/portal/x", "/portal"), Some("/x"));
        assert_eq!(below_prefix("/portalx", "/portal"), None);
        assert_eq!(below_prefix("/other", "/portal"), None);
        assert_eq!(below_prefix("/x", ""), Some("/x"));
    }
}
