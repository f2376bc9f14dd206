/// Failures of the token service's own machinery: bad key material or a crypto library error.
/// None of them is the caller's fault, so the HTTP layer answers 500 and logs the text.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("signing key: {0}")]
    SigningKey(String),
    #[error("the keyring holds no signing key")]
    EmptyKeyring,
    #[error("token signing: {0}")]
    Signing(String),
    /// A key-encryption key that is malformed or does not open a sealed signing key.
    #[error("key encryption: {0}")]
    KeyEncryption(String),
    #[error("certificate: {0}")]
    Certificate(String),
}
