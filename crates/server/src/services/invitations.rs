//! `POST /invitations`: invite a new guest, re-invite one, or reset a guest's redemption
//! (contract §3, DECISIONS 1-9).

use chrono::{DateTime, Utc};
use guestlist_domain::audit::{activity, AuditRecord, TargetResource};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::invitation::{check_reinvite, new_guest, reset_redemption, InvitationRequest, MAX_SPONSORS};
use guestlist_domain::permissions::Action;
use guestlist_domain::ticket::{InvitationRecord, RedeemTicket, TicketState};
use guestlist_domain::user::{ExternalUserState, CREATION_TYPE_INVITATION};
use guestlist_domain::{DomainError, User};
use guestlist_store::{Conflict, InvitationWrite, StoreError, UserKey, UserWrite};
use rand::Rng;

use super::invitation_gate::InvitationIntent;
use super::sponsors::sponsor_audit;
use super::throttle::ThrottleUsage;
use super::{Caller, ServiceError, ServiceResult, Services};

/// What the 201 response is made of.
#[derive(Debug, Clone)]
pub struct InvitationOutcome {
    pub request: InvitationRequest,
    pub invitation: InvitationRecord,
    pub user: User,
    pub redeem_url: String,
    /// How much of the tenant's invitation allowance is used, when it throttles.
    pub throttle: Option<ThrottleUsage>,
}

/// Concurrent writers can make a write lose (a stale version, a UPN taken meanwhile); each
/// attempt re-reads and re-decides. The bound keeps a pathological loop from spinning.
const MAX_ATTEMPTS: usize = 8;

impl Services {
    pub async fn invite(&self, caller: &Caller, request: InvitationRequest) -> ServiceResult<InvitationOutcome> {
        self.invite_through_gate(caller, request, false).await
    }

    /// A reset to an address the user may not have yet: it is first added to `otherMails` (a
    /// `PATCH /users` through [`Services::update_user`]), as the seed requires, after the gate
    /// let the reset through, so a refused reset changes nothing.
    pub async fn reset_to_new_address(&self, caller: &Caller, request: InvitationRequest) -> ServiceResult<InvitationOutcome> {
        self.invite_through_gate(caller, request, true).await
    }

    async fn invite_through_gate(
        &self,
        caller: &Caller,
        request: InvitationRequest,
        add_unknown_address: bool,
    ) -> ServiceResult<InvitationOutcome> {
        // Without the permission at all, Graph's refusal comes before any validation of the body.
        if request.reset_redemption {
            if !caller.may(Action::ResetRedemption) {
                return Err(ServiceError::ResetNotPermitted);
            }
        } else if !caller.may(Action::InviteGuest) {
            return Err(ServiceError::InviteNotPermitted(caller.tenant.id.to_string()));
        }
        let request = request.validate().map_err(ServiceError::from_invitation_rule)?;
        let target = match request.invited_user_id {
            Some(id) => {
                Some(self.store.user(caller.tenant.id, &UserKey::Id(id)).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?)
            }
            // A member owning the address is no re-invite target: `check_reinvite` refuses it below.
            None => pick_owner(self.store.users_by_address(caller.tenant.id, request.email.as_str()).await?)
                .filter(|owner| check_reinvite(owner).is_ok()),
        };
        let intent = InvitationIntent {
            address: &request.email,
            user_type: request.user_type,
            reset: request.reset_redemption,
            target: target.as_ref(),
        };
        let throttle = self.gate_invitation(caller, &intent).await?;
        self.check_sponsors_exist(caller, &request).await?;
        let mut outcome = match (request.reset_redemption, target) {
            (true, Some(user)) => {
                if add_unknown_address && !user.known_emails().any(|known| request.email.matches(known)) {
                    let mut other_mails = user.other_mails.clone();
                    other_mails.push(request.email.as_str().to_string());
                    let changes = super::users::UserChanges { other_mails: Some(other_mails), ..Default::default() };
                    self.update_user(caller, &UserKey::Id(user.id), changes).await?;
                }
                self.reset(caller, request, user.id).await
            }
            (false, Some(user)) if request.invited_user_id.is_some() => self.invite_existing_user(caller, request, user.id).await,
            _ => self.invite_by_address(caller, request).await,
        }?;
        outcome.throttle = throttle;
        Ok(outcome)
    }

