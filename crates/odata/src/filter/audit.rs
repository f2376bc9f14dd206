//! `$filter` on `/auditLogs/directoryAudits`: the shared `syntax` tree checked against the
//! shapes Graph serves there, conjunctions only (graph-docs `directoryaudit-list.md`).

use guestlist_domain::audit_query::{AuditClause, AuditFilter, AuditTextField};
use guestlist_domain::filter::CompareOp;

use super::syntax::{Expr, Lit, Operand};
use crate::ODataError;

/// Parses an audit-log `$filter` (already percent-decoded) into its clauses.
pub fn parse_audit_filter(text: &str) -> Result<AuditFilter, ODataError> {
    let expr = super::parse_syntax(text)?;
    let mut clauses = Vec::new();
    conjunction(expr, &mut clauses)?;
    Ok(AuditFilter { clauses })
}

fn unsupported(property: &str) -> ODataError {
    ODataError::UnsupportedQuery(format!(
        "Unsupported or invalid query filter clause specified for property '{property}' of resource 'DirectoryAudit'."
    ))
}

fn conjunction(expr: Expr, clauses: &mut Vec<AuditClause>) -> Result<(), ODataError> {
    match expr {
        Expr::And(items) => items.into_iter().try_for_each(|item| conjunction(item, clauses)),
        Expr::Compare { left: Operand::Path(path), op, right: Operand::Literal(lit) } => {
            clauses.push(comparison(&path, op, lit)?);
            Ok(())
        }
        Expr::Call { name, args } if name.eq_ignore_ascii_case("startswith") => {
            clauses.push(starts_with(args)?);
            Ok(())
        }
        Expr::Lambda { collection, quantifier, body } => {
            clauses.push(target_resource(&collection, &quantifier, body)?);
            Ok(())
        }
        Expr::Or(_) => {
            Err(ODataError::UnsupportedQuery("The 'or' operator is not supported on directoryAudits; combine clauses with 'and'.".into()))
        }
        Expr::Not(_) => Err(ODataError::UnsupportedQuery("The 'not' operator is not supported on directoryAudits.".into())),
        Expr::Compare { left: Operand::Path(path), .. } | Expr::In { left: Operand::Path(path), .. } => Err(unsupported(&path.join("/"))),
        Expr::Call { name, .. } => Err(ODataError::UnsupportedQuery(format!("Unsupported query function '{name}'."))),
        Expr::Compare { .. } | Expr::In { .. } => {
            Err(ODataError::BadRequest("Invalid filter clause: a comparison needs a property on its left.".to_string()))
        }
    }
}

fn is_path(path: &[String], expected: &[&str]) -> bool {
    path.len() == expected.len() && path.iter().zip(expected).all(|(segment, name)| segment.eq_ignore_ascii_case(name))
}

fn comparison(path: &[String], op: CompareOp, lit: Lit) -> Result<AuditClause, ODataError> {
    let name = path.join("/");
    if is_path(path, &["activityDateTime"]) {
        return match (op, lit) {
            (CompareOp::Ne, _) => Err(unsupported(&name)),
            (op, Lit::DateTime(at)) => Ok(AuditClause::ActivityDateTime(op, at)),
            (_, other) => Err(incompatible("Edm.DateTimeOffset", &other)),
        };
    }
    // Every other property takes `eq` and a string.
    let text = match (op, lit) {
        (CompareOp::Eq, Lit::String(text)) => text,
        (CompareOp::Eq, other) if !matches!(other, Lit::Null) => return Err(incompatible("Edm.String", &other)),
        _ => return Err(unsupported(&name)),
    };
    if let [single] = path {
        if let Some(field) = AuditTextField::from_graph_name(single) {
            return Ok(AuditClause::Equals(field, text));
        }
    }
    if is_path(path, &["initiatedBy", "app", "appId"]) {
        return Ok(AuditClause::InitiatedByAppId(text));
    }
    if is_path(path, &["initiatedBy", "user", "id"]) {
        return Ok(AuditClause::InitiatedByUserId(text));
    }
    Err(unsupported(&name))
}

fn incompatible(expected: &str, lit: &Lit) -> ODataError {
    let found = match lit {
        Lit::String(_) => "Edm.String",
        Lit::Boolean(_) => "Edm.Boolean",
        Lit::Null => "null",
        Lit::DateTime(_) => "Edm.DateTimeOffset",
        Lit::Integer(_) => "Edm.Int32",
    };
    ODataError::BadRequest(format!(
        "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types '{expected}' and '{found}' for operator kind 'Equal'."
    ))
}

