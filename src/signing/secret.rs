//! Signing secrets: the text a host gives, and the HMAC key each scheme
//! derives from it.

use std::fmt;

use base64::Engine;

use super::Signing;
use crate::error::{Error, Result};

/// A signing secret. Its `Debug` output never shows the value.
///
/// A secret of the Standard Webhooks form `whsec_<base64>` signs with the
/// decoded bytes; any other text signs with its UTF-8 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps secret text. It is checked when the endpoint is saved.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// A fresh `whsec_` secret from 32 bytes of OS randomness.
    pub fn generate() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::InvalidEndpoint {
            field: "secret",
            reason: format!("no OS randomness to generate a secret: {e}"),
        })?;
        Ok(Secret(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )))
    }

    /// The secret text as given, for showing it once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key for a signing scheme. Standard Webhooks secrets are
    /// base64, with or without the `whsec_` prefix (as the reference
    /// libraries read them); the other schemes use the text's bytes.
    pub(crate) fn key_for(&self, signing: &Signing) -> Result<Vec<u8>> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            field: "secret",
            reason: reason.to_string(),
        };
        if self.0.is_empty() {
            return Err(invalid("empty"));
        }
        if !matches!(signing, Signing::StandardWebhooks) {
            return Ok(self.0.as_bytes().to_vec());
        }
        let b64 = self.0.strip_prefix("whsec_").unwrap_or(&self.0);
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| invalid("a Standard Webhooks secret must be base64 (whsec_...); Secret::generate makes one"))?;
        if key.is_empty() {
            return Err(invalid("the secret decodes to no bytes"));
        }
        Ok(key)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret(text.to_string())
    }
}

impl From<&Secret> for Secret {
    fn from(secret: &Secret) -> Self {
        secret.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
