//! `GET /auditLogs/directoryAudits` and `GET /auditLogs/directoryAudits/{id}` (contract §7,
//! graph-docs `directoryaudit-list.md`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guestlist_domain::audit::{AuditRecord, Initiator};
use guestlist_domain::audit_query::AuditQuery;
use guestlist_odata::{decode_path_segment, parse_audit_filter, parse_query_options};
use serde_json::{json, Map, Value};

use super::users::next_link;
use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;

/// Page size without `$top`; `$top` goes up to 999 as on `/users`.
const DEFAULT_PAGE_SIZE: u32 = 100;
const RESOURCE: &str = "auditLogs/directoryAudits";

pub async fn list(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let raw = raw.unwrap_or_default();
    let options = parse_query_options(&raw)?;
    let unserved = [
        ("$select", options.select.is_some()),
        ("$orderby", options.orderby.is_some()),
        ("$search", options.search.is_some()),
        ("$expand", options.expand.is_some()),
        ("$count", options.count),
    ];
    if let Some((name, _)) = unserved.iter().find(|(_, present)| *present) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            format!("The query option '{name}' is not supported on directoryAudits by guestlist."),
        ));
    }
    let filter = options.filter.as_deref().map(parse_audit_filter).transpose()?.unwrap_or_default();
    let query = AuditQuery { filter, top: options.top.unwrap_or(DEFAULT_PAGE_SIZE), after: options.skiptoken };
    let page = state.services.directory_audits(&caller, &query).await?;
    let origin = &state.services.public_origin;
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(format!("{origin}/{}/$metadata#{RESOURCE}", version.as_str())));
    if let Some(token) = &page.next {
        body.insert("@odata.nextLink".into(), Value::String(next_link(origin, version, RESOURCE, &raw, token)));
    }
    body.insert("value".into(), Value::Array(page.records.iter().map(directory_audit_json).collect()));
    Ok(graph_json(&Value::Object(body)).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    Path(segment): Path<String>,
) -> Result<Response, ApiError> {
    let id = decode_path_segment(&segment)?;
    let record = state.services.directory_audit(&caller, &id).await?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(format!("{}/{}/$metadata#{RESOURCE}/$entity", state.services.public_origin, version.as_str())),
    );
    if let Value::Object(entry) = directory_audit_json(&record) {
        body.extend(entry);
    }
    Ok(graph_json(&Value::Object(body)).into_response())
}

/// A `directoryAudit` as Graph returns it (graph-schema-v1.json `directoryAudit`).
pub fn directory_audit_json(record: &AuditRecord) -> Value {
    let (app, user) = match &record.initiated_by {
        Initiator::App { app_id, display_name, service_principal_id } => (
            json!({"appId": app_id, "displayName": display_name, "servicePrincipalId": service_principal_id, "servicePrincipalName": null}),
            Value::Null,
        ),
        Initiator::User { id, user_principal_name } => {
            (Value::Null, json!({"id": id, "displayName": null, "userPrincipalName": user_principal_name, "ipAddress": null}))
        }
    };
    let targets: Vec<Value> = record
        .target_resources
        .iter()
        .map(|target| {
            json!({
                "id": target.id,
                "displayName": target.display_name,
                "type": target.resource_type,
                "userPrincipalName": target.user_principal_name,
                "groupType": null,
                "modifiedProperties": target.modified_properties.iter().map(|p| json!({
                    "displayName": p.display_name, "oldValue": p.old_value, "newValue": p.new_value,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": record.id.to_string(),
        "category": record.category,
        "correlationId": record.correlation_id.to_string(),
        "result": record.result,
        "resultReason": "",
        "activityDisplayName": record.activity_display_name,
        "activityDateTime": record.activity_date_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "loggedByService": record.logged_by_service,
        "operationType": record.operation_type,
        "initiatedBy": {"app": app, "user": user},
        "targetResources": targets,
        "additionalDetails": [],
    })
}
