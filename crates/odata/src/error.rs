use thiserror::Error;

/// A query option Graph would refuse. Every variant is answered with HTTP 400; the variant fixes `error.code`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ODataError {
    /// 400 `BadRequest`: the text itself is malformed (filter syntax, percent-encoding, duplicate or unknown
    /// system query option, operand types that don't match). Graph's OData layer answers these before the directory sees them.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `Request_BadRequest`: well-formed, but refused by the directory (`$top` range, `$skip`, unknown `$select` property).
    #[error("{0}")]
    DirectoryBadRequest(String),
    /// 400 `Request_UnsupportedQuery`: a property or a filter shape the directory doesn't serve.
    #[error("{0}")]
    UnsupportedQuery(String),
}

impl ODataError {
    /// Graph's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ODataError::BadRequest(_) => "BadRequest",
            ODataError::DirectoryBadRequest(_) => "Request_BadRequest",
            ODataError::UnsupportedQuery(_) => "Request_UnsupportedQuery",
        }
    }

    /// Graph's `error.message`.
    pub fn message(&self) -> &str {
        match self {
            ODataError::BadRequest(m) | ODataError::DirectoryBadRequest(m) | ODataError::UnsupportedQuery(m) => m,
        }
    }

    /// The HTTP status Graph answers with: 400 for every query error.
    pub fn status(&self) -> u16 {
        400
    }

    pub(crate) fn unsupported_property(property: &str) -> Self {
        ODataError::UnsupportedQuery(format!(
            "Unsupported or invalid query filter clause specified for property '{property}' of resource 'User'."
        ))
    }

    pub(crate) fn unknown_user_property(property: &str) -> Self {
        ODataError::DirectoryBadRequest(format!("Could not find a property named '{property}' on type 'microsoft.graph.user'."))
    }
}
