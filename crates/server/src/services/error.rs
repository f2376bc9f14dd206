use guestlist_domain::DomainError;
use guestlist_store::StoreError;
use thiserror::Error;

/// Why a service refused or failed an operation. The HTTP layer maps each variant to Graph's
/// status and error code in one place (`http::error`).
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The invitation service refused the request (Graph answers with unprefixed `BadRequest`).
    #[error("{0}")]
    InvitationRejected(String),
    /// A directory request is malformed (`Request_BadRequest`).
    #[error("{0}")]
    InvalidRequest(String),
    /// A directory write collides with another object's unique value (`Request_BadRequest`).
    #[error("Another object with the same value for property {0} already exists.")]
    UniqueValueTaken(&'static str),
    /// The object named in the request does not exist (`Request_ResourceNotFound`).
    #[error("Resource '{0}' does not exist or one of its queried reference-property objects are not present.")]
    NotFound(String),
    /// An app without an invitation permission called the invitation API (Graph answers 401, contract §6.2).
    #[error("Insufficient privileges to perform requested operation by the application '00000003-0000-0000-c000-000000000000'. ControllerName=MSGraphInviteAPI, ActionName=CreateInvite, URL absolute path=/api/{0}/invites")]
    InviteNotPermitted(String),
    /// Reset redemption without the rights it needs (DECISIONS 6).
    #[error("Generic authorization exception.")]
    ResetNotPermitted,
    /// A directory read or write without the permission it needs.
    #[error("Insufficient privileges to complete the operation.")]
    DirectoryAccessDenied,
    /// The tenant's invitation limit is used up for this window (DECISIONS 17).
    #[error("Too many requests from Identifier:{tenant_id}+{app_id} under category:invitations. Please try again later.")]
    Throttled { tenant_id: String, app_id: String, retry_after_seconds: u64 },
    /// Too many password or code hashes are in progress (`services::hashing`); nothing was changed.
    #[error("Too many requests are in progress. Please try again later.")]
    Busy,
    /// The database is unreachable; nothing was changed.
    #[error("The service is temporarily unavailable. Please retry.")]
    Unavailable,
    /// A bug or a database fault; logged, never described to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ServiceError::Unavailable
            }
            // A continuation token from another query, or a filter value of the wrong type.
            StoreError::InvalidQuery(detail) => ServiceError::InvalidRequest(detail),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<crate::services::hashing::HashingError> for ServiceError {
    fn from(error: crate::services::hashing::HashingError) -> Self {
        match error {
            crate::services::hashing::HashingError::Busy => ServiceError::Busy,
            crate::services::hashing::HashingError::Failed(detail) => ServiceError::Internal(detail),
        }
    }
}

impl ServiceError {
    /// A domain rule broken inside the invitation API.
    pub fn from_invitation_rule(error: DomainError) -> Self {
        ServiceError::InvitationRejected(error.to_string())
    }

    /// A domain rule broken by a directory (users) request.
    pub fn from_directory_rule(error: DomainError) -> Self {
        ServiceError::InvalidRequest(error.to_string())
    }
}