    async fn invite_by_address(&self, caller: &Caller, request: InvitationRequest) -> ServiceResult<InvitationOutcome> {
        let tenant = &caller.tenant;
        let mut collision_suffix: Option<String> = None;
        for _ in 0..MAX_ATTEMPTS {
            let now = Utc::now();
            let owners = self.store.users_by_address(tenant.id, request.email.as_str()).await?;
            let write = match pick_owner(owners) {
                Some(existing) => {
                    check_reinvite(&existing).map_err(ServiceError::from_invitation_rule)?;
                    UserWrite::Update(existing)
                }
                None => UserWrite::Create(new_guest(&request, tenant, collision_suffix.as_deref(), now)),
            };
            let sponsors = self.new_sponsor_links(caller, &request, &write).await?;
            match self.record(caller, &request, write, activity::INVITE_EXTERNAL_USER, vec![], sponsors, now).await {
                // Another invite of the same address won the race: take the re-invite path.
                Err(StoreError::Conflict(Conflict::ProxyAddress | Conflict::StaleVersion)) => continue,
                // The #EXT# UPN belongs to someone who does not own this address (DECISIONS 9).
                Err(StoreError::Conflict(Conflict::UserPrincipalName)) => collision_suffix = Some(random_suffix()),
                other => return self.finish(request, other),
            }
        }
        Err(ServiceError::Internal("invitation kept conflicting with concurrent writes".into()))
    }

    async fn reset(&self, caller: &Caller, request: InvitationRequest, user_id: ObjectId) -> ServiceResult<InvitationOutcome> {
        let tenant = &caller.tenant;
        let mut collision_suffix: Option<String> = None;
        for _ in 0..MAX_ATTEMPTS {
            let now = Utc::now();
            let current =
                self.store.user(tenant.id, &UserKey::Id(user_id)).await?.ok_or_else(|| ServiceError::NotFound(user_id.to_string()))?;
            let outcome = reset_redemption(&current, &request.email, tenant, collision_suffix.as_deref(), now)
                .map_err(ServiceError::from_invitation_rule)?;
            let activity_name = if outcome.converted_internal_user { activity::INVITE_INTERNAL_USER } else { activity::INVITE_WITH_RESET };
            let write = UserWrite::Update(outcome.user);
            let sponsors = self.new_sponsor_links(caller, &request, &write).await?;
            match self.record(caller, &request, write, activity_name, outcome.modified_properties, sponsors, now).await {
                Err(StoreError::Conflict(Conflict::StaleVersion)) => continue,
                Err(StoreError::Conflict(Conflict::UserPrincipalName)) => collision_suffix = Some(random_suffix()),
                Err(StoreError::Conflict(Conflict::ProxyAddress)) => {
                    return Err(ServiceError::InvitationRejected(format!(
                        "The email address '{}' is already used as a proxy address by another object in this directory.",
                        request.email
                    )))
                }
                other => return self.finish(request, other),
            }
        }
        Err(ServiceError::Internal("reset redemption kept conflicting with concurrent writes".into()))
    }

    /// `invitedUser.id` without reset: re-invite that guest, or bring an internal user into B2B
    /// collaboration (contract §3.6) when its `mail` is the invited address.
    pub(super) async fn invite_existing_user(
        &self,
        caller: &Caller,
        request: InvitationRequest,
        user_id: ObjectId,
    ) -> ServiceResult<InvitationOutcome> {
        for _ in 0..MAX_ATTEMPTS {
            let now = Utc::now();
            let mut user = self
                .store
                .user(caller.tenant.id, &UserKey::Id(user_id))
                .await?
                .ok_or_else(|| ServiceError::NotFound(user_id.to_string()))?;
            if !user.known_emails().any(|known| request.email.matches(known)) {
                return Err(ServiceError::from_invitation_rule(DomainError::ResetEmailMismatch));
            }
            let activity_name = if user.is_invited_external() {
                activity::INVITE_EXTERNAL_USER
            } else {
                user.creation_type = Some(CREATION_TYPE_INVITATION.to_string());
                user.external_user_state = Some(ExternalUserState::PendingAcceptance);
                user.external_user_state_change_date_time = Some(now);
                activity::INVITE_INTERNAL_USER
            };
            let write = UserWrite::Update(user);
            let sponsors = self.new_sponsor_links(caller, &request, &write).await?;
            match self.record(caller, &request, write, activity_name, vec![], sponsors, now).await {
                Err(StoreError::Conflict(Conflict::StaleVersion)) => continue,
                other => return self.finish(request, other),
            }
        }
        Err(ServiceError::Internal("invitation kept conflicting with concurrent writes".into()))
    }

    /// `invitedUserSponsors` must name users of this directory (contract §1.2).
    async fn check_sponsors_exist(&self, caller: &Caller, request: &InvitationRequest) -> ServiceResult<()> {
        for sponsor in &request.sponsors {
            if self.store.user(caller.tenant.id, &UserKey::Id(*sponsor)).await?.is_none() {
                return Err(ServiceError::InvitationRejected(format!(
                    "The sponsor '{sponsor}' named in invitedUserSponsors does not exist in this directory."
                )));
            }
        }
        Ok(())
    }

