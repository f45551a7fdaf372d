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

/// Words that make a custom header name a credential's (`X-Auth-Token`,
/// `X-Webhook-Secret`, `Set-Cookie`, `X-Access-Key`, `Client-Password`):
/// hosts name their receivers' credentials in many ways, and showing one
/// redacted that was not a secret costs nothing.
const CREDENTIAL_WORDS: [&str; 9] = [
    "auth",
    "token",
    "secret",
    "key",
    "password",
    "passwd",
    "cookie",
    "session",
    "credential",
];

/// Whether a header's value is a credential whatever the signing scheme
/// (shown redacted wherever people read it).
pub(crate) fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&lower.as_str())
        || CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
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
    let forms = secret_forms(secrets);
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
                redact_text(value, &forms)
            };
            (name.clone(), value)
        })
        .collect();
    let mut kept = redact_bytes(body, &forms);
    let truncated = kept.len() > body_limit;
    kept.truncate(body_limit);
    KeptRequest {
        headers,
        body: kept,
        truncated,
    }
}

/// Redacts the receiver's answer as the request is: a receiver that
/// echoes what it got (many test receivers do) would otherwise put the
/// secret, a credential header or a signature back in the log. `body` was
/// cut by the HTTP client (`truncated`): a secret cut there leaves its
/// start at the end, which goes too.
pub(crate) fn redact_response(
    headers: &mut [(String, String)],
    body: &mut Vec<u8>,
    truncated: bool,
    secrets: &[&str],
) {
    let forms = secret_forms(secrets);
    for (name, value) in headers.iter_mut() {
        let kept_len = value.len();
        *value = if is_credential_header(name) {
            REDACTED.to_string()
        } else {
            redact_text(value, &forms)
        };
        // A secret shorter than the mark would grow a value the HTTP
        // client already cut to its limit.
        if value.len() > kept_len && !is_credential_header(name) {
            let mut end = kept_len;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
    }
    let kept_len = body.len();
    *body = redact_bytes(body, &forms);
    if truncated {
        cut_secret_start(body, &forms);
    }
    // Never longer than the HTTP client kept (the bus's body limit).
    body.truncate(kept_len);
}

/// Shortest secret start taken for one at the end of a cut body: shorter
/// ones would redact ordinary text that happens to begin a secret.
const MIN_CUT_SECRET: usize = 8;

fn cut_secret_start(body: &mut Vec<u8>, forms: &[String]) {
    for form in forms.iter().map(String::as_bytes) {
        let longest = (form.len() - 1).min(body.len());
        let cut = (MIN_CUT_SECRET..=longest)
            .rev()
            .find(|&n| body.ends_with(&form[..n]));
        if let Some(n) = cut {
            body.truncate(body.len() - n);
            body.extend_from_slice(REDACTED.as_bytes());
            return;
        }
    }
}

/// Every form a secret is found in: as given; its key without the
/// `whsec_` prefix (what a receiver's code or a payload may carry); and
/// JSON-escaped (how a format that puts it in the body writes a quote or
/// a backslash in it). Longest first, so a longer form is replaced whole.
fn secret_forms(secrets: &[&str]) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or_default();
        let bare = secret.strip_prefix("whsec_").unwrap_or_default();
        for form in [*secret, escaped, bare] {
            if !form.is_empty() && !forms.iter().any(|f| f == form) {
                forms.push(form.to_string());
            }
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

fn redact_text(value: &str, forms: &[String]) -> String {
    forms
        .iter()
        .fold(value.to_string(), |v, s| v.replace(s.as_str(), REDACTED))
}

/// Replaces every occurrence of each secret form in `body`. Secrets are
/// ASCII (`whsec_` and base64, or a host's text), so a byte search finds
/// them wherever a format put them.
fn redact_bytes(body: &[u8], forms: &[String]) -> Vec<u8> {
    let mut out = body.to_vec();
    for secret in forms.iter().map(String::as_bytes) {
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
    fn custom_credential_headers_are_redacted_whatever_their_name() {
        for name in [
            "X-Auth-Token",
            "X-Webhook-Secret",
            "X-Access-Key",
            "Client-Password",
            "X-Session-Id",
            "Set-Cookie",
            "X-Customer-Credential",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in [
            "content-type",
            "webhook-id",
            "webhook-timestamp",
            "x-tenant",
        ] {
            assert!(!is_credential_header(name), "{name}");
        }
        let kept = kept_request(
            &[("X-Auth-Token".to_string(), "t0k3n".to_string())],
            &[],
            &[],
            b"",
            100,
        );
        assert_eq!(kept.headers[0].1, REDACTED);
    }

    #[test]
    fn a_secret_is_found_without_its_prefix_and_json_escaped() {
        let body = br#"{"key":"S3CRETbase64+/=","escaped":"pa\"ss"}"#;
        let kept = kept_request(&[], &[], &["whsec_S3CRETbase64+/=", "pa\"ss"], body, 1000);
        assert_eq!(kept.body, br#"{"key":"[redacted]","escaped":"[redacted]"}"#);
        // The whole form is replaced whole, not around its key.
        let kept = kept_request(
            &[],
            &[],
            &["whsec_S3CRETbase64+/="],
            b"whsec_S3CRETbase64+/=",
            1000,
        );
        assert_eq!(kept.body, REDACTED.as_bytes());
    }

    #[test]
    fn an_echoed_secret_is_redacted_from_the_response() {
        let mut headers = vec![
            ("Set-Cookie".to_string(), "sid=abc".to_string()),
            ("X-Echo".to_string(), "got whsec_S3CRETbase64".to_string()),
        ];
        let mut body = br#"{"echo":{"secret":"whsec_S3CRETbase64"}}"#.to_vec();
        redact_response(&mut headers, &mut body, false, &["whsec_S3CRETbase64"]);
        assert_eq!(headers[0].1, REDACTED);
        assert_eq!(headers[1].1, "got [redacted]");
        assert_eq!(body, br#"{"echo":{"secret":"[redacted]"}}"#);
        // Cut by the body limit inside the secret: its start goes too.
        let mut cut = b"echo: whsec_S3CRE".to_vec();
        redact_response(&mut [], &mut cut, true, &["whsec_S3CRETbase64"]);
        assert_eq!(cut, b"echo: [redacted]");
        // A short ordinary ending is kept.
        let mut short = b"a whse".to_vec();
        redact_response(&mut [], &mut short, true, &["whsec_S3CRETbase64"]);
        assert_eq!(short, b"a whse");
        // A short secret's mark never makes the kept answer longer than
        // what the HTTP client kept.
        let mut headers = vec![("X-Echo".to_string(), "pw".to_string())];
        let mut body = b"pw pw".to_vec();
        redact_response(&mut headers, &mut body, false, &["pw"]);
        assert_eq!(body, b"[reda");
        assert_eq!(headers[0].1, "[r");
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
