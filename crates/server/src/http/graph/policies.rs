//! External collaboration settings: Graph's `GET/PATCH /policies/authorizationPolicy`, and the
//! invitation domain allow/deny list at `GET/PUT /guestlist/v1/tenant/invitationDomainPolicy`.
//!
//! Graph has no documented endpoint for the allow/deny list: Entra keeps it as a legacy policy of
//! type `B2BManagementPolicy` that AzureAD PowerShell (`New-AzureADPolicy -Type B2BManagementPolicy
//! -Definition ...`) wrote through the retired AAD Graph. guestlist serves the same object, in that
//! legacy shape (`definition` is an array holding one JSON string), under its own namespace.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use guestlist_domain::policy::InvitationDomainPolicy;
use serde_json::{json, Value};

use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::policies::B2B_MANAGEMENT_POLICY_TYPE;

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) if super::wire::holds_nul(&map) => {
            Err(ApiError::bad_request("Invalid request body: text may not contain the character U+0000."))
        }
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("The request body must be a JSON object.")),
        Err(e) => Err(ApiError::bad_request(format!("Invalid JSON in the request body: {e}"))),
    }
}

/// `GET /policies/authorizationPolicy`.
pub async fn get_authorization_policy(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
) -> Result<Response, ApiError> {
    let policy = state.services.authorization_policy(&caller).await?;
    let mut body = policy.to_graph();
    body["@odata.context"] =
        json!(format!("{}/{}/$metadata#policies/authorizationPolicy/$entity", state.services.public_origin, version.as_str()));
    Ok(graph_json(&body).into_response())
}

/// `PATCH /policies/authorizationPolicy`: 204.
pub async fn update_authorization_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    state.services.update_authorization_policy(&caller, &body).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn guestlist_router() -> Router<AppState> {
    Router::new().route("/guestlist/v1/tenant/invitationDomainPolicy", get(get_domain_policy).put(put_domain_policy))
}

fn domain_policy_json(policy: &InvitationDomainPolicy) -> Value {
    json!({
        "type": B2B_MANAGEMENT_POLICY_TYPE,
        "displayName": B2B_MANAGEMENT_POLICY_TYPE,
        "definition": [policy.definition_text()],
    })
}

async fn get_domain_policy(State(state): State<AppState>, Authenticated(caller): Authenticated) -> Result<Response, ApiError> {
    let policy = state.services.invitation_domain_policy(&caller).await?;
    Ok(graph_json(&domain_policy_json(&policy)).into_response())
}

/// `PUT` with `{"definition": ["<definition JSON>"]}` (or the definition object itself):
/// replaces the list, one mode at a time, at most 25,000 characters (contract §5.2).
async fn put_domain_policy(State(state): State<AppState>, Authenticated(caller): Authenticated, body: Bytes) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let definition = match body.get("definition") {
        Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
            Value::String(text) => {
                serde_json::from_str::<Value>(text).map_err(|e| ApiError::bad_request(format!("The definition is not valid JSON: {e}")))?
            }
            other => other.clone(),
        },
        Some(Value::Object(object)) => Value::Object(object.clone()),
        _ => return Err(ApiError::bad_request("The body must carry 'definition': an array with one B2BManagementPolicy JSON string.")),
    };
    let policy = InvitationDomainPolicy::from_definition(&definition).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.services.set_invitation_domain_policy(&caller, &policy).await?;
    Ok(graph_json(&domain_policy_json(&policy)).into_response())
}
