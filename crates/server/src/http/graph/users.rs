//! `/users`: list with OData, get by id or UPN, PATCH, and POST of members.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use guestlist_domain::filter::{UserField, UserFilter, UserQuery};
use guestlist_domain::group::DirectoryObject;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::user::UserType;
use guestlist_domain::User;
use guestlist_odata::{
    canonical_user_property, decode_path_segment, page_size, parse_user_list_options, parse_user_search, UserListOptions,
};
use guestlist_store::{PageRequest, UserKey};
use serde_json::{json, Map, Value};

use super::advanced::{self, is_eventual, QueryShape, MAX_EXPANDED};
use super::groups::directory_object_json;
use super::wire::{user_json, JsonBody};
use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::groups::Membership;
use crate::services::users::{NewMember, UserChanges};
use crate::services::Caller;

/// Graph's page size without `$top` (contract §6.4).
const DEFAULT_PAGE_SIZE: u32 = 100;

pub async fn list(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let raw = raw.unwrap_or_default();
    let options = parse_user_list_options(&raw)?;
    let eventual = is_eventual(&headers);
    let filter = effective_filter(&options, eventual)?;
    let expansions = expansions(&options)?;
    let top = page_size(options.top, DEFAULT_PAGE_SIZE, !expansions.is_empty());
    let query = UserQuery { filter, order: options.orderby, top, after: options.skiptoken.clone() };
    let page = state.services.users(&caller, &query).await?;
    let origin = &state.services.public_origin;
    let select = options.select.as_deref();
    let context = match select {
        Some(columns) => format!("{origin}/{}/$metadata#users({})", version.as_str(), columns.join(",")),
        None => format!("{origin}/{}/$metadata#users", version.as_str()),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(context));
    // `$count=true` is honoured only with `ConsistencyLevel: eventual`, else silently ignored (contract §6.4).
    if shape(&options, eventual).counts() {
        let total = state.services.count_users(&caller, query.filter.as_ref()).await?;
        body.insert("@odata.count".into(), json!(total));
    }
    if let Some(token) = &page.next {
        body.insert("@odata.nextLink".into(), Value::String(next_link(origin, version, "users", &raw, token)));
    }
    let mut values = Vec::with_capacity(page.users.len());
    for user in &page.users {
        let mut item = user_json(user, select);
        expand(&state, &caller, user, &expansions, &mut item).await?;
        values.push(Value::Object(item));
    }
    body.insert("value".into(), Value::Array(values));
    Ok(graph_json(&Value::Object(body)).into_response())
}

pub async fn count(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    advanced::require_eventual_count(&headers)?;
    let mut options = parse_user_list_options(&raw.unwrap_or_default())?;
    // The `$count` segment is itself the count an advanced query asks for.
    options.count = true;
    let filter = effective_filter(&options, true)?;
    let total = state.services.count_users(&caller, filter.as_ref()).await?;
    Ok(advanced::count_response(total))
}

pub async fn get(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let key = user_key(&segment)?;
    let options = parse_user_list_options(&raw.unwrap_or_default())?;
    let expansions = expansions(&options)?;
    let user = state.services.user(&caller, &key).await?;
    let select = options.select.as_deref();
    let origin = &state.services.public_origin;
    let context = match select {
        Some(columns) => format!("{origin}/{}/$metadata#users({})/$entity", version.as_str(), columns.join(",")),
        None => format!("{origin}/{}/$metadata#users/$entity", version.as_str()),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(context));
    body.extend(user_json(&user, select));
    expand(&state, &caller, &user, &expansions, &mut body).await?;
    Ok(graph_json(&Value::Object(body)).into_response())
}

/// Navigation properties `$expand` serves on users (contract §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expansion {
    MemberOf,
    Sponsors,
}

fn expansions(options: &UserListOptions) -> Result<Vec<Expansion>, ApiError> {
    let names =
        advanced::expansions(options.expand.as_deref(), "user", &["memberOf", "sponsors"], |n| canonical_user_property(n).is_some())?;
    Ok(names.into_iter().map(|name| if name == "memberOf" { Expansion::MemberOf } else { Expansion::Sponsors }).collect())
}

/// Adds each expanded relationship to the user's JSON, as a collection of typed directoryObjects.
async fn expand(
    state: &AppState,
    caller: &Caller,
    user: &User,
    expansions: &[Expansion],
    into: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    for expansion in expansions {
        let (name, objects) = match expansion {
            Expansion::MemberOf => {
                let page = PageRequest { top: MAX_EXPANDED, after: None };
                let groups = state.services.user_member_of(caller, &UserKey::Id(user.id), Membership::Direct, &page).await?;
                ("memberOf", groups.groups.into_iter().map(DirectoryObject::Group).collect::<Vec<_>>())
            }
            Expansion::Sponsors => {
                let sponsors = state.services.sponsors(caller, &UserKey::Id(user.id)).await?;
                ("sponsors", sponsors.into_iter().take(MAX_EXPANDED as usize).map(|s| DirectoryObject::User(Box::new(s))).collect())
            }
        };
        into.insert(name.into(), Value::Array(objects.iter().map(|o| directory_object_json(o, None)).collect()));
    }
    Ok(())
}

