//! Member sign-in (issue 5 items 1 and 5): passwords, the authorization code flow with PKCE,
//! rotated refresh tokens with reuse detection, and the device code flow. Codes, refresh tokens
//! and device codes live in the database as SHA-256 hashes, so any replica redeems them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use guestlist_domain::audit::{AuditRecord, Initiator, TargetResource};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::signin::{self as rules, GrantKind, GrantState, NewPasswordProblem, OAuthGrant, RequestedScopes};
use guestlist_domain::tenant::Application;
use guestlist_domain::user::UserType;
use guestlist_domain::{Tenant, User};
use guestlist_identity::oauth::TokenEndpointError;
use guestlist_identity::tokens::{client_info, UserTokenRequest};
use guestlist_store::{StoredPassword, UserKey};

use super::tokens::{ClientCredentials, TokenFailure};
use super::{ServiceError, ServiceResult, Services};

/// Spent grants are kept this long past their expiry, so a code or refresh token replayed soon
/// after still meets its record (and revokes its family) instead of being merely unknown.
pub const SPENT_GRANT_RETENTION_HOURS: i64 = 24;
/// Grants deleted per prune at most, so one prune never holds many rows locked.
pub const GRANT_PRUNE_BATCH: u32 = 500;
/// One process prunes at most this often (unless the last prune filled its batch).
pub const GRANT_PRUNE_INTERVAL_SECONDS: i64 = 60;

/// When this process last started pruning spent grants (seconds since the epoch; 0: never, or
/// prune again at once), shared by the clones of [`Services`].
#[derive(Debug, Clone, Default)]
pub struct GrantPruning {
    last_start: Arc<AtomicI64>,
}

/// A valid `GET /authorize` request, as the sign-in form carries it along.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub tenant: Tenant,
    pub app: Application,
    pub redirect_uri: String,
    pub scopes: RequestedScopes,
    pub state: Option<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
}

/// The parameters of an authorization request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub response_type: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
}

/// Why an authorization request can't go on. The first three are shown on a page (the redirect
/// URI can't be trusted); `Redirect` goes back to the client with `error` (RFC 6749 §4.1.2.1).
#[derive(Debug)]
pub enum AuthorizeRefusal {
    UnknownTenant,
    UnknownClient,
    InvalidRedirectUri,
    Redirect { redirect_uri: String, state: Option<String>, error: &'static str, description: String },
    Service(ServiceError),
}

impl From<ServiceError> for AuthorizeRefusal {
    fn from(error: ServiceError) -> Self {
        AuthorizeRefusal::Service(error)
    }
}

/// Why a username and password did not sign in. Wrong user and wrong password read the same.
#[derive(Debug)]
pub enum SignInFailure {
    /// AADSTS50126.
    InvalidCredentials,
    /// AADSTS50053: too many failures for this account in this window.
    AccountLocked,
    /// Too many attempts from this client address.
    AddressLocked,
    /// Too many password checks are in progress on this server; nothing was checked or counted.
    Busy,
    /// AADSTS50057.
    AccountDisabled,
    /// The password is right, but `forceChangePasswordNextSignIn` asks for a new one first
    /// (Entra's "Update your password", AADSTS50055's interactive form).
    PasswordChangeRequired,
    /// The current password is right; the new one is refused and nothing changed.
    NewPasswordRefused(NewPasswordProblem),
    Service(ServiceError),
}

/// A new password chosen on "Update your password", with its confirmation.
#[derive(Clone)]
pub struct NewPassword {
    pub password: String,
    pub confirmation: String,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl From<ServiceError> for SignInFailure {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Busy => SignInFailure::Busy,
            error => SignInFailure::Service(error),
        }
    }
}

impl From<guestlist_store::StoreError> for SignInFailure {
    fn from(error: guestlist_store::StoreError) -> Self {
        SignInFailure::Service(error.into())
    }
}

/// `POST /devicecode`'s answer.
#[derive(Clone)] // Debug: services::tokens, secrets redacted
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: i64,
    pub interval: i64,
    pub message: String,
}

