//! Redemption, the guest's side of an invitation (contract §3.3, §4.2-4.5; DECISIONS 2, 3, 10, 11):
//! open a redeem link without consuming it, prove control of the invited address with an email
//! one-time passcode, and accept, which consumes the ticket in one guarded transaction.

use chrono::{DateTime, Utc};
use guestlist_domain::audit::{activity, AuditRecord, Initiator, TargetResource};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::redemption::{
    self as rules, OneTimePasscode, PasscodeRecord, PasscodeRefusal, PasscodeState, RedemptionSession, SessionToken,
};
use guestlist_domain::ticket::{InvitationRecord, RedeemTicket, TicketRefusal};
use guestlist_domain::{EmailAddress, Tenant, User};
use guestlist_store::{Conflict, PasscodeIssue, RedeemResult, RedemptionWrite, StoreError, UserKey};

use super::{ServiceError, ServiceResult, Services};

/// Longest `tenant`, `user` or `ticket` value of a redeem link that is looked up at all.
pub const MAX_LINK_PARAMETER: usize = 128;

/// The query of a redeem link (`/redeem?tenant=&user=<invitation id>&ticket=&ver=2.0`), as received.
#[derive(Clone, Default, serde::Deserialize)]
pub struct RedeemLink {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub ticket: String,
}

impl std::fmt::Debug for RedeemLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedeemLink")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("ticket", &guestlist_identity::REDACTED)
            .finish()
    }
}

/// A redeem link that can still be redeemed, with what the pages show.
#[derive(Debug, Clone)]
pub struct OpenInvitation {
    pub tenant: Tenant,
    pub invitation: InvitationRecord,
    pub user: User,
}

/// Why a redeem link leads nowhere. Each gets its own page; none changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Unknown,
    AlreadyRedeemed,
    /// By a later reset, re-invite or deletion (DECISIONS 2).
    Revoked,
    /// The tenant's invitation lifetime passed (DECISIONS 3).
    Expired,
    /// The tenant's allow/deny list blocks the invited domain now (contract §5.2).
    DomainBlocked,
}

impl From<TicketRefusal> for LinkRefusal {
    fn from(refusal: TicketRefusal) -> Self {
        match refusal {
            TicketRefusal::AlreadyRedeemed => LinkRefusal::AlreadyRedeemed,
            TicketRefusal::Revoked => LinkRefusal::Revoked,
            TicketRefusal::Expired => LinkRefusal::Expired,
        }
    }
}

/// What "Send code" did.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeSending {
    Sent,
    /// [`rules::MAX_CODES_PER_HOUR`] codes went to the address this hour; a new one can be sent at `retry_at`.
    LimitReached {
        retry_at: DateTime<Utc>,
    },
}

/// What checking an entered code found.
#[derive(Debug)]
pub enum CodeCheck {
    /// The code was right: a session for the invited address starts (the cookie's value).
    Verified(SessionToken),
    /// Not eight digits; no try is counted.
    Malformed,
    Wrong {
        tries_left: u32,
    },
    TooManyTries,
    Expired,
    /// No code was sent for this invitation, or it was used already.
    NoActiveCode,
}

/// What "Accept" did.
#[derive(Debug, Clone, PartialEq)]
pub enum Acceptance {
    /// The ticket was consumed by this request; send the guest on to `redirect_url`.
    Redeemed {
        redirect_url: String,
    },
    /// The browser has no session for the invited address (none, expired, or for another address).
    NeedsVerification,
    Refused(LinkRefusal),
}

/// Concurrent writes to the guest (a PATCH, a reset) make the redemption re-read and re-decide.
const MAX_ATTEMPTS: usize = 8;

impl Services {
    /// Looks a redeem link up. Reads only: mail scanners follow links (DECISIONS 11).
    pub async fn open_redeem_link(&self, link: &RedeemLink) -> ServiceResult<Result<OpenInvitation, LinkRefusal>> {
        let bounded = |value: &str| !value.is_empty() && value.len() <= MAX_LINK_PARAMETER;
        if !(bounded(&link.tenant) && bounded(&link.user) && bounded(&link.ticket)) {
            return Ok(Err(LinkRefusal::Unknown));
        }
        let Some(tenant) = self.store.tenant(&link.tenant).await? else { return Ok(Err(LinkRefusal::Unknown)) };
        let ticket_hash = RedeemTicket::from_link(&link.ticket).hash();
        let Some(invitation) = self.store.invitation_by_ticket_hash(tenant.id, &ticket_hash).await? else {
            return Ok(Err(LinkRefusal::Unknown));
        };
        // `user=` names the invitation (contract §1.4); a ticket pasted into another link is unknown.
        if ObjectId::parse(&link.user).ok() != Some(invitation.id) {
            return Ok(Err(LinkRefusal::Unknown));
        }
        if let Err(refusal) = invitation.usable_at(Utc::now()) {
            return Ok(Err(refusal.into()));
        }
        if !self.invitation_domain_allowed_at_redemption(&tenant, &invitation).await? {
            return Ok(Err(LinkRefusal::DomainBlocked));
        }
        // A deleted guest revokes its tickets (DECISIONS 2); a missing one is treated the same.
        let Some(user) = self.store.user(tenant.id, &UserKey::Id(invitation.user_id)).await? else {
            return Ok(Err(LinkRefusal::Revoked));
        };
        Ok(Ok(OpenInvitation { tenant, invitation, user }))
    }

