//! The client-credentials grant, the token endpoint's client authentication, the validation of
//! Graph access tokens, and the signing keys (sealed at rest, cached, reloaded sparingly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::tenant::Application;
use guestlist_domain::Tenant;
use guestlist_identity::oauth::{check_client_credentials_scope, TokenEndpointError};
use guestlist_identity::signing::{generate_signing_key, Keyring};
use guestlist_identity::tokens::{verify_client_secret, AppTokenRequest, IssuedToken, Principal, TokenError};
use guestlist_identity::{redacted_option, KeyEncryptionKey};
use guestlist_store::{Conflict, SigningKeyRecord, SigningKeyReseal, StoreError};
use tokio::sync::RwLock;

use guestlist_domain::policy::GuestUserRole;

use super::{Caller, CallerPrincipal, ServiceError, ServiceResult, Services};

/// What the token endpoint received (form fields; unknown ones such as `claims` are ignored).
/// `Debug` shows which credentials came, never their values.
#[derive(Clone, Default)]
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

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted_option(&self.client_secret))
            .field("scope", &self.scope)
            .field("code", &redacted_option(&self.code))
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &redacted_option(&self.code_verifier))
            .field("refresh_token", &redacted_option(&self.refresh_token))
            .field("device_code", &redacted_option(&self.device_code))
            .field("client_info", &self.client_info)
            .finish()
    }
}

/// The shortest time between two reloads of the signing keys caused by tokens naming a kid we
/// do not hold: anyone can send such tokens, and each reload reads every key and opens it.
pub const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Signing keys, cached, and the key-encryption key that opens them. Keys are only ever added,
/// so a token with an unknown `kid` triggers a reload from the database (at most once per
/// [`UNKNOWN_KID_RELOAD_INTERVAL`]): replicas converge without coordination.
#[derive(Clone, Default)]
pub struct KeyCache {
    ring: Arc<RwLock<Option<Arc<Keyring>>>>,
    key_encryption: Option<KeyEncryptionKey>,
    unknown_kid_reloads: Arc<ReloadLimiter>,
    /// Loads from the database, for tests that count them.
    loads: Arc<AtomicU64>,
}

impl KeyCache {
    pub fn new(key_encryption: KeyEncryptionKey) -> KeyCache {
        KeyCache { key_encryption: Some(key_encryption), ..KeyCache::default() }
    }

    /// How many times the keys were read from the database by this process.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    pub fn key_encryption_key_id(&self) -> Option<&str> {
        self.key_encryption.as_ref().map(KeyEncryptionKey::id)
    }
}

/// Allows one event per interval; the clock is the caller's, so tests step it.
#[derive(Debug, Default)]
pub struct ReloadLimiter {
    last: Mutex<Option<Instant>>,
}

impl ReloadLimiter {
    /// Whether an event at `now` may happen; if so it is counted.
    pub fn allow(&self, now: Instant, interval: Duration) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match *last {
            Some(previous) if now.saturating_duration_since(previous) < interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

/// Why the signing keys could not be prepared at start.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeySetupError {
    /// The stored keys were sealed by another key-encryption key: the operator's configuration.
    #[error(
        "the signing keys in the database are encrypted with key-encryption key {stored}, but this server was given key {configured} \
         (from {source_name}); start it with the key the database was set up with (every replica needs the same key; an interrupted \
         `guestlist keys rotate-encryption-key` leaves the new key in key-encryption.key.new)"
    )]
    WrongKey { stored: String, configured: String, source_name: String },
    #[error("{0}")]
    Service(#[from] ServiceError),
}

impl From<StoreError> for SigningKeySetupError {
    fn from(error: StoreError) -> Self {
        SigningKeySetupError::Service(error.into())
    }
}

