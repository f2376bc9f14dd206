use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ObjectId, TenantId};
use crate::permissions::AppPermission;

/// What reset redemption does to a guest's UPN (DECISIONS 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum UpnOnReset {
    /// The 2021 seed: the UPN becomes the `#EXT#` form of the new email.
    #[default]
    FollowNewEmail,
    /// Entra since 2022: the UPN stays, only the sign-in email moves.
    Keep,
}

impl UpnOnReset {
    pub fn as_str(&self) -> &'static str {
        match self {
            UpnOnReset::FollowNewEmail => "followNewEmail",
            UpnOnReset::Keep => "keep",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "followNewEmail" => Some(UpnOnReset::FollowNewEmail),
            "keep" => Some(UpnOnReset::Keep),
            _ => None,
        }
    }
}

/// A fixed-window request limit on `/invitations` per tenant, across apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationThrottle {
    pub requests: u32,
    pub window_seconds: u32,
}

impl InvitationThrottle {
    /// Graph's invitation manager limit: 150 requests per 5 seconds per tenant (contract §6.3).
    pub const GRAPH: InvitationThrottle = InvitationThrottle { requests: 150, window_seconds: 5 };

    /// The window `at` falls in, as seconds since the epoch of its start.
    pub fn window_start(&self, at: DateTime<Utc>) -> i64 {
        let width = i64::from(self.window_seconds.max(1));
        at.timestamp().div_euclid(width) * width
    }

    /// Whole seconds until the window `at` falls in ends (at least 1), for `Retry-After`.
    pub fn retry_after_seconds(&self, at: DateTime<Utc>) -> u64 {
        let end = self.window_start(at) + i64::from(self.window_seconds.max(1));
        let remaining_ms = end * 1000 - at.timestamp_millis();
        u64::try_from((remaining_ms + 999) / 1000).unwrap_or(1).max(1)
    }

    /// Parses `REQUESTS/SECONDS`, e.g. `150/5`.
    pub fn parse(text: &str) -> Option<Self> {
        let (requests, seconds) = text.split_once('/')?;
        let throttle = InvitationThrottle { requests: requests.trim().parse().ok()?, window_seconds: seconds.trim().parse().ok()? };
        (throttle.requests > 0 && (1..=86_400).contains(&throttle.window_seconds)).then_some(throttle)
    }
}

/// A directory (tenant) hosted by this server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    /// The initial `*.onmicrosoft.com` domain; guest UPNs end in it.
    pub initial_domain: String,
    pub upn_on_reset: UpnOnReset,
    /// Redeem links never expire in Graph (DECISIONS 3); a tenant may set a lifetime.
    pub invitation_lifetime_days: Option<u32>,
    /// Off by default; when set, `/invitations` answers 429 beyond the limit (DECISIONS 17).
    pub invitation_throttle: Option<InvitationThrottle>,
    pub created_date_time: DateTime<Utc>,
}

impl Tenant {
    pub fn invitation_expiry(&self, issued: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.invitation_lifetime_days.map(|days| issued + Duration::days(i64::from(days)))
    }

    /// A tenant segment in a URL may be the tenant id or one of its domains.
    pub fn is_named_by(&self, segment: &str) -> bool {
        segment.eq_ignore_ascii_case(&self.initial_domain) || ObjectId::parse(segment).map(|id| id == self.id).unwrap_or(false)
    }
}

/// An app registration with its service principal in one tenant, holding application permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub tenant_id: TenantId,
    /// `appId`, the OAuth client id.
    pub app_id: ObjectId,
    /// The service principal's object id: the `oid` of the app's tokens.
    pub service_principal_id: ObjectId,
    pub display_name: String,
    /// SHA-256 of the client secret; the secret itself is never stored.
    pub secret_hash: String,
    pub app_roles: Vec<AppPermission>,
    pub created_date_time: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_are_aligned_and_retry_after_counts_to_their_end() {
        let throttle = InvitationThrottle::GRAPH;
        let at = Utc.timestamp_millis_opt(1_700_000_003_200).unwrap();
        assert_eq!(throttle.window_start(at), 1_700_000_000);
        assert_eq!(throttle.retry_after_seconds(at), 2);
        let at_start = Utc.timestamp_millis_opt(1_700_000_005_000).unwrap();
        assert_eq!(throttle.window_start(at_start), 1_700_000_005);
        assert_eq!(throttle.retry_after_seconds(at_start), 5);
    }

    #[test]
    fn parses_requests_per_seconds() {
        assert_eq!(InvitationThrottle::parse("150/5"), Some(InvitationThrottle::GRAPH));
        for bad in ["", "150", "0/5", "5/0", "a/b", "1/100000"] {
            assert_eq!(InvitationThrottle::parse(bad), None, "{bad}");
        }
    }
}
