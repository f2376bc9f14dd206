use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ObjectId, TenantId};

/// Activity names Graph's audit log uses for the guest lifecycle (contract §7).
pub mod activity {
    pub const INVITE_EXTERNAL_USER: &str = "Invite external user";
    pub const INVITE_WITH_RESET: &str = "Invite external user with reset invitation status";
    pub const INVITE_INTERNAL_USER: &str = "Invite internal user to B2B collaboration";
    pub const REDEEM_INVITE: &str = "Redeem external user invite";
    pub const ADD_USER: &str = "Add user";
    pub const UPDATE_USER: &str = "Update user";
    pub const ADD_GROUP: &str = "Add group";
    pub const UPDATE_GROUP: &str = "Update group";
    pub const DELETE_GROUP: &str = "Delete group";
    pub const ADD_MEMBER_TO_GROUP: &str = "Add member to group";
    pub const REMOVE_MEMBER_FROM_GROUP: &str = "Remove member from group";
    pub const DELETE_EXTERNAL_USER: &str = "Delete external user";
    pub const DELETE_USER: &str = "Delete user";
    pub const ADD_USER_SPONSOR: &str = "Add user sponsor";
    pub const REMOVE_USER_SPONSOR: &str = "Remove user sponsor";
}

/// Graph writes `oldValue`/`newValue` as JSON arrays inside a string: `"[\"a@b.com\"]"`, `"[true]"`,
/// `"[]"` for no value (directoryAudit samples, contract §7).
pub fn graph_value(values: &[serde_json::Value]) -> String {
    serde_json::Value::Array(values.to_vec()).to_string()
}

/// A text property's value in Graph's encoding; `None` is the empty array.
pub fn graph_text(value: Option<&str>) -> String {
    graph_value(&value.map(|text| serde_json::Value::String(text.to_string())).into_iter().collect::<Vec<_>>())
}

impl ModifiedProperty {
    /// A change of a text property, both values in Graph's encoding.
    pub fn text(display_name: &str, old: Option<&str>, new: Option<&str>) -> Self {
        ModifiedProperty { display_name: display_name.to_string(), old_value: Some(graph_text(old)), new_value: Some(graph_text(new)) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResource {
    pub id: String,
    pub display_name: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub user_principal_name: Option<String>,
    pub modified_properties: Vec<ModifiedProperty>,
}

/// Who did it: an app (service principal) or, later, a signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Initiator {
    App { app_id: String, display_name: String, service_principal_id: String },
    User { id: String, user_principal_name: String },
}

/// A `directoryAudit` entry, written in the same transaction as the change it records (DECISIONS 16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub activity_date_time: DateTime<Utc>,
    pub activity_display_name: String,
    pub category: String,
    pub logged_by_service: String,
    pub operation_type: String,
    pub result: String,
    pub correlation_id: ObjectId,
    pub initiated_by: Initiator,
    pub target_resources: Vec<TargetResource>,
}

impl AuditRecord {
    /// An `Invited Users` / `UserManagement` entry about one user.
    pub fn invited_users(
        tenant_id: TenantId,
        activity: &str,
        operation_type: &str,
        initiated_by: Initiator,
        correlation_id: ObjectId,
        target: TargetResource,
        at: DateTime<Utc>,
    ) -> Self {
        AuditRecord {
            id: ObjectId::new_random(),
            tenant_id,
            activity_date_time: at,
            activity_display_name: activity.to_string(),
            category: "UserManagement".into(),
            logged_by_service: "Invited Users".into(),
            operation_type: operation_type.to_string(),
            result: "success".into(),
            correlation_id,
            initiated_by,
            target_resources: vec![target],
        }
    }
}

impl Initiator {
    /// The app id of an app initiator, for `initiatedBy/app/appId` filters.
    pub fn app_id(&self) -> Option<&str> {
        match self {
            Initiator::App { app_id, .. } => Some(app_id),
            Initiator::User { .. } => None,
        }
    }

    /// The object id of a user initiator, for `initiatedBy/user/id` filters.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Initiator::User { id, .. } => Some(id),
            Initiator::App { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_arrays_in_strings() {
        assert_eq!(graph_text(Some(r#"a"b@example.com"#)), r#"["a\"b@example.com"]"#);
        assert_eq!(graph_text(None), "[]");
        assert_eq!(graph_value(&[true.into()]), "[true]");
        let change = ModifiedProperty::text("Mail", None, Some("a@b.com"));
        assert_eq!((change.old_value.as_deref(), change.new_value.as_deref()), (Some("[]"), Some(r#"["a@b.com"]"#)));
    }
}
