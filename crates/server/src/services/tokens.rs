//! The client-credentials grant and the validation of Graph access tokens.

use std::sync::Arc;

use chrono::Utc;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::Tenant;
use guestlist_identity::oauth::{check_client_credentials_scope, TokenEndpointError};
use guestlist_identity::signing::{generate_signing_key, Keyring};
use guestlist_identity::tokens::{verify_client_secret, AppTokenRequest, IssuedToken, Principal, TokenError};
use guestlist_store::SigningKeyRecord;
use tokio::sync::RwLock;

use guestlist_domain::policy::GuestUserRole;

use super::{Caller, CallerPrincipal, ServiceError, ServiceResult, Services};

/// What the token endpoint received (form fields; unknown ones such as `claims` are ignored).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    // The delegated grants (services/signin.rs).
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub device_code: Option<String>,
    /// MSAL's `client_info=1` asks for the `client_info` member.
    pub client_info: Option<String>,
}

/// Signing keys, cached. Keys are only ever added, so a token with an unknown `kid` triggers a
/// reload from the database: replicas converge without coordination.
#[derive(Clone, Default)]
pub struct KeyCache(Arc<RwLock<Option<Arc<Keyring>>>>);

/// Why the token endpoint refused: a request error in Entra's terms, or a fault of ours.
#[derive(Debug)]
pub enum TokenFailure {
    Endpoint(TokenEndpointError),
    Service(ServiceError),
}

impl From<TokenEndpointError> for TokenFailure {
    fn from(error: TokenEndpointError) -> Self {
        TokenFailure::Endpoint(error)
    }
}

impl From<ServiceError> for TokenFailure {
    fn from(error: ServiceError) -> Self {
        TokenFailure::Service(error)
    }
}

/// Why a Graph request's bearer token was refused.
#[derive(Debug)]
pub enum AuthError {
    Token(TokenError),
    UnknownTenant,
    Service(ServiceError),
}

impl From<ServiceError> for AuthError {
    fn from(error: ServiceError) -> Self {
        AuthError::Service(error)
    }
}

impl Services {
    /// Makes sure at least one signing key exists (first start, any replica).
    pub async fn ensure_signing_key(&self) -> ServiceResult<()> {
        if self.store.signing_keys().await?.is_empty() {
            let key = generate_signing_key().map_err(|e| ServiceError::Internal(e.to_string()))?;
            self.store
                .insert_signing_key(&SigningKeyRecord { kid: key.kid, private_key_pem: key.private_key_pem, created_date_time: Utc::now() })
                .await?;
        }
        Ok(())
    }

    pub(super) async fn keyring(&self, reload: bool) -> ServiceResult<Arc<Keyring>> {
        if !reload {
            if let Some(ring) = self.keys.0.read().await.clone() {
                return Ok(ring);
            }
        }
        let records = self.store.signing_keys().await?;
        let ring = Keyring::new(records.into_iter().map(|r| (r.kid, r.private_key_pem, r.created_date_time)))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let ring = Arc::new(ring);
        *self.keys.0.write().await = Some(ring.clone());
        Ok(ring)
    }

    pub async fn jwks(&self) -> ServiceResult<serde_json::Value> {
        Ok(self.keyring(false).await?.jwks())
    }

    /// `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`. Checks run in
    /// Entra's order: tenant, grant type, client id, scope, the client, its secret.
    pub async fn client_credentials(&self, tenant_segment: &str, form: ClientCredentials) -> Result<IssuedToken, TokenFailure> {
        let tenant = self.store.tenant(tenant_segment).await.map_err(ServiceError::from)?;
        let tenant = tenant.ok_or_else(|| TokenEndpointError::UnknownTenant { tenant: tenant_segment.to_string() })?;
        match form.grant_type.as_deref() {
            Some("client_credentials") => {}
            Some(other) => return Err(TokenEndpointError::UnsupportedGrantType { grant_type: other.to_string() }.into()),
            None => return Err(TokenEndpointError::MissingParameter { name: "grant_type" }.into()),
        }
        let client_id = form.client_id.as_deref().ok_or(TokenEndpointError::MissingParameter { name: "client_id" })?;
        check_client_credentials_scope(form.scope.as_deref(), tenant_segment)?;
        let unknown_client = || TokenEndpointError::UnknownClient { client_id: client_id.to_string(), tenant: tenant_segment.to_string() };
        let app_id = ObjectId::parse(client_id).map_err(|_| unknown_client())?;
        let app = self.store.application(tenant.id, app_id).await.map_err(ServiceError::from)?.ok_or_else(unknown_client)?;
        let secret = form.client_secret.as_deref().filter(|s| !s.is_empty()).ok_or(TokenEndpointError::MissingClientSecret)?;
        if !verify_client_secret(secret, &app.secret_hash) {
            return Err(TokenEndpointError::InvalidClientSecret { app_id: client_id.to_string() }.into());
        }
        let ring = self.keyring(false).await?;
        let request = AppTokenRequest {
            tenant_id: tenant.id,
            app_id: app.app_id,
            service_principal_id: app.service_principal_id,
            app_display_name: app.display_name.clone(),
            roles: app.app_roles.clone(),
            issued_at: Utc::now(),
        };
        ring.issue_app_token(&request, &self.public_origin).map_err(|e| ServiceError::Internal(e.to_string()).into())
    }

    /// Establishes the caller of a Graph request from its bearer token.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, AuthError> {
        let token = bearer.filter(|t| !t.is_empty()).ok_or(AuthError::Token(TokenError::Missing))?;
        let validated = match self.keyring(false).await?.validate(token, &self.public_origin) {
            // A key another replica added since we loaded ours.
            Err(TokenError::UnknownSigningKey) => self.keyring(true).await?.validate(token, &self.public_origin),
            other => other,
        }
        .map_err(AuthError::Token)?;
        let tenant: Tenant =
            self.store.tenant(&validated.tenant_id.to_string()).await.map_err(ServiceError::from)?.ok_or(AuthError::UnknownTenant)?;
        let principal = match validated.principal {
            Principal::App { service_principal_id, display_name } => CallerPrincipal::App {
                app_id: validated.app_id,
                service_principal_id,
                display_name: display_name.unwrap_or_default(),
                roles: validated.roles,
            },
            Principal::User { user_id, upn } => {
                // A deleted or disabled user's tokens stop working at once.
                let user = self.store.user(tenant.id, &guestlist_store::UserKey::Id(user_id)).await.map_err(ServiceError::from)?;
                let user = user.filter(|u| u.account_enabled).ok_or(AuthError::Token(TokenError::Expired))?;
                let roles = self.store.role_assignments(tenant.id, Some(user_id)).await.map_err(ServiceError::from)?;
                let is_guest = user.user_type == guestlist_domain::user::UserType::Guest;
                // Only a guest's reads depend on the tenant's guest access level.
                let guest_user_role =
                    if is_guest { self.load_authorization_policy(tenant.id).await?.guest_user_role } else { GuestUserRole::default() };
                CallerPrincipal::User {
                    user_id,
                    user_principal_name: upn.unwrap_or_else(|| user.user_principal_name.to_string()),
                    app_id: validated.app_id,
                    scopes: validated.scopes,
                    roles: roles.into_iter().map(|assignment| assignment.role).collect(),
                    is_guest,
                    guest_user_role,
                }
            }
        };
        Ok(Caller { tenant, principal })
    }
}
