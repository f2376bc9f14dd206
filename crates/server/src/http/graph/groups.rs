//! `/groups`: list with OData, create, get, PATCH, DELETE; members by `$ref`; `memberOf` and
//! `transitiveMemberOf` of groups and users (Graph's group and user references).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use guestlist_domain::filter::{GroupFilter, GroupQuery};
use guestlist_domain::group::{DirectoryObject, Group, GroupChanges, NewGroup};
use guestlist_domain::ids::ObjectId;
use guestlist_odata::{
    canonical_group_property, canonical_user_property, decode_path_segment, page_size, parse_group_list_options, parse_group_search,
    parse_member_list_options, GroupListOptions,
};
use guestlist_store::{GroupPage, PageRequest};
use serde_json::{json, Map, Value};

use super::advanced::{self, is_eventual, QueryShape, MAX_EXPANDED};
use super::users::{next_link, user_key};
use super::wire::{graph_datetime, user_json, JsonBody};
use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::groups::Membership;
use crate::services::Caller;

/// What a user's id or UPN keeps unencoded inside a next link (`#EXT#` must be encoded).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'@');

/// Graph's page size without `$top` (contract §6.4, the same on `/groups`).
const DEFAULT_PAGE_SIZE: u32 = 100;

/// The properties `GET /groups` and `GET /groups/{id}` return without `$select` (Graph's group
/// reference, limited to what the v1.0 schema declares).
pub const DEFAULT_GROUP_PROPERTIES: [&str; 32] = [
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
];

