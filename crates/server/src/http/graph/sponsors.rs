//! `/users/{id}/sponsors`: list, add by `$ref`, remove by `$ref` (graph-docs `user-list-sponsors.md`,
//! `user-post-sponsors.md`, `user-delete-sponsors.md`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guestlist_domain::group::DirectoryObject;
use guestlist_domain::ids::ObjectId;
use guestlist_odata::decode_path_segment;
use serde_json::{json, Value};

use super::groups::{directory_object_json, referenced_object};
use super::users::user_key;
use super::wire::JsonBody;
use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;

/// A collection of directoryObjects: each sponsor with `@odata.type` and its default properties.
pub async fn list(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
) -> Result<Response, ApiError> {
    let sponsors = state.services.sponsors(&caller, &user_key(&segment)?).await?;
    let value: Vec<Value> =
        sponsors.into_iter().map(|sponsor| directory_object_json(&DirectoryObject::User(Box::new(sponsor)), None)).collect();
    let context = format!("{}/{}/$metadata#directoryObjects", state.services.public_origin, version.as_str());
    Ok(graph_json(&json!({"@odata.context": context, "value": value})).into_response())
}

/// `POST /users/{id}/sponsors/$ref` with `{"@odata.id": ".../users/{id}"}` (or `/directoryObjects/{id}`): 204.
pub async fn add(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = user_key(&segment)?;
    let body = JsonBody::parse(&body, false)?;
    let reference =
        body.string("@odata.id")?.ok_or_else(|| ApiError::bad_request("The request body must name the sponsor in '@odata.id'."))?;
    // Graph accepts groups as sponsors too; guestlist links users for now.
    let sponsor = referenced_object(&reference, &["users", "directoryObjects"])?;
    state.services.add_sponsor(&caller, &key, sponsor).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /users/{id}/sponsors/{sponsorId}/$ref`: 204, or 404 when it is not a sponsor.
pub async fn remove(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((segment, sponsor)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = user_key(&segment)?;
    let sponsor = decode_path_segment(&sponsor)?;
    let sponsor = ObjectId::parse(&sponsor).map_err(|_| not_found(&sponsor))?;
    state.services.remove_sponsor(&caller, &key, sponsor).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}
