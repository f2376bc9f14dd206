use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ObjectId, TenantId};
use crate::{DomainError, Upn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserType {
    Member,
    Guest,
}

impl UserType {
    pub fn as_str(&self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }

    /// Graph compares enum-like strings case-insensitively on input (`invitedUserType: "guest"` works).
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("Member") {
            Some(UserType::Member)
        } else if text.eq_ignore_ascii_case("Guest") {
            Some(UserType::Guest)
        } else {
            None
        }
    }
}

/// `externalUserState`: set only on users created by invitation (contract §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExternalUserState {
    PendingAcceptance,
    Accepted,
}

impl ExternalUserState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ExternalUserState::PendingAcceptance => "PendingAcceptance",
            ExternalUserState::Accepted => "Accepted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PendingAcceptance" => Some(ExternalUserState::PendingAcceptance),
            "Accepted" => Some(ExternalUserState::Accepted),
            _ => None,
        }
    }
}

/// `creationType` values Graph documents; guestlist creates `Invitation` users and plain members (null).
pub const CREATION_TYPE_INVITATION: &str = "Invitation";

/// `objectIdentity`: how a user signs in (contract §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity {
    pub sign_in_type: String,
    pub issuer: String,
    pub issuer_assigned_id: Option<String>,
}

impl ObjectIdentity {
    pub fn user_principal_name(upn: &Upn) -> Self {
        ObjectIdentity {
            sign_in_type: "userPrincipalName".into(),
            issuer: upn.domain().to_string(),
            issuer_assigned_id: Some(upn.as_str().to_string()),
        }
    }

    pub fn is_federated(&self) -> bool {
        self.sign_in_type == "federated"
    }
}

/// A user object of the directory, member or guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub user_principal_name: Upn,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    pub proxy_addresses: Vec<String>,
    pub user_type: UserType,
    pub creation_type: Option<String>,
    pub external_user_state: Option<ExternalUserState>,
    pub external_user_state_change_date_time: Option<DateTime<Utc>>,
    pub identities: Vec<ObjectIdentity>,
    pub account_enabled: bool,
    pub created_date_time: DateTime<Utc>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub mobile_phone: Option<String>,
    pub office_location: Option<String>,
    pub preferred_language: Option<String>,
    pub business_phones: Vec<String>,
    pub usage_location: Option<String>,
    /// The address of the invitation that created the guest; reset may use it (seed; DECISIONS 4).
    pub invited_email: Option<String>,
    /// Bumped on every write; a write that expects an older version loses (optimistic concurrency).
    pub version: i64,
}

impl User {
    /// A user with only the required properties set: enabled, signing in by its UPN, no mail.
    pub fn new(tenant_id: TenantId, user_principal_name: Upn, display_name: String, user_type: UserType, now: DateTime<Utc>) -> Self {
        User {
            id: ObjectId::new_random(),
            tenant_id,
            identities: vec![ObjectIdentity::user_principal_name(&user_principal_name)],
            user_principal_name,
            display_name,
            given_name: None,
            surname: None,
            mail: None,
            other_mails: vec![],
            proxy_addresses: vec![],
            user_type,
            creation_type: None,
            external_user_state: None,
            external_user_state_change_date_time: None,
            account_enabled: true,
            created_date_time: now,
            company_name: None,
            job_title: None,
            department: None,
            mobile_phone: None,
            office_location: None,
            preferred_language: None,
            business_phones: vec![],
            usage_location: None,
            invited_email: None,
            version: 0,
        }
    }

    pub fn is_invited_external(&self) -> bool {
        self.creation_type.as_deref() == Some(CREATION_TYPE_INVITATION)
    }

    /// The addresses reset redemption may move the user to (DECISIONS 4).
    pub fn known_emails(&self) -> impl Iterator<Item = &str> {
        self.mail.iter().chain(self.invited_email.iter()).chain(self.other_mails.iter()).map(String::as_str)
    }
}

/// Limits of the user resource (contract §2).
pub mod limits {
    pub const DISPLAY_NAME: usize = 256;
    pub const OTHER_MAILS_COUNT: usize = 250;
    pub const OTHER_MAIL_LENGTH: usize = 250;
    pub const COMPANY_NAME: usize = 64;
    pub const SHORT_TEXT: usize = 128;
}

/// Checks a free-text property against its documented length.
pub fn check_length(property: &str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.chars().count() > max {
        return Err(DomainError::invalid(format!(
            "Invalid value specified for property '{property}' of resource 'User': it is longer than {max} characters."
        )));
    }
    Ok(())
}

/// `otherMails`: at most 250 entries of at most 250 characters, no accents (contract §2).
pub fn check_other_mails(values: &[String]) -> Result<(), DomainError> {
    if values.len() > limits::OTHER_MAILS_COUNT {
        return Err(DomainError::invalid(format!(
            "Invalid value specified for property 'otherMails' of resource 'User': at most {} values are allowed.",
            limits::OTHER_MAILS_COUNT
        )));
    }
    for value in values {
        check_length("otherMails", value, limits::OTHER_MAIL_LENGTH)?;
        crate::EmailAddress::parse(value)
            .map_err(|e| DomainError::invalid(format!("Invalid value specified for property 'otherMails' of resource 'User': {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_type_parses_case_insensitively() {
        assert_eq!(UserType::parse("guest"), Some(UserType::Guest));
        assert_eq!(UserType::parse("MEMBER"), Some(UserType::Member));
        assert_eq!(UserType::parse("admin"), None);
    }

    #[test]
    fn other_mails_limits() {
        assert!(check_other_mails(&["a@example.com".into()]).is_ok());
        assert!(check_other_mails(&["not an email".into()]).is_err());
        let too_many: Vec<String> = (0..251).map(|i| format!("u{i}@example.com")).collect();
        assert!(check_other_mails(&too_many).is_err());
    }

    #[test]
    fn upn_identity_uses_the_upn_domain_as_issuer() {
        let upn = Upn::parse("a_b.com#EXT#@contoso.onmicrosoft.com").unwrap();
        let identity = ObjectIdentity::user_principal_name(&upn);
        assert_eq!(identity.issuer, "contoso.onmicrosoft.com");
        assert_eq!(identity.issuer_assigned_id.as_deref(), Some(upn.as_str()));
        assert!(!identity.is_federated());
    }
}
