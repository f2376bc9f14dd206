//! guestlist's token service: RS256 signing keys and their JWKS, access tokens with the claims
//! Microsoft Graph app tokens carry, the OAuth2 endpoints' response shapes, and the development
//! TLS certificates.
//!
//! Pure logic: nothing here touches the network, files or the store. Keys come in and go out as
//! plain values (kid, PKCS#8 PEM, creation time); the server converts them to and from its records.

pub mod devcert;
mod error;
pub mod oauth;
pub mod signing;
pub mod tokens;

pub use devcert::{generate_dev_ca_and_server_cert, server_cert_from_ca, DevCertificates, ServerCertificate};
pub use error::IdentityError;
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
