//! Services: the lifecycle operations as transactions over the store. They check who may do
//! what, apply the domain rules, and never know about HTTP.

pub mod audit_log;
pub mod directory_roles;
mod error;
pub mod groups;
pub mod hashing;
mod invitation_gate;
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
use guestlist_domain::authorization::Reach;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::{delegated_scope_permits, own_profile_scope_permits, Action, AppPermission};
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
        /// The tenant's `guestUserRoleId` when the user is a guest (what it may read).
        guest_user_role: guestlist_domain::policy::GuestUserRole,
    },
}

impl Caller {
    /// The client id of the app the caller acts through.
    pub fn app_id(&self) -> ObjectId {
        match &self.principal {
            CallerPrincipal::App { app_id, .. } | CallerPrincipal::User { app_id, .. } => *app_id,
        }
    }

    /// Whether the caller may perform `action` on a collection (listing, counting, writing).
    pub fn may(&self, action: Action) -> bool {
        self.may_reach(action, Reach::Collection)
    }

    /// Whether the caller may perform the read `action` on what `reach` names; only guests'
    /// answers depend on it (`guestUserRoleId`, contract §5.3).
    pub fn may_reach(&self, action: Action, reach: Reach) -> bool {
        match &self.principal {
            CallerPrincipal::App { roles, .. } => action.permitted_for_app(roles),
            // Delegated: the scope AND the user's directory roles (contract §1.5, §3.5).
            CallerPrincipal::User { scopes, .. } => {
                let own_profile = reach == Reach::OwnObject && own_profile_scope_permits(action, scopes);
                (delegated_scope_permits(action, scopes) || own_profile) && self.role_permits(action, reach)
            }
        }
    }

    /// What reading `key` reaches: the caller's own object, or another one.
    pub fn reach_of(&self, key: &guestlist_store::UserKey) -> Reach {
        let own = match (&self.principal, key) {
            (CallerPrincipal::User { user_id, .. }, guestlist_store::UserKey::Id(id)) => user_id == id,
            (CallerPrincipal::User { user_principal_name, .. }, guestlist_store::UserKey::UserPrincipalName(upn)) => {
                user_principal_name.eq_ignore_ascii_case(upn)
            }
            (CallerPrincipal::App { .. }, _) => false,
        };
        if own {
            Reach::OwnObject
        } else {
            Reach::OtherObject
        }
    }

    /// The directory-role half of a delegated check: the permission matrix
    /// (`guestlist_domain::authorization`) with the tenant's defaults and guest access level; the
    /// invitation service adds `allowInvitesFrom` and a reset target's roles (`services::policies::check`).
    fn role_permits(&self, action: Action, reach: Reach) -> bool {
        use guestlist_domain::authorization::{authorize, Context, Principal};
        match &self.principal {
            CallerPrincipal::App { .. } => true,
            CallerPrincipal::User { roles, is_guest, guest_user_role, .. } => {
                let context = Context { guest_user_role: *guest_user_role, reach, ..Context::default() };
                authorize(Principal::User { scope_granted: true, roles, is_guest: *is_guest }, action, &context).is_ok()
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
    /// The bounded executor every Argon2 hash and verification runs on.
    pub hashing: hashing::HashLimiter,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, public_origin: String) -> Self {
        Services {
            store,
            public_origin,
            keys: tokens::KeyCache::default(),
            mail: crate::mail::MailSettings::default(),
            grant_pruning: signin::GrantPruning::default(),
            hashing: hashing::HashLimiter::default(),
        }
    }
}
