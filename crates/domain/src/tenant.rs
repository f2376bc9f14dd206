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
