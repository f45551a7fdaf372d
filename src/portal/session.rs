//! Portal sessions: short-lived signed tokens a host hands to one tenant's
//! logged-in customer, like a magic link.
//!
//! A token is `hbp1.` + base64url(payload) + `.` + base64url(tag), where
//! the payload is the session mark (u64 big-endian, below), the expiry
//! (ms since the Unix epoch, u64 big-endian) and the tenant key, and the
//! tag is HMAC-SHA256 over a domain label and the payload with a 32-byte
//! key the bus creates once and keeps in its own database (so every process
//! on the database, and every restart, accepts the same tokens). Tags are
//! compared in constant time.
//!
//! Revocation needs no clock: each tenant has a stored revocation mark R
//! (none at first). A session is issued with mark R + 1; revoking sets R
//! to at least R + 1, so every token issued before is refused (its mark is
//! at most the new R) and every token issued after carries a mark above
//! it. Replicas whose clocks disagree cannot keep a session alive past a
//! revocation. (Tokens issued before this rule carried their issue time
//! in µs where the mark is; a revocation also raises R to at least the
//! current time in µs, so those are refused too.)

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

/// Where a tenant's revocation mark is kept. (The key's name dates from
/// when the mark was a time; stored marks are read under it.)
fn revocation_name(tenant: &TenantId) -> String {
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
        let mark = issue_mark(revoked_through(self, tenant)?);
        let expires_ms = time::now_ms().saturating_add(time::duration_ms(ttl));
        let token = sign(&key, mark, expires_ms, tenant);
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
        let mark = revoke_mark(revoked_through(self, tenant)?, time::now_us());
        self.store()
            .put_meta(&revocation_name(tenant), &mark.to_be_bytes())?;
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

/// The mark of a session issued now, given the tenant's revocation mark.
fn issue_mark(revoked: Option<u64>) -> u64 {
    revoked.unwrap_or(0).saturating_add(1)
}

/// The revocation mark that ends every session issued so far: above the
/// stored one (so above every mark handed out since), and at least the
/// current time in µs (so the issue times older tokens carried as their
/// mark are below it too).
fn revoke_mark(revoked: Option<u64>, now_us: u64) -> u64 {
    revoked.map_or(1, |r| r.saturating_add(1)).max(now_us)
}

/// The tenant's revocation mark: sessions whose mark is at or below it are
/// refused.
fn revoked_through(bus: &Bus, tenant: &TenantId) -> Result<Option<u64>> {
    let Some(v) = bus.store().meta(&revocation_name(tenant))? else {
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

fn sign(key: &[u8; KEY_BYTES], mark: u64, expires_ms: u64, tenant: &TenantId) -> String {
    let mut payload = Vec::with_capacity(16 + tenant.as_str().len());
    payload.extend_from_slice(&mark.to_be_bytes());
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
    let revoked = revoked_through(bus, &claims.0.tenant).map_err(TokenError::Storage)?;
    if revoked.is_some_and(|r| claims.1 <= r) {
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

/// Form, tag and expiry; returns the claims and the session mark.
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
    let mark = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
    let expires_ms = u64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
    let tenant = std::str::from_utf8(&payload[16..])
        .ok()
        .and_then(|k| TenantId::new(k).ok())
        .ok_or(refused(Refused::Malformed))?;
    if now_ms >= expires_ms {
        return Err(refused(Refused::Expired));
    }
    Ok((Claims { tenant, expires_ms }, mark))
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
    fn arbitrary_text_is_refused_without_a_panic() {
        let key = [7u8; KEY_BYTES];
        let good = sign(&key, 5, 2_000, &tenant("acme"));
        // xorshift: reproducible inputs without a dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const ALPHABET: &[u8] = b"hbp1.-_=+/AZaz09\x00\xff";
        for round in 0..20_000 {
            let len = (next() % 700) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if round % 2 == 0 {
                // A genuine token with a few bytes changed, cut or grown.
                bytes = good.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
                }
                bytes.truncate((next() % (bytes.len() as u64 + 8)) as usize);
            }
            let text = String::from_utf8_lossy(&bytes);
            if text != good {
                assert!(check_signed(&key, &text, 1_000).is_err(), "{text}");
            }
        }
    }

    /// A session issued through a replica whose clock runs ahead is still
    /// ended by a revocation made through one whose clock lags: the marks
    /// do not depend on the clocks.
    #[test]
    fn a_revocation_ends_every_session_issued_before_it_whatever_the_clocks() {
        let refused = |mark: u64, revoked: Option<u64>| revoked.is_some_and(|r| mark <= r);
        let mut stored: Option<u64> = None;
        let mut now_us = 1_000_000_000_000_000u64;
        for round in 0..50u64 {
            let before = issue_mark(stored);
            assert!(
                !refused(before, stored),
                "round {round}: new session refused"
            );
            // The revoking replica's clock lags far behind (or the clock
            // stepped back).
            now_us = now_us.saturating_sub(3_600_000_000);
            stored = Some(revoke_mark(stored, now_us));
            assert!(refused(before, stored), "round {round}: survived");
            let after = issue_mark(stored);
            assert!(
                !refused(after, stored),
                "round {round}: new session refused"
            );
        }
        // A token of an earlier version carried its issue time as the mark.
        let legacy = now_us + 10;
        let stored = Some(revoke_mark(None, now_us + 20));
        assert!(refused(legacy, stored));
        // A mark at the end of the range saturates: refused, not wrapped.
        assert!(refused(issue_mark(Some(u64::MAX)), Some(u64::MAX)));
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