    /// The named sponsors the user doesn't have yet. A re-invite or reset keeps the sponsors the
    /// guest has and adds the named ones, within the limit of five (contract §1.2, §2.3). With no
    /// sponsor named, Graph stamps the inviting user; an app caller has no user to stamp.
    async fn new_sponsor_links(&self, caller: &Caller, request: &InvitationRequest, write: &UserWrite) -> ServiceResult<Vec<ObjectId>> {
        let current: Vec<ObjectId> = match write {
            UserWrite::Create(_) => Vec::new(),
            UserWrite::Update(user) => self.store.sponsors(caller.tenant.id, user.id).await?.iter().map(|sponsor| sponsor.id).collect(),
        };
        // A new guest invited by a person with no sponsor named gets that person as its sponsor.
        let inviter: Vec<ObjectId> = match (&caller.principal, write) {
            (super::CallerPrincipal::User { user_id, .. }, UserWrite::Create(_)) if request.sponsors.is_empty() => vec![*user_id],
            _ => Vec::new(),
        };
        let named = if inviter.is_empty() { &request.sponsors } else { &inviter };
        let added: Vec<ObjectId> = named.iter().filter(|id| !current.contains(id)).copied().collect();
        if current.len() + added.len() > MAX_SPONSORS {
            return Err(ServiceError::InvitationRejected(format!(
                "The user already has {} sponsors; a user can have at most {MAX_SPONSORS}.",
                current.len()
            )));
        }
        Ok(added)
    }

    /// Writes the user, the new invitation (revoking the user's earlier ones), its new sponsor
    /// links and the audit entries in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        caller: &Caller,
        request: &InvitationRequest,
        user: UserWrite,
        activity_name: &str,
        modified_properties: Vec<guestlist_domain::audit::ModifiedProperty>,
        sponsors: Vec<ObjectId>,
        now: DateTime<Utc>,
    ) -> Result<(User, InvitationRecord, RedeemTicket), StoreError> {
        let ticket = RedeemTicket::generate();
        let target = user.user();
        let invitation = InvitationRecord {
            id: ObjectId::new_random(),
            tenant_id: caller.tenant.id,
            user_id: target.id,
            email: request.email.as_str().to_string(),
            redirect_url: request.redirect_url.clone(),
            ticket_hash: ticket.hash(),
            state: TicketState::Pending,
            reset_redemption: request.reset_redemption,
            send_invitation_message: request.send_invitation_message,
            created_date_time: now,
            expires_date_time: caller.tenant.invitation_expiry(now),
        };
        let audit = AuditRecord::invited_users(
            caller.tenant.id,
            activity_name,
            if request.reset_redemption { "Update" } else { "Add" },
            caller.initiator(),
            invitation.id,
            TargetResource {
                id: target.id.to_string(),
                display_name: Some(target.display_name.clone()),
                resource_type: "User".into(),
                user_principal_name: Some(target.user_principal_name.to_string()),
                modified_properties,
            },
            now,
        );
        // Graph's companion entries for each sponsor link (contract §3.1 step 4).
        let sponsor_audits = sponsors.iter().map(|sponsor| sponsor_audit(caller, activity::ADD_USER_SPONSOR, target, *sponsor, now));
        // The invitation email goes into the outbox in this same transaction (issue 4).
        let mail = self.invitation_mail(caller, request, &invitation, &ticket, target).await?;
        let audit = std::iter::once(audit).chain(sponsor_audits).chain(mail.audit).collect();
        let write = InvitationWrite { user, invitation: invitation.clone(), audit, sponsors, mail: mail.mail };
        let stored = self.store.record_invitation(&write).await?;
        if write.mail.is_some() {
            self.mail.wakeup.notify_one();
        }
        Ok((stored, invitation, ticket))
    }

    fn finish(
        &self,
        request: InvitationRequest,
        result: Result<(User, InvitationRecord, RedeemTicket), StoreError>,
    ) -> ServiceResult<InvitationOutcome> {
        let (user, invitation, ticket) = result?;
        let redeem_url = redeem_url(&self.public_origin, &invitation, &ticket);
        Ok(InvitationOutcome { request, invitation, user, redeem_url, throttle: None })
    }
}

/// The redeem link: Graph's inner URL shape (contract §1.4) on this server's origin.
pub fn redeem_url(origin: &str, invitation: &InvitationRecord, ticket: &RedeemTicket) -> String {
    let mut url = url::Url::parse(&format!("{origin}/redeem")).expect("the public origin is a valid URL");
    url.query_pairs_mut()
        .append_pair("tenant", &invitation.tenant_id.to_string())
        .append_pair("user", &invitation.id.to_string())
        .append_pair("ticket", ticket.expose())
        .append_pair("ver", "2.0");
    url.to_string()
}

/// Of several objects owning an address, the guest the invitation is about: one created by
/// invitation if there is one, then any other (members make the caller's request fail).
fn pick_owner(mut owners: Vec<User>) -> Option<User> {
    owners.sort_by_key(|u| (!u.is_invited_external(), u.created_date_time));
    owners.into_iter().next()
}

fn random_suffix() -> String {
    format!("{:04x}", rand::thread_rng().gen::<u16>())
}
