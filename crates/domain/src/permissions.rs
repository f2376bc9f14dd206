use serde::{Deserialize, Serialize};

/// Microsoft Graph application permissions guestlist knows (the `roles` claim of app tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppPermission {
    UserInviteAll,
    UserReadAll,
    UserReadWriteAll,
    DirectoryReadAll,
    DirectoryReadWriteAll,
    GroupReadAll,
    GroupReadWriteAll,
    GroupMemberReadAll,
    GroupMemberReadWriteAll,
    AuditLogReadAll,
    RoleManagementReadDirectory,
    RoleManagementReadWriteDirectory,
    PolicyReadAll,
    PolicyReadWriteAuthorization,
}

impl AppPermission {
    pub const ALL: [AppPermission; 14] = [
        AppPermission::UserInviteAll,
        AppPermission::UserReadAll,
        AppPermission::UserReadWriteAll,
        AppPermission::DirectoryReadAll,
        AppPermission::DirectoryReadWriteAll,
        AppPermission::GroupReadAll,
        AppPermission::GroupReadWriteAll,
        AppPermission::GroupMemberReadAll,
        AppPermission::GroupMemberReadWriteAll,
        AppPermission::AuditLogReadAll,
        AppPermission::RoleManagementReadDirectory,
        AppPermission::RoleManagementReadWriteDirectory,
        AppPermission::PolicyReadAll,
        AppPermission::PolicyReadWriteAuthorization,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            AppPermission::UserInviteAll => "User.Invite.All",
            AppPermission::UserReadAll => "User.Read.All",
            AppPermission::UserReadWriteAll => "User.ReadWrite.All",
            AppPermission::DirectoryReadAll => "Directory.Read.All",
            AppPermission::DirectoryReadWriteAll => "Directory.ReadWrite.All",
            AppPermission::GroupReadAll => "Group.Read.All",
            AppPermission::GroupReadWriteAll => "Group.ReadWrite.All",
            AppPermission::GroupMemberReadAll => "GroupMember.Read.All",
            AppPermission::GroupMemberReadWriteAll => "GroupMember.ReadWrite.All",
            AppPermission::AuditLogReadAll => "AuditLog.Read.All",
            AppPermission::RoleManagementReadDirectory => "RoleManagement.Read.Directory",
            AppPermission::RoleManagementReadWriteDirectory => "RoleManagement.ReadWrite.Directory",
            AppPermission::PolicyReadAll => "Policy.Read.All",
            AppPermission::PolicyReadWriteAuthorization => "Policy.ReadWrite.Authorization",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(text))
    }
}

/// What a Graph route does, for authorization. Delegated scopes and directory roles
/// (a later issue) check the same actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    InviteGuest,
    /// An invitation with `invitedUserType: Member`: admins only (contract §1.7).
    InviteMember,
    ResetRedemption,
    /// Setting another user's password (`passwordProfile`). No route sets one yet; the row and
    /// its target rule are Entra's, ready for the route that will.
    ResetPassword,
    ReadUsers,
    WriteUsers,
    CreateUser,
    DeleteUser,
    ReadGroups,
    WriteGroups,
    ReadGroupMembers,
    WriteGroupMembers,
    ReadAuditLog,
    /// `directoryRoles`, `roleManagement/directory/roleAssignments` and `roleDefinitions` reads.
    ReadDirectoryRoles,
    /// Role assignments and removals.
    WriteDirectoryRoles,
    /// `authorizationPolicy` and the invitation domain policy.
    ReadPolicies,
    WritePolicies,
}

impl Action {
    /// Any one of these application permissions allows the action (Graph permission reference;
    /// reset needs `User.ReadWrite.All` at least: graph-docs PR #9248, DECISIONS 6).
    pub fn app_permissions(&self) -> &'static [AppPermission] {
        use AppPermission::*;
        match self {
            // An app that may invite may invite Members: Graph's admin-only rule is about users.
            Action::InviteGuest | Action::InviteMember => &[UserInviteAll, UserReadWriteAll, DirectoryReadWriteAll],
            Action::ResetRedemption => &[UserReadWriteAll, DirectoryReadWriteAll],
            // Graph's permission reference: Directory.ReadWrite.All "does not allow ... reset
            // user passwords"; User.ReadWrite.All does (User-PasswordProfile.ReadWrite.All is not modelled).
            Action::ResetPassword => &[UserReadWriteAll],
            Action::ReadUsers => &[UserReadAll, UserReadWriteAll, DirectoryReadAll, DirectoryReadWriteAll],
            Action::WriteUsers | Action::CreateUser | Action::DeleteUser => &[UserReadWriteAll, DirectoryReadWriteAll],
            Action::ReadGroups => &[GroupReadAll, GroupReadWriteAll, DirectoryReadAll, DirectoryReadWriteAll],
            Action::WriteGroups => &[GroupReadWriteAll, DirectoryReadWriteAll],
            Action::ReadGroupMembers => {
                &[GroupMemberReadAll, GroupMemberReadWriteAll, GroupReadAll, GroupReadWriteAll, DirectoryReadAll, DirectoryReadWriteAll]
            }
            Action::WriteGroupMembers => &[GroupMemberReadWriteAll, GroupReadWriteAll, DirectoryReadWriteAll],
            Action::ReadAuditLog => &[AuditLogReadAll],
            // Graph's directoryRole and unifiedRoleAssignment permission tables.
            Action::ReadDirectoryRoles => {
                &[RoleManagementReadDirectory, RoleManagementReadWriteDirectory, DirectoryReadAll, DirectoryReadWriteAll]
            }
            Action::WriteDirectoryRoles => &[RoleManagementReadWriteDirectory],
            Action::ReadPolicies => &[PolicyReadAll, PolicyReadWriteAuthorization],
            Action::WritePolicies => &[PolicyReadWriteAuthorization],
        }
    }

    /// `POST /invitations` without reset: `allowInvitesFrom` applies, and an app without the
    /// permission gets Graph's invitation-specific 401.
    pub fn is_invitation(&self) -> bool {
        matches!(self, Action::InviteGuest | Action::InviteMember)
    }

    /// Actions on one existing user, limited by the roles that user holds (Entra's "Who can
    /// perform sensitive actions", `authorization::TARGETS_BY_ROLE`). An invitation is one when it
    /// names an existing user (`invitedUser.id`, a resend, an address a user already owns).
    pub fn acts_on_user(&self) -> bool {
        matches!(
            self,
            Action::InviteGuest
                | Action::InviteMember
                | Action::ResetRedemption
                | Action::ResetPassword
                | Action::WriteUsers
                | Action::DeleteUser
        )
    }

    pub fn permitted_for_app(&self, granted: &[AppPermission]) -> bool {
        self.app_permissions().iter().any(|needed| granted.contains(needed))
    }
}

