//! The rules of redemption with email one-time passcode: codes, sessions and what accepting an
//! invitation does to the guest (contract §2.2-2.3, §3.3, §4.5; DECISIONS 10, 11).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, RngCore};

use crate::audit::ModifiedProperty;
use crate::ids::{ObjectId, TenantId};
use crate::ticket::sha256_hex;
use crate::user::{ExternalUserState, ObjectIdentity};
use crate::User;

/// Digits in a one-time passcode (DECISIONS 10).
pub const CODE_DIGITS: usize = 8;
/// Wrong tries a code allows; then a new code is needed (DECISIONS 10).
pub const MAX_WRONG_TRIES: u32 = 5;
/// Codes mailed to one address per hour (DECISIONS 10).
pub const MAX_CODES_PER_HOUR: u32 = 5;

/// A code is valid this long (contract §4.5).
pub fn code_lifetime() -> Duration {
    Duration::minutes(30)
}

/// The sign-in session a verified code starts lasts this long (contract §4.5).
pub fn session_lifetime() -> Duration {
    Duration::hours(24)
}

/// The window [`MAX_CODES_PER_HOUR`] counts in.
pub fn code_rate_window() -> Duration {
    Duration::hours(1)
}

/// The issuer of the identity a guest gets by redeeming with a one-time passcode (contract §2.2).
pub const MAIL_ISSUER: &str = "mail";

/// An 8-digit one-time passcode. Only its hash is stored (DECISIONS 10); `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimePasscode(String);

impl OneTimePasscode {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        OneTimePasscode((0..CODE_DIGITS).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect())
    }

    /// What a guest typed: spaces and dashes are ignored; anything but 8 digits is refused.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > 64 {
            return None;
        }
        let digits: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(OneTimePasscode(digits))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTimePasscode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimePasscode([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeState {
    /// A slot of the hourly limit, taken before the code is hashed; it becomes `Active` once the
    /// hash is stored, and is never checked.
    Reserved,
    /// Mailed and not yet used; the newest code of an invitation is the only active one.
    Active,
    Used,
    /// A newer code was sent for the same invitation.
    Superseded,
}

impl PasscodeState {
    pub fn as_str(&self) -> &'static str {
        match self {
            PasscodeState::Reserved => "reserved",
            PasscodeState::Active => "active",
            PasscodeState::Used => "used",
            PasscodeState::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reserved" => Some(PasscodeState::Reserved),
            "active" => Some(PasscodeState::Active),
            "used" => Some(PasscodeState::Used),
            "superseded" => Some(PasscodeState::Superseded),
            _ => None,
        }
    }
}

/// A mailed code, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PasscodeRecord {
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub invitation_id: ObjectId,
    /// The address the code was mailed to, lower-cased; the hourly limit counts by it.
    pub email_lower: String,
    /// An Argon2 PHC string: codes are short, so a fast hash would not protect them.
    pub code_hash: String,
    pub state: PasscodeState,
    pub failed_attempts: u32,
    pub created_date_time: DateTime<Utc>,
    pub expires_date_time: DateTime<Utc>,
}

/// Why a code cannot be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeRefusal {
    Expired,
    TooManyTries,
    /// Used already, or replaced by a newer code.
    NoLongerActive,
}

impl PasscodeRecord {
    pub fn checkable_at(&self, now: DateTime<Utc>) -> Result<(), PasscodeRefusal> {
        if self.state != PasscodeState::Active {
            Err(PasscodeRefusal::NoLongerActive)
        } else if self.failed_attempts >= MAX_WRONG_TRIES {
            Err(PasscodeRefusal::TooManyTries)
        } else if self.expires_date_time <= now {
            Err(PasscodeRefusal::Expired)
        } else {
            Ok(())
        }
    }

    pub fn tries_left(&self) -> u32 {
        MAX_WRONG_TRIES.saturating_sub(self.failed_attempts)
    }
}

