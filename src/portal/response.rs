//! Building responses: JSON bodies, the static assets, and the security
//! headers every response carries.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::Value;

use super::errors::ApiError;

/// The headers every response carries. The Content-Security-Policy allows
/// scripts and styles from the portal's own routes only (no inline script
/// or style, no `eval`), images from the portal, `https:` (the host's
/// logo) and `data:`, and requests to the portal only.
pub(crate) struct SecurityHeaders {
    csp: HeaderValue,
    frame_denied: bool,
}

impl SecurityHeaders {
    /// `frame_ancestors` has been validated (see the builder).
    pub(crate) fn new(frame_ancestors: &str) -> SecurityHeaders {
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
        );
        SecurityHeaders {
            csp: HeaderValue::from_str(&csp)
                .expect("validated frame-ancestors make a valid header"),
            frame_denied: frame_ancestors == "'none'",
        }
    }

    fn apply(&self, response: &mut Response<Vec<u8>>) {
        let h = response.headers_mut();
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        // Answers carry tenant data and secrets: never kept by a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        );
        if self.frame_denied {
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
    }

    pub(crate) fn json(&self, status: StatusCode, body: &Value) -> Response<Vec<u8>> {
        let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
        self.bytes(status, "application/json", bytes)
    }

    pub(crate) fn error(&self, e: &ApiError) -> Response<Vec<u8>> {
        let mut r = self.json(e.status, &e.body());
        if e.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hookbus portal\""),
            );
        }
        r
    }

    pub(crate) fn empty(&self, status: StatusCode) -> Response<Vec<u8>> {
        let mut r = Response::new(Vec::new());
        *r.status_mut() = status;
        self.apply(&mut r);
        r
    }

    pub(crate) fn bytes(
        &self,
        status: StatusCode,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Response<Vec<u8>> {
        let mut r = Response::new(body);
        *r.status_mut() = status;
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.apply(&mut r);
        r
    }
}
