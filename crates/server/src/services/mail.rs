//! Mail the services send: the invitation email (contract §4.1) written with its invitation, the
//! one-time passcode (§4.5) for the redeem flow, the unsubscribe list ("Block future
//! invitations"), and guestlist's own view of pending invitations with a resend.

use chrono::Utc;
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::invitation::{InvitationRequest, MessageInfo};
use guestlist_domain::mail::{activity, mail_audit, DeliveryState, MailKind, OutgoingMail, UnsubscribeToken};
use guestlist_domain::permissions::Action;
use guestlist_domain::ticket::{InvitationRecord, RedeemTicket, TicketState};
use guestlist_domain::{EmailAddress, Tenant, User};
use guestlist_store::{InvitationCursor, MailWrite, PendingInvitation, StoreError, UserKey};

use super::invitation_gate::InvitationIntent;
use super::invitations::{redeem_url, InvitationOutcome};
use super::{Caller, CallerPrincipal, ServiceError, ServiceResult, Services};
use crate::mail::templates::{self, InvitationContent, PasscodeContent};

/// A one-time passcode is valid this long (DECISIONS 10); the mail says so.
pub const PASSCODE_VALIDITY_MINUTES: u32 = 30;

/// The most pending invitations one page lists.
pub const MAX_PENDING_PAGE: u32 = 999;

/// What an unsubscribe link stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsubscribeTarget {
    pub tenant: Tenant,
    pub address: String,
    pub already_unsubscribed: bool,
}

/// The invitation email's part of an invitation write, and the audit entry for a suppressed one.
pub(crate) struct InvitationMail {
    pub mail: Option<MailWrite>,
    pub audit: Option<guestlist_domain::audit::AuditRecord>,
}

impl Services {
    /// Mails a one-time passcode (contract §4.5) to `to` on behalf of `tenant`, through the outbox:
    /// the message is committed before this returns and delivered by the worker (retried while
    /// the mail server is away). `code` is the plain passcode (8 digits, DECISIONS 10); it is kept
    /// only in the outbox row until the mail is sent, never logged. `user` is the guest the code
    /// is for (shown in delivery audit entries). `language` is a tag such as `de-DE` (the
    /// invitation's `messageLanguage` or the user's `preferredLanguage`); unknown ones fall back
    /// to `en-US`. Without an SMTP server configured the message is recorded as `notConfigured`
    /// and nothing is sent. Returns the message id, for [`Services::mail_delivery`].
    pub async fn send_one_time_passcode(
        &self,
        tenant: &Tenant,
        user: Option<ObjectId>,
        to: &EmailAddress,
        code: &str,
        language: Option<&str>,
    ) -> ServiceResult<ObjectId> {
        let language = templates::language_for(&[language]);
        let content = PasscodeContent { organization: &tenant.display_name, code, minutes: PASSCODE_VALIDITY_MINUTES };
        let rendered =
            templates::one_time_passcode(language, &content).map_err(|e| ServiceError::Internal(format!("passcode mail template: {e}")))?;
        let (sender_name, sender_address) = self.mail.sender_for(tenant);
        let mail = OutgoingMail {
            id: ObjectId::new_random(),
            tenant_id: tenant.id,
            kind: MailKind::OneTimePasscode,
            invitation_id: None,
            user_id: user,
            sender_name,
            sender_address,
            recipient: to.as_str().to_string(),
            cc: None,
            reply_to: None,
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: rendered.html,
            language: rendered.language.to_string(),
            created_date_time: Utc::now(),
        };
        let id = mail.id;
        self.store.enqueue_mail(&self.mail_write(mail, None), &[]).await?;
        self.mail.wakeup.notify_one();
        Ok(id)
    }

    /// A message's delivery state, attempts and times (its bodies are empty once it was sent).
    pub async fn mail_delivery(&self, tenant: TenantId, id: ObjectId) -> ServiceResult<Option<guestlist_domain::mail::MailRecord>> {
        Ok(self.store.mail(tenant, id).await?)
    }

    /// Outbox rows are `pending` only when a worker will send them.
    fn mail_write(&self, mail: OutgoingMail, unsubscribe_token_hash: Option<String>) -> MailWrite {
        let state = if self.mail.is_configured() { DeliveryState::Pending } else { DeliveryState::NotConfigured };
        // Nothing will send it: keep no link or code in the database.
        let mail =
            if self.mail.is_configured() { mail } else { OutgoingMail { text_body: String::new(), html_body: String::new(), ..mail } };
        MailWrite { mail, state, unsubscribe_token_hash }
    }

