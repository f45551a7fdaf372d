//! Portal sessions: short-lived signed tokens a host hands to one tenant's
//! logged-in customer, like a magic link.
//!
//! A token is `hbp1.` + base64url(payload) + `.` + base64url(tag), where
//! the payload is the issue time (µs since the Unix epoch, u64 big-endian),
//! the expiry (ms, u64 big-endian) and the tenant key, and the tag is
//! HMAC-SHA256 over a domain label and the payload with a 32-byte key the
//! bus creates once and keeps in its own database (so every process on the
//! database, and every restart, accepts the same tokens). Tags are compared
//! in constant time. A tenant's sessions are revoked by storing a "not
//! before" time: tokens issued at or before it are refused.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::bus::Bus;
use crate::error::{Error, Result};
use crate::tenant::TenantId;
use crate::time;

/// The shortest session a host may hand out.
pub const MIN_SESSION_TTL: Duration = Duration::from_secs(60);
/// The longest session a host may hand out: 7 days.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const PREFIX: &str = "hbp1.";
/// Separates the portal's MACs from any other use of the key.
const DOMAIN: &[u8] = b"hookbus portal session v1\0";
const KEY_NAME: &str = "portal/session-key";
const KEY_BYTES: usize = 32;
/// Longest token accepted, so a huge header is refused before any work.
const MAX_TOKEN_LEN: usize = 512;

fn not_before_name(tenant: &TenantId) -> String {
    format!("portal/not-before/{}", tenant.as_str())
}

/// A session for one tenant's customer, from [`Bus::portal_session`].
/// `Debug` never shows the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct PortalSession {
    /// The bearer token: `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
    /// `#token=<token>`: append it to the portal page's URL (`{prefix}/`)
    /// to make a link the page opens with. A fragment is never sent to a
    /// server, so the token stays out of access logs and `Referer`s.
    pub url_fragment: String,
}

impl fmt::Debug for PortalSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalSession")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token was refused. Every reason answers 401; the reasons differ
/// only in the message and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Malformed,
    BadSignature,
    Expired,
    Revoked,
}

impl Refused {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed session token",
            Refused::BadSignature => "invalid session token",
            Refused::Expired => "session expired",
            Refused::Revoked => "session revoked",
        }
    }
}

/// What a valid token says.
#[derive(Clone, Debug)]
pub(crate) struct Claims {
    pub(crate) tenant: TenantId,
    pub(crate) expires_ms: u64,
}

impl Bus {
    /// Issues a portal session for `tenant`'s customer, valid for `ttl`
    /// (1 minute to 7 days; outside that, [`Error::InvalidConfig`] with
    /// setting `ttl`). The tenant need not have endpoints yet. The first
    /// call creates the signing key and stores it in the database.
    pub fn portal_session(&self, tenant: &TenantId, ttl: Duration) -> Result<PortalSession> {
        self.check_open()?;
        if !(MIN_SESSION_TTL..=MAX_SESSION_TTL).contains(&ttl) {
            return Err(Error::InvalidConfig {
                setting: "ttl",
                reason: "a session lasts 1 minute to 7 days".into(),
            });
        }
        let key = session_key(self)?;
        // Strictly after the tenant's last revocation, even within the
        // same microsecond.
        let not_before = not_before_us(self, tenant)?.unwrap_or(0);
        let issued_us = time::now_us().max(not_before.saturating_add(1));
        let expires_ms = time::now_ms().saturating_add(time::duration_ms(ttl));
        let token = sign(&key, issued_us, expires_ms, tenant);
        Ok(PortalSession {
            url_fragment: format!("#token={token}"),
            token,
            expires_at: time::from_ms(expires_ms),
        })
    }

    /// Ends every portal session of `tenant` issued so far: their tokens
    /// answer 401 from now on. Sessions issued afterwards work. Durable.
    pub fn revoke_portal_sessions(&self, tenant: &TenantId) -> Result<()> {
        self.check_open()?;
        let now = time::now_us();
        self.store()
            .put_meta(&not_before_name(tenant), &now.to_be_bytes())?;
        tracing::info!(%tenant, "portal sessions revoked");
        Ok(())
    }
}

/// The bus's session key, created on first use.
pub(crate) fn session_key(bus: &Bus) -> Result<[u8; KEY_BYTES]> {
    let store = bus.store();
    let stored = match store.meta(KEY_NAME)? {
        Some(k) => k,
        None => {
            let mut fresh = [0u8; KEY_BYTES];
            getrandom::fill(&mut fresh).map_err(|e| Error::Io {
                action: "generating the portal session key",
                source: std::io::Error::other(e.to_string()),
            })?;
            store.meta_or_insert(KEY_NAME, &fresh)?
        }
    };
    stored.as_slice().try_into().map_err(|_| Error::Corrupt {
        what: "portal session key",
        detail: format!("{} bytes instead of {KEY_BYTES}", stored.len()),
    })
}

fn not_before_us(bus: &Bus, tenant: &TenantId) -> Result<Option<u64>> {
    let Some(v) = bus.store().meta(&not_before_name(tenant))? else {
        return Ok(None);
    };
    let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| Error::Corrupt {
        what: "portal session revocation",
        detail: format!("{} bytes instead of 8", v.len()),
    })?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