pub async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = user_key(&segment)?;
    let body = JsonBody::parse(&body, false)?;
    refuse_read_only(&body)?;
    let changes = read_changes(&body)?;
    state.services.update_user(&caller, &key, changes).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /users/{id}`: 204 (contract §7 `Delete external user`; hard delete, see README).
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
) -> Result<Response, ApiError> {
    let key = user_key(&segment)?;
    state.services.delete_user(&caller, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonBody::parse(&body, false)?;
    refuse_read_only(&body)?;
    let required = |name: &str, value: Option<String>| {
        value
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("Property '{name}' is required when creating the resource.")))
    };
    let account_enabled = body
        .bool("accountEnabled")?
        .ok_or_else(|| ApiError::bad_request("Property 'accountEnabled' is required when creating the resource."))?;
    let member = NewMember {
        display_name: required("displayName", body.string("displayName")?)?,
        user_principal_name: required("userPrincipalName", body.string("userPrincipalName")?)?,
        mail_nickname: required("mailNickname", body.string("mailNickname")?)?,
        account_enabled,
        changes: read_changes(&body)?,
    };
    let profile = body.object("passwordProfile", "microsoft.graph.passwordProfile")?;
    let password = profile.as_ref().map(|p| p.string("password")).transpose()?.flatten().filter(|p| !p.is_empty());
    let Some(password) = password else {
        return Err(ApiError::bad_request("Property 'passwordProfile' is required when creating the resource."));
    };
    let force_change_password = profile.as_ref().map(|p| p.bool("forceChangePasswordNextSignIn")).transpose()?.flatten().unwrap_or(true);
    let user = state.services.create_member(&caller, member, password, force_change_password).await?;
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        Value::String(format!("{}/{}/$metadata#users/$entity", state.services.public_origin, version.as_str())),
    );
    out.extend(user_json(&user, None));
    Ok((StatusCode::CREATED, graph_json(&Value::Object(out))).into_response())
}

/// `{id}` is a GUID or a userPrincipalName, percent-decoded (`%23EXT%23%40` from the SDKs).
pub(crate) fn user_key(segment: &str) -> Result<UserKey, ApiError> {
    let decoded = decode_path_segment(segment)?;
    if decoded.contains('@') {
        return Ok(UserKey::UserPrincipalName(decoded));
    }
    ObjectId::parse(&decoded).map(UserKey::Id).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{decoded}' does not exist or one of its queried reference-property objects are not present."),
        )
    })
}

/// What the advanced-query rules look at in a `/users` request (contract §6.4).
fn shape(options: &UserListOptions, eventual: bool) -> QueryShape {
    let created = options.orderby.is_some_and(|o| o.field == UserField::CreatedDateTime);
    let advanced = advanced::advanced_reason(
        options.filter.as_ref().and_then(UserFilter::advanced_operator),
        options.filter.is_some() && options.orderby.is_some(),
    )
    .or_else(|| created.then(|| "Sorting by 'createdDateTime' is not supported".to_string()));
    QueryShape { eventual, count: options.count, search: options.search.is_some(), expand: options.expand.is_some(), advanced }
}

/// Refuses what the advanced-query rules refuse, then returns the filter the store runs:
/// `$filter` and `$search` together.
fn effective_filter(options: &UserListOptions, eventual: bool) -> Result<Option<UserFilter>, ApiError> {
    shape(options, eventual).check()?;
    let search = options.search.as_deref().map(parse_user_search).transpose()?;
    Ok(advanced::both(options.filter.clone(), search, UserFilter::and))
}

/// The next page's link: the same query with `$skiptoken` replaced.
pub(crate) fn next_link(origin: &str, version: GraphVersion, resource: &str, raw_query: &str, token: &str) -> String {
    let kept: Vec<&str> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default().to_ascii_lowercase();
            name != "$skiptoken" && name != "%24skiptoken" && name != "skiptoken"
        })
        .collect();
    let token = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("{origin}/{}/{resource}?{query}$skiptoken={token}", version.as_str())
}

const READ_ONLY: [&str; 7] =
    ["id", "createdDateTime", "creationType", "externalUserState", "externalUserStateChangeDateTime", "proxyAddresses", "deletedDateTime"];

fn refuse_read_only(body: &JsonBody) -> Result<(), ApiError> {
    if let Some(name) = body.names().find(|n| READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(n))) {
        return Err(ApiError::bad_request(format!("Property '{name}' is read-only and cannot be set.")));
    }
    if body.has("identities") {
        return Err(ApiError::bad_request(
            "Updating 'identities' is not supported by guestlist: identities change through redemption and reset redemption.",
        ));
    }
    Ok(())
}

fn read_changes(body: &JsonBody) -> Result<UserChanges, ApiError> {
    let user_type = match body.string("userType")? {
        None => None,
        Some(text) => Some(UserType::parse(&text).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid value specified for property 'userType' of resource 'User': '{text}'."))
        })?),
    };
    let display_name = match body.nullable_string("displayName")? {
        Some(None) => return Err(ApiError::bad_request("Invalid value specified for property 'displayName' of resource 'User'.")),
        other => other.flatten(),
    };
    let user_principal_name = match body.nullable_string("userPrincipalName")? {
        Some(None) => return Err(ApiError::bad_request("Invalid value specified for property 'userPrincipalName' of resource 'User'.")),
        other => other.flatten(),
    };
    Ok(UserChanges {
        display_name,
        given_name: body.nullable_string("givenName")?,
        surname: body.nullable_string("surname")?,
        mail: body.nullable_string("mail")?,
        other_mails: body.string_array("otherMails")?,
        user_principal_name,
        user_type,
        account_enabled: body.bool("accountEnabled")?,
        company_name: body.nullable_string("companyName")?,
        job_title: body.nullable_string("jobTitle")?,
        department: body.nullable_string("department")?,
        mobile_phone: body.nullable_string("mobilePhone")?,
        office_location: body.nullable_string("officeLocation")?,
        preferred_language: body.nullable_string("preferredLanguage")?,
        usage_location: body.nullable_string("usageLocation")?,
        business_phones: body.string_array("businessPhones")?,
    })
}
