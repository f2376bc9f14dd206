//! `guestlist login`: a person signs in with the device code flow through the server's public
//! "guestlist CLI" client (`cliClientId` in connection.json), like `Connect-AzureAD`. The tokens
//! are cached in `$XDG_CONFIG_HOME/guestlist/tokens.json` (mode 0600); client commands then act as
//! that person, refreshing the access token (the refresh token rotates on every use).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connection::ConfigError;
use crate::error::{ConnectionError, InvalidResponse, TokenError};
use crate::graph::GraphClient;

/// What the CLI asks for: enough to administer guests as the signed-in person.
pub const LOGIN_SCOPE: &str = "openid profile offline_access https://graph.microsoft.com/User.ReadWrite.All \
     https://graph.microsoft.com/User.Invite.All https://graph.microsoft.com/Directory.ReadWrite.All \
     https://graph.microsoft.com/AuditLog.Read.All";

/// The cached sign-in of one person on one server and tenant.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SavedLogin {
    pub authority_url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub username: Option<String>,
    pub access_token: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
    pub refresh_token: String,
}

impl std::fmt::Debug for SavedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedLogin").field("authority_url", &self.authority_url).field("username", &self.username).finish_non_exhaustive()
    }
}

/// `$XDG_CONFIG_HOME/guestlist/tokens.json`, or `~/.config/guestlist/tokens.json`.
pub fn cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("guestlist").join("tokens.json"))
}

/// The cached login for this server and tenant, if any.
pub fn load(authority_url: &str, tenant_id: &str) -> Option<SavedLogin> {
    let text = std::fs::read_to_string(cache_path()?).ok()?;
    let saved: SavedLogin = serde_json::from_str(&text).ok()?;
    (saved.authority_url.trim_end_matches('/') == authority_url.trim_end_matches('/') && saved.tenant_id.eq_ignore_ascii_case(tenant_id))
        .then_some(saved)
}

/// Writes the cache atomically, owner-only.
pub fn save(login: &SavedLogin) -> anyhow::Result<()> {
    let path = cache_path().ok_or_else(|| ConfigError("neither XDG_CONFIG_HOME nor HOME is set".into()))?;
    let dir = path.parent().ok_or_else(|| ConfigError("bad token cache path".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| ConfigError(format!("cannot create {}: {e}", dir.display())))?;
    let temp = dir.join(".tokens.json.tmp");
    let text = serde_json::to_vec_pretty(login).map_err(|e| ConfigError(e.to_string()))?;
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp).map_err(|e| ConfigError(format!("cannot write {}: {e}", temp.display())))?;
        file.write_all(&text).map_err(|e| ConfigError(format!("cannot write {}: {e}", temp.display())))?;
    }
    std::fs::rename(&temp, &path).map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

/// `guestlist logout`: whether there was a cache to delete.
pub fn delete() -> anyhow::Result<bool> {
    let Some(path) = cache_path() else { return Ok(false) };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ConfigError(format!("cannot delete {}: {e}", path.display())).into()),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn post_form(client: &GraphClient, url: &url::Url, form: &[(&str, &str)]) -> anyhow::Result<(u16, Value, String)> {
    let resp = client.http().post(url.clone()).header(reqwest::header::ACCEPT, "application/json").form(form).send().await;
    let resp = resp.map_err(|e| ConnectionError::from_reqwest(url, &e))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| ConnectionError::from_reqwest(url, &e))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, value, text))
}

fn login_from(client: &GraphClient, client_id: &str, body: &Value, previous_username: Option<String>) -> anyhow::Result<SavedLogin> {
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let access_token = text("access_token").ok_or_else(|| InvalidResponse("token response has no access_token".into()))?;
    let refresh_token = text("refresh_token").ok_or_else(|| InvalidResponse("token response has no refresh_token".into()))?;
    let expires_in = body.get("expires_in").and_then(Value::as_i64).unwrap_or(0);
    let username = text("id_token").and_then(|t| preferred_username(&t)).or(previous_username);
    let conn = client.connection();
    Ok(SavedLogin {
        authority_url: conn.authority_url.clone(),
        tenant_id: conn.tenant_id.clone(),
        client_id: client_id.to_string(),
        username,
        access_token,
        expires_at: now() + expires_in,
        refresh_token,
    })
}

fn preferred_username(id_token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("preferred_username").and_then(Value::as_str).map(str::to_string)
}

/// The device code flow: asks for a code, shows `message` through `show`, polls at the announced
/// interval (longer after `slow_down`), and returns the signed-in login.
pub async fn device_login(client: &GraphClient, show: impl Fn(&str)) -> anyhow::Result<SavedLogin> {
    let conn = client.connection();
    let client_id = conn
        .cli_client_id
        .clone()
        .ok_or_else(|| ConfigError("connection.json has no cliClientId: start a newer guestlist server".into()))?;
    let mut device_url = client.token_url().clone();
    device_url.set_path(&device_url.path().replace("/oauth2/v2.0/token", "/oauth2/v2.0/devicecode"));
    let (status, body, text) = post_form(client, &device_url, &[("client_id", &client_id), ("scope", LOGIN_SCOPE)]).await?;
    if !(200..300).contains(&status) {
        return Err(TokenError::from_response(status, &text).into());
    }
    let message = body.get("message").and_then(Value::as_str).ok_or_else(|| InvalidResponse("devicecode answer has no message".into()))?;
    let device_code = body.get("device_code").and_then(Value::as_str).ok_or_else(|| InvalidResponse("no device_code".into()))?;
    let mut interval = body.get("interval").and_then(Value::as_u64).unwrap_or(5).max(1);
    let expires_in = body.get("expires_in").and_then(Value::as_u64).unwrap_or(900);
    show(message);
    let deadline = std::time::Instant::now() + Duration::from_secs(expires_in);
    let grant = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", &client_id), ("device_code", device_code)];
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let (status, body, text) = post_form(client, client.token_url(), &grant).await?;
        if (200..300).contains(&status) {
            return login_from(client, &client_id, &body, None);
        }
        match body.get("error").and_then(Value::as_str) {
            Some("authorization_pending") if std::time::Instant::now() < deadline => {}
            // RFC 8628 §3.5: five seconds more from now on.
            Some("slow_down") => interval += 5,
            _ => return Err(TokenError::from_response(status, &text).into()),
        }
    }
}

/// Redeems the refresh token for a new access token (and the next refresh token).
pub async fn refresh(client: &GraphClient, saved: &SavedLogin) -> anyhow::Result<SavedLogin> {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", saved.client_id.as_str()),
        ("refresh_token", saved.refresh_token.as_str()),
        ("scope", LOGIN_SCOPE),
    ];
    let (status, body, text) = post_form(client, client.token_url(), &form).await?;
    if !(200..300).contains(&status) {
        return Err(TokenError::from_response(status, &text).into());
    }
    login_from(client, &saved.client_id, &body, saved.username.clone())
}
