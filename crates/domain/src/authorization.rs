//! The permission matrix (contract §1.5, §3.5, §5.1; DECISIONS 6): who may do what, as a table
//! ([`MATRIX`]) and one function over it ([`authorize`]).
//!
//! App callers need an application permission of the action. Delegated callers need a scope of
//! the action AND a directory role the action's row names (or, where the row says so, just being a
//! member). Both are further limited by the tenant's `allowInvitesFrom` and, for actions on an
//! existing user, by the roles that user holds ([`TARGETS_BY_ROLE`]).
//!
use crate::permissions::{Action, AppPermission};
use crate::policy::{AllowInvitesFrom, GuestUserRole};
use crate::roles::DirectoryRoleTemplate;

use DirectoryRoleTemplate::*;

/// Who calls.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    /// Client credentials: the token's `roles`.
    App { permissions: &'a [AppPermission] },
    /// A signed-in user: whether the token's `scp` grants the action (`delegated_scope_permits`),
    /// and the user's directory roles.
    User { scope_granted: bool, roles: &'a [DirectoryRoleTemplate], is_guest: bool },
}

/// What else decides: the tenant's settings and the target of the action.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub allow_invites_from: AllowInvitesFrom,
    /// The directory roles the target user holds, for actions on an existing user
    /// ([`Action::acts_on_user`]): empty for a user without roles and for a new guest.
    pub target_roles: &'a [DirectoryRoleTemplate],
    /// What guests may read: `authorizationPolicy.guestUserRoleId` (contract §5.3).
    pub guest_user_role: GuestUserRole,
    /// What a read reaches; guests' access depends on it.
    pub reach: Reach,
}

/// What a read reaches (contract §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// A collection: listing, counting, searching. Enumeration is what limited guests lose.
    #[default]
    Collection,
    /// One object named by id (or UPN), or its relationships.
    OtherObject,
    /// The caller's own user object, or its relationships (`/me`, `/me/memberOf`).
    OwnObject,
}

/// Whether a guest without directory roles may make a read every member may make, under the
/// tenant's guest access level (contract §5.3): as members; limited (the default: no
/// enumeration of users and groups, single objects by id); restricted (own object only).
/// Entra's limited level also narrows which properties of other objects a guest sees; guestlist
/// returns whole objects (README "Where it differs").
pub fn guest_may_read(level: GuestUserRole, reach: Reach) -> bool {
    match level {
        GuestUserRole::SameAsMembers => true,
        GuestUserRole::Limited => reach != Reach::Collection,
        GuestUserRole::Restricted => reach == Reach::OwnObject,
    }
}

/// Why the matrix said no; each maps to one of Graph's error bodies (contract §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An app without an invitation permission: 401 `Unauthorized` ... `MSGraphInviteAPI`.
    AppCannotInvite,
    /// 403 `Forbidden` "Generic authorization exception.": a reset by a caller lacking the
    /// permission or role to reset at all.
    ResetForbidden,
    /// 403 `Authorization_RequestDenied` "Insufficient privileges to complete the operation.".
    DirectoryAccessDenied,
}

/// Which non-admin members the row lets through on their scopes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    Never,
    /// Default user permissions: every member; guests as `guestUserRoleId` allows ([`guest_may_read`]).
    Always,
    /// As `allowInvitesFrom` says (contract §5.1).
    ByInvitePolicy,
}

/// One row: the roles that may perform `action` as delegated callers.
#[derive(Debug, Clone, Copy)]
pub struct MatrixRow {
    pub action: Action,
    pub members: Members,
    pub roles: &'static [DirectoryRoleTemplate],
}