/// Why the token endpoint refused/// Why the token endpoint refused: a request error in Entra's terms, or a fault of ours.
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
    fn key_encryption_key(&self) -> ServiceResult<&KeyEncryptionKey> {
        self.keys.key_encryption.as_ref().ok_or_else(|| ServiceError::Internal("no key-encryption key configured".into()))
    }

    /// At start (any replica): creates the first signing key if there is none, seals rows stored
    /// in plain PEM by earlier versions, and checks that every key opens with this server's
    /// key-encryption key. `source_name` says where that key came from, for the error.
    pub async fn prepare_signing_keys(&self, source_name: &str) -> Result<(), SigningKeySetupError> {
        let kek = self.key_encryption_key()?;
        // Two rounds: a replica starting at the same time may seal the plain rows first.
        for _ in 0..2 {
            let records = self.store.signing_keys().await?;
            if let Some(foreign) = records.iter().filter_map(|r| r.key_encryption_key_id.as_deref()).find(|id| *id != kek.id()) {
                return Err(SigningKeySetupError::WrongKey {
                    stored: foreign.to_string(),
                    configured: kek.id().to_string(),
                    source_name: source_name.to_string(),
                });
            }
            if records.is_empty() {
                let key = generate_signing_key().map_err(|e| ServiceError::Internal(e.to_string()))?;
                let sealed = kek.seal(&key.kid, &key.private_key_pem).map_err(|e| ServiceError::Internal(e.to_string()))?;
                let record = SigningKeyRecord {
                    kid: key.kid,
                    private_key: sealed,
                    key_encryption_key_id: Some(kek.id().to_string()),
                    created_date_time: Utc::now(),
                };
                self.store.insert_signing_key(&record).await?;
                break;
            }
            let plain: Vec<SigningKeyReseal> = records
                .iter()
                .filter(|r| r.key_encryption_key_id.is_none())
                .map(|r| reseal(kek, r, &r.private_key))
                .collect::<ServiceResult<_>>()?;
            if plain.is_empty() {
                break;
            }
            match self.store.reseal_signing_keys(&plain).await {
                Ok(()) => {
                    tracing::info!(keys = plain.len(), key_encryption_key = kek.id(), "sealed the plain signing keys");
                    break;
                }
                Err(StoreError::Conflict(Conflict::StaleVersion)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        self.keyring(true).await?;
        Ok(())
    }

    /// Re-encrypts every signing key under `new` in one transaction (`guestlist keys
    /// rotate-encryption-key`); keys already sealed by `new` (a rerun) are left alone. How many
    /// were re-encrypted.
    pub async fn reseal_signing_keys(&self, current: &KeyEncryptionKey, new: &KeyEncryptionKey) -> ServiceResult<usize> {
        let records = self.store.signing_keys().await?;
        let mut reseals = Vec::new();
        for record in records.iter().filter(|r| r.key_encryption_key_id.as_deref() != Some(new.id())) {
            let pem = open_record(current, record)?;
            reseals.push(reseal(new, record, &pem)?);
        }
        if !reseals.is_empty() {
            self.store.reseal_signing_keys(&reseals).await?;
        }
        Ok(reseals.len())
    }

    pub(super) async fn keyring(&self, reload: bool) -> ServiceResult<Arc<Keyring>> {
        if !reload {
            if let Some(ring) = self.keys.ring.read().await.clone() {
                return Ok(ring);
            }
        }
        let kek = self.key_encryption_key()?;
        let records = self.store.signing_keys().await?;
        self.keys.loads.fetch_add(1, Ordering::Relaxed);
        let opened =
            records.iter().map(|r| Ok((r.kid.clone(), open_record(kek, r)?, r.created_date_time))).collect::<ServiceResult<Vec<_>>>()?;
        let ring = Arc::new(Keyring::new(opened).map_err(|e| ServiceError::Internal(e.to_string()))?);
        *self.keys.ring.write().await = Some(ring.clone());
        Ok(ring)
    }

    /// Validates a bearer token with the cached keys; a kid they lack reloads them from the
    /// database (a key another replica added), rate-limited since anyone can send such tokens;
    /// `now` is the rate limit's clock.
    pub async fn validate_token(&self, token: &str, now: Instant) -> ServiceResult<Result<guestlist_identity::ValidatedToken, TokenError>> {
        let first = self.keyring(false).await?.validate(token, &self.public_origin);
        if first != Err(TokenError::UnknownSigningKey) || !self.keys.unknown_kid_reloads.allow(now, UNKNOWN_KID_RELOAD_INTERVAL) {
            return Ok(first);
        }
        Ok(self.keyring(true).await?.validate(token, &self.public_origin))
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
        authenticate_client(&app, &form)?;
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
        let validated = self.validate_token(token, Instant::now()).await?.map_err(AuthError::Token)?;
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

/// Whether an app is a public client (the CLI's device code and loopback sign-ins): it has no
/// secret. Every other app is confidential and authenticates on every grant.
pub fn is_public_client(app: &Application) -> bool {
    app.secret_hash.is_empty()
}

/// The one client authentication of the token endpoint, for every grant: a secret that is sent
/// must be the app's; a confidential client must send one (client credentials: AADSTS7000216;
/// the delegated grants: Entra's AADSTS7000218); only a public client may send none, and only
/// on a delegated grant.
pub fn authenticate_client(app: &Application, form: &ClientCredentials) -> Result<(), TokenEndpointError> {
    let client_credentials = form.grant_type.as_deref() == Some("client_credentials");
    match form.client_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) if verify_client_secret(secret, &app.secret_hash) => Ok(()),
        Some(_) => Err(TokenEndpointError::InvalidClientSecret { app_id: app.app_id.to_string() }),
        None if client_credentials => Err(TokenEndpointError::MissingClientSecret),
        None if is_public_client(app) => Ok(()),
        None => Err(TokenEndpointError::ConfidentialClientWithoutSecret),
    }
}

/// The private key PEM of a stored record: opened with `kek`, or as stored for a plain row.
fn open_record(kek: &KeyEncryptionKey, record: &SigningKeyRecord) -> ServiceResult<String> {
    match record.key_encryption_key_id.as_deref() {
        None => Ok(record.private_key.clone()),
        Some(id) if id == kek.id() => kek.open(&record.kid, &record.private_key).map_err(|e| ServiceError::Internal(e.to_string())),
        Some(other) => Err(ServiceError::Internal(format!(
            "signing key {} is encrypted with key-encryption key {other}, this server has {}",
            record.kid,
            kek.id()
        ))),
    }
}

fn reseal(kek: &KeyEncryptionKey, record: &SigningKeyRecord, pem: &str) -> ServiceResult<SigningKeyReseal> {
    Ok(SigningKeyReseal {
        kid: record.kid.clone(),
        from_key_encryption_key_id: record.key_encryption_key_id.clone(),
        private_key: kek.seal(&record.kid, pem).map_err(|e| ServiceError::Internal(e.to_string()))?,
        key_encryption_key_id: kek.id().to_string(),
    })
}

// `Debug` of the sign-in's answers: they carry codes and tokens, which never reach logs.

impl std::fmt::Debug for super::signin::DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &guestlist_identity::REDACTED)
            .field("user_code", &guestlist_identity::REDACTED)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for super::signin::ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession").field("access_token", &guestlist_identity::REDACTED).field("expires_in", &self.expires_in).finish()
    }
}

