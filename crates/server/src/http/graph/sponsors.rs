//! `/users/{id}/sponsors`: list, add by `$ref`, remove by `$ref` (graph-docs `user-list-sponsors.md`,
//! `user-post-sponsors.md`, `user-delete-sponsors.md`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guestlist_domain::ids::ObjectId;
use guestlist_odata::decode_path_segment;
use serde_json::{json, Map, Value};

use super::users::user_key;
use super::wire::{user_json, JsonBody};
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
    let value: Vec<Value> = sponsors
        .iter()
        .map(|sponsor| {
            let mut object = Map::new();
            object.insert("@odata.type".into(), Value::String("#microsoft.graph.user".into()));
            object.extend(user_json(sponsor, None));
            Value::Object(object)
        })
        .collect();
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
    let sponsor = referenced_object(&reference)?;
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

/// The object id at the end of an `@odata.id` URL: `https://graph.microsoft.com/v1.0/users/{id}`,
/// `.../directoryObjects/{id}`, or a relative `users/{id}`; any host, as Graph accepts.
fn referenced_object(reference: &str) -> Result<ObjectId, ApiError> {
    let invalid = || ApiError::bad_request(format!("Invalid URL format specified in @odata.id: '{reference}'."));
    let path = reference.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    let mut segments = path.rsplit('/');
    let id = segments.next().ok_or_else(invalid)?;
    let collection = segments.next().ok_or_else(invalid)?;
    if !["users", "directoryObjects"].iter().any(|c| c.eq_ignore_ascii_case(collection)) {
        return Err(invalid());
    }
    let id = decode_path_segment(id).map_err(|_| invalid())?;
    ObjectId::parse(&id).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_users_or_directory_objects() {
        let id = "0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99";
        for reference in [
            format!("https://graph.microsoft.com/v1.0/users/{id}"),
            format!("https://127.0.0.1:8443/beta/directoryObjects/{id}/"),
            format!("users/{id}"),
        ] {
            assert_eq!(referenced_object(&reference).unwrap().to_string(), id, "{reference}");
        }
        for bad in ["", id, "https://graph.microsoft.com/v1.0/groups/x", "https://graph.microsoft.com/v1.0/users/not-a-guid"] {
            assert_eq!(referenced_object(bad).unwrap_err().code, "Request_BadRequest", "{bad}");
        }
    }
}