/// The matrix's target dimension: for each caller role, the roles a user may hold and still be
/// updated, disabled, deleted, given a password, reset or re-invited by that caller. A user
/// holding no role is open to every role the action's row names.
///
/// Entra's tables "Who can reset passwords" and "Who can update sensitive attributes" (Graph's
/// users resource docs, `resources/users.md`, and Entra's "Who can perform sensitive actions"),
/// restricted to the five roles guestlist knows:
/// - Global Administrator: anyone.
/// - User Administrator: Guest Inviter, Helpdesk Administrator, User Administrator (not Global
///   Administrator, not Directory Writers: neither is among the rows it may reset).
/// - Helpdesk Administrator: Guest Inviter, Helpdesk Administrator.
/// - Guest Inviter and Directory Writers are no column of either table: only users without roles.
///
/// Apps: `user-delete` and `directory-deleteditems-delete` say `User.ReadWrite.All` "isn't enough
/// privilege" for users with privileged administrator roles, the app needs a higher role; guestlist
/// assigns roles to users only, so an app acts on no role holder, whatever its permission
/// (`Directory.ReadWrite.All` included: it grants no role either). Delegated callers need no
/// `Directory.AccessAsUser.All` on top: their role decides.
pub const TARGETS_BY_ROLE: &[(DirectoryRoleTemplate, &[DirectoryRoleTemplate])] = &[
    (GlobalAdministrator, ALL_ROLES),
    (UserAdministrator, &[GuestInviter, HelpdeskAdministrator, UserAdministrator]),
    (HelpdeskAdministrator, &[GuestInviter, HelpdeskAdministrator]),
    (GuestInviter, &[]),
    (DirectoryWriters, &[]),
];

/// Whether a caller holding `role` may act on a user holding `target_roles` ([`TARGETS_BY_ROLE`]).
pub fn role_reaches_target(role: DirectoryRoleTemplate, target_roles: &[DirectoryRoleTemplate]) -> bool {
    let reachable = TARGETS_BY_ROLE.iter().find(|(caller, _)| *caller == role).map_or(&[][..], |(_, targets)| *targets);
    target_roles.iter().all(|target| reachable.contains(target))
}

const ALL_ROLES: &[DirectoryRoleTemplate] = &DirectoryRoleTemplate::ALL;

/// The delegated half of the matrix (contract §3.5, DECISIONS 6). The app half is
/// [`Action::app_permissions`].
pub const MATRIX: &[MatrixRow] = &[
    row(Action::InviteGuest, Members::ByInvitePolicy, &[GuestInviter, DirectoryWriters, UserAdministrator, GlobalAdministrator]),
    // Graph documents Member invitations "if you're a company administrator" without naming roles
    // (contract §1.7); guestlist reads that as the roles that administer users: User Administrator
    // and Global Administrator. Guest Inviter, Directory Writers and members by policy may not.
    row(Action::InviteMember, Members::Never, &[UserAdministrator, GlobalAdministrator]),
    row(Action::ResetRedemption, Members::Never, &[HelpdeskAdministrator, UserAdministrator, GlobalAdministrator]),
    // "Who can reset passwords" (Graph's users resource docs): Helpdesk, User and Global Administrators.
    row(Action::ResetPassword, Members::Never, &[HelpdeskAdministrator, UserAdministrator, GlobalAdministrator]),
    row(Action::ReadUsers, Members::Always, ALL_ROLES),
    row(Action::WriteUsers, Members::Never, &[DirectoryWriters, UserAdministrator, GlobalAdministrator]),
    row(Action::CreateUser, Members::Never, &[DirectoryWriters, UserAdministrator, GlobalAdministrator]),
    row(Action::DeleteUser, Members::Never, &[UserAdministrator, GlobalAdministrator]),
    row(Action::ReadGroups, Members::Always, ALL_ROLES),
    row(Action::WriteGroups, Members::Never, &[DirectoryWriters, UserAdministrator, GlobalAdministrator]),
    row(Action::ReadGroupMembers, Members::Always, ALL_ROLES),
    row(Action::WriteGroupMembers, Members::Never, &[DirectoryWriters, UserAdministrator, GlobalAdministrator]),
    row(Action::ReadAuditLog, Members::Never, &[GlobalAdministrator]),
    row(Action::ReadDirectoryRoles, Members::Always, ALL_ROLES),
    // Privileged Role Administrator is not modelled; Global Administrator assigns roles.
    row(Action::WriteDirectoryRoles, Members::Never, &[GlobalAdministrator]),
    row(Action::ReadPolicies, Members::Never, &[GlobalAdministrator]),
    // "Admin UI needs Global Administrator" (contract §5.2).
    row(Action::WritePolicies, Members::Never, &[GlobalAdministrator]),
];

