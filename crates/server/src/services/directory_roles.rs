//! Directory roles: `directoryRoles` and `roleManagement/directory/roleAssignments` (issue 5 item 2).

use chrono::Utc;
use guestlist_domain::audit::{AuditRecord, ModifiedProperty, TargetResource};
use guestlist_domain::authorization::Context;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::Action;
use guestlist_domain::roles::{DirectoryRoleTemplate, RoleAssignment};
use guestlist_domain::User;
use guestlist_store::{Conflict, StoreError, UserKey};

use super::policies::check;
use super::{Caller, ServiceError, ServiceResult, Services};

pub const ADD_MEMBER_TO_ROLE: &str = "Add member to role";
pub const REMOVE_MEMBER_FROM_ROLE: &str = "Remove member from role";

/// A `Core Directory` / `RoleManagement` entry: the role, then the user (contract §7's shape).
fn role_audit(caller: &Caller, activity_name: &str, role: DirectoryRoleTemplate, user: &User) -> AuditRecord {
    let role_properties = vec![
        ModifiedProperty::text("Role.ObjectID", None, Some(&role.directory_role_id(caller.tenant.id).to_string())),
        ModifiedProperty::text("Role.DisplayName", None, Some(role.display_name())),
        ModifiedProperty::text("Role.TemplateId", None, Some(role.template_id())),
    ];
    let mut record = AuditRecord::invited_users(
        caller.tenant.id,
        activity_name,
        if activity_name == ADD_MEMBER_TO_ROLE { "Assign" } else { "Unassign" },
        caller.initiator(),
        ObjectId::new_random(),
        TargetResource {
            id: role.directory_role_id(caller.tenant.id).to_string(),
            display_name: Some(role.display_name().to_string()),
            resource_type: "Role".into(),
            user_principal_name: None,
            modified_properties: vec![],
        },
        Utc::now(),
    );
    record.target_resources.push(TargetResource {
        id: user.id.to_string(),
        display_name: Some(user.display_name.clone()),
        resource_type: "User".into(),
        user_principal_name: Some(user.user_principal_name.to_string()),
        modified_properties: role_properties,
    });
    record.category = "RoleManagement".into();
    record.logged_by_service = "Core Directory".into();
    record
}

impl Services {
    pub fn require_role_read(&self, caller: &Caller) -> ServiceResult<()> {
        check(caller, Action::ReadDirectoryRoles, &Context::default())
    }

    /// The tenant's assignments, optionally of one principal or one role.
    pub async fn role_assignments(
        &self,
        caller: &Caller,
        principal: Option<ObjectId>,
        role: Option<DirectoryRoleTemplate>,
    ) -> ServiceResult<Vec<RoleAssignment>> {
        self.require_role_read(caller)?;
        let all = self.store.role_assignments(caller.tenant.id, principal).await?;
        Ok(all.into_iter().filter(|a| role.is_none_or(|role| a.role == role)).collect())
    }

    pub async fn role_assignment(&self, caller: &Caller, id: ObjectId) -> ServiceResult<RoleAssignment> {
        self.require_role_read(caller)?;
        self.store.role_assignment(caller.tenant.id, id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))
    }

    /// The users holding a role, in assignment order.
    pub async fn role_members(&self, caller: &Caller, role: DirectoryRoleTemplate) -> ServiceResult<Vec<User>> {
        let assignments = self.role_assignments(caller, None, Some(role)).await?;
        let mut members = Vec::with_capacity(assignments.len());
        for assignment in assignments {
            if let Some(user) = self.store.user(caller.tenant.id, &UserKey::Id(assignment.principal_id)).await? {
                members.push(user);
            }
        }
        Ok(members)
    }

    /// Assigns a built-in role tenant-wide. `duplicate` is the refusal when the user holds it already
    /// (the two endpoint families word it differently).
    pub async fn assign_role(
        &self,
        caller: &Caller,
        principal: ObjectId,
        role: DirectoryRoleTemplate,
        duplicate: &str,
    ) -> ServiceResult<RoleAssignment> {
        check(caller, Action::WriteDirectoryRoles, &Context::default())?;
        let user = self
            .store
            .user(caller.tenant.id, &UserKey::Id(principal))
            .await?
            .ok_or_else(|| ServiceError::NotFound(principal.to_string()))?;
        let assignment = RoleAssignment {
            id: ObjectId::new_random(),
            tenant_id: caller.tenant.id,
            principal_id: user.id,
            role,
            created_date_time: Utc::now(),
        };
        let audit = role_audit(caller, ADD_MEMBER_TO_ROLE, role, &user);
        match self.store.add_role_assignment(&assignment, &[audit]).await {
            Ok(()) => Ok(assignment),
            Err(StoreError::Conflict(Conflict::Duplicate)) => Err(ServiceError::InvalidRequest(duplicate.to_string())),
            Err(StoreError::NotFound) => Err(ServiceError::NotFound(principal.to_string())),
            Err(other) => Err(other.into()),
        }
    }

    pub async fn remove_role_assignment(&self, caller: &Caller, id: ObjectId) -> ServiceResult<()> {
        check(caller, Action::WriteDirectoryRoles, &Context::default())?;
        let assignment = self.store.role_assignment(caller.tenant.id, id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        self.remove_assignment(caller, assignment).await
    }

    /// `DELETE /directoryRoles/{id}/members/{userId}/$ref`.
    pub async fn remove_role_member(&self, caller: &Caller, role: DirectoryRoleTemplate, user_id: ObjectId) -> ServiceResult<()> {
        check(caller, Action::WriteDirectoryRoles, &Context::default())?;
        let held = self.store.role_assignments(caller.tenant.id, Some(user_id)).await?;
        let assignment = held.into_iter().find(|a| a.role == role).ok_or_else(|| ServiceError::NotFound(user_id.to_string()))?;
        self.remove_assignment(caller, assignment).await
    }

    async fn remove_assignment(&self, caller: &Caller, assignment: RoleAssignment) -> ServiceResult<()> {
        let user = self
            .store
            .user(caller.tenant.id, &UserKey::Id(assignment.principal_id))
            .await?
            .ok_or_else(|| ServiceError::NotFound(assignment.id.to_string()))?;
        let audit = role_audit(caller, REMOVE_MEMBER_FROM_ROLE, assignment.role, &user);
        match self.store.remove_role_assignment(caller.tenant.id, assignment.id, &[audit]).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound(assignment.id.to_string())),
            other => Ok(other?),
        }
    }
}