impl std::fmt::Debug for super::signin::DelegatedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedTokens")
            .field("access_token", &guestlist_identity::REDACTED)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &redacted_option(&self.refresh_token))
            .field("id_token", &redacted_option(&self.id_token))
            .field("client_info", &self.client_info)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(secret_hash: &str) -> Application {
        Application {
            tenant_id: ObjectId::new_random(),
            app_id: ObjectId::new_random(),
            service_principal_id: ObjectId::new_random(),
            display_name: "app".into(),
            secret_hash: secret_hash.into(),
            app_roles: Vec::new(),
            created_date_time: Utc::now(),
        }
    }

    fn form(grant_type: &str, secret: Option<&str>) -> ClientCredentials {
        ClientCredentials { grant_type: Some(grant_type.into()), client_secret: secret.map(str::to_string), ..ClientCredentials::default() }
    }

    #[test]
    fn confidential_clients_authenticate_on_every_grant_public_ones_never_get_app_tokens() {
        let secret = "abc1~secret";
        let confidential = app(&guestlist_identity::hash_client_secret(secret));
        let public = app("");
        for grant in ["client_credentials", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"] {
            assert_eq!(authenticate_client(&confidential, &form(grant, Some(secret))), Ok(()), "{grant}");
            assert!(
                matches!(
                    authenticate_client(&confidential, &form(grant, Some("wrong"))),
                    Err(TokenEndpointError::InvalidClientSecret { .. })
                ),
                "{grant}"
            );
            assert!(matches!(authenticate_client(&public, &form(grant, Some("any"))), Err(TokenEndpointError::InvalidClientSecret { .. })));
        }
        assert_eq!(authenticate_client(&confidential, &form("client_credentials", None)), Err(TokenEndpointError::MissingClientSecret));
        assert_eq!(authenticate_client(&public, &form("client_credentials", Some(""))), Err(TokenEndpointError::MissingClientSecret));
        for grant in ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"] {
            assert_eq!(
                authenticate_client(&confidential, &form(grant, None)),
                Err(TokenEndpointError::ConfidentialClientWithoutSecret),
                "{grant}"
            );
            assert_eq!(authenticate_client(&public, &form(grant, None)), Ok(()), "{grant}");
        }
    }

    #[test]
    fn unknown_kid_reloads_happen_at_most_once_per_interval() {
        let limiter = ReloadLimiter::default();
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        assert!(limiter.allow(start, interval));
        assert!(!limiter.allow(start, interval));
        assert!(!limiter.allow(start + Duration::from_millis(9_999), interval));
        assert!(limiter.allow(start + interval, interval));
        assert!(!limiter.allow(start + interval + Duration::from_secs(1), interval));
        // A clock read before the last reload (another thread's) is not a reason to reload.
        assert!(!limiter.allow(start, interval));
        assert!(limiter.allow(start + interval * 3, interval));
    }

    #[test]
    fn debug_of_sign_in_answers_hides_codes_and_tokens() {
        use super::super::signin::{ConsoleSession, DelegatedTokens, DeviceAuthorization};
        let device = DeviceAuthorization {
            device_code: "device-code-value".into(),
            user_code: "USERCODE9".into(),
            verification_uri: "https://127.0.0.1:8443/devicelogin".into(),
            expires_in: 900,
            interval: 5,
            message: "To sign in, enter the code USERCODE9".into(),
        };
        let session = ConsoleSession { access_token: "eyJ.console.token".into(), expires_in: 3599 };
        let tokens = DelegatedTokens {
            access_token: "eyJ.access.token".into(),
            expires_in: 3599,
            scope: "User.Read".into(),
            refresh_token: Some("refresh-token-value".into()),
            id_token: Some("eyJ.id.token".into()),
            client_info: None,
        };
        let shown = format!("{device:?} {session:?} {tokens:?}");
        for secret in ["device-code-value", "USERCODE9", "eyJ.console.token", "eyJ.access.token", "refresh-token-value", "eyJ.id.token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("access_token: [redacted]") && shown.contains("User.Read"), "{shown}");
    }

    #[test]
    fn debug_of_operator_credentials_hides_the_secret_and_the_password() {
        let admin = super::super::tenants::DemoAdmin {
            user_principal_name: "admin@contoso.onmicrosoft.com".into(),
            password: "Pw-123456-x".into(),
        };
        let shown = format!("{admin:?}");
        assert!(!shown.contains("Pw-123456-x") && shown.contains("password: [redacted]"), "{shown}");
    }

    #[test]
    fn debug_of_token_requests_names_credentials_without_values() {
        let form = ClientCredentials {
            client_id: Some("client-1".into()),
            client_secret: Some("s3cret-value".into()),
            code: Some("code-value".into()),
            code_verifier: Some("verifier-value".into()),
            refresh_token: Some("refresh-value".into()),
            device_code: Some("device-value".into()),
            ..form("authorization_code", None)
        };
        let shown = format!("{form:?}");
        for secret in ["s3cret-value", "code-value", "verifier-value", "refresh-value", "device-value"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("client-1") && shown.contains("client_secret: Some([redacted])"), "{shown}");
    }
}