/// A signed-in admin console session: a delegated access token and its lifetime in seconds.
#[derive(Clone)] // Debug: services::tokens, secrets redacted
pub struct ConsoleSession {
    pub access_token: String,
    pub expires_in: u64,
}

/// A delegated token response.
#[derive(Clone)] // Debug: services::tokens, secrets redacted
pub struct DelegatedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub client_info: Option<String>,
}

impl DelegatedTokens {
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "token_type": "Bearer",
            "scope": self.scope,
            "expires_in": self.expires_in,
            "ext_expires_in": self.expires_in,
            "access_token": self.access_token,
        });
        for (name, value) in [("refresh_token", &self.refresh_token), ("id_token", &self.id_token), ("client_info", &self.client_info)] {
            if let Some(value) = value {
                body[name] = serde_json::Value::String(value.clone());
            }
        }
        body
    }
}

fn window_start(now: DateTime<Utc>) -> i64 {
    let seconds = now.timestamp();
    seconds - seconds.rem_euclid(rules::LOCKOUT_WINDOW_SECONDS)
}

/// Attempt slots per account (object ids are unique across tenants).
fn account_scope(user_id: ObjectId) -> String {
    format!("sign-in:account:{user_id}")
}

/// Attempt slots per client address, across tenants and unknown domains alike.
fn address_scope(address: &str) -> String {
    format!("sign-in:address:{address}")
}

/// Attempt windows are kept this many windows back, then pruned.
const ATTEMPT_WINDOWS_KEPT: i64 = 4;

/// A member whose password was checked and is right.
struct CheckedPassword {
    user: User,
    stored: StoredPassword,
}

