//! `GraphClient`: app-only tokens from the server's token endpoint, and the invitation and user calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;
use url::Url;

use crate::connection::{ConfigError, Connection};
use crate::error::{ConnectionError, GraphError, InvalidResponse, TokenError};
use crate::urls::{self, Query};

/// Where the guest lands after redemption when the caller names nothing (Graph's own examples use it).
pub const DEFAULT_REDIRECT_URL: &str = "https://myapps.microsoft.com";

/// The only scope an app-only Graph token is requested for.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Input of `POST /invitations` for a new guest (or a re-invite of a known address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteParams {
    pub email: String,
    pub redirect_url: String,
    pub display_name: Option<String>,
    pub send_message: bool,
    /// `invitedUserMessageInfo.customizedMessageBody`.
    pub message: Option<String>,
    /// One CC recipient address (Graph honours only the first).
    pub cc: Option<String>,
    /// `invitedUserMessageInfo.messageLanguage`, e.g. `en-US`.
    pub language: Option<String>,
    /// `invitedUserType`: `Guest` (Graph's default when absent) or `Member`.
    pub user_type: Option<String>,
}

impl InviteParams {
    /// An invitation of `email` with the default redirect URL and no email sent.
    pub fn new(email: impl Into<String>) -> Self {
        InviteParams { email: email.into(), redirect_url: DEFAULT_REDIRECT_URL.to_string(), ..Default::default() }
    }
}

/// The JSON body of `POST /invitations` for `p`. Absent options are omitted, never sent as null.
pub fn invite_body(p: &InviteParams) -> Value {
    let mut body = Map::new();
    body.insert("invitedUserEmailAddress".into(), json!(p.email));
    body.insert("inviteRedirectUrl".into(), json!(p.redirect_url));
    body.insert("sendInvitationMessage".into(), json!(p.send_message));
    if let Some(name) = &p.display_name {
        body.insert("invitedUserDisplayName".into(), json!(name));
    }
    if let Some(t) = &p.user_type {
        body.insert("invitedUserType".into(), json!(t));
    }
    let mut info = Map::new();
    if let Some(m) = &p.message {
        info.insert("customizedMessageBody".into(), json!(m));
    }
    if let Some(l) = &p.language {
        info.insert("messageLanguage".into(), json!(l));
    }
    if let Some(cc) = &p.cc {
        info.insert("ccRecipients".into(), json!([{"emailAddress": {"address": cc}}]));
    }
    if !info.is_empty() {
        body.insert("invitedUserMessageInfo".into(), Value::Object(info));
    }
    Value::Object(body)
}

/// The JSON body of a reset-redemption `POST /invitations` (contract §3.4).
pub fn reset_body(user_id: &str, email: &str, redirect_url: &str, send_message: bool) -> Value {
    json!({
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": redirect_url,
        "sendInvitationMessage": send_message,
        "invitedUser": {"id": user_id},
        "resetRedemption": true,
    })
}

/// True for an object id (a GUID); anything else given as a user key is treated as a UPN.
pub fn looks_like_object_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Clone)]
struct CachedToken {
    access_token: String,
    refresh_after: Instant,
}

/// When to fetch a new token: a minute before expiry, or halfway for very short lifetimes.
fn refresh_after(now: Instant, expires_in: u64) -> Instant {
    let margin = (expires_in / 2).min(60);
    now + Duration::from_secs(expires_in.saturating_sub(margin))
}

/// A Graph client bound to one [`Connection`]. Cheap to clone; clones share the HTTP pool and token cache.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    conn: Arc<Connection>,
    graph: Url,
    token_url: Url,
    token: Arc<Mutex<Option<CachedToken>>>,
    /// A person's cached sign-in (`guestlist login`): used instead of the app's credentials.
    login: Option<Arc<Mutex<crate::login::SavedLogin>>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("graph", &self.graph.as_str())
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