    /// The invitation email for an invitation being recorded (contract §4.1), or, when the
    /// address unsubscribed from this tenant, no mail and Graph's audit entry for that.
    pub(crate) async fn invitation_mail(
        &self,
        caller: &Caller,
        request: &InvitationRequest,
        invitation: &InvitationRecord,
        ticket: &RedeemTicket,
        user: &User,
    ) -> Result<InvitationMail, StoreError> {
        if !request.send_invitation_message {
            return Ok(InvitationMail { mail: None, audit: None });
        }
        let tenant = &caller.tenant;
        if self.store.is_unsubscribed(tenant.id, request.email.as_str()).await? {
            let audit = mail_audit(
                tenant.id,
                activity::EMAIL_NOT_SENT_UNSUBSCRIBED,
                "success",
                caller.initiator(),
                invitation.id,
                Some(user.id),
                request.email.as_str(),
                invitation.created_date_time,
            );
            return Ok(InvitationMail { mail: None, audit: Some(audit) });
        }
        let info = request.message_info.clone().unwrap_or_default();
        let language = templates::language_for(&[info.message_language.as_deref(), user.preferred_language.as_deref()]);
        let unsubscribe = UnsubscribeToken::generate();
        let unsubscribe_url = unsubscribe_url(&self.public_origin, &unsubscribe);
        let redeem = redeem_url(&self.public_origin, invitation, ticket);
        // An app has no name of its own in the mail: the organisation invites (contract §4.1).
        let inviter = inviter_name(caller);
        let content = InvitationContent {
            inviter: &inviter,
            organization: &tenant.display_name,
            domain: &tenant.initial_domain,
            message: info.customized_message_body.as_deref().map(str::trim).filter(|m| !m.is_empty()),
            redeem_url: &redeem,
            redirect_url: &invitation.redirect_url,
            unsubscribe_url: &unsubscribe_url,
        };
        let rendered =
            templates::invitation(language, &content).map_err(|e| StoreError::Database(format!("invitation mail template: {e}")))?;
        let (sender_name, sender_address) = self.mail.sender_for(tenant);
        let mail = OutgoingMail {
            id: ObjectId::new_random(),
            tenant_id: tenant.id,
            kind: MailKind::Invitation,
            invitation_id: Some(invitation.id),
            user_id: Some(user.id),
            sender_name,
            sender_address,
            recipient: invitation.email.clone(),
            // One CC at most; further entries are ignored (DECISIONS 15).
            cc: info.cc_recipients.first().and_then(|r| r.address.clone()).filter(|a| !a.trim().is_empty()),
            // Reply-To is the inviter's address when known (contract §4.1); an app has none.
            reply_to: reply_to_address(caller),
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: rendered.html,
            language: rendered.language.to_string(),
            created_date_time: invitation.created_date_time,
        };
        Ok(InvitationMail { mail: Some(self.mail_write(mail, Some(unsubscribe.hash()))), audit: None })
    }

    /// What an unsubscribe link names; `None` for an unknown token.
    pub async fn unsubscribe_target(&self, token: &str) -> ServiceResult<Option<UnsubscribeTarget>> {
        let Some((tenant_id, address)) = self.store.unsubscribe_link(&UnsubscribeToken::from_link(token).hash()).await? else {
            return Ok(None);
        };
        let Some(tenant) = self.store.tenant(&tenant_id.to_string()).await? else { return Ok(None) };
        let already_unsubscribed = self.store.is_unsubscribed(tenant.id, &address).await?;
        Ok(Some(UnsubscribeTarget { tenant, address, already_unsubscribed }))
    }

    /// Puts the link's address on its tenant's unsubscribe list, audited as `Email unsubscribed`
    /// (contract §7); `None` for an unknown token. Unsubscribing twice changes nothing.
    pub async fn unsubscribe(&self, token: &str) -> ServiceResult<Option<UnsubscribeTarget>> {
        let Some(target) = self.unsubscribe_target(token).await? else { return Ok(None) };
        let now = Utc::now();
        let address_owner = self.store.users_by_address(target.tenant.id, &target.address).await?.into_iter().next().map(|u| u.id);
        let audit = mail_audit(
            target.tenant.id,
            activity::EMAIL_UNSUBSCRIBED,
            "success",
            guestlist_domain::mail::delivery_initiator(),
            ObjectId::new_random(),
            address_owner,
            &target.address,
            now,
        );
        self.store.unsubscribe(target.tenant.id, &target.address, now, &[audit]).await?;
        Ok(Some(UnsubscribeTarget { already_unsubscribed: true, ..target }))
    }