const fn row(action: Action, members: Members, roles: &'static [DirectoryRoleTemplate]) -> MatrixRow {
    MatrixRow { action, members, roles }
}

pub fn matrix_row(action: Action) -> &'static MatrixRow {
    MATRIX.iter().find(|row| row.action == action).expect("every action has a row in the matrix")
}

/// Decides whether `principal` may perform `action` in `context`.
pub fn authorize(principal: Principal<'_>, action: Action, context: &Context<'_>) -> Result<(), Refusal> {
    let refusal = match action {
        Action::ResetRedemption => Refusal::ResetForbidden,
        _ => Refusal::DirectoryAccessDenied,
    };
    // `none`: nobody may invite, not even admins or apps (contract §1.5, §5.1; graph-docs PR #9556
    // lets apps invite under `adminsAndGuestInviters`). A reset sends an invitation too.
    let sends_invitation = action.is_invitation() || action == Action::ResetRedemption;
    if sends_invitation && context.allow_invites_from == AllowInvitesFrom::None {
        return Err(match principal {
            Principal::App { permissions } if !action.permitted_for_app(permissions) => {
                if action.is_invitation() {
                    Refusal::AppCannotInvite
                } else {
                    refusal
                }
            }
            _ => Refusal::DirectoryAccessDenied,
        });
    }
    match principal {
        Principal::App { permissions } => {
            if !action.permitted_for_app(permissions) {
                return Err(if action.is_invitation() { Refusal::AppCannotInvite } else { refusal });
            }
            // An app acts on no role holder ([`TARGETS_BY_ROLE`]; DECISIONS 6 for resets).
            if action.acts_on_user() && !context.target_roles.is_empty() {
                return Err(Refusal::DirectoryAccessDenied);
            }
            Ok(())
        }
        Principal::User { scope_granted, roles, is_guest } => {
            if !scope_granted {
                return Err(refusal);
            }
            let row = matrix_row(action);
            let on_target = |role: &DirectoryRoleTemplate| !action.acts_on_user() || role_reaches_target(*role, context.target_roles);
            let by_role = roles.iter().any(|role| row.roles.contains(role) && on_target(role));
            let as_member = match row.members {
                Members::Never => false,
                Members::Always => !is_guest || guest_may_read(context.guest_user_role, context.reach),
                Members::ByInvitePolicy => match context.allow_invites_from {
                    AllowInvitesFrom::Everyone => true,
                    AllowInvitesFrom::AdminsGuestInvitersAndAllMembers => !is_guest,
                    AllowInvitesFrom::AdminsAndGuestInviters | AllowInvitesFrom::None => false,
                },
            };
            // Members without a role reach only users without one.
            let member_reaches_target = !action.acts_on_user() || context.target_roles.is_empty();
            if by_role || (as_member && member_reaches_target) {
                Ok(())
            } else if as_member || roles.iter().any(|role| row.roles.contains(role)) {
                // The caller may do this, only not to this user: Graph's 403 for protected targets.
                Err(Refusal::DirectoryAccessDenied)
            } else {
                Err(refusal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::AppPermission::*;

    const ACTIONS: [Action; 17] = [
        Action::InviteGuest,
        Action::InviteMember,
        Action::ResetRedemption,
        Action::ResetPassword,
        Action::ReadUsers,
        Action::WriteUsers,
        Action::CreateUser,
        Action::DeleteUser,
        Action::ReadGroups,
        Action::WriteGroups,
        Action::ReadGroupMembers,
        Action::WriteGroupMembers,
        Action::ReadAuditLog,
        Action::ReadDirectoryRoles,
        Action::WriteDirectoryRoles,
        Action::ReadPolicies,
        Action::WritePolicies,
    ];

    /// The expected delegated cells, one line per action, under `allowInvitesFrom: everyone` and
    /// a target without roles. Columns: member, guest, Global Administrator, User Administrator,
    /// Helpdesk Administrator, Guest Inviter, Directory Writers.
    const DELEGATED: &[(Action, &str)] = &[
        (Action::InviteGuest, "Y Y Y Y Y Y Y"),
        (Action::InviteMember, "N N Y Y N N N"),
        (Action::ResetRedemption, "N N Y Y Y N N"),
        (Action::ResetPassword, "N N Y Y Y N N"),
        (Action::ReadUsers, "Y N Y Y Y Y Y"),
        (Action::WriteUsers, "N N Y Y N N Y"),
        (Action::CreateUser, "N N Y Y N N Y"),
        (Action::DeleteUser, "N N Y Y N N N"),
        (Action::ReadGroups, "Y N Y Y Y Y Y"),
        (Action::WriteGroups, "N N Y Y N N Y"),
        (Action::ReadGroupMembers, "Y N Y Y Y Y Y"),
        (Action::WriteGroupMembers, "N N Y Y N N Y"),
        (Action::ReadAuditLog, "N N Y N N N N"),
        (Action::ReadDirectoryRoles, "Y N Y Y Y Y Y"),
        (Action::WriteDirectoryRoles, "N N Y N N N N"),
        (Action::ReadPolicies, "N N Y N N N N"),
        (Action::WritePolicies, "N N Y N N N N"),
    ];

    /// The callers of the columns: (roles, is_guest).
    fn columns() -> [(&'static [DirectoryRoleTemplate], bool); 7] {
        [
            (&[], false),
            (&[], true),
            (&[GlobalAdministrator], false),
            (&[UserAdministrator], false),
            (&[HelpdeskAdministrator], false),
            (&[GuestInviter], false),
            (&[DirectoryWriters], false),
        ]
    }

    fn expected(line: &str) -> Vec<bool> {
        line.split(' ').map(|cell| cell == "Y").collect()
    }

    fn delegated(action: Action, roles: &[DirectoryRoleTemplate], is_guest: bool, context: &Context<'_>) -> bool {
        authorize(Principal::User { scope_granted: true, roles, is_guest }, action, context).is_ok()
    }

    #[test]
    fn every_action_has_one_row_and_one_line() {
        for action in ACTIONS {
            assert_eq!(MATRIX.iter().filter(|row| row.action == action).count(), 1, "{action:?}");
            assert_eq!(DELEGATED.iter().filter(|(a, _)| *a == action).count(), 1, "{action:?}");
        }
        assert_eq!(MATRIX.len(), ACTIONS.len());
    }

    #[test]
    fn delegated_cells_role_by_action() {
        let context = Context::default();
        for (action, line) in DELEGATED {
            for ((roles, is_guest), allowed) in columns().into_iter().zip(expected(line)) {
                assert_eq!(delegated(*action, roles, is_guest, &context), allowed, "{action:?} roles {roles:?} guest {is_guest}");
            }
        }
    }

    #[test]
    fn delegated_invite_by_allow_invites_from() {
        // Columns as in DELEGATED.
        let lines = [
            (AllowInvitesFrom::Everyone, "Y Y Y Y Y Y Y"),
            (AllowInvitesFrom::AdminsGuestInvitersAndAllMembers, "Y N Y Y Y Y Y"),
            (AllowInvitesFrom::AdminsAndGuestInviters, "N N Y Y N Y Y"),
            (AllowInvitesFrom::None, "N N N N N N N"),
        ];
        for (allow_invites_from, line) in lines {
            let context = Context { allow_invites_from, ..Context::default() };
            for ((roles, is_guest), allowed) in columns().into_iter().zip(expected(line)) {
                assert_eq!(
                    delegated(Action::InviteGuest, roles, is_guest, &context),
                    allowed,
                    "{allow_invites_from:?} {roles:?} {is_guest}"
                );
                if !allowed {
                    let refusal = authorize(Principal::User { scope_granted: true, roles, is_guest }, Action::InviteGuest, &context);
                    assert_eq!(refusal, Err(Refusal::DirectoryAccessDenied));
                }
            }
        }
    }

    #[test]
    fn delegated_member_invite_by_allow_invites_from() {
        // Columns as in DELEGATED: admins only, whatever the policy lets members do; `none` stops
        // admins too. A Member invitation is never allowed where a Guest one is not.
        let lines = [
            (AllowInvitesFrom::Everyone, "N N Y Y N N N"),
            (AllowInvitesFrom::AdminsGuestInvitersAndAllMembers, "N N Y Y N N N"),
            (AllowInvitesFrom::AdminsAndGuestInviters, "N N Y Y N N N"),
            (AllowInvitesFrom::None, "N N N N N N N"),
        ];
        for (allow_invites_from, line) in lines {
            let context = Context { allow_invites_from, ..Context::default() };
            for ((roles, is_guest), allowed) in columns().into_iter().zip(expected(line)) {
                let decision = authorize(Principal::User { scope_granted: true, roles, is_guest }, Action::InviteMember, &context);
                assert_eq!(decision.is_ok(), allowed, "{allow_invites_from:?} {roles:?} {is_guest}");
                if allowed {
                    assert!(delegated(Action::InviteGuest, roles, is_guest, &context), "{allow_invites_from:?} {roles:?}");
                } else {
                    assert_eq!(decision, Err(Refusal::DirectoryAccessDenied));
                }
            }
        }
    }

    #[test]
    fn guest_reads_by_guest_user_role_and_reach() {
        // Every read a member may make, for a guest without roles; columns: Collection,
        // OtherObject, OwnObject. A guest holding a role reads as the role allows.
        let lines = [(GuestUserRole::SameAsMembers, "Y Y Y"), (GuestUserRole::Limited, "N Y Y"), (GuestUserRole::Restricted, "N N Y")];
        let reads = [Action::ReadUsers, Action::ReadGroups, Action::ReadGroupMembers, Action::ReadDirectoryRoles];
        for (guest_user_role, line) in lines {
            for (reach, allowed) in [Reach::Collection, Reach::OtherObject, Reach::OwnObject].into_iter().zip(expected(line)) {
                let context = Context { guest_user_role, reach, ..Context::default() };
                for action in reads {
                    assert_eq!(delegated(action, &[], true, &context), allowed, "{guest_user_role:?} {reach:?} {action:?}");
                    assert!(delegated(action, &[], false, &context), "members read whatever the guest level");
                    assert!(delegated(action, &[DirectoryWriters], true, &context), "a guest's role still counts");
                }
                assert!(!delegated(Action::WriteUsers, &[], true, &context), "no level lets guests write");
            }
        }
    }

    /// The target dimension cell by cell: one line per action on an existing user and the roles
    /// that user holds, under `allowInvitesFrom: everyone`. Columns as in DELEGATED.
    const BY_TARGET: &[(Action, &[DirectoryRoleTemplate], &str)] = &[
        (Action::WriteUsers, &[], "N N Y Y N N Y"),
        (Action::WriteUsers, &[GuestInviter], "N N Y Y N N N"),
        (Action::WriteUsers, &[HelpdeskAdministrator], "N N Y Y N N N"),
        (Action::WriteUsers, &[UserAdministrator], "N N Y Y N N N"),
        (Action::WriteUsers, &[DirectoryWriters], "N N Y N N N N"),
        (Action::WriteUsers, &[GlobalAdministrator], "N N Y N N N N"),
        (Action::DeleteUser, &[], "N N Y Y N N N"),
        (Action::DeleteUser, &[GuestInviter], "N N Y Y N N N"),
        (Action::DeleteUser, &[HelpdeskAdministrator], "N N Y Y N N N"),
        (Action::DeleteUser, &[UserAdministrator], "N N Y Y N N N"),
        (Action::DeleteUser, &[DirectoryWriters], "N N Y N N N N"),
        (Action::DeleteUser, &[GlobalAdministrator], "N N Y N N N N"),
        (Action::ResetPassword, &[], "N N Y Y Y N N"),
        (Action::ResetPassword, &[GuestInviter], "N N Y Y Y N N"),
        (Action::ResetPassword, &[HelpdeskAdministrator], "N N Y Y Y N N"),
        (Action::ResetPassword, &[UserAdministrator], "N N Y Y N N N"),
        (Action::ResetPassword, &[DirectoryWriters], "N N Y N N N N"),
        (Action::ResetPassword, &[GlobalAdministrator], "N N Y N N N N"),
        (Action::ResetRedemption, &[], "N N Y Y Y N N"),
        (Action::ResetRedemption, &[GuestInviter], "N N Y Y Y N N"),
        (Action::ResetRedemption, &[HelpdeskAdministrator], "N N Y Y Y N N"),
        (Action::ResetRedemption, &[UserAdministrator], "N N Y Y N N N"),
        (Action::ResetRedemption, &[DirectoryWriters], "N N Y N N N N"),
        (Action::ResetRedemption, &[GlobalAdministrator], "N N Y N N N N"),
        (Action::ResetRedemption, &[GuestInviter, UserAdministrator], "N N Y Y N N N"),
        (Action::ResetRedemption, &[GuestInviter, GlobalAdministrator], "N N Y N N N N"),
        (Action::InviteGuest, &[], "Y Y Y Y Y Y Y"),
        // Helpdesk Administrators invite as members (their role is no row of invitations).
        (Action::InviteGuest, &[GuestInviter], "N N Y Y N N N"),
        (Action::InviteGuest, &[HelpdeskAdministrator], "N N Y Y N N N"),
        (Action::InviteGuest, &[UserAdministrator], "N N Y Y N N N"),
        (Action::InviteGuest, &[DirectoryWriters], "N N Y N N N N"),
        (Action::InviteGuest, &[GlobalAdministrator], "N N Y N N N N"),
        (Action::InviteMember, &[], "N N Y Y N N N"),
        (Action::InviteMember, &[GuestInviter], "N N Y Y N N N"),
        (Action::InviteMember, &[HelpdeskAdministrator], "N N Y Y N N N"),
        (Action::InviteMember, &[UserAdministrator], "N N Y Y N N N"),
        (Action::InviteMember, &[DirectoryWriters], "N N Y N N N N"),
        (Action::InviteMember, &[GlobalAdministrator], "N N Y N N N N"),
    ];

    #[test]
    fn delegated_cells_by_target_roles() {
        for (action, target_roles, line) in BY_TARGET {
            assert!(action.acts_on_user(), "{action:?}");
            let context = Context { target_roles, ..Context::default() };
            let untargeted = Context::default();
            for ((roles, is_guest), allowed) in columns().into_iter().zip(expected(line)) {
                let principal = Principal::User { scope_granted: true, roles, is_guest };
                let decision = authorize(principal, *action, &context);
                assert_eq!(decision.is_ok(), allowed, "{action:?} target {target_roles:?} caller {roles:?} guest {is_guest}");
                // Refused for the target alone: Graph's 403 Authorization_RequestDenied, whatever the action's own refusal.
                match authorize(principal, *action, &untargeted) {
                    Ok(()) if !allowed => {
                        assert_eq!(decision, Err(Refusal::DirectoryAccessDenied), "{action:?} {target_roles:?} {roles:?}")
                    }
                    Err(own) => assert_eq!(decision, Err(own), "{action:?} {target_roles:?} {roles:?}"),
                    Ok(()) => {}
                }
            }
        }
        // Every action on a user, against every single role a target may hold.
        for action in ACTIONS.into_iter().filter(Action::acts_on_user) {
            for target in std::iter::once(None).chain(DirectoryRoleTemplate::ALL.map(Some)) {
                let target: Vec<DirectoryRoleTemplate> = target.into_iter().collect();
                assert_eq!(
                    BY_TARGET.iter().filter(|(a, t, _)| *a == action && *t == target.as_slice()).count(),
                    1,
                    "{action:?} {target:?}"
                );
            }
        }
    }

    #[test]
    fn targets_by_role_is_entras_table() {
        // (caller role, target role it may act on): the cells of TARGETS_BY_ROLE one by one.
        let lines: [(DirectoryRoleTemplate, &str); 5] = [
            // Columns: Global Administrator, User Administrator, Helpdesk Administrator, Guest Inviter, Directory Writers.
            (GlobalAdministrator, "Y Y Y Y Y"),
            (UserAdministrator, "N Y Y Y N"),
            (HelpdeskAdministrator, "N N Y Y N"),
            (GuestInviter, "N N N N N"),
            (DirectoryWriters, "N N N N N"),
        ];
        let targets = [GlobalAdministrator, UserAdministrator, HelpdeskAdministrator, GuestInviter, DirectoryWriters];
        for (caller, line) in lines {
            for (target, allowed) in targets.into_iter().zip(expected(line)) {
                assert_eq!(role_reaches_target(caller, &[target]), allowed, "{caller:?} on {target:?}");
            }
            assert!(role_reaches_target(caller, &[]), "{caller:?} reaches users without roles");
        }
    }

    #[test]
    fn none_stops_resets_too() {
        let context = Context { allow_invites_from: AllowInvitesFrom::None, ..Context::default() };
        let admin = Principal::User { scope_granted: true, roles: &[GlobalAdministrator], is_guest: false };
        assert_eq!(authorize(admin, Action::ResetRedemption, &context), Err(Refusal::DirectoryAccessDenied));
        let app = |permissions: &[AppPermission]| authorize(Principal::App { permissions }, Action::ResetRedemption, &context);
        assert_eq!(app(&[UserReadWriteAll]), Err(Refusal::DirectoryAccessDenied));
        assert_eq!(app(&[UserInviteAll]), Err(Refusal::ResetForbidden));
        for other in [AllowInvitesFrom::Everyone, AllowInvitesFrom::AdminsAndGuestInviters] {
            let context = Context { allow_invites_from: other, ..Context::default() };
            assert_eq!(authorize(admin, Action::ResetRedemption, &context), Ok(()), "{other:?}");
        }
    }

    #[test]
    fn delegated_needs_the_scope_as_well_as_the_role() {
        for action in ACTIONS {
            let without_scope = authorize(
                Principal::User { scope_granted: false, roles: &[GlobalAdministrator], is_guest: false },
                action,
                &Context::default(),
            );
            let refusal = if action == Action::ResetRedemption { Refusal::ResetForbidden } else { Refusal::DirectoryAccessDenied };
            assert_eq!(without_scope, Err(refusal), "{action:?}");
            let with_scope = authorize(
                Principal::User { scope_granted: true, roles: &[GlobalAdministrator], is_guest: false },
                action,
                &Context::default(),
            );
            assert_eq!(with_scope, Ok(()), "{action:?}");
        }
    }

    #[test]
    fn app_cells_permission_by_action() {
        // (action, least permission, refusal without any of the action's permissions)
        let lines = [
            (Action::InviteGuest, UserInviteAll, Refusal::AppCannotInvite),
            (Action::InviteMember, UserInviteAll, Refusal::AppCannotInvite),
            (Action::ResetRedemption, UserReadWriteAll, Refusal::ResetForbidden),
            (Action::ResetPassword, UserReadWriteAll, Refusal::DirectoryAccessDenied),
            (Action::ReadUsers, UserReadAll, Refusal::DirectoryAccessDenied),
            (Action::WriteUsers, UserReadWriteAll, Refusal::DirectoryAccessDenied),
            (Action::CreateUser, UserReadWriteAll, Refusal::DirectoryAccessDenied),
            (Action::DeleteUser, UserReadWriteAll, Refusal::DirectoryAccessDenied),
            (Action::ReadGroups, GroupReadAll, Refusal::DirectoryAccessDenied),
            (Action::WriteGroups, GroupReadWriteAll, Refusal::DirectoryAccessDenied),
            (Action::ReadGroupMembers, GroupMemberReadAll, Refusal::DirectoryAccessDenied),
            (Action::WriteGroupMembers, GroupMemberReadWriteAll, Refusal::DirectoryAccessDenied),
            (Action::ReadAuditLog, AuditLogReadAll, Refusal::DirectoryAccessDenied),
            (Action::ReadDirectoryRoles, RoleManagementReadDirectory, Refusal::DirectoryAccessDenied),
            (Action::WriteDirectoryRoles, RoleManagementReadWriteDirectory, Refusal::DirectoryAccessDenied),
            (Action::ReadPolicies, PolicyReadAll, Refusal::DirectoryAccessDenied),
            (Action::WritePolicies, PolicyReadWriteAuthorization, Refusal::DirectoryAccessDenied),
        ];
        assert_eq!(lines.len(), ACTIONS.len());
        for (action, least, refusal) in lines {
            let app = |permissions: &[AppPermission]| authorize(Principal::App { permissions }, action, &Context::default());
            assert_eq!(app(&[least]), Ok(()), "{action:?}");
            let others: Vec<AppPermission> = AppPermission::ALL.into_iter().filter(|p| !action.app_permissions().contains(p)).collect();
            assert_eq!(app(&others), Err(refusal), "{action:?}");
        }
    }

    #[test]
    fn apps_act_on_no_role_holder() {
        for action in ACTIONS.into_iter().filter(Action::acts_on_user) {
            for permission in [UserReadWriteAll, DirectoryReadWriteAll] {
                let permissions = &[permission];
                if !action.permitted_for_app(permissions) {
                    continue;
                }
                assert_eq!(authorize(Principal::App { permissions }, action, &Context::default()), Ok(()), "{action:?}");
                for role in DirectoryRoleTemplate::ALL {
                    let context = Context { target_roles: &[role], ..Context::default() };
                    assert_eq!(
                        authorize(Principal::App { permissions }, action, &context),
                        Err(Refusal::DirectoryAccessDenied),
                        "{action:?} {permission:?} on {role:?}"
                    );
                }
            }
        }
        // The permission check comes first: an app without it gets the action's own refusal.
        let context = Context { target_roles: &[GlobalAdministrator], ..Context::default() };
        assert_eq!(
            authorize(Principal::App { permissions: &[UserInviteAll] }, Action::ResetRedemption, &context),
            Err(Refusal::ResetForbidden)
        );
    }

    #[test]
    fn app_reset_of_any_role_holder_and_app_invites_by_policy() {
        let permissions = &[UserReadWriteAll];
        assert_eq!(authorize(Principal::App { permissions }, Action::ResetRedemption, &Context::default()), Ok(()));
        let invite = |allow_invites_from, permissions: &[AppPermission]| {
            authorize(Principal::App { permissions }, Action::InviteGuest, &Context { allow_invites_from, ..Context::default() })
        };
        for value in
            [AllowInvitesFrom::Everyone, AllowInvitesFrom::AdminsGuestInvitersAndAllMembers, AllowInvitesFrom::AdminsAndGuestInviters]
        {
            assert_eq!(invite(value, &[UserInviteAll]), Ok(()), "{value:?}");
        }
        assert_eq!(invite(AllowInvitesFrom::None, &[UserInviteAll]), Err(Refusal::DirectoryAccessDenied));
        assert_eq!(invite(AllowInvitesFrom::None, &[UserReadAll]), Err(Refusal::AppCannotInvite));
        // Apps with an invitation permission may invite Members, under every policy but `none`.
        let invite_member = |allow_invites_from, permissions: &[AppPermission]| {
            authorize(Principal::App { permissions }, Action::InviteMember, &Context { allow_invites_from, ..Context::default() })
        };
        for value in AllowInvitesFrom::ALL {
            let expected = if value == AllowInvitesFrom::None { Err(Refusal::DirectoryAccessDenied) } else { Ok(()) };
            assert_eq!(invite_member(value, &[UserInviteAll]), expected, "{value:?}");
            assert_eq!(invite_member(value, &[UserReadAll]), Err(Refusal::AppCannotInvite), "{value:?}");
        }
    }
}
