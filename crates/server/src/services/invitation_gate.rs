//! The one gate for invitations (issue 9 item 3): whether this caller may send this invitation to
//! this address. Every path that creates, re-sends or resets an invitation passes it (Graph's
//! `POST /invitations`, `/guestlist/v1/invitations` list and resend, the console's single and bulk
//! invite, resend and reset, all through [`Services::invite`] or [`Services::resend_invitation`]);
//! `tests/api/invitation_gate.rs` lists those routes and proves each is refused when the gate is.
//!
//! In order: the permission matrix (app permission, or delegated scope and role) under the
//! tenant's `allowInvitesFrom`, with the member-invite rule and the roles of an existing target;
//! then the domain allow/deny list; last the tenant's throttle, so a refused request does not use
//! up the allowance of others. Everything before the throttle only reads.

use guestlist_domain::authorization::Context;
use guestlist_domain::permissions::Action;
use guestlist_domain::policy::DOMAIN_BLOCKED_MESSAGE;
use guestlist_domain::roles::DirectoryRoleTemplate;
use guestlist_domain::user::UserType;
use guestlist_domain::{EmailAddress, User};

use super::policies::check;
use super::throttle::ThrottleUsage;
use super::{Caller, ServiceError, ServiceResult, Services};

/// An invitation about to be sent, as the gate sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InvitationIntent<'a> {
    /// Where the invitation goes.
    pub address: &'a EmailAddress,
    /// `invitedUserType` as asked (a resend asks for the user's own type).
    pub user_type: UserType,
    pub reset: bool,
    /// The user the invitation is about when one exists: `invitedUser.id`, a resend's user, or
    /// the owner of the address.
    pub target: Option<&'a User>,
}

impl InvitationIntent<'_> {
    /// Which row of the matrix decides. A re-invite keeps a Member a Member, so it is a Member
    /// invitation whatever the body asks; bringing an internal user into B2B collaboration by id
    /// (contract §3.6) turns a member into an invited one: guestlist treats both as the
    /// admin-only Member invitation. A reset keeps the user's type, so only its own row counts.
    pub fn action(&self) -> Action {
        let target_is_member = self.target.is_some_and(|user| user.user_type == UserType::Member || !user.is_invited_external());
        if self.reset {
            Action::ResetRedemption
        } else if self.user_type == UserType::Member || target_is_member {
            Action::InviteMember
        } else {
            Action::InviteGuest
        }
    }
}

impl Services {
    /// The gate: `Ok` with the throttle's usage (for `x-ms-throttle-limit-percentage`) when the
    /// invitation may be sent, or the refusal Graph answers with.
    pub(crate) async fn gate_invitation(&self, caller: &Caller, intent: &InvitationIntent<'_>) -> ServiceResult<Option<ThrottleUsage>> {
        self.gate_inviter(caller, intent.action(), intent.target).await?;
        if !self.load_invitation_domain_policy(caller.tenant.id).await?.allows_address(intent.address.as_str()) {
            return Err(ServiceError::InvitationRejected(DOMAIN_BLOCKED_MESSAGE.into()));
        }
        self.admit_invitation_request(caller).await
    }

    /// The caller half of the gate, without an address: the matrix under `allowInvitesFrom` and
    /// the target's roles. Listing pending invitations needs as much as sending one.
    pub(crate) async fn gate_inviter(&self, caller: &Caller, action: Action, target: Option<&User>) -> ServiceResult<()> {
        let policy = self.load_authorization_policy(caller.tenant.id).await?;
        let target_roles = match target {
            Some(user) => self.roles_of(caller, user).await?,
            None => Vec::new(),
        };
        check(caller, action, &Context { allow_invites_from: policy.allow_invites_from, target_roles: &target_roles, ..Context::default() })
    }

    /// The directory roles `user` holds.
    pub(crate) async fn roles_of(&self, caller: &Caller, user: &User) -> ServiceResult<Vec<DirectoryRoleTemplate>> {
        Ok(self.store.role_assignments(caller.tenant.id, Some(user.id)).await?.into_iter().map(|a| a.role).collect())
    }

    /// The target gate for every other action on an existing user (update, disable, delete,
    /// sponsors): the matrix with the roles `user` holds.
    pub(crate) async fn gate_target(&self, caller: &Caller, action: Action, user: &User) -> ServiceResult<()> {
        let target_roles = self.roles_of(caller, user).await?;
        check(caller, action, &Context { target_roles: &target_roles, ..Context::default() })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use guestlist_domain::ids::ObjectId;
    use guestlist_domain::user::CREATION_TYPE_INVITATION;
    use guestlist_domain::Upn;

    use super::*;

    fn user(user_type: UserType, invited: bool) -> User {
        let upn = Upn::parse("someone@contoso.onmicrosoft.com").expect("a valid UPN");
        let mut user = User::new(ObjectId::new_random(), upn, "Someone".into(), user_type, Utc::now());
        user.creation_type = invited.then(|| CREATION_TYPE_INVITATION.to_string());
        user
    }

    #[test]
    fn the_row_that_decides() {
        let address = EmailAddress::parse("someone@example.com").expect("a valid address");
        let (guest, invited_member, internal) = (user(UserType::Guest, true), user(UserType::Member, true), user(UserType::Member, false));
        // (user type asked for, reset, target, row)
        let cases: [(UserType, bool, Option<&User>, Action); 8] = [
            (UserType::Guest, false, None, Action::InviteGuest),
            (UserType::Member, false, None, Action::InviteMember),
            (UserType::Guest, false, Some(&guest), Action::InviteGuest),
            (UserType::Member, false, Some(&guest), Action::InviteMember),
            (UserType::Guest, false, Some(&invited_member), Action::InviteMember),
            // Inviting an internal user by id converts it: the admin-only row.
            (UserType::Guest, false, Some(&internal), Action::InviteMember),
            (UserType::Guest, true, Some(&guest), Action::ResetRedemption),
            (UserType::Guest, true, Some(&internal), Action::ResetRedemption),
        ];
        for (user_type, reset, target, expected) in cases {
            let intent = InvitationIntent { address: &address, user_type, reset, target };
            assert_eq!(intent.action(), expected, "{user_type:?} reset {reset} target {:?}", target.map(|t| t.user_type));
        }
    }
}
