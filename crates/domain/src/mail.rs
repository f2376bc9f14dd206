//! Outgoing mail: the invitation email (contract §4.1) and the one-time passcode (§4.5), as rows
//! of a transactional outbox. A mail is written in the same transaction as the change that
//! causes it and delivered later by a worker, with retries; nothing here sends anything.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, Initiator, TargetResource};
use crate::ids::{ObjectId, TenantId};

/// Activity names of mail delivery. Graph names the unsubscribe ones (contract §7); it has no
/// entry for a delivery failure, so guestlist names its own in the same style.
pub mod activity {
    pub const EMAIL_NOT_SENT_UNSUBSCRIBED: &str = "Email not sent, user unsubscribed";
    pub const EMAIL_UNSUBSCRIBED: &str = "Email unsubscribed";
    /// One failed delivery attempt; another follows after a backoff.
    pub const EMAIL_DELIVERY_FAILED: &str = "Email delivery failed";
    /// The last attempt failed: the mail is not tried again.
    pub const EMAIL_DELIVERY_ABANDONED: &str = "Email delivery abandoned";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailKind {
    Invitation,
    OneTimePasscode,
}

impl MailKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            MailKind::Invitation => "invitation",
            MailKind::OneTimePasscode => "oneTimePasscode",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "invitation" => Some(MailKind::Invitation),
            "oneTimePasscode" => Some(MailKind::OneTimePasscode),
            _ => None,
        }
    }
}

/// Where a message is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or a worker holds it now).
    Pending,
    Sent,
    /// Every attempt failed; not tried again.
    Failed,
    /// No SMTP server is configured: recorded, never sent (the redeem URL is the only channel).
    NotConfigured,
    /// A later invitation of the same user revoked this mail's link before it went out.
    Superseded,
}

impl DeliveryState {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::NotConfigured => "notConfigured",
            DeliveryState::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed, Self::NotConfigured, Self::Superseded].into_iter().find(|s| s.as_str() == text)
    }
}

/// One message as the outbox stores it, rendered and ready to hand to SMTP.
///
/// The bodies can hold a redeem link or a passcode, which are otherwise stored only as hashes
/// (DECISIONS 10): the outbox keeps them only until the message is sent or abandoned.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMail {
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub kind: MailKind,
    /// The invitation the mail belongs to, for invitation mail.
    pub invitation_id: Option<ObjectId>,
    /// The guest the mail is about.
    pub user_id: Option<ObjectId>,
    pub sender_name: String,
    pub sender_address: String,
    pub recipient: String,
    /// At most one copy (DECISIONS 15).
    pub cc: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// The language the mail was rendered in, e.g. `de-DE`.
    pub language: String,
    pub created_date_time: DateTime<Utc>,
}

impl std::fmt::Debug for OutgoingMail {
    /// The bodies carry secrets (a redeem ticket, a passcode) and never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("invitation_id", &self.invitation_id)
            .field("recipient", &self.recipient)
            .field("cc", &self.cc)
            .field("subject", &self.subject)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

/// A message in the outbox with its delivery bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct MailRecord {
    pub mail: OutgoingMail,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_date_time: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_date_time: Option<DateTime<Utc>>,
    /// The worker holding the message, until `claimed_until`.
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
}

/// How often and how patiently a failing message is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// After this many failed attempts the message is `Failed`.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 5 s doubling to 10 min, 40 attempts: a mail server may be away for about six hours
    /// before a message is abandoned.
    fn default() -> Self {
        RetryPolicy { first_delay: Duration::from_secs(5), max_delay: Duration::from_secs(600), max_attempts: 40 }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    GiveUp,
}

impl RetryPolicy {
    /// `attempts` counts the attempt that just failed.
    pub fn after_failure(&self, attempts: u32, now: DateTime<Utc>) -> AfterFailure {
        if attempts >= self.max_attempts {
            return AfterFailure::GiveUp;
        }
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        let delay = self.first_delay.saturating_mul(factor).min(self.max_delay);
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        AfterFailure::RetryAt(now.checked_add_signed(delay).unwrap_or(DateTime::<Utc>::MAX_UTC))
    }
}

