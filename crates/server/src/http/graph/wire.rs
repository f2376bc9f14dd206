//! Graph's JSON shapes for the resources guestlist serves, and a liberal reader for request
//! bodies: unknown members and `@odata.type` are ignored, wrong types are refused with Graph's
//! "Cannot convert the literal" sentence.

use chrono::{DateTime, Utc};
use guestlist_domain::User;
use serde_json::{json, Map, Value};

use crate::http::error::ApiError;
use crate::services::invitations::InvitationOutcome;

/// Graph's default property set for users (contract §2).
pub const DEFAULT_USER_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

pub fn graph_datetime(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Every user property guestlist stores, in Graph's names.
pub fn user_properties(user: &User) -> Map<String, Value> {
    let identities: Vec<Value> = user
        .identities
        .iter()
        .map(|i| json!({"signInType": i.sign_in_type, "issuer": i.issuer, "issuerAssignedId": i.issuer_assigned_id}))
        .collect();
    let value = json!({
        "id": user.id.to_string(),
        "deletedDateTime": null,
        "accountEnabled": user.account_enabled,
        "businessPhones": user.business_phones,
        "companyName": user.company_name,
        "createdDateTime": graph_datetime(&user.created_date_time),
        "creationType": user.creation_type,
        "department": user.department,
        "displayName": user.display_name,
        "externalUserState": user.external_user_state.map(|s| s.as_str()),
        "externalUserStateChangeDateTime": user.external_user_state_change_date_time.as_ref().map(graph_datetime),
        "givenName": user.given_name,
        "identities": identities,
        "jobTitle": user.job_title,
        "mail": user.mail,
        "mobilePhone": user.mobile_phone,
        "officeLocation": user.office_location,
        "otherMails": user.other_mails,
        "preferredLanguage": user.preferred_language,
        "proxyAddresses": user.proxy_addresses,
        "surname": user.surname,
        "usageLocation": user.usage_location,
        "userPrincipalName": user.user_principal_name.as_str(),
        "userType": user.user_type.as_str(),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A user as Graph returns it: the default property set, or exactly the `$select`ed ones
/// (valid properties guestlist does not store are `null`, as Graph returns unset ones).
pub fn user_json(user: &User, select: Option<&[String]>) -> Map<String, Value> {
    let all = user_properties(user);
    let pick = |names: &mut dyn Iterator<Item = &str>| {
        names.map(|name| (name.to_string(), all.get(name).cloned().unwrap_or(Value::Null))).collect()
    };
    match select {
        Some(names) => pick(&mut names.iter().map(String::as_str)),
        None => pick(&mut DEFAULT_USER_PROPERTIES.iter().copied()),
    }
}

/// The 201 body of `POST /invitations` (contract §1.4).
pub fn invitation_json(context: String, outcome: &InvitationOutcome) -> Value {
    let request = &outcome.request;
    // Graph answers with an all-null message info when none was sent (contract §1.3).
    let message_info = match &request.message_info {
        Some(info) => json!({
            "messageLanguage": info.message_language,
            "customizedMessageBody": info.customized_message_body,
            "ccRecipients": info.cc_recipients.iter().map(|r| json!({"emailAddress": {"name": r.name, "address": r.address}})).collect::<Vec<_>>(),
        }),
        None => {
            json!({"messageLanguage": null, "customizedMessageBody": null, "ccRecipients": [{"emailAddress": {"name": null, "address": null}}]})
        }
    };
    json!({
        "@odata.context": context,
        "id": outcome.invitation.id.to_string(),
        "inviteRedeemUrl": outcome.redeem_url,
        "invitedUserDisplayName": request.display_name,
        "invitedUserType": request.user_type.as_str(),
        "invitedUserEmailAddress": request.email.as_str(),
        "sendInvitationMessage": request.send_invitation_message,
        "resetRedemption": request.reset_redemption,
        "inviteRedirectUrl": request.redirect_url,
        "status": "PendingAcceptance",
        "invitedUserMessageInfo": message_info,
        "invitedUser": {"id": outcome.user.id.to_string(), "userPrincipalName": outcome.user.user_principal_name.as_str()},
    })
}

/// A JSON request body read the way Graph reads it.
pub struct JsonBody {
    members: Map<String, Value>,
    /// Which error code bad input gets: the invitation API uses `BadRequest`, the directory `Request_BadRequest`.
    invitation_api: bool,
}

/// Whether any member name or string in the body holds U+0000: a walk over a work list, not recursion.
pub(crate) fn holds_nul(members: &Map<String, Value>) -> bool {
    let mut pending: Vec<(Option<&String>, &Value)> = members.iter().map(|(name, value)| (Some(name), value)).collect();
    while let Some((name, value)) = pending.pop() {
        if name.is_some_and(|name| name.contains('\0')) {
            return true;
        }
        match value {
            Value::String(text) if text.contains('\0') => return true,
            Value::Array(items) => pending.extend(items.iter().map(|item| (None, item))),
            Value::Object(inner) => pending.extend(inner.iter().map(|(name, value)| (Some(name), value))),
            _ => {}
        }
    }
    false
}

impl JsonBody {
    pub fn parse(bytes: &[u8], invitation_api: bool) -> Result<Self, ApiError> {
        let error = |message: &str| if invitation_api { ApiError::invitation_bad_request(message) } else { ApiError::bad_request(message) };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(error("Empty Payload. JSON content expected."));
        }
        match serde_json::from_slice::<Value>(bytes) {
            // PostgreSQL cannot store U+0000 in text (SQLite can): refused here so both engines answer alike.
            Ok(Value::Object(members)) if holds_nul(&members) => {
                Err(error("Invalid request body: text may not contain the character U+0000."))
            }
            Ok(Value::Object(members)) => Ok(JsonBody { members, invitation_api }),
            Ok(_) => Err(error("Invalid request body: a JSON object is expected.")),
            Err(e) => Err(error(&format!(
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"
            ))),
        }
    }

    pub fn from_object(members: Map<String, Value>, invitation_api: bool) -> Self {
        JsonBody { members, invitation_api }
    }

    fn error(&self, message: String) -> ApiError {
        if self.invitation_api {
            ApiError::invitation_bad_request(message)
        } else {
            ApiError::bad_request(message)
        }
    }

    /// Member names match case-insensitively, as Graph's deserializer does.
    fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name).or_else(|| self.members.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    fn mismatch(&self, value: &Value, edm: &str) -> ApiError {
        let literal = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.error(format!("Cannot convert the literal '{literal}' to the expected type '{edm}'."))
    }

    /// Absent → `None`; `null` → `Some(None)`.
    pub fn nullable_string(&self, name: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(other) => Err(self.mismatch(other, "Edm.String")),
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        Ok(self.nullable_string(name)?.flatten())
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.mismatch(other, "Edm.Boolean")),
        }
    }

    pub fn string_array(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Null) => Err(self.error(format!("Invalid value specified for property '{name}': a collection cannot be null."))),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.mismatch(other, "Edm.String")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => {
                Err(self.error(format!("Invalid value specified for property '{name}': a collection is expected, got '{other}'.")))
            }
        }
    }

    pub fn object(&self, name: &str, edm: &str) -> Result<Option<JsonBody>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(JsonBody { members: map.clone(), invitation_api: self.invitation_api })),
            Some(other) => Err(self.mismatch(other, edm)),
        }
    }

    pub fn object_array(&self, name: &str, edm: &str) -> Result<Vec<JsonBody>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Object(map) => Ok(JsonBody { members: map.clone(), invitation_api: self.invitation_api }),
                    other => Err(self.mismatch(other, edm)),
                })
                .collect(),
            Some(other) => Err(self.mismatch(other, &format!("Collection({edm})"))),
        }
    }
}
