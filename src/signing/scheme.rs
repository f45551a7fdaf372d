//! The signing schemes an endpoint can use.

use serde::{Deserialize, Serialize};

/// How requests to an endpoint prove they come from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Signing {
    /// Standard Webhooks `webhook-signature: v1,<base64>` over
    /// `id.timestamp.body`; one entry per active secret during a rotation.
    /// Without a secret, no signature is sent. The default.
    StandardWebhooks,
    /// Hex HMAC-SHA256 of the raw body in the named header, with the
    /// current secret (Snitcher: `Signature`).
    HmacSha256Hex {
        /// The header carrying the signature.
        header: String,
    },
    /// The current secret itself in the named header (Genesy:
    /// `X-Webhook-Secret`).
    SecretHeader {
        /// The header carrying the secret.
        header: String,
    },
    /// The current secret inside the body (the lead CRM). Needs a format
    /// that has a place for it: the [`LeadCrm`](crate::presets::LeadCrm)
    /// preset or a custom envelope, which reads it from
    /// [`EnvelopeInput::secret_for_body`](crate::EnvelopeInput::secret_for_body).
    SecretInBody,
    /// No signature, even if a secret is set.
    None,
}