/// The languages that have templates, by their tags; the first is the fallback (contract §4.1: `en-US`).
pub fn choose_language<'a>(requested: &[Option<&str>], available: &[&'a str]) -> &'a str {
    let fallback = available.first().copied().unwrap_or("en-US");
    for tag in requested.iter().flatten() {
        let tag = tag.trim();
        if tag.is_empty() {
            continue;
        }
        if let Some(exact) = available.iter().find(|a| a.eq_ignore_ascii_case(tag)) {
            return exact;
        }
        // `de`, `de-AT` and `de-DE` all find the German templates.
        let primary = tag.split(['-', '_']).next().unwrap_or(tag);
        if let Some(same) = available.iter().find(|a| a.split('-').next().is_some_and(|p| p.eq_ignore_ascii_case(primary))) {
            return same;
        }
    }
    fallback
}

const NIL_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The secret in a "Block future invitations" link; it names a tenant and an address, and only
/// its hash is stored, like a redeem ticket's.
#[derive(Clone, PartialEq, Eq)]
pub struct UnsubscribeToken(String);

impl UnsubscribeToken {
    pub fn generate() -> Self {
        UnsubscribeToken(crate::ticket::RedeemTicket::generate().expose().to_string())
    }

    pub fn from_link(text: &str) -> Self {
        UnsubscribeToken(text.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        crate::ticket::sha256_hex(self.0.as_bytes())
    }
}

impl std::fmt::Debug for UnsubscribeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeToken([redacted])")
    }
}

/// The initiator of entries the delivery worker writes: no user or app asked for them.
pub fn delivery_initiator() -> Initiator {
    Initiator::App { app_id: NIL_ID.to_string(), display_name: "guestlist mail delivery".into(), service_principal_id: NIL_ID.to_string() }
}

/// An `Invited Users` entry about a mail to `address`, targeting the guest when known.
#[allow(clippy::too_many_arguments)]
pub fn mail_audit(
    mail_tenant: TenantId,
    activity: &str,
    result: &str,
    initiated_by: Initiator,
    correlation_id: ObjectId,
    user: Option<ObjectId>,
    address: &str,
    at: DateTime<Utc>,
) -> AuditRecord {
    let target = TargetResource {
        id: user.map(|id| id.to_string()).unwrap_or_default(),
        display_name: Some(address.to_string()),
        resource_type: "User".into(),
        user_principal_name: None,
        modified_properties: Vec::new(),
    };
    let mut record = AuditRecord::invited_users(mail_tenant, activity, "Other", initiated_by, correlation_id, target, at);
    record.result = result.to_string();
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let policy = RetryPolicy { first_delay: Duration::from_secs(5), max_delay: Duration::from_secs(600), max_attempts: 10 };
        let now = Utc::now();
        let wait = |attempts| match policy.after_failure(attempts, now) {
            AfterFailure::RetryAt(at) => (at - now).num_seconds(),
            AfterFailure::GiveUp => -1,
        };
        assert_eq!([wait(1), wait(2), wait(3), wait(7), wait(8), wait(9)], [5, 10, 20, 320, 600, 600]);
        assert_eq!(wait(10), -1);
        assert_eq!(policy.after_failure(u32::MAX, now), AfterFailure::GiveUp);
        let huge = RetryPolicy { max_attempts: u32::MAX, ..policy };
        assert!(matches!(huge.after_failure(200, now), AfterFailure::RetryAt(_)));
    }

    #[test]
    fn language_falls_back_by_primary_tag_then_to_the_first() {
        let available = ["en-US", "de-DE"];
        assert_eq!(choose_language(&[Some("de-DE")], &available), "de-DE");
        assert_eq!(choose_language(&[Some("DE")], &available), "de-DE");
        assert_eq!(choose_language(&[Some("de-AT")], &available), "de-DE");
        assert_eq!(choose_language(&[Some("fr-FR"), Some("de")], &available), "de-DE");
        assert_eq!(choose_language(&[Some("xx"), None], &available), "en-US");
        assert_eq!(choose_language(&[], &available), "en-US");
    }

    #[test]
    fn states_round_trip_and_debug_hides_bodies() {
        for state in
            [DeliveryState::Pending, DeliveryState::Sent, DeliveryState::Failed, DeliveryState::NotConfigured, DeliveryState::Superseded]
        {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
        let mail = OutgoingMail {
            id: ObjectId::new_random(),
            tenant_id: ObjectId::new_random(),
            kind: MailKind::OneTimePasscode,
            invitation_id: None,
            user_id: None,
            sender_name: "Contoso".into(),
            sender_address: "invites@contoso.example".into(),
            recipient: "a@example.com".into(),
            cc: None,
            reply_to: None,
            subject: "code".into(),
            text_body: "12345678".into(),
            html_body: "<p>12345678</p>".into(),
            language: "en-US".into(),
            created_date_time: Utc::now(),
        };
        assert!(!format!("{mail:?}").contains("12345678"));
    }
}
