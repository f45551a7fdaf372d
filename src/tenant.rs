//! Tenants: the customers a host sends webhooks to. Every endpoint belongs
//! to one tenant, and an event published to a tenant reaches only that
//! tenant's endpoints.
//!
//! This module holds the tenant key type, its validation and the tenant
//! metadata the host may attach. The bus methods are in `bus/tenants.rs`,
//! the per-tenant routing index in `routing.rs`.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::{Error, Result};

/// Longest accepted tenant key, in bytes.
pub const MAX_TENANT_KEY_LEN: usize = 128;

/// The key of the default tenant: where endpoints and events that name no
/// tenant belong. `~` is outside the charset of host keys, so no host key
/// can ever collide with it.
pub const DEFAULT_TENANT_KEY: &str = "~default";

/// Longest tenant display name, in bytes.
pub const MAX_TENANT_NAME_LEN: usize = 256;

/// Most key/value pairs of tenant metadata.
pub const MAX_TENANT_LABELS: usize = 64;

/// Longest key or value of tenant metadata, in bytes.
pub const MAX_TENANT_LABEL_LEN: usize = 256;

/// A tenant: one customer (account, workspace, space…) of the host, named
/// by a key the host chooses, typically its own customer id.
///
/// A key is 1 to 128 bytes of `A-Z a-z 0-9 - _ . : @`, and not `.` or
/// `..`. The charset takes the ids hosts already have (numbers, UUIDs,
/// slugs, `org:42`, e-mail addresses) while every key stays safe to put
/// unescaped in a URL path segment, a log line, a header or a metric
/// label; `.` and `..` are refused because URL paths give them a meaning.
///
/// The [default tenant](TenantId::default_tenant) (`~default`) holds every
/// endpoint and event that names no tenant, so a host with one audience
/// never has to name one. Cheap to clone (a shared string).
///
/// ```
/// # use hookbus::TenantId;
/// let acme: TenantId = "acme-42".parse()?;
/// assert_eq!(acme.as_str(), "acme-42");
/// assert!("no spaces".parse::<TenantId>().is_err());
/// assert!(TenantId::default_tenant().is_default());
/// # Ok::<_, hookbus::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// Checks `key` and makes it a tenant id. `~default` names the default
    /// tenant; anything else must follow the documented charset.
    pub fn new(key: impl AsRef<str>) -> Result<TenantId> {
        let key = key.as_ref();
        if key == DEFAULT_TENANT_KEY {
            return Ok(TenantId::default_tenant());
        }
        validate_key(key)?;
        Ok(TenantId(Arc::from(key)))
    }

    /// The default tenant.
    pub fn default_tenant() -> TenantId {
        TenantId(Arc::from(DEFAULT_TENANT_KEY))
    }

    /// Whether this is the default tenant.
    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_TENANT_KEY
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key read back from the database, written by this crate after
    /// validation.
    pub(crate) fn from_stored(key: &str) -> Result<TenantId> {
        TenantId::new(key).map_err(|e| Error::Corrupt {
            what: "tenant key",
            detail: e.to_string(),
        })
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId::default_tenant()
    }
}

fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidTenant {
            key: key.chars().take(MAX_TENANT_KEY_LEN + 8).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_TENANT_KEY_LEN {
        return bad("longer than 128 bytes");
    }
    if !key.bytes().all(is_key_byte) {
        return bad("only A-Z a-z 0-9 - _ . : @ are allowed");
    }
    if key == "." || key == ".." {
        return bad("`.` and `..` are not tenant keys (they mean something in URL paths)");
    }
    Ok(())
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", &*self.0)
    }
}

impl FromStr for TenantId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        TenantId::new(s)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&TenantId> for TenantId {
    fn from(t: &TenantId) -> Self {
        t.clone()
    }
}

/// Metadata a host keeps with a tenant for its own use (hookbus never reads
/// it): a display name and key/value labels. Saved with
/// [`Bus::put_tenant`](crate::Bus::put_tenant).
///
/// ```
/// # use hookbus::TenantConfig;
/// let acme = TenantConfig::new("acme-42")
///     .display_name("Acme Inc.")
///     .label("plan", "enterprise");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantConfig {
    pub(crate) key: String,
    pub(crate) display_name: Option<String>,
    pub(crate) labels: Vec<(String, String)>,
}

