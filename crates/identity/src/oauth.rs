//! Response shapes of the OAuth2 endpoints MSAL and azure-identity call: the OpenID discovery
//! document, instance discovery, the token response and Entra's token error body.

use chrono::{DateTime, Utc};
use guestlist_domain::ObjectId;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::tokens::{issuer, IssuedToken};
use crate::{GRAPH_APP_ID, GRAPH_RESOURCE};

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`. Endpoints keep the tenant segment the
/// caller used (MSAL posts to whatever `token_endpoint` says); `issuer` names the tenant id.
pub fn openid_configuration(origin: &str, tenant_segment: &str, tenant_id: &ObjectId) -> Value {
    let origin = origin.trim_end_matches('/');
    let base = format!("{origin}/{tenant_segment}");
    json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer(origin, tenant_id),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp",
            "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host_of(origin),
    })
}

/// `GET /common/discovery/instance?authorization_endpoint=...&api-version=...`, as Entra answers
/// it. MSAL drops the port from `authorization_endpoint`, so only its first path segment (the
/// tenant) is used; the rest comes from our origin. Without the parameter the tenant stays the
/// literal `{tenant}`, as Entra's answer has it.
pub fn instance_discovery(origin: &str, authorization_endpoint_param: Option<&str>) -> Value {
    let origin = origin.trim_end_matches('/');
    let tenant = authorization_endpoint_param.and_then(tenant_of_authorization_endpoint).unwrap_or_else(|| "{tenant}".to_owned());
    let host = host_of(origin);
    let hostname = host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host.as_str(), |(h, _)| h);
    let mut aliases = vec![host.clone()];
    if hostname != host {
        aliases.push(hostname.to_owned());
    }
    json!({
        "tenant_discovery_endpoint": format!("{origin}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": aliases}],
    })
}

fn tenant_of_authorization_endpoint(endpoint: &str) -> Option<String> {
    let after_scheme = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let path = after_scheme.split_once('/')?.1;
    let tenant = path.split(['/', '?', '#']).next()?;
    let well_formed = !tenant.is_empty() && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    well_formed.then(|| tenant.to_owned())
}

/// `host[:port]` of an origin.
fn host_of(origin: &str) -> String {
    let after_scheme = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    after_scheme.split('/').next().unwrap_or_default().to_owned()
}

/// The 200 body of a successful token request.
pub fn token_response(token: &IssuedToken) -> Value {
    json!({
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "ext_expires_in": token.expires_in,
        "access_token": token.access_token,
    })
}

/// Scope values a client credentials request for Graph may carry.
const GRAPH_DEFAULT_SCOPES: [&str; 3] =
    ["https://graph.microsoft.com/.default", "https://graph.microsoft.com//.default", "00000003-0000-0000-c000-000000000000/.default"];

/// Checks the `scope` of a client credentials request: Graph's `/.default`, nothing else.
/// `tenant` names the directory in the error (its display name or the URL segment).
pub fn check_client_credentials_scope(scope: Option<&str>, tenant: &str) -> Result<(), TokenEndpointError> {
    let scope = scope.map(str::trim).filter(|s| !s.is_empty()).ok_or(TokenEndpointError::MissingParameter { name: "scope" })?;
    for value in scope.split_whitespace() {
        if GRAPH_DEFAULT_SCOPES.iter().any(|s| s.eq_ignore_ascii_case(value)) {
            continue;
        }
        return Err(match value.strip_suffix("/.default") {
            Some(resource) if !is_graph_resource(resource) => {
                TokenEndpointError::UnknownResource { resource: resource.to_owned(), tenant: tenant.to_owned() }
            }
            _ => TokenEndpointError::InvalidScope { scope: scope.to_owned() },
        });
    }
    Ok(())
}

fn is_graph_resource(resource: &str) -> bool {
    let resource = resource.trim_end_matches('/');
    resource.eq_ignore_ascii_case(GRAPH_RESOURCE) || resource.eq_ignore_ascii_case(GRAPH_APP_ID)
}

/// The token endpoint's refusals, each rendering Entra's error body. Suggested order of checks:
/// tenant, grant_type, client_id, scope, the client, its secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenEndpointError {
    /// 400 `invalid_tenant`, AADSTS90002. Entra's current answer for an unknown tenant segment.
    #[error("{}", self.message())]
    UnknownTenant { tenant: String },
    /// 400 `invalid_request`, AADSTS900144: `grant_type`, `client_id` or `scope` absent.
    #[error("{}", self.message())]
    MissingParameter { name: &'static str },
    /// 400 `unsupported_grant_type`, AADSTS70003.
    #[error("{}", self.message())]
    UnsupportedGrantType { grant_type: String },
    /// 400 `unauthorized_client`, AADSTS700016.
    #[error("{}", self.message())]
    UnknownClient { client_id: String, tenant: String },
    /// 401 `invalid_client`, AADSTS7000216.
    #[error("{}", self.message())]
    MissingClientSecret,
    /// 401 `invalid_client`, AADSTS7000215.
    #[error("{}", self.message())]
    InvalidClientSecret { app_id: String },
    /// 401 `invalid_client`, AADSTS7000218: a confidential client (an app with a secret) on a
    /// delegated grant without its secret.
    #[error("{}", self.message())]
    ConfidentialClientWithoutSecret,
    /// 400 `invalid_scope`, AADSTS1002012: not a `/.default` scope.
    #[error("{}", self.message())]
    InvalidScope { scope: String },
    /// 400 `invalid_resource`, AADSTS500011: `/.default` of a resource other than Graph.
    #[error("{}", self.message())]
    UnknownResource { resource: String, tenant: String },
    /// A refusal of the delegated grants (authorization code, refresh token, device code) with
    /// Entra's `error` and AADSTS number; see the constructors below.
    #[error("{}", self.message())]
    Grant { error: &'static str, code: u32, text: String },
}

/// Entra's refusals of the delegated grants.
impl TokenEndpointError {
    fn grant(error: &'static str, code: u32, text: impl Into<String>) -> Self {
        TokenEndpointError::Grant { error, code, text: text.into() }
    }
    /// AADSTS70000: a code or refresh token that is unknown, malformed, or issued to another client.
    pub fn invalid_grant() -> Self {
        Self::grant("invalid_grant", 70000, "Provided grant is invalid or malformed.")
    }
    /// AADSTS54005: an authorization code used a second time.
    pub fn code_already_redeemed() -> Self {
        Self::grant(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        )
    }
    /// AADSTS70008: an expired authorization code.
    pub fn code_expired() -> Self {
        Self::grant(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        )
    }
    /// AADSTS501481: the PKCE verifier does not match the challenge.
    pub fn code_verifier_mismatch() -> Self {
        Self::grant("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
    }
    /// AADSTS50148: a code issued with PKCE redeemed without a verifier.
    pub fn code_verifier_missing() -> Self {
        Self::grant(
            "invalid_request",
            50148,
            "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
        )
    }
    /// AADSTS50011/70000: `redirect_uri` differs from the authorization request's.
    pub fn redirect_uri_mismatch() -> Self {
        Self::grant(
            "invalid_grant",
            50011,
            "The redirect URI specified in the request does not match the redirect URI of the authorization request.",
        )
    }
    /// AADSTS700082: a refresh token that expired or was revoked (reuse of a rotated token
    /// revokes its whole family).
    pub fn refresh_token_revoked() -> Self {
        Self::grant(
            "invalid_grant",
            700082,
            "The refresh token has expired or was revoked. Send a new interactive authorization request for this user and resource.",
        )
    }
    /// AADSTS50057/50053 at the token endpoint: the account is disabled or locked.
    pub fn account_unavailable() -> Self {
        Self::grant("invalid_grant", 50057, "The user account is disabled or locked.")
    }
    /// AADSTS70016: the user has not finished the device login yet.
    pub fn authorization_pending() -> Self {
        Self::grant("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
    }
    /// Polling faster than `interval`.
    pub fn slow_down() -> Self {
        Self::grant("slow_down", 70016, "OAuth 2.0 device flow error. Polling too frequently; wait for the interval before polling again.")
    }
    /// AADSTS70019: the device code expired.
    pub fn device_code_expired() -> Self {
        Self::grant("expired_token", 70019, "Verification code expired.")
    }
    /// The user declined the device login: Entra answers `authorization_declined` (its device code
    /// docs; RFC 8628 names it `access_denied`), and clients stop polling on either.
    pub fn authorization_declined() -> Self {
        Self::grant("authorization_declined", 70000, "The user has declined to authorize the device.")
    }
    /// AADSTS65001-ish: a scope of another resource, or malformed.
    pub fn delegated_scope_invalid(scope: &str) -> Self {
        Self::grant("invalid_scope", 70011, format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid: {scope}"))
    }
}

impl TokenEndpointError {
    pub fn status(&self) -> u16 {
        match self {
            TokenEndpointError::MissingClientSecret
            | TokenEndpointError::InvalidClientSecret { .. }
            | TokenEndpointError::ConfidentialClientWithoutSecret => 401,
            _ => 400,
        }
    }

    /// The OAuth2 `error` member.
    pub fn error(&self) -> &'static str {
        match self {
            TokenEndpointError::UnknownTenant { .. } => "invalid_tenant",
            TokenEndpointError::MissingParameter { .. } => "invalid_request",
            TokenEndpointError::UnsupportedGrantType { .. } => "unsupported_grant_type",
            TokenEndpointError::UnknownClient { .. } => "unauthorized_client",
            TokenEndpointError::MissingClientSecret
            | TokenEndpointError::InvalidClientSecret { .. }
            | TokenEndpointError::ConfidentialClientWithoutSecret => "invalid_client",
            TokenEndpointError::InvalidScope { .. } => "invalid_scope",
            TokenEndpointError::UnknownResource { .. } => "invalid_resource",
            TokenEndpointError::Grant { error, .. } => error,
        }
    }

    /// The AADSTS number.
    pub fn code(&self) -> u32 {
        match self {
            TokenEndpointError::UnknownTenant { .. } => 90002,
            TokenEndpointError::MissingParameter { .. } => 900144,
            TokenEndpointError::UnsupportedGrantType { .. } => 70003,
            TokenEndpointError::UnknownClient { .. } => 700016,
            TokenEndpointError::MissingClientSecret => 7000216,
            TokenEndpointError::InvalidClientSecret { .. } => 7000215,
            TokenEndpointError::ConfidentialClientWithoutSecret => 7000218,
            TokenEndpointError::InvalidScope { .. } => 1002012,
            TokenEndpointError::UnknownResource { .. } => 500011,
            TokenEndpointError::Grant { code, .. } => *code,
        }
    }

    /// The first line of `error_description`, `AADSTS<code>: ...`.
    pub fn message(&self) -> String {
        let text = match self {
            TokenEndpointError::Grant { text, .. } => text.clone(),
            TokenEndpointError::UnknownTenant { tenant } => format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. \
                 Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
            TokenEndpointError::MissingParameter { name } => format!("The request body must contain the following parameter: '{name}'."),
            TokenEndpointError::UnsupportedGrantType { grant_type } => {
                format!("The app requested an unsupported grant type '{grant_type}'.")
            }
            TokenEndpointError::UnknownClient { client_id, tenant } => format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application \
                 has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent \
                 your authentication request to the wrong tenant."
            ),
            TokenEndpointError::MissingClientSecret => {
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".to_owned()
            }
            TokenEndpointError::ConfidentialClientWithoutSecret => {
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned()
            }
            TokenEndpointError::InvalidClientSecret { app_id } => format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client \
                 secret ID, for a secret added to app '{app_id}'."
            ),
            TokenEndpointError::InvalidScope { scope } => format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default \
                 suffixed to the resource identifier (application ID URI)."
            ),
            TokenEndpointError::UnknownResource { resource, tenant } => format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application \
                 has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent \
                 your authentication request to the wrong tenant."
            ),
        };
        format!("AADSTS{}: {text}", self.code())
    }

    /// Entra's error body. `correlation_id` is the caller's `client-request-id` when it sent one
    /// (Entra echoes it), else random; `trace_id` is random per response.
    pub fn body(&self, origin: &str, trace_id: Uuid, correlation_id: Uuid, at: DateTime<Utc>) -> Value {
        let timestamp = at.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let description =
            format!("{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}", self.message());
        json!({
            "error": self.error(),
            "error_description": description,
            "error_codes": [self.code()],
            "timestamp": timestamp,
            "trace_id": trace_id.to_string(),
            "correlation_id": correlation_id.to_string(),
            "error_uri": format!("{}/error?code={}", origin.trim_end_matches('/'), self.code()),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const ORIGIN: &str = "https://127.0.0.1:8443";

    #[test]
    fn discovery_points_at_this_origin_and_the_callers_tenant_segment() {
        let tid = ObjectId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let doc = openid_configuration(&format!("{ORIGIN}/"), "contoso.onmicrosoft.com", &tid);
        assert_eq!(doc["issuer"], "https://127.0.0.1:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0");
        assert_eq!(doc["authorization_endpoint"], "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/authorize");
        assert_eq!(doc["token_endpoint"], "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(doc["jwks_uri"], "https://127.0.0.1:8443/contoso.onmicrosoft.com/discovery/v2.0/keys");
        assert_eq!(doc["device_authorization_endpoint"], "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/devicecode");
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]));
        assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["client_secret_post", "client_secret_basic"]));
        assert_eq!(doc["msgraph_host"], "127.0.0.1:8443");
        assert!(doc["tenant_region_scope"].is_string() && doc["cloud_instance_name"].is_string());
        assert!(doc["response_types_supported"].is_array() && doc["subject_types_supported"].is_array());
    }

    #[test]
    fn discovery_issuer_matches_the_tokens_iss() {
        let tid = ObjectId::new_random();
        assert_eq!(openid_configuration(ORIGIN, "organizations", &tid)["issuer"], issuer(ORIGIN, &tid));
    }

    #[test]
    fn instance_discovery_sends_msal_to_our_openid_configuration() {
        let doc = instance_discovery(ORIGIN, Some("https://127.0.0.1/contoso.onmicrosoft.com/oauth2/v2.0/authorize"));
        assert_eq!(
            doc["tenant_discovery_endpoint"],
            "https://127.0.0.1:8443/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(doc["api-version"], "1.1");
        assert_eq!(doc["metadata"][0]["preferred_network"], "127.0.0.1:8443");
        assert_eq!(doc["metadata"][0]["aliases"], json!(["127.0.0.1:8443", "127.0.0.1"]));

        let bare = instance_discovery("https://[::1]:8443", None);
        assert_eq!(bare["tenant_discovery_endpoint"], "https://[::1]:8443/{tenant}/v2.0/.well-known/openid-configuration");
        assert_eq!(bare["metadata"][0]["aliases"], json!(["[::1]:8443", "[::1]"]));
        let odd = instance_discovery(ORIGIN, Some("https://127.0.0.1/a%2F..%2Fb/oauth2"));
        assert_eq!(odd["tenant_discovery_endpoint"], "https://127.0.0.1:8443/{tenant}/v2.0/.well-known/openid-configuration");
    }

    #[test]
    fn token_response_is_what_msal_expects() {
        let token = IssuedToken { access_token: "a.b.c".to_owned(), expires_in: 3599, expires_at: Utc::now() };
        assert_eq!(
            token_response(&token),
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "a.b.c"})
        );
    }

    #[test]
    fn client_credentials_scope_must_be_graph_default() {
        for ok in [
            "https://graph.microsoft.com/.default",
            "00000003-0000-0000-c000-000000000000/.default",
            "HTTPS://GRAPH.MICROSOFT.COM/.default",
            " https://graph.microsoft.com/.default ",
        ] {
            assert_eq!(check_client_credentials_scope(Some(ok), "contoso"), Ok(()), "{ok}");
        }
        assert_eq!(check_client_credentials_scope(None, "contoso"), Err(TokenEndpointError::MissingParameter { name: "scope" }));
        assert_eq!(check_client_credentials_scope(Some(""), "contoso"), Err(TokenEndpointError::MissingParameter { name: "scope" }));
        assert_eq!(
            check_client_credentials_scope(Some("User.Read.All"), "contoso"),
            Err(TokenEndpointError::InvalidScope { scope: "User.Read.All".to_owned() })
        );
        assert_eq!(
            check_client_credentials_scope(Some("https://graph.microsoft.com/User.Invite.All"), "contoso"),
            Err(TokenEndpointError::InvalidScope { scope: "https://graph.microsoft.com/User.Invite.All".to_owned() })
        );
        assert_eq!(
            check_client_credentials_scope(Some("api://other/.default"), "contoso"),
            Err(TokenEndpointError::UnknownResource { resource: "api://other".to_owned(), tenant: "contoso".to_owned() })
        );
    }

    #[test]
    fn token_errors_render_entras_body() {
        let trace = Uuid::parse_str("8d24319a-7b99-4a9b-9134-e1e92fa52901").unwrap();
        let correlation = Uuid::parse_str("f669e3e6-57ee-4725-baab-186cb844e7bd").unwrap();
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let err = TokenEndpointError::InvalidClientSecret { app_id: "11111111-2222-3333-4444-555555555555".to_owned() };
        assert_eq!(err.status(), 401);
        assert_eq!(
            err.body(&format!("{ORIGIN}/"), trace, correlation, at),
            json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '11111111-2222-3333-4444-555555555555'.\r\nTrace ID: 8d24319a-7b99-4a9b-9134-e1e92fa52901\r\nCorrelation ID: f669e3e6-57ee-4725-baab-186cb844e7bd\r\nTimestamp: 2024-01-01 00:00:00Z",
                "error_codes": [7000215],
                "timestamp": "2024-01-01 00:00:00Z",
                "trace_id": "8d24319a-7b99-4a9b-9134-e1e92fa52901",
                "correlation_id": "f669e3e6-57ee-4725-baab-186cb844e7bd",
                "error_uri": "https://127.0.0.1:8443/error?code=7000215",
            })
        );
    }

    #[test]
    fn each_refusal_has_entras_status_error_and_code() {
        let cases = [
            (TokenEndpointError::UnknownTenant { tenant: "nope".into() }, 400, "invalid_tenant", "AADSTS90002: Tenant 'nope' not found."),
            (TokenEndpointError::MissingParameter { name: "grant_type" }, 400, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'."),
            (TokenEndpointError::UnsupportedGrantType { grant_type: "password".into() }, 400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type 'password'."),
            (TokenEndpointError::UnknownClient { client_id: "abc".into(), tenant: "contoso".into() }, 400, "unauthorized_client", "AADSTS700016: Application with identifier 'abc' was not found in the directory 'contoso'."),
            (TokenEndpointError::MissingClientSecret, 401, "invalid_client", "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."),
            (TokenEndpointError::ConfidentialClientWithoutSecret, 401, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
            (TokenEndpointError::InvalidScope { scope: "User.Read".into() }, 400, "invalid_scope", "AADSTS1002012: The provided value for scope User.Read is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
            (TokenEndpointError::UnknownResource { resource: "api://x".into(), tenant: "contoso".into() }, 400, "invalid_resource", "AADSTS500011: The resource principal named api://x was not found in the tenant named contoso."),
        ];
        for (err, status, error, start) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.error(), error, "{err:?}");
            assert!(err.message().starts_with(start), "{}", err.message());
            assert!(!err.message().contains("  "), "{}", err.message());
            let body = err.body(ORIGIN, Uuid::new_v4(), Uuid::new_v4(), Utc::now());
            assert_eq!(body["error_codes"][0], err.code());
        }
    }
}
