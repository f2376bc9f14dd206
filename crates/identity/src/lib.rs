//! guestlist's token service: RS256 signing keys and their JWKS, access tokens with the claims
//! Microsoft Graph app tokens carry, the OAuth2 endpoints' response shapes, and the development
//! TLS certificates.
//!
//! Pure logic: nothing here touches the network, files or the store. Keys come in and go out as
//! plain values (kid, PKCS#8 PEM, creation time) or sealed under a [`KeyEncryptionKey`]; the
//! server converts them to and from its records.

pub mod devcert;
mod error;
pub mod key_encryption;
pub mod oauth;
pub mod signing;
pub mod tokens;

pub use devcert::{generate_dev_ca_and_server_cert, server_cert_from_ca, DevCertificates, ServerCertificate};
pub use error::IdentityError;
pub use key_encryption::KeyEncryptionKey;
pub use oauth::TokenEndpointError;
pub use signing::{generate_signing_key, GeneratedKey, Keyring};
pub use tokens::{
    client_info, generate_client_secret, hash_client_secret, verify_client_secret, AppTokenRequest, IssuedToken, Principal, TokenError,
    UserTokenRequest, ValidatedToken,
};

/// `aud` of Microsoft Graph access tokens (v1 tokens carry the resource URI).
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Microsoft Graph's well-known application id, also accepted as `aud`.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Stands in for a secret in `Debug` output: prints `[redacted]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted;

pub const REDACTED: Redacted = Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `Some([redacted])` or `None`, for optional secrets in `Debug` output.
pub fn redacted_option<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| REDACTED)
}