/// The secret in the redemption session cookie; only its hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        SessionToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A cookie value; anything that is not 43 base64url characters is refused.
    pub fn from_cookie(text: &str) -> Option<Self> {
        (text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then(|| SessionToken(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// A browser that proved control of an address with a one-time passcode (DECISIONS 10).
#[derive(Debug, Clone, PartialEq)]
pub struct RedemptionSession {
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub email_lower: String,
    pub created_date_time: DateTime<Utc>,
    pub expires_date_time: DateTime<Utc>,
}

impl RedemptionSession {
    /// A session vouches for one address of one tenant until it expires.
    pub fn covers(&self, tenant_id: TenantId, email: &str, now: DateTime<Utc>) -> bool {
        self.tenant_id == tenant_id && self.email_lower == email.to_lowercase() && now < self.expires_date_time
    }
}

/// The guest after accepting with the email it verified: `Accepted` with the time, and the
/// `mail` identity (contract §2.2-2.3, §3.3), with the changes Graph's `Update user` audit lists.
pub fn accept(current: &User, verified_email: &str, now: DateTime<Utc>) -> (User, Vec<ModifiedProperty>) {
    let mut user = current.clone();
    user.external_user_state = Some(ExternalUserState::Accepted);
    user.external_user_state_change_date_time = Some(now);
    let mail_identity = ObjectIdentity {
        sign_in_type: "federated".into(),
        issuer: MAIL_ISSUER.into(),
        issuer_assigned_id: Some(verified_email.to_string()),
    };
    // A guest signs in through one federated provider at a time (contract §3.4: sticky until reset).
    user.identities.retain(|identity| !identity.is_federated());
    user.identities.push(mail_identity);
    let old_state = current.external_user_state.map(|s| s.as_str());
    let modified = vec![
        ModifiedProperty::text("UserState", old_state, Some(ExternalUserState::Accepted.as_str())),
        ModifiedProperty::text("Identities", None, Some(&format!("federated/{MAIL_ISSUER}/{verified_email}"))),
    ];
    (user, modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::UserType;
    use crate::Upn;

    #[test]
    fn debug_of_tickets_codes_and_session_tokens_is_redacted() {
        let ticket = crate::ticket::RedeemTicket::generate();
        let code = OneTimePasscode::generate();
        let session = SessionToken::generate();
        let unsubscribe = crate::mail::UnsubscribeToken::from_link("unsubscribe-token-value");
        let shown = format!("{ticket:?} {code:?} {session:?} {unsubscribe:?}");
        assert_eq!(shown, "RedeemTicket([redacted]) OneTimePasscode([redacted]) SessionToken([redacted]) UnsubscribeToken([redacted])");
        for secret in [ticket.expose(), code.expose(), session.expose(), unsubscribe.expose()] {
            assert!(!shown.contains(secret));
        }
    }

    #[test]
    fn codes_are_eight_digits_and_parse_leniently() {
        for _ in 0..100 {
            let code = OneTimePasscode::generate();
            assert_eq!(code.expose().len(), 8);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(OneTimePasscode::parse(" 1234 5678 ").map(|c| c.expose().to_string()), Some("12345678".into()));
        assert_eq!(OneTimePasscode::parse("1234-5678").map(|c| c.expose().to_string()), Some("12345678".into()));
        assert!(OneTimePasscode::parse("1234567").is_none());
        assert!(OneTimePasscode::parse("123456789").is_none());
        assert!(OneTimePasscode::parse("1234567a").is_none());
        assert!(OneTimePasscode::parse("١٢٣٤٥٦٧٨").is_none(), "non-ASCII digits");
        assert!(OneTimePasscode::parse(&"1".repeat(100)).is_none());
        assert!(!format!("{:?}", OneTimePasscode::generate()).contains(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn a_code_is_checkable_while_active_unexpired_and_under_the_try_limit() {
        let now = Utc::now();
        let mut code = PasscodeRecord {
            id: ObjectId::new_random(),
            tenant_id: ObjectId::new_random(),
            invitation_id: ObjectId::new_random(),
            email_lower: "a@example.com".into(),
            code_hash: String::new(),
            state: PasscodeState::Active,
            failed_attempts: 4,
            created_date_time: now,
            expires_date_time: now + code_lifetime(),
        };
        assert_eq!(code.checkable_at(now), Ok(()));
        assert_eq!(code.tries_left(), 1);
        code.failed_attempts = 5;
        assert_eq!(code.checkable_at(now), Err(PasscodeRefusal::TooManyTries));
        code.failed_attempts = 0;
        assert_eq!(code.checkable_at(now + Duration::minutes(30)), Err(PasscodeRefusal::Expired));
        code.state = PasscodeState::Superseded;
        assert_eq!(code.checkable_at(now), Err(PasscodeRefusal::NoLongerActive));
    }

    #[test]
    fn session_tokens_are_random_and_checked_on_the_way_in() {
        let token = SessionToken::generate();
        assert_ne!(token, SessionToken::generate());
        assert_eq!(SessionToken::from_cookie(token.expose()).map(|t| t.hash()), Some(token.hash()));
        assert!(SessionToken::from_cookie("short").is_none());
        assert!(SessionToken::from_cookie(&"b".repeat(42)).is_none());
        assert!(SessionToken::from_cookie(&format!("{}=", &token.expose()[..42])).is_none());
    }

    #[test]
    fn accepting_sets_the_state_and_replaces_federated_identities_with_mail() {
        let now = Utc::now();
        let upn = Upn::parse("ann_example.com#EXT#@contoso.onmicrosoft.com").unwrap();
        let mut guest = User::new(ObjectId::new_random(), upn, "ann".into(), UserType::Guest, now - Duration::days(1));
        guest.external_user_state = Some(ExternalUserState::PendingAcceptance);
        guest.identities.push(ObjectIdentity { sign_in_type: "federated".into(), issuer: "google.com".into(), issuer_assigned_id: None });
        let (accepted, modified) = accept(&guest, "ann@example.com", now);
        assert_eq!(accepted.external_user_state, Some(ExternalUserState::Accepted));
        assert_eq!(accepted.external_user_state_change_date_time, Some(now));
        assert_eq!(accepted.id, guest.id);
        assert_eq!(accepted.identities.len(), 2);
        assert_eq!(accepted.identities[0].sign_in_type, "userPrincipalName");
        assert_eq!(
            accepted.identities[1],
            ObjectIdentity { sign_in_type: "federated".into(), issuer: "mail".into(), issuer_assigned_id: Some("ann@example.com".into()) }
        );
        assert_eq!(modified[0].old_value.as_deref(), Some(r#"["PendingAcceptance"]"#));
        assert_eq!(modified[0].new_value.as_deref(), Some(r#"["Accepted"]"#));
    }

    #[test]
    fn a_session_covers_its_address_in_its_tenant_until_it_expires() {
        let now = Utc::now();
        let tenant = ObjectId::new_random();
        let session = RedemptionSession {
            token_hash: String::new(),
            tenant_id: tenant,
            email_lower: "ann@example.com".into(),
            created_date_time: now,
            expires_date_time: now + session_lifetime(),
        };
        assert!(session.covers(tenant, "Ann@Example.com", now));
        assert!(!session.covers(tenant, "bob@example.com", now));
        assert!(!session.covers(ObjectId::new_random(), "ann@example.com", now));
        assert!(!session.covers(tenant, "ann@example.com", now + session_lifetime()));
    }
}