impl Services {
    /// Checks a `GET /{tenant}/oauth2/v2.0/authorize` request: tenant, client, loopback
    /// redirect URI, then (reported to the client) response type, scope and PKCE.
    pub async fn check_authorization(&self, tenant_segment: &str, params: &AuthorizeParams) -> Result<Authorization, AuthorizeRefusal> {
        let tenant = self.store.tenant(tenant_segment).await.map_err(ServiceError::from)?.ok_or(AuthorizeRefusal::UnknownTenant)?;
        let app_id = params.client_id.as_deref().and_then(|id| ObjectId::parse(id).ok()).ok_or(AuthorizeRefusal::UnknownClient)?;
        let app = self.store.application(tenant.id, app_id).await.map_err(ServiceError::from)?.ok_or(AuthorizeRefusal::UnknownClient)?;
        // guestlist registers no redirect URIs: loopback ones are what native apps and MSAL use.
        let redirect_uri =
            params.redirect_uri.clone().filter(|uri| rules::is_loopback_redirect(uri)).ok_or(AuthorizeRefusal::InvalidRedirectUri)?;
        let refuse = |error: &'static str, description: String| AuthorizeRefusal::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: params.state.clone(),
            error,
            description,
        };
        if params.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "AADSTS700054: response_type 'code' is the only one this server supports.".into(),
            ));
        }
        let scope = params.scope.as_deref().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            refuse("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.".into())
        })?;
        let scopes = RequestedScopes::parse(scope).map_err(|bad| {
            refuse(
                "invalid_scope",
                format!("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {bad} is not valid."),
            )
        })?;
        let challenge = params.code_challenge.clone().filter(|c| (43..=128).contains(&c.len()));
        let (Some(code_challenge), Some("S256")) = (challenge, params.code_challenge_method.as_deref()) else {
            return Err(refuse(
                "invalid_request",
                "AADSTS9002325: Proof Key for Code Exchange is required: send code_challenge with code_challenge_method S256.".into(),
            ));
        };
        Ok(Authorization { tenant, app, redirect_uri, scopes, state: params.state.clone(), code_challenge, nonce: params.nonce.clone() })
    }

    /// Checks a member's username (UPN) and password, counting failures per account and per
    /// client address; the fifth failure of an account in a 15-minute window locks it for the
    /// rest of the window. Failures against a known account are audited.
    ///
    /// A member whose `forceChangePasswordNextSignIn` is set gets
    /// [`SignInFailure::PasswordChangeRequired`] until the form comes back with `new_password`:
    /// the current password is checked as always (a wrong one counts as a failure), then the
    /// new one is stored, the flag cleared, and the sign-in goes on. Nothing is kept between the
    /// two posts, so any replica answers either.
    pub async fn sign_in(
        &self,
        tenant: &Tenant,
        username: &str,
        password: &str,
        new_password: Option<&NewPassword>,
        client_address: &str,
    ) -> Result<User, SignInFailure> {
        let CheckedPassword { user, stored } = self.check_password(Some(tenant), username, password, client_address).await?;
        if !user.account_enabled {
            return Err(SignInFailure::AccountDisabled);
        }
        match new_password {
            Some(new_password) => {
                self.change_password_at_sign_in(tenant, &user, password, &stored, new_password).await?;
                Ok(user)
            }
            None if stored.force_change_next_sign_in => Err(SignInFailure::PasswordChangeRequired),
            None => Ok(user),
        }
    }

    /// The one gate of every password check (sign-in page, device login, admin console, the
    /// current password on "Update your password"): before any hashing, one slot of the client
    /// address's limit and one of the account's are taken, each in the statement that checks the
    /// limit, so N concurrent guesses count N. Then the hash runs on the bounded executor (whose
    /// place was taken first: a busy hasher refuses without counting). A right
    /// password gives its slots back; a wrong one keeps them, is audited, and the slot that
    /// reaches the account's limit locks it for the rest of the window. `tenant: None` (an
    /// unknown domain) and unknown accounts cost the address a slot and one hash all the same.
    async fn check_password(
        &self,
        tenant: Option<&Tenant>,
        username: &str,
        password: &str,
        client_address: &str,
    ) -> Result<CheckedPassword, SignInFailure> {
        // A place at the hasher first: when it is full, refuse before counting or reading anything,
        // so a flood neither costs database writes nor locks accounts with attempts never made.
        let admission = self.hashing.admit().map_err(ServiceError::from)?;
        let now = Utc::now();
        let window = window_start(now);
        let address = address_scope(client_address);
        if self.store.reserve_attempt(&address, window, rules::ADDRESS_FAILURE_LIMIT).await?.is_none() {
            return Err(SignInFailure::AddressLocked);
        }
        let mut reserved = vec![address];
        let user = match tenant {
            Some(tenant) => self.store.user(tenant.id, &UserKey::UserPrincipalName(username.trim().to_string())).await?,
            None => None,
        };
        let user = user.filter(|u| u.user_type == UserType::Member);
        let mut account_attempt = None;
        if let Some(user) = &user {
            let scope = account_scope(user.id);
            // A guess at a locked account keeps the address's slot: it is a guess all the same.
            account_attempt =
                Some(self.store.reserve_attempt(&scope, window, rules::ACCOUNT_FAILURE_LIMIT).await?.ok_or(SignInFailure::AccountLocked)?);
            reserved.push(scope);
        }
        let stored = match (tenant, &user) {
            (Some(tenant), Some(user)) => self.store.user_password(tenant.id, user.id).await?,
            _ => None,
        };
        let verified = match &stored {
            Some(stored) => admission.verify(password.to_string(), stored.hash.clone()).await,
            // The same work for an unknown account, so timing tells nothing.
            None => admission.hash(password.to_string()).await.map(|_| false),
        };
        let verified = match verified {
            Ok(verified) => verified,
            Err(error) => {
                // Nothing was checked: the attempt did not happen.
                self.release_attempts(&reserved, window).await?;
                return Err(ServiceError::from(error).into());
            }
        };
        if let (true, Some(user), Some(stored)) = (verified, &user, &stored) {
            self.release_attempts(&reserved, window).await?;
            return Ok(CheckedPassword { user: user.clone(), stored: stored.clone() });
        }
        let (Some(tenant), Some(user), Some(attempt)) = (tenant, user, account_attempt) else {
            return Err(SignInFailure::InvalidCredentials);
        };
        let mut audit = vec![sign_in_audit(tenant, &user, rules::activity::SIGN_IN_FAILED, now)];
        if attempt == rules::ACCOUNT_FAILURE_LIMIT {
            audit.push(sign_in_audit(tenant, &user, rules::activity::ACCOUNT_LOCKED, now));
        }
        self.store.record_audit(&audit).await?;
        if attempt >= rules::ACCOUNT_FAILURE_LIMIT {
            Err(SignInFailure::AccountLocked)
        } else {
            Err(SignInFailure::InvalidCredentials)
        }
    }

    async fn release_attempts(&self, scopes: &[String], window: i64) -> ServiceResult<()> {
        for scope in scopes {
            self.store.release_attempt(scope, window).await?;
        }
        Ok(())
    }

    /// Stores the new password a member chose at sign-in (current password already verified)
    /// and clears `forceChangePasswordNextSignIn`, audited as Entra's "Change user password".
    async fn change_password_at_sign_in(
        &self,
        tenant: &Tenant,
        user: &User,
        current: &str,
        stored: &StoredPassword,
        new_password: &NewPassword,
    ) -> Result<(), SignInFailure> {
        rules::check_new_password(current, &new_password.password, &new_password.confirmation)
            .map_err(SignInFailure::NewPasswordRefused)?;
        let new_hash = self.hash_password(new_password.password.clone()).await?;
        let now = Utc::now();
        let audit = self_service_audit(tenant, user, rules::activity::CHANGE_PASSWORD, "Update", now);
        if !self.store.change_user_password(tenant.id, user.id, &stored.hash, &new_hash, now, &[audit]).await? {
            // Another sign-in changed it since we read it: this current password is spent.
            return Err(SignInFailure::InvalidCredentials);
        }
        Ok(())
    }

    /// Issues the authorization code for a signed-in user: single use, ten minutes, bound to
    /// the client, the redirect URI and the PKCE challenge.
    pub async fn issue_authorization_code(&self, authorization: &Authorization, user: &User) -> ServiceResult<String> {
        let code = rules::random_secret();
        let now = Utc::now();
        let grant = OAuthGrant {
            token_hash: rules::secret_hash(&code),
            tenant_id: authorization.tenant.id,
            kind: GrantKind::AuthorizationCode,
            state: GrantState::Active,
            client_id: authorization.app.app_id,
            user_id: Some(user.id),
            family_id: ObjectId::new_random(),
            scope: authorization.scopes.stored(),
            redirect_uri: Some(authorization.redirect_uri.clone()),
            code_challenge: Some(authorization.code_challenge.clone()),
            nonce: authorization.nonce.clone(),
            user_code: None,
            created_date_time: now,
            expires_date_time: now + Duration::seconds(rules::AUTHORIZATION_CODE_SECONDS),
        };
        self.store.insert_oauth_grant(&grant).await?;
        self.prune_spent_grants_now_and_then(now);
        Ok(code)
    }

    /// `POST /{tenant}/oauth2/v2.0/devicecode`.
    pub async fn device_authorization(
        &self,
        tenant_segment: &str,
        client_id: Option<&str>,
        scope: Option<&str>,
        origin: &str,
    ) -> Result<DeviceAuthorization, TokenFailure> {
        let tenant = self.store.tenant(tenant_segment).await.map_err(ServiceError::from)?;
        let tenant = tenant.ok_or_else(|| TokenEndpointError::UnknownTenant { tenant: tenant_segment.to_string() })?;
        let client_id = client_id.ok_or(TokenEndpointError::MissingParameter { name: "client_id" })?;
        let app = self.client(&tenant, tenant_segment, client_id).await?;
        let scope = scope.filter(|s| !s.trim().is_empty()).ok_or(TokenEndpointError::MissingParameter { name: "scope" })?;
        let scopes = RequestedScopes::parse(scope).map_err(|bad| TokenEndpointError::delegated_scope_invalid(&bad))?;
        let device_code = rules::random_secret();
        let user_code = rules::random_user_code();
        let now = Utc::now();
        let grant = OAuthGrant {
            token_hash: rules::secret_hash(&device_code),
            tenant_id: tenant.id,
            kind: GrantKind::DeviceCode,
            state: GrantState::Pending,
            client_id: app.app_id,
            user_id: None,
            family_id: ObjectId::new_random(),
            scope: scopes.stored(),
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            user_code: Some(user_code.clone()),
            created_date_time: now,
            expires_date_time: now + Duration::seconds(rules::DEVICE_CODE_SECONDS),
        };
        self.store.insert_oauth_grant(&grant).await.map_err(ServiceError::from)?;
        self.prune_spent_grants_now_and_then(now);
        let verification_uri = format!("{}/devicelogin", origin.trim_end_matches('/'));
        Ok(DeviceAuthorization {
            message: format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
            ),
            device_code,
            user_code,
            verification_uri,
            expires_in: rules::DEVICE_CODE_SECONDS,
            interval: rules::DEVICE_POLL_INTERVAL_SECONDS,
        })
    }

    /// The pending device code a user typed, with its tenant and client.
    pub async fn pending_device_code(&self, typed: &str) -> ServiceResult<Option<(OAuthGrant, Tenant, Application)>> {
        let code = rules::normalize_user_code(typed);
        if code.is_empty() {
            return Ok(None);
        }
        let Some(grant) = self.store.oauth_grant_by_user_code(&code).await? else { return Ok(None) };
        if grant.state != GrantState::Pending || grant.expires_date_time <= Utc::now() {
            return Ok(None);
        }
        let Some(tenant) = self.store.tenant(&grant.tenant_id.to_string()).await? else { return Ok(None) };
        let Some(app) = self.store.application(tenant.id, grant.client_id).await? else { return Ok(None) };
        Ok(Some((grant, tenant, app)))
    }

    /// The user signed in on the device login page and approved (or declined) the device.
    /// Declining needs no sign-in.
    pub async fn decide_device_code(&self, grant: &OAuthGrant, user: Option<&User>) -> ServiceResult<bool> {
        let to = if user.is_some() { GrantState::Approved } else { GrantState::Denied };
        Ok(self.store.transition_oauth_grant(&grant.token_hash, GrantState::Pending, to, user.map(|u| u.id), Utc::now()).await?)
    }

    async fn client(&self, tenant: &Tenant, tenant_segment: &str, client_id: &str) -> Result<Application, TokenFailure> {
        let unknown = || TokenEndpointError::UnknownClient { client_id: client_id.to_string(), tenant: tenant_segment.to_string() };
        let app_id = ObjectId::parse(client_id).map_err(|_| unknown())?;
        Ok(self.store.application(tenant.id, app_id).await.map_err(ServiceError::from)?.ok_or_else(unknown)?)
    }

    /// Deletes one batch of grants (codes, refresh tokens, device codes, whatever their state)
    /// that expired more than [`SPENT_GRANT_RETENTION_HOURS`] before `now`, and one batch of old
    /// sign-in attempt windows; the larger of the two counts. A plain
    /// DELETE by expiry: replicas sharing the database may run it at the same time.
    pub async fn prune_spent_grants(&self, now: DateTime<Utc>) -> ServiceResult<u64> {
        let cutoff = now - Duration::hours(SPENT_GRANT_RETENTION_HOURS);
        let grants = self.store.prune_oauth_grants(cutoff, GRANT_PRUNE_BATCH).await?;
        // Sign-in attempt windows go with them: addresses that never come back leave rows too.
        let attempts_before = window_start(now) - ATTEMPT_WINDOWS_KEPT * rules::LOCKOUT_WINDOW_SECONDS;
        let attempts = self.store.prune_attempts(attempts_before, GRANT_PRUNE_BATCH).await?;
        Ok(grants.max(attempts))
    }

    /// Starts [`Services::prune_spent_grants`] in the background at most once a minute per
    /// process. Called wherever grants are issued or redeemed, so the table never grows without
    /// pruning running; no timer task to start or stop. A full batch lets the next call prune
    /// again at once.
    fn prune_spent_grants_now_and_then(&self, now: DateTime<Utc>) {
        let last_start = &self.grant_pruning.last_start;
        let previous = last_start.load(Ordering::Relaxed);
        if now.timestamp() - previous < GRANT_PRUNE_INTERVAL_SECONDS {
            return;
        }
        // Of concurrent requests one starts the prune.
        if last_start.compare_exchange(previous, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let services = self.clone();
        tokio::spawn(async move {
            match services.prune_spent_grants(now).await {
                Ok(deleted) if deleted >= u64::from(GRANT_PRUNE_BATCH) => {
                    tracing::info!(deleted, "pruned spent OAuth grants; more to prune");
                    services.grant_pruning.last_start.store(0, Ordering::Relaxed);
                }
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "pruned spent OAuth grants"),
                Err(error) => tracing::warn!(%error, "pruning spent OAuth grants failed; the next interval retries"),
            }
        });
    }

    /// The delegated grants of the token endpoint: `authorization_code`, `refresh_token` and
    /// `urn:ietf:params:oauth:grant-type:device_code`. Public clients send no secret;
    /// confidential ones must send theirs (`tokens::authenticate_client`).
    pub async fn delegated_grant(&self, tenant_segment: &str, form: &ClientCredentials) -> Result<DelegatedTokens, TokenFailure> {
        let tenant = self.store.tenant(tenant_segment).await.map_err(ServiceError::from)?;
        let tenant = tenant.ok_or_else(|| TokenEndpointError::UnknownTenant { tenant: tenant_segment.to_string() })?;
        let client_id = form.client_id.as_deref().ok_or(TokenEndpointError::MissingParameter { name: "client_id" })?;
        let app = self.client(&tenant, tenant_segment, client_id).await?;
        super::tokens::authenticate_client(&app, form)?;
        let now = Utc::now();
        self.prune_spent_grants_now_and_then(now);
        let grant_type = form.grant_type.as_deref().unwrap_or_default();
        let (grant, spent_state) = match grant_type {
            "authorization_code" => {
                let code = form.code.as_deref().ok_or(TokenEndpointError::MissingParameter { name: "code" })?;
                let grant = self.live_grant(code, GrantKind::AuthorizationCode, &app, &tenant).await?;
                if grant.state != GrantState::Active {
                    // A second redemption: the code may have leaked, so its tokens go too (RFC 6749 §4.1.2).
                    self.store.revoke_oauth_family(tenant.id, grant.family_id).await.map_err(ServiceError::from)?;
                    return Err(TokenEndpointError::code_already_redeemed().into());
                }
                if grant.expires_date_time <= now {
                    return Err(TokenEndpointError::code_expired().into());
                }
                if form.redirect_uri.as_deref() != grant.redirect_uri.as_deref() {
                    return Err(TokenEndpointError::redirect_uri_mismatch().into());
                }
                let verifier = form.code_verifier.as_deref().ok_or_else(TokenEndpointError::code_verifier_missing)?;
                if !grant.code_challenge.as_deref().is_some_and(|challenge| rules::pkce_s256_matches(verifier, challenge)) {
                    return Err(TokenEndpointError::code_verifier_mismatch().into());
                }
                (grant, GrantState::Active)
            }
            "refresh_token" => {
                let token = form.refresh_token.as_deref().ok_or(TokenEndpointError::MissingParameter { name: "refresh_token" })?;
                let grant = self.live_grant(token, GrantKind::RefreshToken, &app, &tenant).await?;
                match grant.state {
                    GrantState::Active if grant.expires_date_time > now => {}
                    GrantState::Used => {
                        // Reuse of a rotated refresh token: someone else holds the family.
                        let revoked = self.store.revoke_oauth_family(tenant.id, grant.family_id).await.map_err(ServiceError::from)?;
                        tracing::warn!(family = %grant.family_id, revoked, "refresh token reused; sign-in family revoked");
                        return Err(TokenEndpointError::refresh_token_revoked().into());
                    }
                    _ => return Err(TokenEndpointError::refresh_token_revoked().into()),
                }
                (grant, GrantState::Active)
            }
            "urn:ietf:params:oauth:grant-type:device_code" => {
                let code = form.device_code.as_deref().ok_or(TokenEndpointError::MissingParameter { name: "device_code" })?;
                let grant = self.live_grant(code, GrantKind::DeviceCode, &app, &tenant).await?;
                if grant.expires_date_time <= now {
                    return Err(TokenEndpointError::device_code_expired().into());
                }
                let not_before = now - Duration::seconds(rules::DEVICE_POLL_INTERVAL_SECONDS) + Duration::milliseconds(500);
                match grant.state {
                    GrantState::Pending => {
                        let counted =
                            self.store.record_device_poll(&grant.token_hash, now, not_before).await.map_err(ServiceError::from)?;
                        return Err(
                            if counted { TokenEndpointError::authorization_pending() } else { TokenEndpointError::slow_down() }.into()
                        );
                    }
                    GrantState::Denied => return Err(TokenEndpointError::authorization_declined().into()),
                    GrantState::Approved => {}
                    _ => return Err(TokenEndpointError::invalid_grant().into()),
                }
                (grant, GrantState::Approved)
            }
            other => return Err(TokenEndpointError::UnsupportedGrantType { grant_type: other.to_string() }.into()),
        };

        let user_id = grant.user_id.ok_or_else(TokenEndpointError::invalid_grant)?;
        let user = self.store.user(tenant.id, &UserKey::Id(user_id)).await.map_err(ServiceError::from)?;
        let user = user.filter(|u| u.account_enabled).ok_or_else(TokenEndpointError::account_unavailable)?;
        let mut scopes = RequestedScopes::parse(&grant.scope).map_err(|_| TokenEndpointError::invalid_grant())?;
        if grant_type == "refresh_token" {
            // A refresh may narrow the scopes, never widen them.
            if let Some(asked) = form.scope.as_deref().and_then(|s| RequestedScopes::parse(s).ok()) {
                let narrowed: Vec<String> =
                    scopes.graph.iter().filter(|s| asked.graph.iter().any(|a| a.eq_ignore_ascii_case(s))).cloned().collect();
                if !narrowed.is_empty() {
                    scopes.graph = narrowed;
                }
            }
        }
        // The next refresh token of the family, stored as the spent grant is used up, atomically.
        let refresh_token = rules::random_secret();
        let next = OAuthGrant {
            token_hash: rules::secret_hash(&refresh_token),
            tenant_id: tenant.id,
            kind: GrantKind::RefreshToken,
            state: GrantState::Active,
            client_id: app.app_id,
            user_id: Some(user.id),
            family_id: grant.family_id,
            scope: RequestedScopes::parse(&grant.scope).map(|s| s.stored()).unwrap_or_default(),
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            user_code: None,
            created_date_time: now,
            expires_date_time: now + Duration::seconds(rules::REFRESH_TOKEN_SECONDS),
        };
        if !self.store.exchange_oauth_grant(&grant.token_hash, spent_state, &next, now).await.map_err(ServiceError::from)? {
            // Another request spent it between our read and our write.
            self.store.revoke_oauth_family(tenant.id, grant.family_id).await.map_err(ServiceError::from)?;
            return Err(match grant.kind {
                GrantKind::AuthorizationCode => TokenEndpointError::code_already_redeemed(),
                _ => TokenEndpointError::refresh_token_revoked(),
            }
            .into());
        }
        let request = user_token_request(&tenant, &app, &user, scopes.graph.clone(), grant.nonce.clone(), now);
        let ring = self.keyring(false).await?;
        let access = ring.issue_user_token(&request, &self.public_origin).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let id_token = if scopes.wants("openid") {
            Some(ring.issue_id_token(&request, &self.public_origin).map_err(|e| ServiceError::Internal(e.to_string()))?)
        } else {
            None
        };
        Ok(DelegatedTokens {
            access_token: access.access_token,
            expires_in: access.expires_in,
            scope: scopes.response_scope(),
            // Without offline_access Entra returns no refresh token; the stored one is never handed out.
            refresh_token: scopes.wants("offline_access").then_some(refresh_token),
            id_token,
            client_info: form.client_info.as_deref().filter(|v| *v == "1").map(|_| client_info(&user.id, &tenant.id)),
        })
    }

    /// The grant a presented code or token names, if it is of `kind` and was issued to this
    /// client in this tenant (anything else is Entra's AADSTS70000).
    async fn live_grant(&self, presented: &str, kind: GrantKind, app: &Application, tenant: &Tenant) -> Result<OAuthGrant, TokenFailure> {
        let grant = self.store.oauth_grant(&rules::secret_hash(presented)).await.map_err(ServiceError::from)?;
        grant
            .filter(|g| g.kind == kind && g.client_id == app.app_id && g.tenant_id == tenant.id)
            .ok_or_else(|| TokenEndpointError::invalid_grant().into())
    }
}

