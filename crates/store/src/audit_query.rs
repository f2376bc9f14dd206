//! The audit log's `$filter` and keyset paging as SQL shared by both engines. Values only ever
//! travel as bound parameters; the SQL text is built from fixed column names and operators.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use guestlist_domain::audit::AuditRecord;
use guestlist_domain::audit_query::{AuditClause, AuditQuery, AuditTextField};
use guestlist_domain::filter::CompareOp;
use guestlist_domain::ids::TenantId;
use serde::{Deserialize, Serialize};

use crate::query::{like_escaped, SqlBuilder};
use crate::schema::{fold, stored_time, AUDIT_SELECT};
use crate::{AuditPage, StoreError, StoreResult};

/// Where the previous page ended, newest-first order: base64url JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AuditContinuation {
    at: DateTime<Utc>,
    id: String,
}

fn column(field: AuditTextField) -> &'static str {
    match field {
        AuditTextField::ActivityDisplayName => "activity_display_name",
        AuditTextField::Category => "category",
        AuditTextField::LoggedByService => "logged_by_service",
        AuditTextField::Result => "result",
    }
}

fn operator(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Ge => ">=",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Lt => "<",
    }
}

fn clause_sql(sql: &mut SqlBuilder, clause: &AuditClause) -> String {
    match clause {
        AuditClause::ActivityDateTime(op, at) => format!("activity_date_time {} {}", operator(*op), sql.bind(stored_time(*at))),
        AuditClause::Equals(field, text) => format!("lower({}) = {}", column(*field), sql.bind(fold(text))),
        AuditClause::ActivityDisplayNameStartsWith(prefix) => {
            format!("lower(activity_display_name) LIKE {} ESCAPE '\\'", sql.bind(fold(&format!("{}%", like_escaped(prefix)))))
        }
        AuditClause::TargetResourceId(id) => format!(
            "EXISTS (SELECT 1 FROM audit_target_resources t WHERE t.audit_id = audit_records.id AND t.tenant_id = audit_records.tenant_id AND t.target_id_lower = {})",
            sql.bind(fold(id))
        ),
        AuditClause::InitiatedByAppId(id) => format!("initiated_by_app_id = {}", sql.bind(fold(id))),
        AuditClause::InitiatedByUserId(id) => format!("initiated_by_user_id = {}", sql.bind(fold(id))),
    }
}

fn invalid_token() -> StoreError {
    StoreError::InvalidQuery("The continuation token is not valid for this query.".into())
}

/// The page query: one row more than `top`, so the store knows whether another page follows.
pub(crate) fn list_audit_sql(tenant: TenantId, query: &AuditQuery) -> StoreResult<SqlBuilder> {
    let mut sql = SqlBuilder::default();
    let mut conditions = vec![format!("tenant_id = {}", sql.bind(tenant))];
    for clause in &query.filter.clauses {
        let condition = clause_sql(&mut sql, clause);
        conditions.push(condition);
    }
    if let Some(token) = &query.after {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
        let after: AuditContinuation = serde_json::from_slice(&bytes).map_err(|_| invalid_token())?;
        let at = sql.bind(stored_time(after.at));
        let id = sql.bind(after.id);
        conditions.push(format!("(activity_date_time < {at} OR (activity_date_time = {at} AND id < {id}))"));
    }
    let limit = sql.bind(i64::from(query.top.max(1)) + 1);
    sql.sql = format!("{} WHERE {} ORDER BY activity_date_time DESC, id DESC LIMIT {limit}", *AUDIT_SELECT, conditions.join(" AND "));
    Ok(sql)
}

/// Cuts the `top + 1` rows [`list_audit_sql`] fetched into a page and its continuation.
pub(crate) fn audit_page_of(mut records: Vec<AuditRecord>, query: &AuditQuery) -> StoreResult<AuditPage> {
    let top = query.top.max(1) as usize;
    if records.len() <= top {
        return Ok(AuditPage { records, next: None });
    }
    records.truncate(top);
    let next = match records.last() {
        Some(last) => {
            let continuation = AuditContinuation { at: last.activity_date_time, id: last.id.to_string() };
            let json = serde_json::to_vec(&continuation).map_err(|e| StoreError::Database(format!("cannot encode continuation: {e}")))?;
            Some(URL_SAFE_NO_PAD.encode(json))
        }
        None => None,
    };
    Ok(AuditPage { records, next })
}

#[cfg(test)]
mod tests {
    use guestlist_domain::audit_query::AuditFilter;
    use guestlist_domain::ids::ObjectId;

    use super::*;
    use crate::schema::SqlValue;

    #[test]
    fn values_are_bound_never_spliced() {
        let query = AuditQuery {
            filter: AuditFilter {
                clauses: vec![
                    AuditClause::ActivityDisplayNameStartsWith("50%_O'Brien".into()),
                    AuditClause::TargetResourceId("X'; DROP TABLE users".into()),
                ],
            },
            top: 10,
            after: None,
        };
        let sql = list_audit_sql(ObjectId::new_random(), &query).unwrap();
        assert!(!sql.sql.contains("Brien") && !sql.sql.contains("DROP"), "{}", sql.sql);
        assert_eq!(sql.values[1], SqlValue::from(r"50\%\_o'brien%"));
        assert_eq!(sql.values[2], SqlValue::from("x'; drop table users"));
    }

    #[test]
    fn foreign_tokens_are_refused() {
        let query = AuditQuery { filter: AuditFilter::default(), top: 10, after: Some("not a token".into()) };
        assert!(matches!(list_audit_sql(ObjectId::new_random(), &query), Err(StoreError::InvalidQuery(_))));
    }
}