    /// Pending invitations of the caller's tenant with their mail delivery, oldest first.
    pub async fn pending_invitations(
        &self,
        caller: &Caller,
        after: Option<InvitationCursor>,
        limit: u32,
    ) -> ServiceResult<Vec<PendingInvitation>> {
        // Who may not invite (the permission, or `allowInvitesFrom`) may not list invitations either.
        self.gate_inviter(caller, Action::InviteGuest, None).await?;
        Ok(self.store.pending_invitations(caller.tenant.id, after, limit.clamp(1, MAX_PENDING_PAGE)).await?)
    }

    /// Every invitation of one user, newest first, each with its latest mail: the guest's
    /// history as the admin console shows it. Reading it needs the user (`User.Read.All`).
    pub async fn invitations_of_user(&self, caller: &Caller, user_id: ObjectId) -> ServiceResult<Vec<PendingInvitation>> {
        super::users::require(caller, Action::ReadUsers)?;
        let tenant = caller.tenant.id;
        let mut invitations = self.store.invitations_for_user(tenant, user_id).await?;
        invitations.sort_by_key(|invitation| std::cmp::Reverse(invitation.created_date_time));
        let mut out = Vec::with_capacity(invitations.len());
        for invitation in invitations {
            let mail = self.store.mails_for_invitation(tenant, invitation.id).await?.pop();
            out.push(PendingInvitation { invitation, mail });
        }
        Ok(out)
    }

    /// Sends a pending invitation again: a new ticket (the earlier ones of the user are revoked,
    /// DECISIONS 2) and a new invitation mail, in the language of the last one. Audited as the
    /// re-invite it is (`Invite external user`).
    pub async fn resend_invitation(&self, caller: &Caller, invitation_id: ObjectId) -> ServiceResult<InvitationOutcome> {
        if !caller.may(Action::InviteGuest) {
            return Err(ServiceError::InviteNotPermitted(caller.tenant.id.to_string()));
        }
        let tenant = caller.tenant.id;
        let invitation =
            self.store.invitation(tenant, invitation_id).await?.ok_or_else(|| ServiceError::NotFound(invitation_id.to_string()))?;
        if invitation.state != TicketState::Pending {
            return Err(ServiceError::InvalidRequest(format!(
                "The invitation '{invitation_id}' is {}; only a pending invitation can be resent.",
                invitation.state.as_str()
            )));
        }
        let user = self
            .store
            .user(tenant, &UserKey::Id(invitation.user_id))
            .await?
            .ok_or_else(|| ServiceError::NotFound(invitation.user_id.to_string()))?;
        let last_language = self.store.mails_for_invitation(tenant, invitation_id).await?.last().map(|m| m.mail.language.clone());
        let email = EmailAddress::parse(&invitation.email).map_err(|e| ServiceError::Internal(format!("stored invitation email: {e}")))?;
        let request = InvitationRequest {
            email,
            redirect_url: invitation.redirect_url.clone(),
            display_name: None,
            send_invitation_message: true,
            message_info: Some(MessageInfo { message_language: last_language, ..MessageInfo::default() }),
            user_type: user.user_type,
            reset_redemption: false,
            invited_user_id: Some(user.id),
            sponsors: Vec::new(),
        };
        let intent = InvitationIntent { address: &request.email, user_type: user.user_type, reset: false, target: Some(&user) };
        let throttle = self.gate_invitation(caller, &intent).await?;
        let outcome = self.invite_existing_user(caller, request, user.id).await?;
        Ok(InvitationOutcome { throttle, ..outcome })
    }
}

/// Who the mail says invited the guest: an app invites in its organisation's name (contract §4.1).
fn inviter_name(caller: &Caller) -> String {
    match &caller.principal {
        // A signed-in inviter's display name is not on the caller yet; the organisation's stands in.
        CallerPrincipal::App { .. } | CallerPrincipal::User { .. } => caller.tenant.display_name.clone(),
    }
}

/// Graph replies to the inviting user's mailbox (contract §4.1); an app has none.
fn reply_to_address(caller: &Caller) -> Option<String> {
    match &caller.principal {
        CallerPrincipal::App { .. } | CallerPrincipal::User { .. } => None,
    }
}

/// The "Block future invitations" link (contract §4.1), a page on this server.
pub fn unsubscribe_url(origin: &str, token: &UnsubscribeToken) -> String {
    let mut url = url::Url::parse(&format!("{origin}/unsubscribe")).expect("the public origin is a valid URL");
    url.query_pairs_mut().append_pair("token", token.expose());
    url.to_string()
}

/// Where the next page of pending invitations starts.
pub fn cursor_after(page: &[PendingInvitation]) -> Option<InvitationCursor> {
    page.last().map(|p| InvitationCursor { created_date_time: p.invitation.created_date_time, id: p.invitation.id })
}