impl Services {
    /// Hashes a member's password (Argon2id, on the bounded executor).
    pub async fn hash_password(&self, password: String) -> ServiceResult<String> {
        Ok(self.hashing.hash(password).await?)
    }

    /// Whether `password` is the user's current one.
    pub(crate) async fn password_is(
        &self,
        tenant: guestlist_domain::ids::TenantId,
        user_id: ObjectId,
        password: &str,
    ) -> ServiceResult<bool> {
        match self.store.user_password(tenant, user_id).await? {
            Some(stored) => Ok(self.hashing.verify(password.to_string(), stored.hash).await?),
            None => Ok(false),
        }
    }

    /// Signs a member in to the admin console: the tenant is the one whose domain ends the UPN,
    /// then the same password check, lockout and audit as the sign-in page, then a token of the
    /// tenant's console client.
    pub async fn console_sign_in(
        &self,
        username: &str,
        password: &str,
        new_password: Option<&NewPassword>,
        client_address: &str,
    ) -> Result<ConsoleSession, SignInFailure> {
        let domain = username.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default();
        let tenant = match domain {
            "" => None,
            domain => self.store.tenant(domain).await?,
        };
        let Some(tenant) = tenant else {
            // Unknown domain: the same limit, work and answer as a wrong password.
            self.check_password(None, username, password, client_address).await?;
            return Err(SignInFailure::InvalidCredentials);
        };
        let user = self.sign_in(&tenant, username, password, new_password, client_address).await?;
        let app = self.ensure_console_app(&tenant).await?;
        let (access_token, expires_in) = self.first_party_access_token(&tenant, &app, &user).await?;
        Ok(ConsoleSession { access_token, expires_in })
    }

