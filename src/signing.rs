//! Signatures: where the requests of each [`Signing`] scheme are signed.
//! Receivers check them with [`crate::verify`].
//!
//! [Standard Webhooks] is HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{body}"`,
//! standard padded base64, sent as `webhook-signature: v1,<base64>`, one
//! space-separated entry per active secret. The timestamp is Unix seconds
//! taken at each attempt, so every retry is signed afresh.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::time::Duration;

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

mod scheme;
mod secret;

pub use scheme::Signing;
pub use secret::Secret;

/// Why a delivery did not verify, or why a host's secret cannot sign.
/// Also exported as [`crate::verify::VerifyError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// No secret was given to a verifier whose scheme needs one.
    NoSecret,
    /// A secret is malformed (`whsec_` followed by invalid base64).
    InvalidSecret,
    /// A header the scheme needs is absent.
    MissingHeader(String),
    /// `webhook-timestamp` is not a number of seconds.
    BadTimestamp,
    /// The timestamp is further from now than the tolerance.
    TimestampOutOfTolerance,
    /// The signature is not in the scheme's format (no `v1,` entry with
    /// non-empty base64, not hex…).
    BadSignatureFormat,
    /// The body is not a JSON object carrying the secret field.
    BadBody,
    /// Well-formed, but matches none of the secrets.
    NoMatchingSignature,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NoSecret => f.write_str("no secret to verify with"),
            VerifyError::InvalidSecret => f.write_str("a secret is malformed"),
            VerifyError::MissingHeader(h) => write!(f, "missing header {h}"),
            VerifyError::BadTimestamp => {
                f.write_str("webhook-timestamp is not a number of seconds")
            }
            VerifyError::TimestampOutOfTolerance => {
                f.write_str("the timestamp is outside the tolerance")
            }
            VerifyError::BadSignatureFormat => f.write_str("the signature is malformed"),
            VerifyError::BadBody => f.write_str("the body carries no secret field"),
            VerifyError::NoMatchingSignature => f.write_str("no signature matches"),
        }
    }
}

impl std::error::Error for VerifyError {}

pub(crate) type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// A secret ready to sign with.
pub(crate) struct SigningKey {
    pub(crate) key: Vec<u8>,
    pub(crate) text: String,
}

impl SigningKey {
    /// `None` for a malformed secret (endpoints are validated on save, so
    /// this only drops secrets that were damaged in storage).
    pub(crate) fn new(secret: &Secret, signing: &Signing) -> Option<SigningKey> {
        Some(SigningKey {
            key: secret.key_for(signing).ok()?,
            text: secret.expose().to_string(),
        })
    }
}

pub(crate) fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

pub(crate) fn standard_mac(key: &[u8], msg_id: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut m = mac(key);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

fn standard_entry(key: &[u8], msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = standard_mac(key, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Lower-case hex HMAC-SHA256 of the body.
pub(crate) fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(body);
    hex(&m.finalize().into_bytes())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The signature headers of one request. `keys` holds the active secrets,
/// the current one first. Schemes other than Standard Webhooks have room
/// for one value, so they use the current secret only.
pub(crate) fn headers(
    signing: &Signing,
    keys: &[&SigningKey],
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Vec<(String, String)> {
    let Some(current) = keys.first() else {
        return Vec::new();
    };
    match signing {
        Signing::StandardWebhooks => {
            let entries: Vec<String> = keys
                .iter()
                .map(|k| standard_entry(&k.key, msg_id, timestamp, body))
                .collect();
            vec![("webhook-signature".to_string(), entries.join(" "))]
        }
        Signing::HmacSha256Hex { header } => {
            vec![(header.clone(), hmac_hex(&current.key, body))]
        }
        Signing::SecretHeader { header } => vec![(header.clone(), current.text.clone())],
        // The format puts the secret in the body.
        Signing::SecretInBody | Signing::None => Vec::new(),
    }
}

/// Signs a message the way hookbus does with Standard Webhooks, for
/// receivers' tests and for hosts that send through another channel.
///
/// Fails only if the secret is malformed (`whsec_` followed by invalid base64).
pub fn sign_standard(
    secret: &str,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let key = Secret::new(secret)
        .key_for(&Signing::StandardWebhooks)
        .map_err(|_| VerifyError::InvalidSecret)?;
    Ok(standard_entry(&key, msg_id, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    // The test vectors are checked both ways: signed here, verified there.
    use crate::verify::verify_standard;
    use std::time::{SystemTime, UNIX_EPOCH};

    const V1: (&str, &str, u64, &str, &str) = (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1_649_367_553,
        r#"{"email":"test@example.com","username":"test_user"}"#,
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    );
    const V2: (&str, &str, u64, &str, &str) = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );

    fn at(ts: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(ts)
    }

    #[test]
    fn standard_webhooks_test_vectors() {
        for (secret, id, ts, body, expected) in [V1, V2] {
            assert_eq!(
                sign_standard(secret, id, ts, body.as_bytes()).unwrap(),
                expected
            );
            verify_standard(
                secret,
                id,
                &ts.to_string(),
                expected,
                body.as_bytes(),
                at(ts),
                DEFAULT_TOLERANCE,
            )
            .unwrap();
        }
    }

    #[test]
    fn rotation_signs_with_every_active_secret() {
        let (s1, id, ts, body, sig1) = V1;
        let keys: Vec<SigningKey> = [s1, V2.0]
            .iter()
            .map(|s| SigningKey::new(&Secret::new(*s), &Signing::StandardWebhooks).unwrap())
            .collect();
        let keys: Vec<&SigningKey> = keys.iter().collect();
        let h = headers(&Signing::StandardWebhooks, &keys, id, ts, body.as_bytes());
        let value = &h[0].1;
        assert!(value.starts_with(&format!("{sig1} v1,")), "{value}");
        assert_eq!(value.split(' ').count(), 2);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn header_schemes_use_the_current_secret() {
        let plain = Signing::SecretHeader { header: "X".into() };
        let (new, old) = (
            SigningKey::new(&Secret::new("new"), &plain).unwrap(),
            SigningKey::new(&Secret::new("old"), &plain).unwrap(),
        );
        let keys = [&new, &old];
        let h = headers(
            &Signing::SecretHeader {
                header: "X-Webhook-Secret".into(),
            },
            &keys,
            "m",
            1,
            b"{}",
        );
        assert_eq!(h, vec![("X-Webhook-Secret".to_string(), "new".to_string())]);
        let h = headers(
            &Signing::HmacSha256Hex {
                header: "Signature".into(),
            },
            &keys,
            "m",
            1,
            b"{}",
        );
        assert_eq!(h[0].1, hmac_hex(b"new", b"{}"));
        assert!(headers(&Signing::None, &keys, "m", 1, b"{}").is_empty());
        assert!(headers(&Signing::StandardWebhooks, &[], "m", 1, b"{}").is_empty());
    }
}
