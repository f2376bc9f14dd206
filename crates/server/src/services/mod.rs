//! Services: the lifecycle operations as transactions over the store. They check who may do
//! what, apply the domain rules, and never know about HTTP.

pub mod audit_log;
pub mod directory_roles;
mod error;
pub mod groups;
pub mod invitations;
pub mod mail;
pub mod policies;
pub mod redemption;
pub mod signin;
pub mod sponsors;
pub mod tenants;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use guestlist_domain::audit::Initiator;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::{delegated_scope_permits, Action, AppPermission};
use guestlist_domain::Tenant;
use guestlist_store::Store;

pub use error::ServiceError;

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Who is calling, as established from a validated access token.
/// Delegated callers (a signed-in user with scopes and directory roles) come in a later issue
/// and add a variant here; services authorize through [`Caller::may`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub principal: CallerPrincipal,
}

#[derive(Debug, Clone)]
pub enum CallerPrincipal {
    App {
        app_id: ObjectId,
        service_principal_id: ObjectId,
        display_name: String,
        roles: Vec<AppPermission>,
    },
    /// A signed-in user acting through a client with delegated scopes (`scp`), with the directory
    /// roles the user holds and whether it is a guest, read when its token was validated.
    User {
        user_id: ObjectId,
        user_principal_name: String,
        app_id: ObjectId,
        scopes: Vec<String>,
        roles: Vec<guestlist_domain::roles::DirectoryRoleTemplate>,
        is_guest: bool,
    },
}

impl Caller {
    /// The client id of the app the caller acts through.
    pub fn app_id(&self) -> ObjectId {
        match &self.principal {
            CallerPrincipal::App { app_id, .. } | CallerPrincipal::User { app_id, .. } => *app_id,
        }
    }

    pub fn may(&self, action: Action) -> bool {
        match &self.principal {
            CallerPrincipal::App { roles, .. } => action.permitted_for_app(roles),
            // Delegated: the scope AND the user's directory roles (contract §1.5, §3.5).
            CallerPrincipal::User { scopes, .. } => delegated_scope_permits(action, scopes) && self.role_permits(action),
        }
    }

    /// The directory-role half of a delegated check: the permission matrix
    /// (`guestlist_domain::authorization`) with the tenant's defaults; the invitation service adds
    /// `allowInvitesFrom` and a reset target's roles (`services::policies::check`).
    fn role_permits(&self, action: Action) -> bool {
        use guestlist_domain::authorization::{authorize, Context, Principal};
        match &self.principal {
            CallerPrincipal::App { .. } => true,
            CallerPrincipal::User { roles, is_guest, .. } => {
                authorize(Principal::User { scope_granted: true, roles, is_guest: *is_guest }, action, &Context::default()).is_ok()
            }
        }
    }

    pub fn initiator(&self) -> Initiator {
        match &self.principal {
            CallerPrincipal::App { app_id, service_principal_id, display_name, .. } => Initiator::App {
                app_id: app_id.to_string(),
                display_name: display_name.clone(),
                service_principal_id: service_principal_id.to_string(),
            },
            CallerPrincipal::User { user_id, user_principal_name, .. } => {
                Initiator::User { id: user_id.to_string(), user_principal_name: user_principal_name.clone() }
            }
        }
    }
}

/// Shared handles the services need.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// The origin this server is reached at; redeem links and token issuers use it.
    pub public_origin: String,
    pub keys: tokens::KeyCache,
    /// SMTP settings and the outbox worker's wake-up; not configured by default.
    pub mail: crate::mail::MailSettings,
    /// When this process last pruned spent OAuth grants.
    pub grant_pruning: signin::GrantPruning,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, public_origin: String) -> Self {
        Services {
            store,
            public_origin,
            keys: tokens::KeyCache::default(),
            mail: crate::mail::MailSettings::default(),
            grant_pruning: signin::GrantPruning::default(),
        }
    }
}