    /// The tenant's allow/deny list (contract §5.2): a pending invitation whose domain became
    /// blocked fails at redemption; redeemed guests are not affected (they never get here).
    async fn invitation_domain_allowed_at_redemption(&self, tenant: &Tenant, invitation: &InvitationRecord) -> ServiceResult<bool> {
        Ok(self.load_invitation_domain_policy(tenant.id).await?.allows_address(&invitation.email))
    }

    /// "Send code": a new 8-digit code for the invited address, stored as a hash, mailed (DECISIONS 10).
    /// The hourly limit is checked and a slot of it taken before a code is made or hashed, so a
    /// flood of requests costs no hashing beyond the limit; a busy hasher gives the slot back.
    pub async fn send_redemption_code(&self, open: &OpenInvitation) -> ServiceResult<CodeSending> {
        let now = Utc::now();
        let tenant = open.tenant.id;
        let reservation = PasscodeRecord {
            id: ObjectId::new_random(),
            tenant_id: tenant,
            invitation_id: open.invitation.id,
            email_lower: open.invitation.email.to_lowercase(),
            code_hash: String::new(),
            state: PasscodeState::Reserved,
            failed_attempts: 0,
            created_date_time: now,
            expires_date_time: now + rules::code_lifetime(),
        };
        if let PasscodeIssue::LimitReached { retry_at } =
            self.store.issue_passcode(&reservation, now - rules::code_rate_window(), rules::MAX_CODES_PER_HOUR).await?
        {
            return Ok(CodeSending::LimitReached { retry_at });
        }
        let code = OneTimePasscode::generate();
        let code_hash = match self.hashing.hash(code.expose().to_string()).await {
            Ok(hash) => hash,
            Err(error) => {
                self.store.release_passcode(tenant, reservation.id).await?;
                return Err(error.into());
            }
        };
        if !self.store.activate_passcode(tenant, open.invitation.id, reservation.id, &code_hash).await? {
            return Err(ServiceError::Internal("a reserved one-time passcode vanished before it was stored".into()));
        }
        self.mail_redemption_code(open, &code).await?;
        Ok(CodeSending::Sent)
    }

    /// Whether a code was sent for this invitation and can still be entered.
    pub async fn has_active_redemption_code(&self, open: &OpenInvitation) -> ServiceResult<bool> {
        let latest = self.store.latest_passcode(open.tenant.id, open.invitation.id).await?;
        Ok(latest.is_some_and(|code| code.checkable_at(Utc::now()).is_ok()))
    }

    /// "Enter code": compares the entered code with the invitation's newest one; a right code
    /// starts a 24-hour session for the invited address (DECISIONS 10).
    pub async fn check_redemption_code(&self, open: &OpenInvitation, entered: &str) -> ServiceResult<CodeCheck> {
        let Some(entered) = OneTimePasscode::parse(entered) else { return Ok(CodeCheck::Malformed) };
        let now = Utc::now();
        let Some(code) = self.store.latest_passcode(open.tenant.id, open.invitation.id).await? else {
            return Ok(CodeCheck::NoActiveCode);
        };
        if let Err(refusal) = code.checkable_at(now) {
            return Ok(refusal_check(refusal));
        }
        if !self.store.reserve_passcode_try(open.tenant.id, code.id, now, rules::MAX_WRONG_TRIES).await? {
            // Another request used the last try, or the code, meanwhile: read it again to say which.
            let current = self.store.latest_passcode(open.tenant.id, open.invitation.id).await?;
            return Ok(match current.filter(|c| c.id == code.id).map(|c| c.checkable_at(now)) {
                Some(Err(refusal)) => refusal_check(refusal),
                _ => CodeCheck::NoActiveCode,
            });
        }
        let matches = match self.hashing.verify(entered.expose().to_string(), code.code_hash.clone()).await {
            Ok(matches) => matches,
            Err(error) => {
                // The code was never compared: the try is given back.
                self.store.release_passcode_try(open.tenant.id, code.id).await?;
                return Err(error.into());
            }
        };
        if !matches {
            let tries_left = rules::MAX_WRONG_TRIES.saturating_sub(code.failed_attempts + 1);
            return Ok(if tries_left == 0 { CodeCheck::TooManyTries } else { CodeCheck::Wrong { tries_left } });
        }
        let token = SessionToken::generate();
        let session = RedemptionSession {
            token_hash: token.hash(),
            tenant_id: open.tenant.id,
            email_lower: code.email_lower.clone(),
            created_date_time: now,
            expires_date_time: now + rules::session_lifetime(),
        };
        if !self.store.use_passcode(open.tenant.id, code.id, &session).await? {
            return Ok(CodeCheck::NoActiveCode);
        }
        Ok(CodeCheck::Verified(token))
    }

