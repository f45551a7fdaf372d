//! Receiver-side verification, usable without opening a bus: given the
//! secret(s), the request headers and the raw body, say whether a delivery
//! is genuine, or why not.
//!
//! ```
//! use hookbus::verify::Verifier;
//! use hookbus::Signing;
//!
//! let verifier = Verifier::new(Signing::StandardWebhooks)
//!     .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
//! let headers = [
//!     ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
//!     ("webhook-timestamp", "1649367553"),
//!     ("webhook-signature", "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
//! ];
//! let body = br#"{"email":"test@example.com","username":"test_user"}"#;
//! let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_649_367_553);
//! assert!(verifier.now(at).verify(headers, body).is_ok());
//! ```
//!
//! Every comparison is constant-time with an explicit length check, so a
//! truncated or empty signature never matches.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::signing::{self, DEFAULT_TOLERANCE};
use crate::signing::{Secret, Signing};

// The one error of signing and checking, defined beside the signing schemes.
pub use crate::signing::VerifyError;

/// Checks deliveries signed with one [`Signing`] scheme.
#[derive(Clone)]
pub struct Verifier {
    signing: Signing,
    secrets: Vec<Secret>,
    tolerance: Duration,
    now: Option<SystemTime>,
    body_field: String,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("signing", &self.signing)
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier for `signing`, with no secret yet.
    pub fn new(signing: Signing) -> Self {
        Verifier {
            signing,
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            now: None,
            body_field: "secret".to_string(),
        }
    }

    /// Adds a secret. Add several during a rotation: a match with any of
    /// them verifies.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(Secret::new(secret));
        self
    }

    /// How far `webhook-timestamp` may be from now (Standard Webhooks only).
    /// Defaults to 5 minutes.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The time to check timestamps against. Defaults to the clock at each
    /// call.
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// The body field holding the secret for [`Signing::SecretInBody`].
    /// Defaults to `secret`.
    pub fn secret_field(mut self, name: impl Into<String>) -> Self {
        self.body_field = name.into();
        self
    }

    /// Checks one request: its headers (names in any case) and raw body.
    pub fn verify<'h, I>(&self, headers: I, body: &[u8]) -> Result<(), VerifyError>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
    {
        let headers: Vec<(&str, &str)> = headers.into_iter().collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .ok_or_else(|| VerifyError::MissingHeader(name.to_string()))
        };
        if matches!(self.signing, Signing::None) {
            return Ok(());
        }
        if self.secrets.is_empty() {
            return Err(VerifyError::NoSecret);
        }
        let keys = self
            .secrets
            .iter()
            .map(|s| {
                s.key_for(&self.signing)
                    .map_err(|_| VerifyError::InvalidSecret)
            })
            .collect::<Result<Vec<_>, _>>()?;
        match &self.signing {
            Signing::StandardWebhooks => {
                let id = header("webhook-id")?;
                let ts = header("webhook-timestamp")?;
                let sigs = header("webhook-signature")?;
                self.standard(&keys, id, ts, sigs, body)
            }
            Signing::HmacSha256Hex { header: name } => {
                let given =
                    signing::unhex(header(name)?.trim()).ok_or(VerifyError::BadSignatureFormat)?;
                if given.is_empty() {
                    return Err(VerifyError::BadSignatureFormat);
                }
                let ok = keys.iter().any(|k| {
                    let mut m = signing::mac(k);
                    m.update(body);
                    m.verify_slice(&given).is_ok()
                });
                ok.then_some(()).ok_or(VerifyError::NoMatchingSignature)
            }
            Signing::SecretHeader { header: name } => self.match_text(header(name)?),
            Signing::SecretInBody => {
                let value: serde_json::Value =
                    serde_json::from_slice(body).map_err(|_| VerifyError::BadBody)?;
                let given = value
                    .get(&self.body_field)
                    .and_then(|v| v.as_str())
                    .ok_or(VerifyError::BadBody)?;
                self.match_text(given)
            }
            Signing::None => Ok(()),
        }
    }

    fn standard(
        &self,
        keys: &[Vec<u8>],
        id: &str,
        ts: &str,
        sigs: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let ts: u64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        let now = self.now.unwrap_or_else(SystemTime::now);
        let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if now_s.abs_diff(ts) > self.tolerance.as_secs() {
            return Err(VerifyError::TimestampOutOfTolerance);
        }
        let mut well_formed = false;
        for entry in sigs.split_whitespace() {
            let Some(b64) = entry.strip_prefix("v1,") else {
                continue;
            };
            let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                continue;
            };
            if tag.is_empty() {
                continue;
            }
            well_formed = true;
            // verify_slice checks the length and compares in constant time.
            if keys.iter().any(|k| {
                signing::standard_mac(k, id, ts, body)
                    .verify_slice(&tag)
                    .is_ok()
            }) {
                return Ok(());
            }
        }
        Err(if well_formed {
            VerifyError::NoMatchingSignature
        } else {
            VerifyError::BadSignatureFormat
        })
    }

    /// Compares a secret sent in clear with each known secret, in constant
    /// time for equal lengths.
    fn match_text(&self, given: &str) -> Result<(), VerifyError> {
        if given.is_empty() {
            return Err(VerifyError::BadSignatureFormat);
        }
        let ok = self.secrets.iter().any(|s| {
            let known = s.expose().as_bytes();
            known.len() == given.len() && bool::from(known.ct_eq(given.as_bytes()))
        });
        ok.then_some(()).ok_or(VerifyError::NoMatchingSignature)
    }
}

