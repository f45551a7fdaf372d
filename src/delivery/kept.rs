//! What the attempt log keeps of a request as it was sent: every header,
//! with the values that carry a signature or a secret replaced by
//! [`REDACTED`], and the start of the body with any secret in it replaced
//! likewise. The log is shown to people (the portal's attempt detail), so
//! nothing in it may let a reader sign or authenticate as the bus.

use crate::http::KeptRequest;

/// What a redacted value reads as.
pub(crate) const REDACTED: &str = "[redacted]";

/// Header names whose values are credentials whatever the signing scheme:
/// a host's custom `Authorization` header is as secret as a signature.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];

/// Whether a header's value is a credential whatever the signing scheme
/// (shown redacted wherever people read it).
pub(crate) fn is_credential_header(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// Builds the kept copy of a request. `signature_headers` are the names
/// the signing scheme wrote (their values are signatures or the secret
/// itself); `secrets` are the secret texts that may appear anywhere else;
/// at most `body_limit` bytes of the body are kept.
pub(crate) fn kept_request(
    headers: &[(String, String)],
    signature_headers: &[String],
    secrets: &[&str],
    body: &[u8],
    body_limit: usize,
) -> KeptRequest {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let secret_name = signature_headers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
                || is_credential_header(name);
            let value = if secret_name {
                REDACTED.to_string()
            } else {
                redact_text(value, secrets)
            };
            (name.clone(), value)
        })
        .collect();
    let mut kept = redact_bytes(body, secrets);
    let truncated = kept.len() > body_limit;
    kept.truncate(body_limit);
    KeptRequest {
        headers,
        body: kept,
        truncated,
    }
}

fn redact_text(value: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(value.to_string(), |v, s| v.replace(s, REDACTED))
}

/// Replaces every occurrence of each secret in `body`. Secrets are ASCII
/// (`whsec_` and base64, or a host's text), so a byte search finds them
/// wherever a format put them.
fn redact_bytes(body: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut out = body.to_vec();
    for secret in secrets
        .iter()
        .map(|s| s.as_bytes())
        .filter(|s| !s.is_empty())
    {
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(secret) {
                next.extend_from_slice(REDACTED.as_bytes());
                i += secret.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_credentials_and_secrets_are_redacted() {
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("webhook-signature".to_string(), "v1,abc".to_string()),
            ("Authorization".to_string(), "Bearer t0k3n".to_string()),
            ("X-Echo".to_string(), "has whsec_S3CRET inside".to_string()),
        ];
        let kept = kept_request(
            &headers,
            &["Webhook-Signature".to_string()],
            &["whsec_S3CRET"],
            br#"{"secret":"whsec_S3CRET","n":1}"#,
            1000,
        );
        assert_eq!(kept.headers[0].1, "application/json");
        assert_eq!(kept.headers[1].1, REDACTED);
        assert_eq!(kept.headers[2].1, REDACTED);
        assert_eq!(kept.headers[3].1, "has [redacted] inside");
        assert_eq!(kept.body, br#"{"secret":"[redacted]","n":1}"#);
        assert!(!kept.truncated);
    }

    #[test]
    fn the_body_is_cut_after_redaction() {
        let kept = kept_request(&[], &[], &["abc"], b"abcabc", 4);
        assert_eq!(kept.body, b"[red");
        assert!(kept.truncated);
        let none = kept_request(&[], &[], &[], b"xyz", 0);
        assert!(none.body.is_empty() && none.truncated);
    }
}
