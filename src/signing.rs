//! Signatures: where a request is signed, and where a receiver checks one.
//!
//! The scheme is [Standard Webhooks]: HMAC-SHA256 over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, standard padded base64,
//! sent as `webhook-signature: v1,<base64>`. The timestamp is Unix seconds
//! taken at each attempt, so every retry is signed afresh.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::endpoint::Secret;

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

fn mac(key: &[u8], msg_id: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for one request: `v1,<base64>`.
pub(crate) fn sign(key: &[u8], msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = mac(key, msg_id, timestamp, body).finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Signs a message with a secret the way hookbus does, for receivers' tests
/// and for hosts that send through another channel.
///
/// Fails only if the secret is malformed (`whsec_` followed by invalid base64).
pub fn sign_standard(
    secret: &str,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let key = Secret::new(secret)
        .key()
        .map_err(|_| VerifyError::InvalidSecret)?;
    Ok(sign(&key, msg_id, timestamp, body))
}

/// Why a delivery did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The secret itself is malformed.
    InvalidSecret,
    /// `webhook-timestamp` is not a number of seconds.
    BadTimestamp,
    /// The timestamp is further from now than the tolerance.
    TimestampOutOfTolerance,
    /// `webhook-signature` holds no `v1,` entry with decodable base64.
    BadSignatureFormat,
    /// No entry matches the body and secret.
    NoMatchingSignature,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyError::InvalidSecret => "the secret is malformed",
            VerifyError::BadTimestamp => "webhook-timestamp is not a number of seconds",
            VerifyError::TimestampOutOfTolerance => "webhook-timestamp is outside the tolerance",
            VerifyError::BadSignatureFormat => "webhook-signature has no well-formed v1 entry",
            VerifyError::NoMatchingSignature => "no signature matches",
        })
    }
}

impl std::error::Error for VerifyError {}

/// Checks a Standard Webhooks delivery as a receiver would: the
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` header values
/// and the raw body, against `secret`, with `now` and `tolerance` for the
/// timestamp check.
///
/// Signatures are compared in constant time with an explicit length check,
/// so a truncated or empty `v1,` entry never matches.
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let key = Secret::new(secret)
        .key()
        .map_err(|_| VerifyError::InvalidSecret)?;
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if now_s.abs_diff(ts) > tolerance.as_secs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let mut well_formed = false;
    for entry in signatures.split_whitespace() {
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
        if mac(&key, msg_id, ts, body).verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(if well_formed {
        VerifyError::NoMatchingSignature
    } else {
        VerifyError::BadSignatureFormat
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn verification_rejects_tampering_and_truncation() {
        let (secret, id, ts, body, sig) = V1;
        let check = |sig: &str, body: &str, now: u64| {
            verify_standard(
                secret,
                id,
                &ts.to_string(),
                sig,
                body.as_bytes(),
                at(now),
                DEFAULT_TOLERANCE,
            )
        };
        assert_eq!(check(sig, "{}", ts), Err(VerifyError::NoMatchingSignature));
        assert_eq!(check("v1,", body, ts), Err(VerifyError::BadSignatureFormat));
        assert_eq!(
            check("v1,tZ1I4/hD", body, ts),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check("v2,abc", body, ts),
            Err(VerifyError::BadSignatureFormat)
        );
        assert_eq!(
            check(sig, body, ts + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        // Several entries during a rotation: one match is enough.
        let both = format!("v1,AAAA {sig}");
        assert_eq!(check(&both, body, ts), Ok(()));
    }
}
