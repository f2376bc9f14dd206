//! Tenants and app registrations: the demo tenant created on first start, and apps made by
//! `guestlist app add`.

use chrono::Utc;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::AppPermission;
use guestlist_domain::tenant::{Application, UpnOnReset};
use guestlist_domain::Tenant;
use guestlist_identity::tokens::{generate_client_secret, hash_client_secret, verify_client_secret};
use guestlist_store::{Conflict, StoreError};

use guestlist_domain::roles::DirectoryRoleTemplate;
use guestlist_store::UserKey;
use rand::distributions::{Alphanumeric, DistString};

use super::users::{NewMember, UserChanges};
use super::{Caller, CallerPrincipal, ServiceError, ServiceResult, Services};

/// A password that meets Graph's complexity rule: letters and digits around a symbol.
fn generate_password() -> String {
    loop {
        let mut rng = rand::thread_rng();
        let password = format!("{}-{}", Alphanumeric.sample_string(&mut rng, 10), Alphanumeric.sample_string(&mut rng, 6));
        if guestlist_domain::signin::password_meets_complexity(&password) {
            return password;
        }
    }
}

pub const DEMO_TENANT_NAME: &str = "Contoso";
pub const DEMO_TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
pub const DEMO_APP_NAME: &str = "guestlist demo app";
/// The public client `guestlist login` uses.
pub const CLI_APP_NAME: &str = "guestlist CLI";
/// The first-party client the admin console signs people in to.
pub const CONSOLE_APP_NAME: &str = "guestlist admin console";
/// The demo tenant's Global Administrator, local part of its UPN.
pub const DEMO_ADMIN_NAME: &str = "admin";

/// The demo tenant's administrator and its password in clear (only shown to the operator).
pub struct DemoAdmin {
    pub user_principal_name: String,
    pub password: String,
}

/// An app and its secret in clear, which exists only until it is shown to the operator.
pub struct AppCredentials {
    pub tenant: Tenant,
    pub app: Application,
    pub client_secret: String,
}

impl std::fmt::Debug for DemoAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAdmin")
            .field("user_principal_name", &self.user_principal_name)
            .field("password", &guestlist_identity::REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("tenant", &self.tenant.id)
            .field("app_id", &self.app.app_id)
            .field("client_secret", &guestlist_identity::REDACTED)
            .finish()
    }
}

