use thiserror::Error;

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    UserPrincipalName,
    ProxyAddress,
    /// The row changed since it was read (optimistic concurrency).
    StaleVersion,
    /// Any other unique key (tenant domain, key id, ...).
    Duplicate,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("not found")]
    NotFound,
    /// The query can't be served as asked: a continuation token that isn't this query's, or a
    /// filter or order the store does not support. The caller's mistake (400), not a fault.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The database could not be reached or refused service; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database said; logged, never shown to callers.
    #[error("database error: {0}")]
    Database(String),
}
