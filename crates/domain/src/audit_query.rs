//! The typed query over the audit log that `GET /auditLogs/directoryAudits` parses its `$filter`
//! into and every store translates to SQL with bound parameters.

use chrono::{DateTime, Utc};

use crate::filter::CompareOp;

/// Text properties of `directoryAudit` that `$filter` compares with `eq` (case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditTextField {
    ActivityDisplayName,
    Category,
    LoggedByService,
    Result,
}

impl AuditTextField {
    pub const ALL: [AuditTextField; 4] =
        [AuditTextField::ActivityDisplayName, AuditTextField::Category, AuditTextField::LoggedByService, AuditTextField::Result];

    pub fn graph_name(&self) -> &'static str {
        match self {
            AuditTextField::ActivityDisplayName => "activityDisplayName",
            AuditTextField::Category => "category",
            AuditTextField::LoggedByService => "loggedByService",
            AuditTextField::Result => "result",
        }
    }

    pub fn from_graph_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.graph_name().eq_ignore_ascii_case(name))
    }
}

/// One condition on an audit entry; a filter holds when all of its clauses do (Graph combines
/// audit filters with `and` only).
#[derive(Debug, Clone, PartialEq)]
pub enum AuditClause {
    /// `activityDateTime ge 2024-01-01T00:00:00Z` (and `eq`, `le`, `gt`, `lt`).
    ActivityDateTime(CompareOp, DateTime<Utc>),
    Equals(AuditTextField, String),
    /// `startsWith(activityDisplayName, 'Invite')`.
    ActivityDisplayNameStartsWith(String),
    /// `targetResources/any(t:t/id eq '...')`.
    TargetResourceId(String),
    /// `initiatedBy/app/appId eq '...'`.
    InitiatedByAppId(String),
    /// `initiatedBy/user/id eq '...'`.
    InitiatedByUserId(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditFilter {
    pub clauses: Vec<AuditClause>,
}

/// One page request against the audit log, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub filter: AuditFilter,
    /// Page size, already clamped to Graph's limits.
    pub top: u32,
    /// Opaque continuation from the previous page (the store's own format).
    pub after: Option<String>,
}