    /// Whether the browser's session cookie vouches for the invited address.
    pub async fn session_covers(&self, open: &OpenInvitation, token: Option<&SessionToken>) -> ServiceResult<bool> {
        let Some(token) = token else { return Ok(false) };
        let session = self.store.redemption_session(&token.hash()).await?;
        Ok(session.is_some_and(|s| s.covers(open.tenant.id, &open.invitation.email, Utc::now())))
    }

    /// "Accept": consumes the ticket only if it is still pending (of two concurrent acceptances
    /// exactly one wins), makes the guest `Accepted` with the `mail` identity, and writes the audit
    /// entries, in one transaction (contract §3.3, DECISIONS 11).
    pub async fn accept_invitation(&self, open: &OpenInvitation, token: Option<&SessionToken>) -> ServiceResult<Acceptance> {
        if !self.session_covers(open, token).await? {
            return Ok(Acceptance::NeedsVerification);
        }
        if !self.invitation_domain_allowed_at_redemption(&open.tenant, &open.invitation).await? {
            return Ok(Acceptance::Refused(LinkRefusal::DomainBlocked));
        }
        let tenant = &open.tenant;
        for _ in 0..MAX_ATTEMPTS {
            let now = Utc::now();
            let Some(current) = self.store.user(tenant.id, &UserKey::Id(open.invitation.user_id)).await? else {
                return Ok(Acceptance::Refused(LinkRefusal::Revoked));
            };
            let (accepted, modified) = rules::accept(&current, &open.invitation.email, now);
            let write = RedemptionWrite {
                tenant_id: tenant.id,
                invitation_id: open.invitation.id,
                audit: redemption_audit(open, &accepted, modified, now),
                user: accepted,
                now,
            };
            match self.store.redeem_invitation(&write).await {
                Ok(RedeemResult::Redeemed(_)) => return Ok(Acceptance::Redeemed { redirect_url: open.invitation.redirect_url.clone() }),
                Ok(RedeemResult::TicketNotPending) => return Ok(Acceptance::Refused(self.why_not_pending(open).await?)),
                Err(StoreError::Conflict(Conflict::StaleVersion)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Internal("redemption kept conflicting with concurrent writes".into()))
    }

    async fn why_not_pending(&self, open: &OpenInvitation) -> ServiceResult<LinkRefusal> {
        let current = self.store.invitation_by_ticket_hash(open.tenant.id, &open.invitation.ticket_hash).await?;
        Ok(match current.map(|invitation| invitation.usable_at(Utc::now())) {
            Some(Err(refusal)) => refusal.into(),
            _ => LinkRefusal::Unknown,
        })
    }

    /// The code goes to the invited address only (contract §4.5), in the guest's language.
    async fn mail_redemption_code(&self, open: &OpenInvitation, code: &OneTimePasscode) -> ServiceResult<()> {
        let to = EmailAddress::parse(&open.invitation.email)
            .map_err(|e| ServiceError::Internal(format!("stored invitation address does not parse: {e}")))?;
        self.send_one_time_passcode(&open.tenant, Some(open.user.id), &to, code.expose(), open.user.preferred_language.as_deref()).await?;
        Ok(())
    }

    /// Whether this server can mail codes at all; without an SMTP server nobody can redeem.
    pub fn can_mail_codes(&self) -> bool {
        self.mail.is_configured()
    }
}

fn refusal_check(refusal: PasscodeRefusal) -> CodeCheck {
    match refusal {
        PasscodeRefusal::Expired => CodeCheck::Expired,
        PasscodeRefusal::TooManyTries => CodeCheck::TooManyTries,
        PasscodeRefusal::NoLongerActive => CodeCheck::NoActiveCode,
    }
}

/// `Redeem external user invite` (Invited Users) and `Update user` (Core Directory), initiated by
/// the guest (contract §3.3, §7).
fn redemption_audit(
    open: &OpenInvitation,
    accepted: &User,
    modified: Vec<guestlist_domain::audit::ModifiedProperty>,
    now: DateTime<Utc>,
) -> Vec<AuditRecord> {
    let initiator = Initiator::User { id: accepted.id.to_string(), user_principal_name: accepted.user_principal_name.to_string() };
    let target = |modified_properties| TargetResource {
        id: accepted.id.to_string(),
        display_name: Some(accepted.display_name.clone()),
        resource_type: "User".into(),
        user_principal_name: Some(accepted.user_principal_name.to_string()),
        modified_properties,
    };
    let redeem = AuditRecord::invited_users(
        open.tenant.id,
        activity::REDEEM_INVITE,
        "Update",
        initiator.clone(),
        open.invitation.id,
        target(vec![]),
        now,
    );
    let mut update =
        AuditRecord::invited_users(open.tenant.id, activity::UPDATE_USER, "Update", initiator, open.invitation.id, target(modified), now);
    update.logged_by_service = "Core Directory".into();
    vec![redeem, update]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_never_prints_its_ticket() {
        let link = RedeemLink { tenant: "t".into(), user: "u".into(), ticket: "secret-ticket".into() };
        assert!(!format!("{link:?}").contains("secret-ticket"));
    }
}
