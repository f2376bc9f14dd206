//! The identity platform's endpoints that MSAL and azure-identity use: OpenID discovery,
//! instance discovery, the token endpoint (client credentials) and the signing keys.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guestlist_identity::oauth::{instance_discovery, openid_configuration, TokenEndpointError};

use super::AppState;
use chrono::Utc;
use uuid::Uuid;

use crate::services::tokens::{ClientCredentials, TokenFailure};
use crate::services::ServiceError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/common/discovery/instance", get(instance))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery))
        .route("/{tenant}/.well-known/openid-configuration", get(discovery))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device_code))
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/discovery/keys", get(keys))
}

/// The origin the caller used, so discovery documents point back at the same host
/// (MSAL requires the token endpoint on the origin it fetched the document from).
fn request_origin(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty() && !h.contains(['/', ' ']));
    match host {
        Some(host) => format!("{}://{host}", state.scheme),
        None => state.services.public_origin.clone(),
    }
}

async fn discovery(State(state): State<AppState>, Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    let origin = request_origin(&state, &headers);
    match state.services.store.tenant(&tenant).await {
        Ok(Some(found)) => {
            let mut document = openid_configuration(&origin, &tenant, &found.id);
            // Tokens carry the server's own issuer whatever host name fetched the document.
            document["issuer"] = serde_json::Value::String(format!("{}/{}/v2.0", state.services.public_origin, found.id));
            Json(document).into_response()
        }
        Ok(None) => token_error(&origin, TokenEndpointError::UnknownTenant { tenant }.into()),
        Err(error) => token_error(&origin, TokenFailure::Service(error.into())),
    }
}

#[derive(serde::Deserialize)]
struct InstanceQuery {
    authorization_endpoint: Option<String>,
}

async fn instance(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<InstanceQuery>) -> Response {
    let origin = request_origin(&state, &headers);
    Json(instance_discovery(&origin, query.authorization_endpoint.as_deref())).into_response()
}

async fn keys(State(state): State<AppState>) -> Response {
    match state.services.jwks().await {
        Ok(jwks) => Json(jwks).into_response(),
        Err(error) => token_error(&state.services.public_origin, TokenFailure::Service(error)),
    }
}

async fn token(State(state): State<AppState>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let mut form = ClientCredentials::default();
    for (name, value) in url::form_urlencoded::parse(&body) {
        let value = Some(value.into_owned());
        match name.as_ref() {
            "grant_type" => form.grant_type = value,
            "client_id" => form.client_id = value,
            "client_secret" => form.client_secret = value,
            "scope" => form.scope = value,
            "code" => form.code = value,
            "redirect_uri" => form.redirect_uri = value,
            "code_verifier" => form.code_verifier = value,
            "refresh_token" => form.refresh_token = value,
            "device_code" => form.device_code = value,
            "client_info" => form.client_info = value,
            // `claims` and the like are accepted and ignored, as AAD does.
            _ => {}
        }
    }
    // client_secret_basic: `Authorization: Basic base64(client_id:client_secret)`.
    if let Some((id, secret)) = basic_credentials(&headers) {
        form.client_id.get_or_insert(id);
        form.client_secret.get_or_insert(secret);
    }
    let delegated = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"];
    if form.grant_type.as_deref().is_some_and(|grant| delegated.contains(&grant)) {
        return match state.services.delegated_grant(&tenant, &form).await {
            Ok(tokens) => no_store(Json(tokens.body()).into_response()),
            Err(error) => token_error(&request_origin(&state, &headers), error),
        };
    }
    match state.services.client_credentials(&tenant, form).await {
        Ok(issued) => Json(serde_json::json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.expires_in,
            "access_token": issued.access_token,
        }))
        .into_response(),
        Err(error) => token_error(&request_origin(&state, &headers), error),
    }
}

/// Token responses are never cached (RFC 6749 §5.1).
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`: the device code flow's first step (RFC 8628 §3.2).
async fn device_code(State(state): State<AppState>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut client_id, mut scope) = (None, None);
    for (name, value) in url::form_urlencoded::parse(&body) {
        match name.as_ref() {
            "client_id" => client_id = Some(value.into_owned()),
            "scope" => scope = Some(value.into_owned()),
            _ => {}
        }
    }
    let origin = request_origin(&state, &headers);
    match state.services.device_authorization(&tenant, client_id.as_deref(), scope.as_deref(), &origin).await {
        Ok(device) => no_store(
            Json(serde_json::json!({
                "user_code": device.user_code,
                "device_code": device.device_code,
                "verification_uri": device.verification_uri,
                "expires_in": device.expires_in,
                "interval": device.interval,
                "message": device.message,
            }))
            .into_response(),
        ),
        Err(error) => token_error(&origin, error),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}

/// Entra's error body for the token service; our own faults become a 500 `server_error`
/// (which MSAL raises as an exception rather than returning as a refusal).
fn token_error(origin: &str, failure: TokenFailure) -> Response {
    match failure {
        TokenFailure::Endpoint(error) => {
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, Json(error.body(origin, Uuid::new_v4(), Uuid::new_v4(), Utc::now()))).into_response()
        }
        TokenFailure::Service(error) => {
            let status = match error {
                ServiceError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::error!(%error, "token service failure");
            (status, Json(serde_json::json!({"error": "server_error", "error_description": "The token service could not complete the request. Retry later."})))
                .into_response()
        }
    }
}
