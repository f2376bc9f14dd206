//! `POST /invitations` (v1.0 and beta).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::invitation::{validate_redirect_url, InvitationRequest, MessageInfo, Recipient};
use guestlist_domain::user::UserType;
use guestlist_domain::EmailAddress;

use super::wire::{invitation_json, JsonBody};
use super::{graph_json, GraphVersion};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::AppState;

pub async fn create(
    State(state): State<AppState>,
    version: GraphVersion,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse_invitation(&body)?;
    let outcome = state.services.invite(&caller, request).await?;
    let context = format!("{}/{}/$metadata#invitations/$entity", state.services.public_origin, version.as_str());
    let mut response = (StatusCode::CREATED, graph_json(&invitation_json(context, &outcome))).into_response();
    if let Some(percentage) = outcome.throttle.and_then(|u| u.limit_percentage()) {
        if let Ok(value) = axum::http::HeaderValue::from_str(&format!("{percentage:.1}")) {
            response.headers_mut().insert("x-ms-throttle-limit-percentage", value);
        }
    }
    Ok(response)
}

/// Graph serves only `POST` on invitations; other methods get a JSON 405 (DECISIONS 14).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

fn parse_invitation(bytes: &[u8]) -> Result<InvitationRequest, ApiError> {
    let body = JsonBody::parse(bytes, true)?;
    let required = |name: &str, value: Option<String>| {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| ApiError::invitation_bad_request(format!("The {name} property is required.")))
    };
    let email_text = required("invitedUserEmailAddress", body.string("invitedUserEmailAddress")?)?;
    let email = EmailAddress::parse(&email_text).map_err(|e| ApiError::invitation_bad_request(e.to_string()))?;
    let redirect = required("inviteRedirectUrl", body.string("inviteRedirectUrl")?)?;
    let redirect_url = validate_redirect_url(&redirect).map_err(|e| ApiError::invitation_bad_request(e.to_string()))?;
    let user_type = match body.string("invitedUserType")? {
        None => UserType::Guest,
        Some(text) => UserType::parse(&text).ok_or_else(|| {
            ApiError::invitation_bad_request(format!("The invitedUserType '{text}' is not valid: use 'Guest' or 'Member'."))
        })?,
    };
    let invited_user_id = match body.object("invitedUser", "microsoft.graph.user")? {
        None => None,
        Some(user) => match user.string("id")? {
            None => None,
            Some(id) => {
                Some(ObjectId::parse(&id).map_err(|_| ApiError::invitation_bad_request(format!("Invalid object identifier '{id}'.")))?)
            }
        },
    };
    let mut sponsors: Vec<ObjectId> = Vec::new();
    for sponsor in body.object_array("invitedUserSponsors", "microsoft.graph.directoryObject")? {
        let id = sponsor.string("id")?.ok_or_else(|| ApiError::invitation_bad_request("Each invitedUserSponsors entry needs an id."))?;
        let id = ObjectId::parse(&id).map_err(|_| ApiError::invitation_bad_request(format!("Invalid object identifier '{id}'.")))?;
        if !sponsors.contains(&id) {
            sponsors.push(id);
        }
    }
    let message_info = match body.object("invitedUserMessageInfo", "microsoft.graph.invitedUserMessageInfo")? {
        None => None,
        Some(info) => {
            let cc_recipients = info
                .object_array("ccRecipients", "microsoft.graph.recipient")?
                .iter()
                .map(|recipient| {
                    let address = recipient.object("emailAddress", "microsoft.graph.emailAddress")?;
                    Ok(match address {
                        Some(a) => Recipient { name: a.string("name")?, address: a.string("address")? },
                        None => Recipient::default(),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Some(MessageInfo {
                message_language: info.string("messageLanguage")?,
                customized_message_body: info.string("customizedMessageBody")?,
                cc_recipients,
            })
        }
    };
    Ok(InvitationRequest {
        email,
        redirect_url,
        display_name: body.string("invitedUserDisplayName")?,
        send_invitation_message: body.bool("sendInvitationMessage")?.unwrap_or(false),
        message_info,
        user_type,
        reset_redemption: body.bool("resetRedemption")?.unwrap_or(false),
        invited_user_id,
        sponsors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_python_sdk_reset_body() {
        let body = br##"{"inviteRedirectUrl": "https://myapps.microsoft.com",
            "invitedUser": {"id": "bf883dbf-1c86-4e34-9c58-6d0f4a4f6e2a", "@odata.type": "#microsoft.graph.user"},
            "invitedUserEmailAddress": "alice@example.org", "invitedUserMessageInfo": {"customizedMessageBody": "Again"},
            "resetRedemption": true, "sendInvitationMessage": true}"##;
        let request = parse_invitation(body).unwrap();
        assert!(request.reset_redemption);
        assert!(request.send_invitation_message);
        assert_eq!(request.invited_user_id.unwrap().to_string(), "bf883dbf-1c86-4e34-9c58-6d0f4a4f6e2a");
        assert_eq!(request.message_info.unwrap().customized_message_body.as_deref(), Some("Again"));
    }

    #[test]
    fn refuses_bad_input_with_the_invitation_code() {
        for (body, needle) in [
            (&br#"{"inviteRedirectUrl": "https://x.com"}"#[..], "invitedUserEmailAddress property is required"),
            (br#"{"invitedUserEmailAddress": "a@b.com"}"#, "inviteRedirectUrl property is required"),
            (br#"{"invitedUserEmailAddress": "not-an-email", "inviteRedirectUrl": "https://x.com"}"#, "invalid"),
            (
                br#"{"invitedUserEmailAddress": "a@b.com", "inviteRedirectUrl": "https://x.com", "sendInvitationMessage": "yes"}"#,
                "Edm.Boolean",
            ),
            (
                br#"{"invitedUserEmailAddress": "a@b.com", "inviteRedirectUrl": "https://x.com", "invitedUser": {"id": "nope"}}"#,
                "Invalid object identifier",
            ),
            (br#"{"invitedUserEmailAddress": 5, "inviteRedirectUrl": "https://x.com"}"#, "Edm.String"),
            (br#"{"#, "Unable to read JSON"),
            (br#"[]"#, "JSON object"),
        ] {
            let error = parse_invitation(body).unwrap_err();
            assert_eq!(error.code, "BadRequest");
            assert!(error.message.contains(needle), "{} lacks {needle}", error.message);
        }
    }
}
