use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{ObjectId, TenantId};

/// The secret in a redeem link. Only its hash is stored (DECISIONS 10).
#[derive(Clone, PartialEq, Eq)]
pub struct RedeemTicket(String);

impl RedeemTicket {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        RedeemTicket(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_link(text: &str) -> Self {
        RedeemTicket(text.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl std::fmt::Debug for RedeemTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedeemTicket([redacted])")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketState {
    Pending,
    Redeemed,
    /// Revoked by a later reset, re-invite or deletion (DECISIONS 2).
    Revoked,
}

impl TicketState {
    pub fn as_str(&self) -> &'static str {
        match self {
            TicketState::Pending => "pending",
            TicketState::Redeemed => "redeemed",
            TicketState::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(TicketState::Pending),
            "redeemed" => Some(TicketState::Redeemed),
            "revoked" => Some(TicketState::Revoked),
            _ => None,
        }
    }
}

/// One invitation: what `POST /invitations` created, with the hash of its redeem ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// The invitation id (the `user=` parameter of the redeem URL, contract §1.2).
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub user_id: ObjectId,
    pub email: String,
    pub redirect_url: String,
    pub ticket_hash: String,
    pub state: TicketState,
    pub reset_redemption: bool,
    pub send_invitation_message: bool,
    pub created_date_time: DateTime<Utc>,
    pub expires_date_time: Option<DateTime<Utc>>,
}

/// Why a redeem link cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefusal {
    AlreadyRedeemed,
    Revoked,
    Expired,
}

impl InvitationRecord {
    pub fn usable_at(&self, now: DateTime<Utc>) -> Result<(), TicketRefusal> {
        match self.state {
            TicketState::Redeemed => Err(TicketRefusal::AlreadyRedeemed),
            TicketState::Revoked => Err(TicketRefusal::Revoked),
            TicketState::Pending => match self.expires_date_time {
                Some(expiry) if expiry <= now => Err(TicketRefusal::Expired),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_random_and_hashed() {
        let a = RedeemTicket::generate();
        let b = RedeemTicket::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(a.hash().len(), 64);
        assert_eq!(RedeemTicket::from_link(a.expose()).hash(), a.hash());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn usability_follows_state_and_expiry() {
        let now = Utc::now();
        let mut record = InvitationRecord {
            id: ObjectId::new_random(),
            tenant_id: ObjectId::new_random(),
            user_id: ObjectId::new_random(),
            email: "a@example.com".into(),
            redirect_url: "https://example.com".into(),
            ticket_hash: String::new(),
            state: TicketState::Pending,
            reset_redemption: false,
            send_invitation_message: false,
            created_date_time: now,
            expires_date_time: None,
        };
        assert_eq!(record.usable_at(now), Ok(()));
        record.expires_date_time = Some(now);
        assert_eq!(record.usable_at(now), Err(TicketRefusal::Expired));
        record.state = TicketState::Revoked;
        assert_eq!(record.usable_at(now), Err(TicketRefusal::Revoked));
        record.state = TicketState::Redeemed;
        assert_eq!(record.usable_at(now), Err(TicketRefusal::AlreadyRedeemed));
    }
}