/// Checks a Standard Webhooks delivery from its three header values and raw
/// body: a shorthand for [`Verifier`] with one secret.
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    Verifier::new(Signing::StandardWebhooks)
        .secret(secret)
        .now(now)
        .tolerance(tolerance)
        .verify(
            [
                ("webhook-id", msg_id),
                ("webhook-timestamp", timestamp),
                ("webhook-signature", signatures),
            ],
            body,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_accepts_the_real_thing_and_rejects_a_forgery() {
        let body = br#"{"event":"new_lead","subjects":[]}"#;
        let hex = signing::hmac_hex(b"snitch", body);
        let v = Verifier::new(Signing::HmacSha256Hex {
            header: "Signature".into(),
        })
        .secret("snitch");
        assert_eq!(v.verify([("signature", hex.as_str())], body), Ok(()));
        assert_eq!(
            v.verify([("Signature", hex.to_uppercase().as_str())], body),
            Ok(())
        );
        assert_eq!(
            v.verify([("Signature", &hex[..10])], body),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            v.verify([("Signature", "")], body),
            Err(VerifyError::BadSignatureFormat)
        );
        assert_eq!(
            v.verify([("Signature", "xyz")], body),
            Err(VerifyError::BadSignatureFormat)
        );
        assert_eq!(
            v.verify([], body),
            Err(VerifyError::MissingHeader("Signature".into()))
        );
        assert_eq!(
            v.verify([("Signature", hex.as_str())], b"{}"),
            Err(VerifyError::NoMatchingSignature)
        );

        let v = Verifier::new(Signing::SecretHeader {
            header: "X-Webhook-Secret".into(),
        })
        .secret("old")
        .secret("new");
        assert_eq!(v.verify([("x-webhook-secret", "new")], b""), Ok(()));
        assert_eq!(v.verify([("x-webhook-secret", "old")], b""), Ok(()));
        assert_eq!(
            v.verify([("x-webhook-secret", "ne")], b""),
            Err(VerifyError::NoMatchingSignature)
        );

        let v = Verifier::new(Signing::SecretInBody).secret("wh_a46f35f22d9723a");
        assert_eq!(v.verify([], br#"{"secret":"wh_a46f35f22d9723a"}"#), Ok(()));
        assert_eq!(
            v.verify([], br#"{"secret":"wh_x"}"#),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            v.verify([], br#"{"payload":{}}"#),
            Err(VerifyError::BadBody)
        );
        assert_eq!(v.verify([], b"not json"), Err(VerifyError::BadBody));

        assert_eq!(
            Verifier::new(Signing::StandardWebhooks).verify([], b""),
            Err(VerifyError::NoSecret)
        );
        assert_eq!(
            Verifier::new(Signing::StandardWebhooks)
                .secret("whsec_!!")
                .verify([], b""),
            Err(VerifyError::InvalidSecret)
        );
    }

    #[test]
    fn standard_rejects_missing_headers_stale_and_truncated() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let (id, ts, body) = ("msg_1", 1_700_000_000u64, b"{}");
        let sig = signing::sign_standard(secret, id, ts, body).unwrap();
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let v = Verifier::new(Signing::StandardWebhooks).secret(secret);
        let ts_s = ts.to_string();
        fn h<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Vec<(&'a str, &'a str)> {
            vec![
                ("webhook-id", id),
                ("webhook-timestamp", ts),
                ("webhook-signature", sig),
            ]
        }
        let hdrs = h(id, &ts_s, &sig);
        assert_eq!(
            v.clone().now(at(ts + 299)).verify(hdrs.clone(), body),
            Ok(())
        );
        assert_eq!(
            v.clone().now(at(ts - 299)).verify(hdrs.clone(), body),
            Ok(())
        );
        assert_eq!(
            v.clone().now(at(ts + 301)).verify(hdrs.clone(), body),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        let v = v.now(at(ts));
        assert_eq!(
            v.verify(h(id, &ts_s, "v1,"), body),
            Err(VerifyError::BadSignatureFormat)
        );
        // Truncated on a base64 boundary: decodes, but is too short to match.
        assert_eq!(
            v.verify(h(id, &ts_s, &sig[..23]), body),
            Err(VerifyError::NoMatchingSignature)
        );
        // Truncated mid-group: not base64 at all.
        assert_eq!(
            v.verify(h(id, &ts_s, &sig[..20]), body),
            Err(VerifyError::BadSignatureFormat)
        );
        assert_eq!(
            v.verify(h(id, &ts_s, "v1,AAAA"), body),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            v.verify(
                vec![("webhook-id", id), ("webhook-signature", sig.as_str())],
                body
            ),
            Err(VerifyError::MissingHeader("webhook-timestamp".into()))
        );
        assert_eq!(
            v.verify(
                vec![
                    ("webhook-id", id),
                    ("webhook-timestamp", "soon"),
                    ("webhook-signature", sig.as_str())
                ],
                body
            ),
            Err(VerifyError::BadTimestamp)
        );
    }
}