fn parse_origin(name: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError(format!("{name} {value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError(format!("{name} {value:?} must be an http or https URL")));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl GraphClient {
    /// Builds a client for `conn`. Trusts `conn.ca_certificate` in addition to the built-in web PKI roots.
    /// Fails with a [`ConfigError`] for a bad URL or an unreadable certificate; no request is sent yet.
    pub fn new(conn: Connection) -> anyhow::Result<Self> {
        let graph = parse_origin("graphUrl", &conn.graph_url)?;
        let authority = parse_origin("authorityUrl", &conn.authority_url)?;
        let token_url = Url::parse(&format!(
            "{}/{}/oauth2/v2.0/token",
            authority.as_str().trim_end_matches('/'),
            urls::encode_path_segment(&conn.tenant_id)
        ))
        .map_err(|e| ConfigError(format!("cannot build the token URL: {e}")))?;

        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("guestlist-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60));
        if let Some(path) = &conn.ca_certificate {
            let pem = std::fs::read(path).map_err(|e| ConfigError(format!("cannot read CA certificate {}: {e}", path.display())))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(ConfigError(format!("CA certificate {} holds no PEM certificate", path.display())).into());
            }
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ConfigError(format!("CA certificate {} is not PEM: {e}", path.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        // A proxy from the environment can't reach the caller's loopback server.
        if is_loopback(&graph) && is_loopback(&authority) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| ConfigError(format!("cannot build the HTTP client: {e}")))?;
        Ok(GraphClient { http, conn: Arc::new(conn), graph, token_url, token: Arc::new(Mutex::new(None)), login: None })
    }

    /// The connection this client was built from.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The Graph origin (`graphUrl`).
    pub fn graph_base(&self) -> &Url {
        &self.graph
    }

    /// `{authorityUrl}/{tenantId}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The underlying HTTP client, for tests that send raw requests (it trusts the server's CA).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `{graphUrl}/v1.0/{segments...}?{query}` with each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &Query<'_>) -> Url {
        urls::graph_url(&self.graph, segments, query)
    }

    /// Acts as the person of `login` from now on: delegated tokens, refreshed (and the cache
    /// rewritten) when they have less than a minute left.
    pub fn with_login(mut self, login: crate::login::SavedLogin) -> Self {
        self.login = Some(Arc::new(Mutex::new(login)));
        self
    }

    /// An app-only access token, from the cache while it has more than a minute left (or the
    /// signed-in person's token, see [`GraphClient::with_login`]).
    pub async fn access_token(&self) -> anyhow::Result<String> {
        if let Some(login) = &self.login {
            let mut saved = login.lock().await;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            if now + 60 >= saved.expires_at {
                let fresh = crate::login::refresh(self, &saved).await?;
                crate::login::save(&fresh)?;
                *saved = fresh;
            }
            return Ok(saved.access_token.clone());
        }
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() < t.refresh_after {
                return Ok(t.access_token.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let token = fresh.access_token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops the cached token, so the next call fetches a new one.
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    async fn fetch_token(&self) -> anyhow::Result<CachedToken> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.conn.client_id.as_str()),
            ("client_secret", self.conn.client_secret.as_str()),
            ("scope", GRAPH_SCOPE),
        ];
        let started = Instant::now();
        let resp = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| ConnectionError::from_reqwest(&self.token_url, &e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| ConnectionError::from_reqwest(&self.token_url, &e))?;
        if !status.is_success() {
            return Err(TokenError::from_response(status.as_u16(), &body).into());
        }
        let v: Value =
            serde_json::from_str(&body).map_err(|_| InvalidResponse(format!("token endpoint answered {status} without JSON")))?;
        let access_token = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| InvalidResponse("token response has no access_token".into()))?
            .to_string();
        // MSAL accepts expires_in as a number or a string; so do we.
        let expires_in = match v.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(0);
        Ok(CachedToken { access_token, refresh_after: refresh_after(started, expires_in) })
    }

    /// Sends one authorised Graph request. 2xx: the JSON body, or `Value::Null` when empty (204).
    pub async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> anyhow::Result<Value> {
        let token = self.access_token().await?;
        let mut req = self.http.request(method, url.clone()).bearer_auth(token).header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ConnectionError::from_reqwest(&url, &e))?;
        let status = resp.status();
        let header_rid = resp.headers().get("request-id").and_then(|h| h.to_str().ok()).map(str::to_string);
        let text = resp.text().await.map_err(|e| ConnectionError::from_reqwest(&url, &e))?;
        if !status.is_success() {
            return Err(GraphError::from_response(status.as_u16(), header_rid.as_deref(), &text).into());
        }
        if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| InvalidResponse(format!("{url} answered {status} with a body that is not JSON")).into())
    }

    /// `POST /v1.0/invitations`: the created invitation (with `invitedUser.id` and `inviteRedeemUrl`).
    pub async fn invite(&self, params: InviteParams) -> anyhow::Result<Value> {
        self.send(Method::POST, self.url(&["invitations"], &Query::default()), Some(&invite_body(&params))).await
    }

    /// Resets a guest's redemption so that it redeems again with `email` (contract §3.4). `user` is an object
    /// id or a UPN; a UPN is first resolved with `GET /users/{upn}`, as the PowerShell recipe does.
    pub async fn reset_redemption(&self, user: &str, email: &str, redirect_url: &str, send_message: bool) -> anyhow::Result<Value> {
        let id = self.resolve_user_id(user).await?;
        self.send(Method::POST, self.url(&["invitations"], &Query::default()), Some(&reset_body(&id, email, redirect_url, send_message)))
            .await
    }

    /// The object id of `user` (an object id is returned as is; a UPN is looked up).
    pub async fn resolve_user_id(&self, user: &str) -> anyhow::Result<String> {
        if looks_like_object_id(user) {
            return Ok(user.to_string());
        }
        let found = self.get_user(user, Some("id")).await?;
        found
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| InvalidResponse(format!("user {user:?} came back without an id")).into())
    }

    /// `GET /v1.0/users/{id or UPN}` with an optional `$select` list (`id,userType,...`).
    pub async fn get_user(&self, id_or_upn: &str, select: Option<&str>) -> anyhow::Result<Value> {
        self.send(Method::GET, self.url(&["users", id_or_upn], &Query { select, ..Default::default() }), None).await
    }

    /// `GET /v1.0/users` with optional `$filter`, `$select` and `$top`, following every `@odata.nextLink`.
    /// As in Graph, `top` is the page size, not a limit on the total.
    pub async fn list_users(&self, filter: Option<&str>, select: Option<&str>, top: Option<u32>) -> anyhow::Result<Vec<Value>> {
        let mut url = self.url(&["users"], &Query { filter, select, top });
        let mut seen = std::collections::HashSet::new();
        let mut users = Vec::new();
        loop {
            let page = self.send(Method::GET, url.clone(), None).await?;
            users.extend(urls::page_values(&page).map_err(InvalidResponse)?.iter().cloned());
            match urls::next_link(&page, &url).map_err(InvalidResponse)? {
                None => return Ok(users),
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(InvalidResponse(format!("@odata.nextLink repeats itself: {next}")).into());
                    }
                    url = next;
                }
            }
        }
    }

    /// `PATCH /v1.0/users/{id}` with `changes` (for example `{"otherMails": [...]}`); Graph answers 204.
    pub async fn patch_user(&self, id: &str, changes: Value) -> anyhow::Result<()> {
        self.send(Method::PATCH, self.url(&["users", id], &Query::default()), Some(&changes)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_body_minimal_omits_absent_options() {
        let b = invite_body(&InviteParams::new("alice@example.com"));
        assert_eq!(
            b,
            json!({"invitedUserEmailAddress": "alice@example.com", "inviteRedirectUrl": "https://myapps.microsoft.com", "sendInvitationMessage": false})
        );
    }

    #[test]
    fn invite_body_full() {
        let p = InviteParams {
            email: "alice@example.com".into(),
            redirect_url: "https://app.example".into(),
            display_name: Some("Alice".into()),
            send_message: true,
            message: Some("Hello".into()),
            cc: Some("cc@example.com".into()),
            language: Some("en-US".into()),
            user_type: Some("Member".into()),
        };
        assert_eq!(
            invite_body(&p),
            json!({
                "invitedUserEmailAddress": "alice@example.com", "inviteRedirectUrl": "https://app.example",
                "sendInvitationMessage": true, "invitedUserDisplayName": "Alice", "invitedUserType": "Member",
                "invitedUserMessageInfo": {"customizedMessageBody": "Hello", "messageLanguage": "en-US",
                    "ccRecipients": [{"emailAddress": {"address": "cc@example.com"}}]}
            })
        );
    }

    #[test]
    fn reset_body_shape() {
        assert_eq!(
            reset_body("bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11", "alice@example.org", "https://myapps.microsoft.com", true),
            json!({"invitedUserEmailAddress": "alice@example.org", "inviteRedirectUrl": "https://myapps.microsoft.com",
                   "sendInvitationMessage": true, "invitedUser": {"id": "bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11"}, "resetRedemption": true})
        );
    }

    #[test]
    fn object_id_detection() {
        assert!(looks_like_object_id("bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11"));
        assert!(looks_like_object_id("BF883DBF-0B6E-4E0E-9C3B-5B1F2B7A9E11"));
        assert!(!looks_like_object_id("alice_example.org#EXT#@contoso.onmicrosoft.com"));
        assert!(!looks_like_object_id("bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e1"));
        assert!(!looks_like_object_id("bf883dbf0b6e4e0e9c3b5b1f2b7a9e11"));
    }

    #[test]
    fn token_refresh_margin() {
        let now = Instant::now();
        assert_eq!(refresh_after(now, 3599), now + Duration::from_secs(3539));
        assert_eq!(refresh_after(now, 10), now + Duration::from_secs(5));
        assert_eq!(refresh_after(now, 0), now);
    }

    fn conn(graph: &str) -> Connection {
        Connection {
            tenant_id: "7d2c1b7e-1111-4222-8333-944445555666".into(),
            tenant_domain: None,
            graph_url: graph.into(),
            authority_url: graph.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            ca_certificate: None,
            cli_client_id: None,
        }
    }

    #[test]
    fn new_builds_token_url_and_graph_urls() {
        let c = GraphClient::new(conn("https://127.0.0.1:8443/")).unwrap();
        assert_eq!(c.token_url().as_str(), "https://127.0.0.1:8443/7d2c1b7e-1111-4222-8333-944445555666/oauth2/v2.0/token");
        assert_eq!(c.url(&["users", "a#EXT#@b"], &Query::default()).as_str(), "https://127.0.0.1:8443/v1.0/users/a%23EXT%23%40b");
    }

    #[test]
    fn new_rejects_bad_urls_and_missing_ca_as_config_errors() {
        let err = GraphClient::new(conn("127.0.0.1:8443")).unwrap_err();
        assert!(err.downcast_ref::<ConfigError>().is_some(), "{err:#}");
        let err = GraphClient::new(conn("ftp://127.0.0.1")).unwrap_err();
        assert!(err.downcast_ref::<ConfigError>().is_some(), "{err:#}");
        let mut c = conn("https://127.0.0.1:8443");
        c.ca_certificate = Some("/nonexistent/ca.pem".into());
        let err = GraphClient::new(c).unwrap_err();
        assert!(err.downcast_ref::<ConfigError>().unwrap().0.contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn new_rejects_non_pem_ca() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let mut c = conn("https://127.0.0.1:8443");
        c.ca_certificate = Some(path);
        let err = GraphClient::new(c).unwrap_err();
        assert!(err.downcast_ref::<ConfigError>().unwrap().0.contains("no PEM certificate"), "{err:#}");
    }
}
