//! Directory roles (graph-docs `directoryrole.md`, `unifiedroleassignment.md`,
//! `rbacapplication-list-roledefinitions.md`). The five built-in roles guestlist knows are always
//! activated, so `GET /directoryRoles` lists all of them.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guestlist_domain::group::DirectoryObject;
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::roles::{DirectoryRoleTemplate, RoleAssignment, TENANT_SCOPE};
use guestlist_odata::decode_path_segment;
use serde_json::{json, Value};

use super::groups::{directory_object_json, referenced_object};
use super::wire::JsonBody;
use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;

fn context(state: &AppState, version: GraphVersion, fragment: &str) -> String {
    format!("{}/{}/$metadata#{fragment}", state.services.public_origin, version.as_str())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

pub fn directory_role_json(tenant: TenantId, role: DirectoryRoleTemplate) -> Value {
    json!({
        "id": role.directory_role_id(tenant).to_string(),
        "deletedDateTime": null,
        "description": role.description(),
        "displayName": role.display_name(),
        "roleTemplateId": role.template_id(),
    })
}

pub fn role_assignment_json(assignment: &RoleAssignment) -> Value {
    json!({
        "id": assignment.id.to_string(),
        "principalId": assignment.principal_id.to_string(),
        "roleDefinitionId": assignment.role.template_id(),
        "directoryScopeId": TENANT_SCOPE,
        "appScopeId": null,
        "condition": null,
    })
}

pub fn role_definition_json(role: DirectoryRoleTemplate) -> Value {
    json!({
        "id": role.template_id(),
        "description": role.description(),
        "displayName": role.display_name(),
        "isBuiltIn": true,
        "isEnabled": true,
        "resourceScopes": [TENANT_SCOPE],
        "templateId": role.template_id(),
        "version": "1",
        "rolePermissions": [{"allowedResourceActions": role.allowed_resource_actions(), "condition": null}],
    })
}

/// A `directoryRoles` key: the role's object id, `roleTemplateId=...` (key-as-segment) or
/// `(roleTemplateId='...')` (the alternate key the SDKs send).
fn role_by_key(tenant: TenantId, key: &str) -> Result<DirectoryRoleTemplate, ApiError> {
    let key = decode_path_segment(key)?;
    let template = key
        .strip_prefix("(roleTemplateId=")
        .and_then(|rest| rest.strip_suffix(')'))
        .or_else(|| key.strip_prefix("roleTemplateId="))
        .map(|text| text.trim_matches('\''));
    let role = match template {
        Some(template) => DirectoryRoleTemplate::from_template_id(template),
        None => ObjectId::parse(&key).ok().and_then(|id| DirectoryRoleTemplate::from_directory_role_id(tenant, id)),
    };
    role.ok_or_else(|| not_found(&key))
}

/// `GET /directoryRoles`.
pub async fn list_directory_roles(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
) -> Result<Response, ApiError> {
    state.services.require_role_read(&caller)?;
    let value: Vec<Value> = DirectoryRoleTemplate::ALL.into_iter().map(|role| directory_role_json(caller.tenant.id, role)).collect();
    Ok(graph_json(&json!({"@odata.context": context(&state, version, "directoryRoles"), "value": value})).into_response())
}

/// `GET /directoryRoles/{id}` and `GET /directoryRoles/roleTemplateId={templateId}`.
pub async fn get_directory_role(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    state.services.require_role_read(&caller)?;
    let role = role_by_key(caller.tenant.id, &key)?;
    let mut body = directory_role_json(caller.tenant.id, role);
    body["@odata.context"] = json!(context(&state, version, "directoryRoles/$entity"));
    Ok(graph_json(&body).into_response())
}

/// `GET /directoryRoles(roleTemplateId='...')`: a root segment of its own, served for every method
/// so that anything else there answers as the router's fallback does (unknown segment).
pub async fn get_directory_role_by_template(
    state: State<AppState>,
    version: GraphVersion,
    method: axum::http::Method,
    uri: axum::http::Uri,
    Path(segment): Path<String>,
    authenticated: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    match segment.strip_prefix("directoryRoles") {
        Some(key) if key.starts_with('(') && method == axum::http::Method::GET => {
            get_directory_role(state, version, authenticated?, Path(key.to_string())).await
        }
        _ => Err(ApiError::unknown_segment(uri.path())),
    }
}

/// `GET /directoryRoles/{id}/members`.
pub async fn list_directory_role_members(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    state.services.require_role_read(&caller)?;
    let role = role_by_key(caller.tenant.id, &key)?;
    let members = state.services.role_members(&caller, role).await?;
    let value: Vec<Value> = members.into_iter().map(|user| directory_object_json(&DirectoryObject::User(Box::new(user)), None)).collect();
    Ok(graph_json(&json!({"@odata.context": context(&state, version, "directoryObjects"), "value": value})).into_response())
}

/// `POST /directoryRoles/{id}/members/$ref` with `{"@odata.id": ".../directoryObjects/{id}"}`: 204.
pub async fn add_directory_role_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.services.require_role_read(&caller)?;
    let role = role_by_key(caller.tenant.id, &key)?;
    let body = JsonBody::parse(&body, false)?;
    let reference =
        body.string("@odata.id")?.ok_or_else(|| ApiError::bad_request("The request body must name the member in '@odata.id'."))?;
    let member = referenced_object(&reference, &["users", "directoryObjects"])?;
    // Graph's sentence for a reference that is already there.
    let duplicate = "One or more added object references already exist for the following modified properties: 'members'.";
    state.services.assign_role(&caller, member, role, duplicate).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /directoryRoles/{id}/members/{userId}/$ref`: 204.
pub async fn remove_directory_role_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((key, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.services.require_role_read(&caller)?;
    let role = role_by_key(caller.tenant.id, &key)?;
    let member = decode_path_segment(&member)?;
    let member = ObjectId::parse(&member).map_err(|_| not_found(&member))?;
    state.services.remove_role_member(&caller, role, member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `$filter` on role assignments: `principalId eq '…'`, `roleDefinitionId eq '…'`, joined by `and`.
fn assignment_filter(query: Option<&str>) -> Result<(Option<ObjectId>, Option<DirectoryRoleTemplate>), ApiError> {
    let mut principal = None;
    let mut role = None;
    let filter = query
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find(|(name, _)| name == "$filter")
        .map(|(_, value)| value.into_owned());
    let Some(filter) = filter else { return Ok((None, None)) };
    let unsupported = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property of resource 'unifiedRoleAssignment'.",
        )
    };
    for clause in filter.split(" and ") {
        let mut parts = clause.trim().splitn(3, ' ');
        let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else { return Err(unsupported()) };
        let value = value.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).ok_or_else(unsupported)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        match field {
            "principalId" => principal = Some(ObjectId::parse(value).map_err(|_| unsupported())?),
            // An unknown definition matches nothing; the template id of a role guestlist lacks is no error.
            "roleDefinitionId" => role = Some(DirectoryRoleTemplate::from_template_id(value).ok_or_else(unsupported)?),
            _ => return Err(unsupported()),
        }
    }
    Ok((principal, role))
}

/// `GET /roleManagement/directory/roleAssignments[?$filter=...]`.
pub async fn list_role_assignments(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (principal, role) = assignment_filter(query.as_deref())?;
    let assignments = state.services.role_assignments(&caller, principal, role).await?;
    let value: Vec<Value> = assignments.iter().map(role_assignment_json).collect();
    let context = context(&state, version, "roleManagement/directory/roleAssignments");
    Ok(graph_json(&json!({"@odata.context": context, "value": value})).into_response())
}

fn assignment_id(text: &str) -> Result<ObjectId, ApiError> {
    let text = decode_path_segment(text)?;
    ObjectId::parse(&text).map_err(|_| not_found(&text))
}

/// `GET /roleManagement/directory/roleAssignments/{id}`.
pub async fn get_role_assignment(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let assignment = state.services.role_assignment(&caller, assignment_id(&id)?).await?;
    let mut body = role_assignment_json(&assignment);
    body["@odata.context"] = json!(context(&state, version, "roleManagement/directory/roleAssignments/$entity"));
    Ok(graph_json(&body).into_response())
}

/// `POST /roleManagement/directory/roleAssignments` with `principalId`, `roleDefinitionId`,
/// `directoryScopeId: "/"`: 201 with the assignment.
pub async fn create_role_assignment(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonBody::parse(&body, false)?;
    for name in body.names() {
        if !matches!(name, "@odata.type" | "principalId" | "roleDefinitionId" | "directoryScopeId") {
            return Err(ApiError::bad_request(format!(
                "Property '{name}' does not exist on type 'microsoft.graph.unifiedRoleAssignment' or cannot be set."
            )));
        }
    }
    let principal = body.string("principalId")?.ok_or_else(|| ApiError::bad_request("principalId is required."))?;
    let principal = ObjectId::parse(&principal)
        .map_err(|_| ApiError::bad_request(format!("Invalid value '{principal}' for property 'principalId'.")))?;
    let definition = body.string("roleDefinitionId")?.ok_or_else(|| ApiError::bad_request("roleDefinitionId is required."))?;
    let role = DirectoryRoleTemplate::from_template_id(&definition)
        .ok_or_else(|| ApiError::bad_request(format!("The role definition '{definition}' does not exist.")))?;
    match body.string("directoryScopeId")?.as_deref() {
        Some(TENANT_SCOPE) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value '{other}' for property 'directoryScopeId': guestlist assigns roles tenant-wide ('/') only."
            )))
        }
        None => return Err(ApiError::bad_request("directoryScopeId is required.")),
    }
    let duplicate = "A conflicting object with one or more of the specified property values is present in the directory.";
    let assignment = state.services.assign_role(&caller, principal, role, duplicate).await?;
    let mut body = role_assignment_json(&assignment);
    body["@odata.context"] = json!(context(&state, version, "roleManagement/directory/roleAssignments/$entity"));
    let mut response = graph_json(&body);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `DELETE /roleManagement/directory/roleAssignments/{id}`: 204.
pub async fn delete_role_assignment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.services.remove_role_assignment(&caller, assignment_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /roleManagement/directory/roleDefinitions`: the built-in roles guestlist knows.
pub async fn list_role_definitions(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
) -> Result<Response, ApiError> {
    state.services.require_role_read(&caller)?;
    let value: Vec<Value> = DirectoryRoleTemplate::ALL.into_iter().map(role_definition_json).collect();
    let context = context(&state, version, "roleManagement/directory/roleDefinitions");
    Ok(graph_json(&json!({"@odata.context": context, "value": value})).into_response())
}
