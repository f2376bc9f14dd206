//! SQL and row mapping for directory role assignments and tenant policies (issue 5 items 2, 3).

use guestlist_domain::roles::{DirectoryRoleTemplate, RoleAssignment};

use crate::schema::{corrupt, object_id, stored_time, RowAccess, SqlValue};
use crate::StoreResult;

const ASSIGNMENT_SELECT: &str = "SELECT id, tenant_id, principal_id, role_template_id, created_date_time FROM role_assignments";

/// Only a user of the tenant can hold a role: the insert selects it, so a missing user inserts nothing.
pub(crate) const ASSIGNMENT_INSERT: &str =
    "INSERT INTO role_assignments (id, tenant_id, principal_id, role_template_id, created_date_time) \
     SELECT $1, u.tenant_id, u.id, $4, $5 FROM users u WHERE u.tenant_id = $2 AND u.id = $3";
pub(crate) const ASSIGNMENT_DELETE: &str = "DELETE FROM role_assignments WHERE tenant_id = $1 AND id = $2";

/// `$1` tenant.
pub(crate) static ASSIGNMENTS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{ASSIGNMENT_SELECT} WHERE tenant_id = $1 ORDER BY created_date_time, id"));
/// `$1` tenant, `$2` principal.
pub(crate) static ASSIGNMENTS_OF_PRINCIPAL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{ASSIGNMENT_SELECT} WHERE tenant_id = $1 AND principal_id = $2 ORDER BY created_date_time, id"));
/// `$1` tenant, `$2` assignment id.
pub(crate) static ASSIGNMENT_BY_ID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{ASSIGNMENT_SELECT} WHERE tenant_id = $1 AND id = $2"));

pub(crate) const POLICY_BY_TYPE: &str = "SELECT definition FROM tenant_policies WHERE tenant_id = $1 AND policy_type = $2";
pub(crate) const POLICY_UPSERT: &str = "INSERT INTO tenant_policies (tenant_id, policy_type, definition, updated_date_time) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, policy_type) DO UPDATE SET definition = excluded.definition, \
     updated_date_time = excluded.updated_date_time";

pub(crate) fn assignment_values(assignment: &RoleAssignment) -> Vec<SqlValue> {
    vec![
        assignment.id.into(),
        assignment.tenant_id.into(),
        assignment.principal_id.into(),
        assignment.role.template_id().into(),
        stored_time(assignment.created_date_time).into(),
    ]
}

pub(crate) fn assignment_from_row(row: &impl RowAccess) -> StoreResult<RoleAssignment> {
    let template = row.text("role_template_id")?;
    Ok(RoleAssignment {
        id: object_id(row, "id")?,
        tenant_id: object_id(row, "tenant_id")?,
        principal_id: object_id(row, "principal_id")?,
        role: DirectoryRoleTemplate::from_template_id(&template).ok_or_else(|| corrupt("role_template_id", &template))?,
        created_date_time: row.time("created_date_time")?,
    })
}