impl Services {
    /// The first tenant, created with an all-permissions app on first start. With a known
    /// secret (from the previous connection.json) that still matches, it is kept; otherwise the
    /// demo app gets a new one, since only its hash is stored.
    pub async fn ensure_demo_tenant(&self, known_secret: Option<(&str, &str)>) -> ServiceResult<AppCredentials> {
        let tenant = match self.store.tenants().await?.into_iter().next() {
            Some(tenant) => tenant,
            None => {
                let tenant = Tenant {
                    id: ObjectId::new_random(),
                    display_name: DEMO_TENANT_NAME.into(),
                    initial_domain: DEMO_TENANT_DOMAIN.into(),
                    upn_on_reset: UpnOnReset::default(),
                    invitation_lifetime_days: None,
                    invitation_throttle: None,
                    created_date_time: Utc::now(),
                };
                match self.store.insert_tenant(&tenant).await {
                    Ok(()) => tenant,
                    // Another replica created it first.
                    Err(StoreError::Conflict(Conflict::Duplicate)) => {
                        self.store.tenant(DEMO_TENANT_DOMAIN).await?.ok_or_else(|| ServiceError::Internal("demo tenant vanished".into()))?
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        };
        let apps = self.store.applications(tenant.id).await?;
        let Some(app) = apps.into_iter().find(|a| a.display_name == DEMO_APP_NAME) else {
            return self.add_application(&tenant, DEMO_APP_NAME, AppPermission::ALL.to_vec()).await;
        };
        if let Some((client_id, secret)) = known_secret {
            if client_id.eq_ignore_ascii_case(&app.app_id.to_string()) && verify_client_secret(secret, &app.secret_hash) {
                return Ok(AppCredentials { tenant, app, client_secret: secret.to_string() });
            }
        }
        let client_secret = generate_client_secret();
        self.store.set_application_secret_hash(tenant.id, app.app_id, &hash_client_secret(&client_secret)).await?;
        Ok(AppCredentials { tenant, app, client_secret })
    }

    /// The "guestlist CLI" public client of a tenant, registered once: `guestlist login` signs
    /// people in through it with the device code flow. It has no application permissions and no
    /// secret (public clients send none; `tokens::is_public_client`). Earlier versions gave it a
    /// secret nobody knew, which is dropped here.
    pub async fn ensure_cli_app(&self, tenant: &Tenant) -> ServiceResult<Application> {
        if let Some(mut app) = self.store.applications(tenant.id).await?.into_iter().find(|a| a.display_name == CLI_APP_NAME) {
            if !app.secret_hash.is_empty() {
                self.store.set_application_secret_hash(tenant.id, app.app_id, "").await?;
                app.secret_hash.clear();
            }
            return Ok(app);
        }
        self.register_application(tenant, CLI_APP_NAME, Vec::new(), String::new()).await
    }

    /// The admin console's client of a tenant, registered once (no application permissions;
    /// what a signed-in person may do comes from the person's directory roles).
    pub async fn ensure_console_app(&self, tenant: &Tenant) -> ServiceResult<Application> {
        if let Some(app) = self.store.applications(tenant.id).await?.into_iter().find(|a| a.display_name == CONSOLE_APP_NAME) {
            return Ok(app);
        }
        Ok(self.add_application(tenant, CONSOLE_APP_NAME, Vec::new()).await?.app)
    }

    /// The demo tenant's Global Administrator `admin@{domain}`, created on first start through
    /// the same services Graph's `POST /users` and role assignment use, acting as the demo app.
    /// A known password (from the previous connection.json) that still matches is kept; otherwise
    /// the account gets a new one, as the demo app's secret does.
    pub async fn ensure_demo_admin(&self, demo: &AppCredentials, known_password: Option<&str>) -> ServiceResult<DemoAdmin> {
        let tenant = &demo.tenant;
        let upn = format!("{DEMO_ADMIN_NAME}@{}", tenant.initial_domain);
        let caller = Caller {
            tenant: tenant.clone(),
            principal: CallerPrincipal::App {
                app_id: demo.app.app_id,
                service_principal_id: demo.app.service_principal_id,
                display_name: demo.app.display_name.clone(),
                roles: demo.app.app_roles.clone(),
            },
        };
        let existing = self.store.user(tenant.id, &UserKey::UserPrincipalName(upn.clone())).await?;
        if let Some(user) = existing {
            if let Some(known) = known_password {
                if self.password_is(tenant.id, user.id, known).await? {
                    return Ok(DemoAdmin { user_principal_name: upn, password: known.to_string() });
                }
            }
            let password = generate_password();
            let hash = self.hash_password(password.clone()).await?;
            self.store.set_user_password(tenant.id, user.id, &hash, false, Utc::now()).await?;
            return Ok(DemoAdmin { user_principal_name: upn, password });
        }
        let password = generate_password();
        let member = NewMember {
            display_name: "Demo Admin".into(),
            user_principal_name: upn.clone(),
            mail_nickname: DEMO_ADMIN_NAME.into(),
            account_enabled: true,
            changes: UserChanges::default(),
        };
        let user = match self.create_member(&caller, member, password.clone(), false).await {
            Ok(user) => user,
            // Another replica created it first: its password is the one in its connection.json.
            Err(ServiceError::UniqueValueTaken(_)) => return Box::pin(self.ensure_demo_admin(demo, known_password)).await,
            Err(other) => return Err(other),
        };
        match self.assign_role(&caller, user.id, DirectoryRoleTemplate::GlobalAdministrator, "already assigned").await {
            Ok(_) | Err(ServiceError::InvalidRequest(_)) => {}
            Err(other) => return Err(other),
        }
        Ok(DemoAdmin { user_principal_name: upn, password })
    }

    /// A confidential app with a new secret.
    pub async fn add_application(&self, tenant: &Tenant, name: &str, permissions: Vec<AppPermission>) -> ServiceResult<AppCredentials> {
        let client_secret = generate_client_secret();
        let app = self.register_application(tenant, name, permissions, hash_client_secret(&client_secret)).await?;
        Ok(AppCredentials { tenant: tenant.clone(), app, client_secret })
    }

    /// An empty `secret_hash` registers a public client.
    async fn register_application(
        &self,
        tenant: &Tenant,
        name: &str,
        permissions: Vec<AppPermission>,
        secret_hash: String,
    ) -> ServiceResult<Application> {
        let app = Application {
            tenant_id: tenant.id,
            app_id: ObjectId::new_random(),
            service_principal_id: ObjectId::new_random(),
            display_name: name.to_string(),
            secret_hash,
            app_roles: permissions,
            created_date_time: Utc::now(),
        };
        self.store.insert_application(&app).await?;
        Ok(app)
    }
}