fn mac(key: &[u8; KEY_BYTES], payload: &[u8]) -> [u8; 32] {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    m.update(DOMAIN);
    m.update(payload);
    m.finalize().into_bytes().into()
}

fn sign(key: &[u8; KEY_BYTES], issued_us: u64, expires_ms: u64, tenant: &TenantId) -> String {
    let mut payload = Vec::with_capacity(16 + tenant.as_str().len());
    payload.extend_from_slice(&issued_us.to_be_bytes());
    payload.extend_from_slice(&expires_ms.to_be_bytes());
    payload.extend_from_slice(tenant.as_str().as_bytes());
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac(key, &payload))
    )
}

/// Checks a token: its form, its tag (constant time), its expiry, and its
/// tenant's revocation.
pub(crate) fn verify(
    bus: &Bus,
    key: &[u8; KEY_BYTES],
    token: &str,
) -> std::result::Result<Claims, TokenError> {
    let claims = check_signed(key, token, time::now_ms())?;
    let not_before = not_before_us(bus, &claims.0.tenant).map_err(TokenError::Storage)?;
    if not_before.is_some_and(|nb| claims.1 <= nb) {
        return Err(TokenError::Refused(Refused::Revoked));
    }
    Ok(claims.0)
}

/// Why [`verify`] refused a token.
#[derive(Debug)]
pub(crate) enum TokenError {
    Refused(Refused),
    Storage(Error),
}

/// Form, tag and expiry; returns the claims and the issue time (µs).
fn check_signed(
    key: &[u8; KEY_BYTES],
    token: &str,
    now_ms: u64,
) -> std::result::Result<(Claims, u64), TokenError> {
    let refused = |r| TokenError::Refused(r);
    if token.len() > MAX_TOKEN_LEN {
        return Err(refused(Refused::Malformed));
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or(refused(Refused::Malformed))?;
    let (payload, tag) = rest.split_once('.').ok_or(refused(Refused::Malformed))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| refused(Refused::Malformed))?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| refused(Refused::Malformed))?;
    let expected = mac(key, &payload);
    // The length is public (always 32); the bytes are compared in
    // constant time.
    if tag.len() != expected.len() || !bool::from(tag.ct_eq(&expected)) {
        return Err(refused(Refused::BadSignature));
    }
    // Signed by us, so well-formed unless the key leaked; checked anyway.
    if payload.len() <= 16 {
        return Err(refused(Refused::Malformed));
    }
    let issued_us = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
    let expires_ms = u64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
    let tenant = std::str::from_utf8(&payload[16..])
        .ok()
        .and_then(|k| TenantId::new(k).ok())
        .ok_or(refused(Refused::Malformed))?;
    if now_ms >= expires_ms {
        return Err(refused(Refused::Expired));
    }
    Ok((Claims { tenant, expires_ms }, issued_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(k: &str) -> TenantId {
        TenantId::new(k).unwrap()
    }

    #[test]
    fn a_token_carries_its_tenant_and_expiry() {
        let key = [7u8; KEY_BYTES];
        let t = sign(&key, 5, 2_000, &tenant("acme"));
        let (claims, issued) = check_signed(&key, &t, 1_000).unwrap();
        assert_eq!(claims.tenant.as_str(), "acme");
        assert_eq!((claims.expires_ms, issued), (2_000, 5));
        assert!(matches!(
            check_signed(&key, &t, 2_000),
            Err(TokenError::Refused(Refused::Expired))
        ));
    }

    #[test]
    fn tampered_tokens_and_other_keys_are_refused() {
        let key = [7u8; KEY_BYTES];
        let t = sign(&key, 5, 2_000, &tenant("acme"));
        let other = sign(&[8u8; KEY_BYTES], 5, 2_000, &tenant("acme"));
        assert!(matches!(
            check_signed(&key, &other, 1_000),
            Err(TokenError::Refused(Refused::BadSignature))
        ));
        // Another tenant's name put in the payload, the tag kept.
        let (_, tag) = t.rsplit_once('.').unwrap();
        let mut payload = Vec::new();
        payload.extend_from_slice(&5u64.to_be_bytes());
        payload.extend_from_slice(&2_000u64.to_be_bytes());
        payload.extend_from_slice(b"globex");
        let forged = format!("{PREFIX}{}.{tag}", URL_SAFE_NO_PAD.encode(&payload));
        assert!(matches!(
            check_signed(&key, &forged, 1_000),
            Err(TokenError::Refused(Refused::BadSignature))
        ));
        for bad in [
            "",
            "hbp1.",
            "hbp1.a.b",
            "xx",
            &format!("{t}x"),
            &"a".repeat(600),
        ] {
            assert!(check_signed(&key, bad, 1_000).is_err(), "{bad}");
        }
        // A truncated tag fails the length check, not a shorter compare.
        let short = &t[..t.len() - 4];
        assert!(check_signed(&key, short, 1_000).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let s = PortalSession {
            token: "hbp1.secret".into(),
            expires_at: SystemTime::UNIX_EPOCH,
            url_fragment: "#token=hbp1.secret".into(),
        };
        assert!(!format!("{s:?}").contains("secret"));
    }
}