/// Whether a delegated token's scopes (`scp`, without the resource prefix) allow `action`. The
/// delegated permissions of the actions carry the same names as the application ones;
/// `Directory.AccessAsUser.All` acts with everything the user may do. The signed-in user's
/// directory roles are the other half of a delegated check (scope AND role, issue 5 item 2).
pub fn delegated_scope_permits(action: Action, scopes: &[String]) -> bool {
    scopes.iter().any(|scope| {
        scope.eq_ignore_ascii_case("Directory.AccessAsUser.All")
            || AppPermission::parse(scope).is_some_and(|granted| action.app_permissions().contains(&granted))
            || (action == Action::ReadUsers && scope.eq_ignore_ascii_case("User.ReadBasic.All"))
    })
}

/// Whether the scopes let a signed-in user read their own profile (`GET /me`): `User.Read` and
/// `User.ReadWrite` do, though they reach no one else (Graph's least privileged permission for
/// `/me`).
pub fn own_profile_scope_permits(action: Action, scopes: &[String]) -> bool {
    action == Action::ReadUsers
        && scopes.iter().any(|scope| scope.eq_ignore_ascii_case("User.Read") || scope.eq_ignore_ascii_case("User.ReadWrite"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppPermission::*;

    #[test]
    fn names_round_trip() {
        for p in AppPermission::ALL {
            assert_eq!(AppPermission::parse(p.as_str()), Some(p));
        }
        assert_eq!(AppPermission::parse("Mail.Send"), None);
    }

    #[test]
    fn invite_permission_alone_cannot_reset() {
        assert!(Action::InviteGuest.permitted_for_app(&[UserInviteAll]));
        assert!(!Action::ResetRedemption.permitted_for_app(&[UserInviteAll]));
        assert!(Action::ResetRedemption.permitted_for_app(&[UserReadWriteAll]));
        assert!(Action::ResetRedemption.permitted_for_app(&[DirectoryReadWriteAll]));
    }

    #[test]
    fn group_membership_has_its_own_permission() {
        assert!(Action::WriteGroupMembers.permitted_for_app(&[GroupMemberReadWriteAll]));
        assert!(!Action::WriteGroups.permitted_for_app(&[GroupMemberReadWriteAll]));
        assert!(!Action::WriteGroupMembers.permitted_for_app(&[GroupReadAll]));
        assert!(Action::ReadAuditLog.permitted_for_app(&[AuditLogReadAll]));
        assert!(!Action::ReadAuditLog.permitted_for_app(&[DirectoryReadWriteAll]));
    }

    #[test]
    fn delegated_scopes_use_the_same_names() {
        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(delegated_scope_permits(Action::InviteGuest, &scopes(&["User.Invite.All"])));
        assert!(delegated_scope_permits(Action::InviteMember, &scopes(&["User.Invite.All"])));
        assert!(!delegated_scope_permits(Action::ResetRedemption, &scopes(&["User.Invite.All", "User.Read"])));
        assert!(delegated_scope_permits(Action::ReadUsers, &scopes(&["user.readbasic.all"])));
        assert!(delegated_scope_permits(Action::DeleteUser, &scopes(&["Directory.AccessAsUser.All"])));
        assert!(!delegated_scope_permits(Action::ReadUsers, &scopes(&["User.Read"])));
    }

    #[test]
    fn user_read_reads_only_the_own_profile() {
        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(own_profile_scope_permits(Action::ReadUsers, &scopes(&["openid", "user.read"])));
        assert!(own_profile_scope_permits(Action::ReadUsers, &scopes(&["User.ReadWrite"])));
        assert!(!own_profile_scope_permits(Action::WriteUsers, &scopes(&["User.ReadWrite"])));
        assert!(!own_profile_scope_permits(Action::ReadGroupMembers, &scopes(&["User.Read"])));
        assert!(!own_profile_scope_permits(Action::ReadUsers, &scopes(&["User.Invite.All"])));
    }

    #[test]
    fn read_permissions_do_not_write() {
        assert!(Action::ReadUsers.permitted_for_app(&[UserReadAll]));
        assert!(!Action::WriteUsers.permitted_for_app(&[UserReadAll, DirectoryReadAll]));
        assert!(!Action::InviteGuest.permitted_for_app(&[UserReadAll]));
        assert!(!Action::ReadUsers.permitted_for_app(&[UserInviteAll]));
    }
}