    /// An access token for a first-party client a person signed in to on this server's own pages
    /// (the admin console). Its one scope, `Directory.AccessAsUser.All`, lets the person's
    /// directory roles alone decide what the token may do, as in Entra's portal.
    pub async fn first_party_access_token(&self, tenant: &Tenant, app: &Application, user: &User) -> ServiceResult<(String, u64)> {
        let request = user_token_request(tenant, app, user, vec!["Directory.AccessAsUser.All".into()], None, Utc::now());
        let ring = self.keyring(false).await?;
        let access = ring.issue_user_token(&request, &self.public_origin).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((access.access_token, access.expires_in))
    }
}

/// A failed sign-in's audit entry (category `Authentication`, result `failure`).
/// What a delegated token of `user` signed in to `app` says.
fn user_token_request(
    tenant: &Tenant,
    app: &Application,
    user: &User,
    scopes: Vec<String>,
    nonce: Option<String>,
    issued_at: DateTime<Utc>,
) -> UserTokenRequest {
    UserTokenRequest {
        tenant_id: tenant.id,
        app_id: app.app_id,
        app_display_name: app.display_name.clone(),
        user_id: user.id,
        user_principal_name: user.user_principal_name.to_string(),
        display_name: user.display_name.clone(),
        scopes,
        nonce,
        issued_at,
    }
}

fn sign_in_audit(tenant: &Tenant, user: &User, activity: &str, at: DateTime<Utc>) -> AuditRecord {
    let mut record = self_service_audit(tenant, user, activity, "Other", at);
    record.category = "Authentication".into();
    record.result = "failure".into();
    record
}

/// A Core Directory entry about a member, initiated by that member (category `UserManagement`).
fn self_service_audit(tenant: &Tenant, user: &User, activity: &str, operation_type: &str, at: DateTime<Utc>) -> AuditRecord {
    let initiator = Initiator::User { id: user.id.to_string(), user_principal_name: user.user_principal_name.to_string() };
    let target = TargetResource {
        id: user.id.to_string(),
        display_name: Some(user.display_name.clone()),
        resource_type: "User".into(),
        user_principal_name: Some(user.user_principal_name.to_string()),
        modified_properties: vec![],
    };
    let mut record = AuditRecord::invited_users(tenant.id, activity, operation_type, initiator, ObjectId::new_random(), target, at);
    record.logged_by_service = "Core Directory".into();
    record
}
