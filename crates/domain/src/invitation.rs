//! The rules of `POST /invitations`: a new guest, a re-invite, and reset redemption
//! (contract §3.1-3.4, DECISIONS 1, 4, 5, 7, 8, 12).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::ModifiedProperty;
use crate::ids::ObjectId;
use crate::tenant::UpnOnReset;
use crate::upn::guest_upn;
use crate::user::{check_length, limits, ExternalUserState, ObjectIdentity, UserType, CREATION_TYPE_INVITATION};
use crate::{DomainError, EmailAddress, Tenant, User};

/// `recipient` of `invitedUserMessageInfo.ccRecipients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Recipient {
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MessageInfo {
    pub message_language: Option<String>,
    pub customized_message_body: Option<String>,
    pub cc_recipients: Vec<Recipient>,
}

/// A validated invitation request.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationRequest {
    pub email: EmailAddress,
    pub redirect_url: String,
    pub display_name: Option<String>,
    pub send_invitation_message: bool,
    pub message_info: Option<MessageInfo>,
    pub user_type: UserType,
    pub reset_redemption: bool,
    pub invited_user_id: Option<ObjectId>,
    /// `invitedUserSponsors`: users responsible for the guest, without duplicates (contract §1.2).
    pub sponsors: Vec<ObjectId>,
}

/// A guest has at most this many sponsors (contract §1.2).
pub const MAX_SPONSORS: usize = 5;

pub const MAX_CUSTOM_MESSAGE: usize = 10_000;
pub const MAX_REDIRECT_URL: usize = 2_048;

/// `inviteRedirectUrl` must be an absolute http or https URL (DECISIONS 12).
pub fn validate_redirect_url(text: &str) -> Result<String, DomainError> {
    let refuse = || DomainError::invalid(format!("The inviteRedirectUrl '{text}' is not valid: it must be an absolute http or https URL."));
    if text.len() > MAX_REDIRECT_URL {
        return Err(DomainError::invalid(format!("The inviteRedirectUrl is longer than {MAX_REDIRECT_URL} characters.")));
    }
    let url = url::Url::parse(text).map_err(|_| refuse())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(refuse());
    }
    Ok(text.to_string())
}

impl InvitationRequest {
    /// Checks what Graph checks before touching the directory.
    pub fn validate(self) -> Result<Self, DomainError> {
        if let Some(name) = &self.display_name {
            check_length("invitedUserDisplayName", name, limits::DISPLAY_NAME)?;
        }
        if let Some(info) = &self.message_info {
            if let Some(body) = &info.customized_message_body {
                check_length("customizedMessageBody", body, MAX_CUSTOM_MESSAGE)?;
            }
            if let Some(language) = &info.message_language {
                if language.len() > 35 || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(DomainError::invalid(format!("The messageLanguage '{language}' is not a valid language tag.")));
                }
            }
            // Only the first CC recipient is honoured; its address must still be an address (DECISIONS 15).
            if let Some(address) = info.cc_recipients.first().and_then(|r| r.address.as_deref()) {
                EmailAddress::parse(address).map_err(|e| DomainError::invalid(format!("The ccRecipients address is invalid: {e}")))?;
            }
        }
        if self.reset_redemption && self.invited_user_id.is_none() {
            return Err(DomainError::invalid("invitedUser.id is required when resetRedemption is true."));
        }
        if self.sponsors.len() > MAX_SPONSORS {
            return Err(DomainError::invalid(format!("invitedUserSponsors can name at most {MAX_SPONSORS} sponsors.")));
        }
        Ok(self)
    }

    /// The display name of a new guest: the one asked for, else the email's local part (DECISIONS 8).
    pub fn user_display_name(&self) -> String {
        self.display_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| self.email.local_part().to_string())
    }
}

/// A brand-new guest (contract §3.1 step 2). `collision_suffix` comes from the service when the
/// plain `#EXT#` UPN is taken.
pub fn new_guest(request: &InvitationRequest, tenant: &Tenant, collision_suffix: Option<&str>, now: DateTime<Utc>) -> User {
    let upn = guest_upn(&request.email, &tenant.initial_domain, collision_suffix);
    let mut user = User::new(tenant.id, upn, request.user_display_name(), request.user_type, now);
    user.mail = Some(request.email.as_str().to_string());
    user.proxy_addresses = vec![format!("SMTP:{}", request.email.as_str())];
    user.creation_type = Some(CREATION_TYPE_INVITATION.to_string());
    user.external_user_state = Some(ExternalUserState::PendingAcceptance);
    user.external_user_state_change_date_time = Some(now);
    user.invited_email = Some(request.email.as_str().to_string());
    user
}