/// `startsWith(activityDisplayName, '...')`, the one function Graph serves here.
fn starts_with(args: Vec<Operand>) -> Result<AuditClause, ODataError> {
    match args.as_slice() {
        [Operand::Path(path), Operand::Literal(Lit::String(prefix))] if is_path(path, &["activityDisplayName"]) => {
            Ok(AuditClause::ActivityDisplayNameStartsWith(prefix.clone()))
        }
        [Operand::Path(path), _] => Err(unsupported(&path.join("/"))),
        _ => Err(ODataError::BadRequest(
            "Invalid filter clause: startsWith expects a property and a string, e.g. startsWith(activityDisplayName,'Invite').".into(),
        )),
    }
}

/// `targetResources/any(t:t/id eq '...')`.
fn target_resource(collection: &[String], quantifier: &str, body: Option<(String, Box<Expr>)>) -> Result<AuditClause, ODataError> {
    let name = collection.join("/");
    if !is_path(collection, &["targetResources"]) || !quantifier.eq_ignore_ascii_case("any") {
        return Err(unsupported(&name));
    }
    match body.map(|(var, body)| (var, *body)) {
        Some((var, Expr::Compare { left: Operand::Path(path), op: CompareOp::Eq, right: Operand::Literal(Lit::String(id)) }))
            if path.len() == 2 && path[0] == var && path[1].eq_ignore_ascii_case("id") =>
        {
            Ok(AuditClause::TargetResourceId(id))
        }
        _ => Err(unsupported(&name)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn clauses(text: &str) -> Vec<AuditClause> {
        parse_audit_filter(text).unwrap_or_else(|e| panic!("{text}: {e}")).clauses
    }

    #[test]
    fn every_served_shape_parses() {
        let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(clauses("activityDateTime ge 2024-01-02T03:04:05Z"), [AuditClause::ActivityDateTime(CompareOp::Ge, at)]);
        assert_eq!(clauses("activityDateTime lt 2024-01-02T05:04:05+02:00"), [AuditClause::ActivityDateTime(CompareOp::Lt, at)]);
        assert_eq!(
            clauses("activityDisplayName eq 'Add user' and Category eq 'UserManagement'"),
            [
                AuditClause::Equals(AuditTextField::ActivityDisplayName, "Add user".into()),
                AuditClause::Equals(AuditTextField::Category, "UserManagement".into())
            ]
        );
        assert_eq!(clauses("startsWith(activityDisplayName,'Invite')"), [AuditClause::ActivityDisplayNameStartsWith("Invite".into())]);
        assert_eq!(clauses("targetResources/any(t:t/id eq 'abc')"), [AuditClause::TargetResourceId("abc".into())]);
        assert_eq!(
            clauses("initiatedBy/app/appId eq 'a' and initiatedBy/user/id eq 'u' and result eq 'success' and loggedByService eq 'Core Directory'"),
            [
                AuditClause::InitiatedByAppId("a".into()),
                AuditClause::InitiatedByUserId("u".into()),
                AuditClause::Equals(AuditTextField::Result, "success".into()),
                AuditClause::Equals(AuditTextField::LoggedByService, "Core Directory".into()),
            ]
        );
    }

    #[test]
    fn unserved_shapes_are_refused_with_graph_codes() {
        for (text, code) in [
            ("activityDisplayName eq 'a' or category eq 'b'", "Request_UnsupportedQuery"),
            ("not(category eq 'b')", "Request_UnsupportedQuery"),
            ("activityDateTime ne 2024-01-01T00:00:00Z", "Request_UnsupportedQuery"),
            ("category ne 'x'", "Request_UnsupportedQuery"),
            ("operationType eq 'Add'", "Request_UnsupportedQuery"),
            ("endsWith(activityDisplayName,'user')", "Request_UnsupportedQuery"),
            ("startsWith(category,'User')", "Request_UnsupportedQuery"),
            ("targetResources/any(t:t/displayName eq 'x')", "Request_UnsupportedQuery"),
            ("targetResources/all(t:t/id eq 'x')", "Request_UnsupportedQuery"),
            ("category in ('a')", "Request_UnsupportedQuery"),
            ("activityDateTime ge 'yesterday'", "BadRequest"),
            ("category eq 5", "BadRequest"),
            ("category eq", "BadRequest"),
        ] {
            let error = parse_audit_filter(text).expect_err(text);
            assert_eq!(error.code(), code, "{text}: {error}");
        }
    }
}
