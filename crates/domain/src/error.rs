use thiserror::Error;

/// A rule of the domain refused an input. Each variant carries the sentence a caller sees.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The input is malformed or breaks a documented limit (Graph answers 400).
    #[error("{0}")]
    Invalid(String),
    /// Reset redemption with an email that is not on the user object (contract §3.4).
    #[error("The email you’re using to invite this user doesn’t match any emails on the user object. Please add this email to the user object and try again.")]
    ResetEmailMismatch,
    /// The address belongs to an object that cannot be (re-)invited (DECISIONS 7).
    #[error("{0}")]
    AddressOwnedByOtherObject(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        DomainError::Invalid(message.into())
    }
}
