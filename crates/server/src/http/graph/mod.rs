//! Microsoft Graph routes, served under `/v1.0` and `/beta`.

mod advanced;
pub mod audit_logs;
pub mod groups;
pub mod invitations;
pub mod me;
pub mod policies;
pub mod roles;
pub mod sponsors;
pub mod users;
pub mod wire;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

use super::error::{ApiError, GRAPH_JSON};
use super::AppState;

/// Which Graph version a request came in on; it appears in `@odata.context` and next links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphVersion {
    V1,
    Beta,
}

impl GraphVersion {
    pub fn as_str(&self) -> &'static str {
        match self {
            GraphVersion::V1 => "v1.0",
            GraphVersion::Beta => "beta",
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for GraphVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<GraphVersion>().copied().ok_or_else(|| ApiError::unknown_segment(parts.uri.path()))
    }
}

/// A JSON body with Graph's content type.
pub fn graph_json(value: &serde_json::Value) -> Response {
    let mut response = value.to_string().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(GRAPH_JSON));
    response
}

pub fn router(version: GraphVersion) -> Router<AppState> {
    Router::new()
        .route("/invitations", post(invitations::create).fallback(invitations::method_not_allowed))
        .route("/invitations/{*rest}", any(invitations::method_not_allowed))
        .route("/users", get(users::list).post(users::create))
        .route("/users/$count", get(users::count))
        .route("/users/{id}", get(users::get).patch(users::update).delete(users::delete))
        .route("/users/{id}/sponsors", get(sponsors::list))
        .route("/users/{id}/sponsors/$ref", post(sponsors::add))
        .route("/users/{id}/sponsors/{sponsor}/$ref", axum::routing::delete(sponsors::remove))
        .route("/auditLogs/directoryAudits", get(audit_logs::list))
        .route("/directoryRoles", get(roles::list_directory_roles))
        .route("/directoryRoles/{id}", get(roles::get_directory_role))
        .route("/directoryRoles/{id}/members", get(roles::list_directory_role_members))
        .route("/directoryRoles/{id}/members/$ref", post(roles::add_directory_role_member))
        .route("/directoryRoles/{id}/members/{member}/$ref", axum::routing::delete(roles::remove_directory_role_member))
        .route("/{segment}", any(roles::get_directory_role_by_template))
        .route("/roleManagement/directory/roleAssignments", get(roles::list_role_assignments).post(roles::create_role_assignment))
        .route("/roleManagement/directory/roleAssignments/{id}", get(roles::get_role_assignment).delete(roles::delete_role_assignment))
        .route("/roleManagement/directory/roleDefinitions", get(roles::list_role_definitions))
        .route("/policies/authorizationPolicy", get(policies::get_authorization_policy).patch(policies::update_authorization_policy))
        .route("/auditLogs/directoryAudits/{id}", get(audit_logs::get))
        .route("/users/{id}/memberOf", get(groups::user_member_of))
        .route("/users/{id}/transitiveMemberOf", get(groups::user_transitive_member_of))
        .route("/users/{id}/memberOf/$count", get(groups::relationship_count))
        .route("/users/{id}/transitiveMemberOf/$count", get(groups::relationship_count))
        .route("/groups", get(groups::list).post(groups::create))
        .route("/groups/$count", get(groups::count))
        .route("/groups/{id}/members/$count", get(groups::relationship_count))
        .route("/groups/{id}/memberOf/$count", get(groups::relationship_count))
        .route("/groups/{id}/transitiveMemberOf/$count", get(groups::relationship_count))
        .route("/groups/{id}", get(groups::get).patch(groups::update).delete(groups::delete))
        .route("/groups/{id}/members", get(groups::members))
        .route("/groups/{id}/members/$ref", post(groups::add_member))
        .route("/groups/{id}/members/{member}/$ref", axum::routing::delete(groups::remove_member))
        .route("/groups/{id}/memberOf", get(groups::group_member_of))
        .route("/groups/{id}/transitiveMemberOf", get(groups::group_transitive_member_of))
        .fallback(|uri: axum::http::Uri| async move { ApiError::unknown_segment(uri.path()) })
        .layer(axum::Extension(version))
}