/// Whether an existing user who owns the invited address can be re-invited (DECISIONS 7):
/// guests yes (same id, fresh link, state unchanged), members no.
pub fn check_reinvite(existing: &User) -> Result<(), DomainError> {
    if existing.is_invited_external() || existing.user_type == UserType::Guest {
        Ok(())
    } else {
        Err(DomainError::AddressOwnedByOtherObject(format!(
            "The email address '{}' belongs to the member user '{}' of this directory and can't be invited. To invite this member to B2B collaboration, send the invitation with invitedUser.id.",
            existing.mail.as_deref().unwrap_or_default(),
            existing.user_principal_name
        )))
    }
}

/// What reset redemption changed, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct ResetOutcome {
    pub user: User,
    pub modified_properties: Vec<ModifiedProperty>,
    /// A member without `creationType` Invitation became an external user (DECISIONS 5).
    pub converted_internal_user: bool,
}

/// Reset redemption (contract §3.4, DECISIONS 1, 4, 5): the new email must be one the user already
/// has; the object id stays; state goes back to PendingAcceptance; federated identities are dropped;
/// `mail` moves to the new email, and the UPN too when the tenant says so.
pub fn reset_redemption(
    current: &User,
    email: &EmailAddress,
    tenant: &Tenant,
    collision_suffix: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ResetOutcome, DomainError> {
    if !current.known_emails().any(|known| email.matches(known)) {
        return Err(DomainError::ResetEmailMismatch);
    }
    let converted_internal_user = !current.is_invited_external();
    let mut user = current.clone();
    if !converted_internal_user && tenant.upn_on_reset == UpnOnReset::FollowNewEmail {
        user.user_principal_name = guest_upn(email, &tenant.initial_domain, collision_suffix);
    }
    user.mail = Some(email.as_str().to_string());
    user.creation_type = Some(CREATION_TYPE_INVITATION.to_string());
    user.external_user_state = Some(ExternalUserState::PendingAcceptance);
    user.external_user_state_change_date_time = Some(now);
    user.identities = vec![ObjectIdentity::user_principal_name(&user.user_principal_name)];
    let primary = format!("SMTP:{}", email.as_str());
    let mut proxies = vec![primary];
    for old in &current.proxy_addresses {
        let address = old.split_once(':').map(|(_, a)| a).unwrap_or(old);
        if !email.matches(address) {
            proxies.push(format!("smtp:{address}"));
        }
    }
    user.proxy_addresses = proxies;

    let change = |name: &str, old: Option<String>, new: Option<String>| {
        (old != new).then(|| ModifiedProperty::text(name, old.as_deref(), new.as_deref()))
    };
    let modified_properties = [
        change("UserPrincipalName", Some(current.user_principal_name.to_string()), Some(user.user_principal_name.to_string())),
        change("Mail", current.mail.clone(), user.mail.clone()),
        change(
            "ExternalUserState",
            current.external_user_state.map(|s| s.as_str().to_string()),
            user.external_user_state.map(|s| s.as_str().to_string()),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(ResetOutcome { user, modified_properties, converted_internal_user })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::UpnOnReset;

    fn tenant(upn_on_reset: UpnOnReset) -> Tenant {
        Tenant {
            id: ObjectId::new_random(),
            display_name: "Contoso".into(),
            initial_domain: "contoso.onmicrosoft.com".into(),
            upn_on_reset,
            invitation_lifetime_days: None,
            invitation_throttle: None,
            created_date_time: Utc::now(),
        }
    }

    fn request(email: &str) -> InvitationRequest {
        InvitationRequest {
            email: EmailAddress::parse(email).unwrap(),
            redirect_url: "https://myapps.microsoft.com".into(),
            display_name: None,
            send_invitation_message: false,
            message_info: None,
            user_type: UserType::Guest,
            reset_redemption: false,
            invited_user_id: None,
            sponsors: vec![],
        }
    }

    fn accepted_guest(tenant: &Tenant, email: &str) -> User {
        let mut user = new_guest(&request(email), tenant, None, Utc::now());
        user.external_user_state = Some(ExternalUserState::Accepted);
        user.identities.push(ObjectIdentity {
            sign_in_type: "federated".into(),
            issuer: "mail".into(),
            issuer_assigned_id: Some(email.into()),
        });
        user
    }

    #[test]
    fn new_guest_has_graphs_shape() {
        let t = tenant(UpnOnReset::FollowNewEmail);
        let user = new_guest(&request("alice@example.com"), &t, None, Utc::now());
        assert_eq!(user.user_principal_name.as_str(), "alice_example.com#EXT#@contoso.onmicrosoft.com");
        assert_eq!(user.user_type, UserType::Guest);
        assert_eq!(user.creation_type.as_deref(), Some("Invitation"));
        assert_eq!(user.external_user_state, Some(ExternalUserState::PendingAcceptance));
        assert_eq!(user.mail.as_deref(), Some("alice@example.com"));
        assert_eq!(user.display_name, "alice");
        assert_eq!(user.proxy_addresses, vec!["SMTP:alice@example.com".to_string()]);
        assert_eq!(user.identities.len(), 1);
        assert!(user.account_enabled);
    }

    #[test]
    fn redirect_url_must_be_absolute_http() {
        assert!(validate_redirect_url("https://myapps.microsoft.com?tenantId=").is_ok());
        assert!(validate_redirect_url("http://localhost:3000/x").is_ok());
        for bad in ["", "myapps.microsoft.com", "/relative", "javascript:alert(1)", "ftp://example.com", "https://"] {
            assert!(validate_redirect_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reset_requires_invited_user_id() {
        let mut r = request("a@example.com");
        r.reset_redemption = true;
        assert!(r.clone().validate().is_err());
        r.invited_user_id = Some(ObjectId::new_random());
        assert!(r.validate().is_ok());
    }

    #[test]
    fn at_most_five_sponsors() {
        let mut r = request("a@example.com");
        r.sponsors = (0..MAX_SPONSORS).map(|_| ObjectId::new_random()).collect();
        assert!(r.clone().validate().is_ok());
        r.sponsors.push(ObjectId::new_random());
        assert!(r.validate().is_err());
    }

    #[test]
    fn reset_refuses_an_unknown_email() {
        let t = tenant(UpnOnReset::FollowNewEmail);
        let user = accepted_guest(&t, "alice@example.com");
        let err = reset_redemption(&user, &EmailAddress::parse("mallory@example.com").unwrap(), &t, None, Utc::now()).unwrap_err();
        assert_eq!(err, DomainError::ResetEmailMismatch);
    }

    #[test]
    fn reset_to_an_other_mail_moves_upn_and_mail_by_default() {
        let t = tenant(UpnOnReset::FollowNewEmail);
        let mut user = accepted_guest(&t, "alice@example.com");
        user.other_mails = vec!["Alice@Example.org".into()];
        let outcome = reset_redemption(&user, &EmailAddress::parse("alice@example.org").unwrap(), &t, None, Utc::now()).unwrap();
        assert_eq!(outcome.user.id, user.id);
        assert_eq!(outcome.user.user_principal_name.as_str(), "alice_example.org#EXT#@contoso.onmicrosoft.com");
        assert_eq!(outcome.user.mail.as_deref(), Some("alice@example.org"));
        assert_eq!(outcome.user.external_user_state, Some(ExternalUserState::PendingAcceptance));
        assert!(outcome.user.identities.iter().all(|i| !i.is_federated()));
        assert_eq!(outcome.user.proxy_addresses[0], "SMTP:alice@example.org");
        assert!(outcome.user.proxy_addresses.contains(&"smtp:alice@example.com".to_string()));
        let names: Vec<&str> = outcome.modified_properties.iter().map(|p| p.display_name.as_str()).collect();
        assert_eq!(names, ["UserPrincipalName", "Mail", "ExternalUserState"]);
        assert!(!outcome.converted_internal_user);
    }

    #[test]
    fn reset_keeps_the_upn_when_the_tenant_says_so() {
        let t = tenant(UpnOnReset::Keep);
        let mut user = accepted_guest(&t, "alice@example.com");
        user.other_mails = vec!["alice@example.org".into()];
        let outcome = reset_redemption(&user, &EmailAddress::parse("alice@example.org").unwrap(), &t, None, Utc::now()).unwrap();
        assert_eq!(outcome.user.user_principal_name, user.user_principal_name);
        assert_eq!(outcome.user.mail.as_deref(), Some("alice@example.org"));
    }

    #[test]
    fn reset_accepts_the_original_invite_email_after_mail_changed() {
        let t = tenant(UpnOnReset::FollowNewEmail);
        let mut user = accepted_guest(&t, "alice@example.com");
        user.mail = Some("alice@elsewhere.com".into());
        assert!(reset_redemption(&user, &EmailAddress::parse("ALICE@example.com").unwrap(), &t, None, Utc::now()).is_ok());
    }

    #[test]
    fn reinvite_refuses_members() {
        let t = tenant(UpnOnReset::FollowNewEmail);
        let mut member = new_guest(&request("bob@example.com"), &t, None, Utc::now());
        member.user_type = UserType::Member;
        member.creation_type = None;
        assert!(check_reinvite(&member).is_err());
        assert!(check_reinvite(&accepted_guest(&t, "c@example.com")).is_ok());
    }
}