/// Every group property guestlist has a value for; the rest of the schema's properties are `null`.
fn group_properties(group: &Group) -> Map<String, Value> {
    let created = graph_datetime(&group.created_date_time);
    let value = json!({
        "id": group.id.to_string(),
        "createdDateTime": created,
        "description": group.description,
        "displayName": group.display_name,
        "groupTypes": group.group_types,
        "infoCatalogs": [],
        "mail": group.mail,
        "mailEnabled": group.mail_enabled,
        "mailNickname": group.mail_nickname,
        "onPremisesProvisioningErrors": [],
        "proxyAddresses": group.proxy_addresses(),
        // Never renewed: Graph reports the creation time.
        "renewedDateTime": created,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": group.security_enabled,
        "securityIdentifier": group.security_identifier(),
        "serviceProvisioningErrors": [],
        "visibility": group.visibility.map(|v| v.as_str()),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A group as Graph returns it: the default property set, or exactly the `$select`ed ones.
pub fn group_json(group: &Group, select: Option<&[String]>) -> Map<String, Value> {
    let all = group_properties(group);
    let pick = |names: &mut dyn Iterator<Item = &str>| {
        names.map(|name| (name.to_string(), all.get(name).cloned().unwrap_or(Value::Null))).collect()
    };
    match select {
        Some(names) => pick(&mut names.iter().map(String::as_str)),
        None => pick(&mut DEFAULT_GROUP_PROPERTIES.iter().copied()),
    }
}

/// An item of a directoryObject collection: its `@odata.type`, then its properties; `$select`
/// names that the item's type lacks are left out.
pub(crate) fn directory_object_json(object: &DirectoryObject, select: Option<&[String]>) -> Value {
    let mut item = Map::new();
    let (odata_type, properties) = match object {
        DirectoryObject::User(user) => {
            let select: Option<Vec<String>> =
                select.map(|names| names.iter().filter(|n| canonical_user_property(n).is_some()).cloned().collect());
            ("#microsoft.graph.user", user_json(user, select.as_deref()))
        }
        DirectoryObject::Group(group) => {
            let select: Option<Vec<String>> =
                select.map(|names| names.iter().filter(|n| canonical_group_property(n).is_some()).cloned().collect());
            ("#microsoft.graph.group", group_json(group, select.as_deref()))
        }
    };
    item.insert("@odata.type".into(), Value::String(odata_type.into()));
    item.extend(properties);
    Value::Object(item)
}

/// `{id}` of `/groups/{id}`: Graph refuses a malformed id with 400 before looking it up.
fn group_id(segment: &str) -> Result<ObjectId, ApiError> {
    let decoded = decode_path_segment(segment)?;
    ObjectId::parse(&decoded).map_err(|_| ApiError::bad_request(format!("Invalid object identifier '{decoded}'.")))
}

/// What the advanced-query rules look at in a `/groups` request (contract §6.4).
fn shape(options: &GroupListOptions, eventual: bool) -> QueryShape {
    let advanced = advanced::advanced_reason(
        options.filter.as_ref().and_then(GroupFilter::advanced_operator),
        options.filter.is_some() && options.orderby.is_some(),
    );
    QueryShape { eventual, count: options.count, search: options.search.is_some(), expand: options.expand.is_some(), advanced }
}

/// Refuses what the advanced-query rules refuse, then returns the filter the store runs:
/// `$filter` and `$search` together.
fn effective_filter(options: &GroupListOptions, shape: &QueryShape) -> Result<Option<GroupFilter>, ApiError> {
    shape.check()?;
    let search = options.search.as_deref().map(parse_group_search).transpose()?;
    Ok(advanced::both(options.filter.clone(), search, GroupFilter::and))
}

/// Whether `$expand=members` was asked for (the one navigation property guestlist expands on groups).
fn expands_members(options: &GroupListOptions) -> Result<bool, ApiError> {
    let names = advanced::expansions(options.expand.as_deref(), "group", &["members"], |n| canonical_group_property(n).is_some())?;
    Ok(!names.is_empty())
}

/// A group's JSON, with its first [`MAX_EXPANDED`] members when `$expand=members` asked for them.
async fn group_item(
    state: &AppState,
    caller: &Caller,
    group: &Group,
    select: Option<&[String]>,
    members: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut item = group_json(group, select);
    if members {
        let page = PageRequest { top: MAX_EXPANDED, after: None };
        let members = state.services.group_members(caller, group.id, &page).await?;
        item.insert("members".into(), Value::Array(members.members.iter().map(|m| directory_object_json(m, None)).collect()));
    }
    Ok(item)
}

pub async fn list(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let raw = raw.unwrap_or_default();
    let options = parse_group_list_options(&raw)?;
    let shape = shape(&options, is_eventual(&headers));
    let filter = effective_filter(&options, &shape)?;
    let members = expands_members(&options)?;
    let top = page_size(options.top, DEFAULT_PAGE_SIZE, members);
    let query = GroupQuery { filter, order: options.orderby, top, after: options.skiptoken.clone() };
    let page = state.services.groups(&caller, &query).await?;
    let count = match shape.counts() {
        true => Some(state.services.count_groups(&caller, query.filter.as_ref()).await?),
        false => None,
    };
    let select = options.select.as_deref();
    let mut value = Vec::with_capacity(page.groups.len());
    for group in &page.groups {
        value.push(Value::Object(group_item(&state, &caller, group, select, members).await?));
    }
    let context_suffix = match select {
        Some(columns) => format!("groups({})", columns.join(",")),
        None => "groups".to_string(),
    };
    Ok(collection_response(&state, version, &context_suffix, "groups", &raw, Listed { next: page.next.as_deref(), count, value }))
}

/// `GET /groups/$count`: with `ConsistencyLevel: eventual`, the number of groups `$filter` and `$search` select.
pub async fn count(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    advanced::require_eventual_count(&headers)?;
    let mut options = parse_group_list_options(&raw.unwrap_or_default())?;
    // The `$count` segment is itself the count an advanced query asks for.
    options.count = true;
    let filter = effective_filter(&options, &shape(&options, true))?;
    Ok(advanced::count_response(state.services.count_groups(&caller, filter.as_ref()).await?))
}

pub async fn create(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonBody::parse(&body, false)?;
    refuse_unwritable(&body, &[])?;
    let request = NewGroup {
        display_name: body.string("displayName")?,
        description: body.string("description")?,
        mail_nickname: body.string("mailNickname")?,
        mail_enabled: body.bool("mailEnabled")?,
        security_enabled: body.bool("securityEnabled")?,
        group_types: body.string_array("groupTypes")?.unwrap_or_default(),
        visibility: body.string("visibility")?,
    };
    let group = state.services.create_group(&caller, request).await?;
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        Value::String(format!("{}/{}/$metadata#groups/$entity", state.services.public_origin, version.as_str())),
    );
    out.extend(group_json(&group, None));
    Ok((StatusCode::CREATED, graph_json(&Value::Object(out))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = group_id(&segment)?;
    let options = parse_group_list_options(&raw.unwrap_or_default())?;
    let members = expands_members(&options)?;
    let group = state.services.group(&caller, id).await?;
    let select = options.select.as_deref();
    let origin = &state.services.public_origin;
    let context = match select {
        Some(columns) => format!("{origin}/{}/$metadata#groups({})/$entity", version.as_str(), columns.join(",")),
        None => format!("{origin}/{}/$metadata#groups/$entity", version.as_str()),
    };
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context));
    out.extend(group_item(&state, &caller, &group, select, members).await?);
    Ok(graph_json(&Value::Object(out)).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = group_id(&segment)?;
    let body = JsonBody::parse(&body, false)?;
    // Set only when the group is created (Graph's group reference).
    refuse_unwritable(&body, &["mailEnabled", "groupTypes"])?;
    let display_name = match body.nullable_string("displayName")? {
        Some(None) => return Err(ApiError::bad_request("Invalid value specified for property 'displayName' of resource 'Group'.")),
        other => other.flatten(),
    };
    let mail_nickname = match body.nullable_string("mailNickname")? {
        Some(None) => return Err(ApiError::bad_request("Invalid value specified for property 'mailNickname' of resource 'Group'.")),
        other => other.flatten(),
    };
    let changes = GroupChanges {
        display_name,
        description: body.nullable_string("description")?,
        mail_nickname,
        security_enabled: body.bool("securityEnabled")?,
        visibility: body.string("visibility")?,
    };
    state.services.update_group(&caller, id, changes).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
) -> Result<Response, ApiError> {
    state.services.delete_group(&caller, group_id(&segment)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /groups/{id}/members/$ref` with `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`: 204.
pub async fn add_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let group = group_id(&segment)?;
    let body = JsonBody::parse(&body, false)?;
    let reference =
        body.string("@odata.id")?.ok_or_else(|| ApiError::bad_request("The request body must name the new member in '@odata.id'."))?;
    let member = referenced_object(&reference, &["directoryObjects", "users", "groups"])?;
    state.services.add_group_member(&caller, group, member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /groups/{id}/members/{memberId}/$ref`: 204, or 404 when it is not a member.
pub async fn remove_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((segment, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let group = group_id(&segment)?;
    let member = decode_path_segment(&member)?;
    let member = ObjectId::parse(&member).map_err(|_| ApiError::bad_request(format!("Invalid object identifier '{member}'.")))?;
    state.services.remove_group_member(&caller, group, member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /groups/{id}/members`: users and groups, each with its `@odata.type`.
pub async fn members(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = group_id(&segment)?;
    let raw = raw.unwrap_or_default();
    let options = parse_member_list_options(&raw)?;
    let page = PageRequest { top: options.top.unwrap_or(DEFAULT_PAGE_SIZE), after: options.skiptoken };
    let members = state.services.group_members(&caller, id, &page).await?;
    // `$count=true` is honoured only with `ConsistencyLevel: eventual`, else silently ignored (contract §6.4).
    let count = match options.count && is_eventual(&headers) {
        true => Some(state.services.count_group_members(&caller, id).await?),
        false => None,
    };
    let select = options.select.as_deref();
    let value: Vec<Value> = members.members.iter().map(|member| directory_object_json(member, select)).collect();
    let resource = format!("groups/{id}/members");
    Ok(collection_response(&state, version, "directoryObjects", &resource, &raw, Listed { next: members.next.as_deref(), count, value }))
}

/// `GET .../$count` of `/groups/{id}/members`, `memberOf` and `transitiveMemberOf` of groups and
/// users: with `ConsistencyLevel: eventual`, the number as text. The path names the list.
pub async fn relationship_count(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    uri: Uri,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    advanced::require_eventual_count(&headers)?;
    parse_member_list_options(&raw.unwrap_or_default())?;
    let route = uri.path();
    let membership = if route.contains("/transitiveMemberOf/") { Membership::Transitive } else { Membership::Direct };
    let total = if route.contains("/members/") {
        state.services.count_group_members(&caller, group_id(&segment)?).await?
    } else if route.contains("/users/") {
        state.services.count_user_member_of(&caller, &user_key(&segment)?, membership).await?
    } else {
        state.services.count_group_member_of(&caller, group_id(&segment)?, membership).await?
    };
    Ok(advanced::count_response(total))
}

pub async fn group_member_of(
    state: State<AppState>,
    version: GraphVersion,
    caller: Authenticated,
    headers: HeaderMap,
    segment: Path<String>,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    memberships(state, version, caller, headers, segment, raw, Owner::Group, Membership::Direct).await
}

pub async fn group_transitive_member_of(
    state: State<AppState>,
    version: GraphVersion,
    caller: Authenticated,
    headers: HeaderMap,
    segment: Path<String>,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    memberships(state, version, caller, headers, segment, raw, Owner::Group, Membership::Transitive).await
}

pub async fn user_member_of(
    state: State<AppState>,
    version: GraphVersion,
    caller: Authenticated,
    headers: HeaderMap,
    segment: Path<String>,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    memberships(state, version, caller, headers, segment, raw, Owner::User, Membership::Direct).await
}

pub async fn user_transitive_member_of(
    state: State<AppState>,
    version: GraphVersion,
    caller: Authenticated,
    headers: HeaderMap,
    segment: Path<String>,
    raw: RawQuery,
) -> Result<Response, ApiError> {
    memberships(state, version, caller, headers, segment, raw, Owner::User, Membership::Transitive).await
}

/// Whose `memberOf` a route lists.
#[derive(Clone, Copy)]
enum Owner {
    Group,
    User,
}

#[allow(clippy::too_many_arguments)]
async fn memberships(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
    owner: Owner,
    membership: Membership,
) -> Result<Response, ApiError> {
    let raw = raw.unwrap_or_default();
    let options = parse_member_list_options(&raw)?;
    let page = PageRequest { top: options.top.unwrap_or(DEFAULT_PAGE_SIZE), after: options.skiptoken.clone() };
    let relation = match membership {
        Membership::Direct => "memberOf",
        Membership::Transitive => "transitiveMemberOf",
    };
    // `$count=true` is honoured only with `ConsistencyLevel: eventual`, else silently ignored (contract §6.4).
    let counts = options.count && is_eventual(&headers);
    let (groups, count, resource) = match owner {
        Owner::Group => {
            let id = group_id(&segment)?;
            let groups = state.services.group_member_of(&caller, id, membership, &page).await?;
            let count = match counts {
                true => Some(state.services.count_group_member_of(&caller, id, membership).await?),
                false => None,
            };
            (groups, count, format!("groups/{id}/{relation}"))
        }
        Owner::User => {
            let key = user_key(&segment)?;
            let groups = state.services.user_member_of(&caller, &key, membership, &page).await?;
            let count = match counts {
                true => Some(state.services.count_user_member_of(&caller, &key, membership).await?),
                false => None,
            };
            let segment = percent_encoding::utf8_percent_encode(&segment, PATH_SEGMENT).to_string();
            (groups, count, format!("users/{segment}/{relation}"))
        }
    };
    Ok(member_of_response(&state, version, &resource, &raw, &groups, count, options.select.as_deref()))
}

/// `memberOf` answers a collection of directoryObjects whose items are groups.
fn member_of_response(
    state: &AppState,
    version: GraphVersion,
    resource: &str,
    raw: &str,
    page: &GroupPage,
    count: Option<u64>,
    select: Option<&[String]>,
) -> Response {
    let value = page.groups.iter().map(|group| directory_object_json(&DirectoryObject::Group(group.clone()), select)).collect();
    collection_response(state, version, "directoryObjects", resource, raw, Listed { next: page.next.as_deref(), count, value })
}

/// One page of a collection: its items, the continuation, and `@odata.count` when asked for.
struct Listed<'a> {
    next: Option<&'a str>,
    count: Option<u64>,
    value: Vec<Value>,
}

/// `{"@odata.context", "@odata.count"?, "@odata.nextLink"?, "value"}` (contract §6.4).
fn collection_response(
    state: &AppState,
    version: GraphVersion,
    context_suffix: &str,
    resource: &str,
    raw: &str,
    listed: Listed<'_>,
) -> Response {
    let Listed { next, count, value } = listed;
    let origin = &state.services.public_origin;
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(format!("{origin}/{}/$metadata#{context_suffix}", version.as_str())));
    if let Some(count) = count {
        body.insert("@odata.count".into(), json!(count));
    }
    if let Some(token) = next {
        body.insert("@odata.nextLink".into(), Value::String(next_link(origin, version, resource, raw, token)));
    }
    body.insert("value".into(), Value::Array(value));
    graph_json(&Value::Object(body)).into_response()
}

const READ_ONLY: [&str; 8] =
    ["id", "createdDateTime", "deletedDateTime", "mail", "proxyAddresses", "securityIdentifier", "renewedDateTime", "expirationDateTime"];

/// Read-only properties, and `extra` ones, are refused; so are `members@odata.bind` and its kin,
/// which guestlist does not bind yet (members are added by `$ref`).
fn refuse_unwritable(body: &JsonBody, extra: &[&str]) -> Result<(), ApiError> {
    if let Some(name) = body.names().find(|n| READ_ONLY.iter().chain(extra).any(|r| r.eq_ignore_ascii_case(n))) {
        return Err(ApiError::bad_request(format!("Property '{name}' is read-only and cannot be set.")));
    }
    if let Some(name) = body.names().find(|n| n.to_ascii_lowercase().ends_with("@odata.bind")) {
        return Err(ApiError::bad_request(format!(
            "'{name}' is not supported by guestlist yet: add members with POST /groups/{{id}}/members/$ref."
        )));
    }
    Ok(())
}

/// The object id at the end of an `@odata.id` URL: `https://graph.microsoft.com/v1.0/directoryObjects/{id}`,
/// `.../users/{id}`, `.../groups/{id}` or a relative `groups/{id}`; any origin and version, as Graph accepts.
pub(crate) fn referenced_object(reference: &str, collections: &[&str]) -> Result<ObjectId, ApiError> {
    let invalid = || ApiError::bad_request(format!("Invalid URL format specified in @odata.id: '{reference}'."));
    let path = reference.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    let mut segments = path.rsplit('/');
    let id = segments.next().ok_or_else(invalid)?;
    let collection = segments.next().ok_or_else(invalid)?;
    if !collections.iter().any(|c| c.eq_ignore_ascii_case(collection)) {
        return Err(invalid());
    }
    let id = decode_path_segment(id).map_err(|_| invalid())?;
    ObjectId::parse(&id).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_directory_objects_users_or_groups() {
        let id = "0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99";
        let kinds = ["directoryObjects", "users", "groups"];
        for reference in [
            format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}"),
            format!("https://127.0.0.1:8443/beta/groups/{id}/"),
            format!("https://graph.microsoft.com/v1.0/users/{id}"),
            format!("groups/{id}"),
        ] {
            assert_eq!(referenced_object(&reference, &kinds).unwrap().to_string(), id, "{reference}");
        }
        for bad in ["", id, "https://graph.microsoft.com/v1.0/applications/x", "https://graph.microsoft.com/v1.0/users/not-a-guid"] {
            assert_eq!(referenced_object(bad, &kinds).unwrap_err().code, "Request_BadRequest", "{bad}");
        }
    }
}