impl TenantConfig {
    /// Metadata for the tenant `key` (checked when saved).
    pub fn new(key: impl AsRef<str>) -> Self {
        TenantConfig {
            key: key.as_ref().to_string(),
            display_name: None,
            labels: Vec::new(),
        }
    }

    /// A name to show for the tenant (1 to 256 bytes). Defaults to none.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets a label (keys and values 1 to 256 bytes, at most 64 labels);
    /// setting a key again replaces its value. Defaults to none.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.labels.retain(|(k, _)| *k != key);
        self.labels.push((key, value.into()));
        self
    }

    pub(crate) fn validate(&self) -> Result<TenantId> {
        let tenant = TenantId::new(&self.key)?;
        let invalid = |reason: &'static str| Error::InvalidTenant {
            key: tenant.to_string(),
            reason,
        };
        if let Some(name) = &self.display_name {
            if name.trim().is_empty() || name.len() > MAX_TENANT_NAME_LEN {
                return Err(invalid("the display name must be 1 to 256 bytes"));
            }
        }
        if self.labels.len() > MAX_TENANT_LABELS {
            return Err(invalid("at most 64 labels"));
        }
        for (k, v) in &self.labels {
            if k.is_empty() || k.len() > MAX_TENANT_LABEL_LEN {
                return Err(invalid("label keys must be 1 to 256 bytes"));
            }
            if v.len() > MAX_TENANT_LABEL_LEN {
                return Err(invalid("label values must be at most 256 bytes"));
            }
        }
        Ok(tenant)
    }
}

/// A tenant as the bus knows it: a tenant exists while it has endpoints or
/// saved metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tenant {
    /// Its key.
    pub id: TenantId,
    /// The display name saved with [`Bus::put_tenant`](crate::Bus::put_tenant).
    pub display_name: Option<String>,
    /// The labels saved with it, in the order given.
    pub labels: Vec<(String, String)>,
    /// Endpoints registered for it now.
    pub endpoints: usize,
    /// When its metadata was last saved, if it was.
    pub updated_at: Option<SystemTime>,
}

/// One page of [`Bus::tenants`](crate::Bus::tenants).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TenantPage {
    /// Tenants in key order (byte order of the keys).
    pub tenants: Vec<Tenant>,
    /// Pass it as `after` for the next page; `None` when this is the last.
    pub next: Option<TenantId>,
}

/// What [`Bus::delete_tenant`](crate::Bus::delete_tenant) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantDeletion {
    /// Endpoints removed.
    pub endpoints: usize,
    /// Queued deliveries that ended cancelled, never sent.
    pub cancelled: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_charset() {
        for ok in [
            "acme",
            "42",
            "org:42",
            "ana@example.com",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "a.b_c",
            &"x".repeat(128),
        ] {
            let t = TenantId::new(ok).unwrap();
            assert_eq!(t.to_string(), ok);
            assert_eq!(t.to_string().parse::<TenantId>().unwrap(), t);
            assert!(!t.is_default());
        }
        for bad in [
            "",
            " ",
            "a b",
            "a/b",
            "~x",
            "é",
            ".",
            "..",
            "a\n",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(TenantId::new(bad), Err(Error::InvalidTenant { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_default_tenant_round_trips_and_collides_with_no_host_key() {
        let d = TenantId::default_tenant();
        assert!(d.is_default());
        assert_eq!(d.to_string().parse::<TenantId>().unwrap(), d);
        assert_eq!(TenantId::default(), d);
        assert!(!DEFAULT_TENANT_KEY.bytes().all(is_key_byte));
    }

    #[test]
    fn metadata_is_bounded() {
        assert!(TenantConfig::new("a").display_name("A").validate().is_ok());
        let too_many = (0..65).fold(TenantConfig::new("a"), |c, i| c.label(format!("k{i}"), "v"));
        for bad in [
            TenantConfig::new("a b"),
            TenantConfig::new("a").display_name(" "),
            TenantConfig::new("a").display_name("n".repeat(257)),
            TenantConfig::new("a").label("", "v"),
            TenantConfig::new("a").label("k", "v".repeat(257)),
            too_many,
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidTenant { .. })),
                "{bad:?}"
            );
        }
        let replaced = TenantConfig::new("a").label("k", "1").label("k", "2");
        assert_eq!(replaced.labels, [("k".to_string(), "2".to_string())]);
    }
}
