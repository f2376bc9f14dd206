//! Built-in directory roles and their assignments (issue 5, contract §3.5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{ObjectId, TenantId};

/// The built-in roles guestlist knows, with Graph's role template ids (the same in every tenant;
/// `roleDefinitionId` of a built-in role is its template id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DirectoryRoleTemplate {
    GlobalAdministrator,
    UserAdministrator,
    HelpdeskAdministrator,
    GuestInviter,
    DirectoryWriters,
}

impl DirectoryRoleTemplate {
    pub const ALL: [DirectoryRoleTemplate; 5] = [
        DirectoryRoleTemplate::GlobalAdministrator,
        DirectoryRoleTemplate::UserAdministrator,
        DirectoryRoleTemplate::HelpdeskAdministrator,
        DirectoryRoleTemplate::GuestInviter,
        DirectoryRoleTemplate::DirectoryWriters,
    ];

    /// Graph's `roleTemplateId` (entra-docs `permissions-reference.md`).
    pub fn template_id(&self) -> &'static str {
        match self {
            DirectoryRoleTemplate::GlobalAdministrator => "62e90394-69f5-4237-9190-012177145e10",
            DirectoryRoleTemplate::UserAdministrator => "fe930be7-5e62-47db-91af-98c3a49a38b1",
            DirectoryRoleTemplate::HelpdeskAdministrator => "729827e3-9c14-49f7-bb1b-9608f156bbb8",
            DirectoryRoleTemplate::GuestInviter => "95e79109-95c0-4d8e-aee3-d01accf2d47b",
            DirectoryRoleTemplate::DirectoryWriters => "9360feb5-f418-4baa-8175-e2a00bac4301",
        }
    }

    pub fn display_name(&self) -> &'static str {
        match self {
            DirectoryRoleTemplate::GlobalAdministrator => "Global Administrator",
            DirectoryRoleTemplate::UserAdministrator => "User Administrator",
            DirectoryRoleTemplate::HelpdeskAdministrator => "Helpdesk Administrator",
            DirectoryRoleTemplate::GuestInviter => "Guest Inviter",
            DirectoryRoleTemplate::DirectoryWriters => "Directory Writers",
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            DirectoryRoleTemplate::GlobalAdministrator => {
                "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities."
            }
            DirectoryRoleTemplate::UserAdministrator => {
                "Can manage all aspects of users and groups, including resetting passwords for limited admins."
            }
            DirectoryRoleTemplate::HelpdeskAdministrator => "Can reset passwords for non-administrators and Helpdesk Administrators.",
            DirectoryRoleTemplate::GuestInviter => "Can invite guest users independent of the 'members can invite guests' setting.",
            DirectoryRoleTemplate::DirectoryWriters => {
                "Can read and write basic directory information. For granting access to applications, not intended for users."
            }
        }
    }

    /// The resource actions Graph lists for the role, trimmed to what guestlist enforces.
    pub fn allowed_resource_actions(&self) -> &'static [&'static str] {
        match self {
            DirectoryRoleTemplate::GlobalAdministrator => &["microsoft.directory/allEntities/allProperties/allTasks"],
            DirectoryRoleTemplate::UserAdministrator => &[
                "microsoft.directory/users/allProperties/allTasks",
                "microsoft.directory/users/inviteGuest",
                "microsoft.directory/groups/allProperties/allTasks",
            ],
            DirectoryRoleTemplate::HelpdeskAdministrator => {
                &["microsoft.directory/users/password/update", "microsoft.directory/users/invalidateAllRefreshTokens"]
            }
            DirectoryRoleTemplate::GuestInviter => &["microsoft.directory/users/inviteGuest", "microsoft.directory/users/standard/read"],
            DirectoryRoleTemplate::DirectoryWriters => &[
                "microsoft.directory/users/create",
                "microsoft.directory/users/basic/update",
                "microsoft.directory/users/inviteGuest",
                "microsoft.directory/users/sponsors/update",
                "microsoft.directory/groups/create",
                "microsoft.directory/groups/members/update",
            ],
        }
    }

    /// By template id, case-insensitively.
    pub fn from_template_id(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.template_id().eq_ignore_ascii_case(text.trim_matches(|c| c == '{' || c == '}')))
    }

    /// The tenant's activated `directoryRole` object id: stable per tenant and template, and not the
    /// template id (Graph keeps the two apart; clients use `roleTemplateId=` to find a role).
    pub fn directory_role_id(&self, tenant: TenantId) -> ObjectId {
        let digest =
            Sha256::new().chain_update(tenant.to_string()).chain_update("/directoryRole/").chain_update(self.template_id()).finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // A version 8 (custom) UUID with the RFC 4122 variant.
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        ObjectId::from(uuid::Uuid::from_bytes(bytes))
    }

    /// The role whose activated object id in `tenant` is `id`.
    pub fn from_directory_role_id(tenant: TenantId, id: ObjectId) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.directory_role_id(tenant) == id)
    }
}

/// `directoryScopeId` of a tenant-wide assignment, the only scope guestlist supports.
pub const TENANT_SCOPE: &str = "/";

/// A `unifiedRoleAssignment`: a user holds a built-in role tenant-wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub principal_id: ObjectId,
    pub role: DirectoryRoleTemplate,
    pub created_date_time: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_ids_round_trip_and_role_ids_differ_per_tenant() {
        let (a, b) = (ObjectId::new_random(), ObjectId::new_random());
        for role in DirectoryRoleTemplate::ALL {
            assert_eq!(DirectoryRoleTemplate::from_template_id(&role.template_id().to_uppercase()), Some(role));
            assert_eq!(DirectoryRoleTemplate::from_directory_role_id(a, role.directory_role_id(a)), Some(role));
            assert_ne!(role.directory_role_id(a), role.directory_role_id(b));
            assert_ne!(role.directory_role_id(a).to_string(), role.template_id());
        }
        assert_eq!(DirectoryRoleTemplate::from_template_id("62e90394-69f5-4237-9190-012177145e11"), None);
    }
}
