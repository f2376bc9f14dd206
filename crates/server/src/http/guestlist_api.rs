//! guestlist's own API, outside Graph's namespace and with the same tokens: the pending
//! invitations Graph can't list (contract §8, graph-docs #8380) with their mail delivery, and a
//! resend. Both need an invitation permission, as `POST /invitations` does.
//!
//! | Route | What |
//! |---|---|
//! | `GET /guestlist/v1/invitations?state=pending[&$top=N][&$skiptoken=…]` | pending invitations, oldest first |
//! | `POST /guestlist/v1/invitations/{id}/resend` | a new redeem link (earlier ones revoked) and a new mail |

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::mail::MailRecord;
use guestlist_store::{InvitationCursor, PendingInvitation};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authenticated;
use super::error::ApiError;
use super::AppState;
use crate::services::mail::{cursor_after, MAX_PENDING_PAGE};

/// Page size without `$top`.
const DEFAULT_PAGE: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/guestlist/v1/invitations", get(list)).route("/guestlist/v1/invitations/{id}/resend", post(resend))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$skiptoken")]
    skiptoken: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    match query.state.as_deref() {
        None | Some("pending") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!("Unsupported state '{other}': only state=pending is listed.")));
        }
    }
    let top = match query.top.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|top| (1..=MAX_PENDING_PAGE).contains(top))
            .ok_or_else(|| ApiError::bad_request(format!("Invalid value '{text}' for $top: use 1 to {MAX_PENDING_PAGE}.")))?,
    };
    let after = query.skiptoken.as_deref().map(parse_skiptoken).transpose()?;
    // One more than asked tells whether a next page exists.
    let mut page = state.services.pending_invitations(&caller, after, top + 1).await?;
    let more = page.len() > top as usize;
    page.truncate(top as usize);
    let mut body = json!({ "value": page.iter().map(pending_json).collect::<Vec<_>>() });
    if more {
        if let Some(cursor) = cursor_after(&page) {
            let next = format!(
                "{}/guestlist/v1/invitations?state=pending&$top={top}&$skiptoken={}",
                state.services.public_origin,
                skiptoken(cursor)
            );
            body["@odata.nextLink"] = Value::String(next);
        }
    }
    Ok(Json(body).into_response())
}

async fn resend(State(state): State<AppState>, Authenticated(caller): Authenticated, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = ObjectId::parse(&id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let outcome = state.services.resend_invitation(&caller, id).await?;
    let mails = state
        .services
        .store
        .mails_for_invitation(caller.tenant.id, outcome.invitation.id)
        .await
        .map_err(crate::services::ServiceError::from)?;
    let body = json!({
        "id": outcome.invitation.id.to_string(),
        "invitedUserId": outcome.user.id.to_string(),
        "invitedUserEmailAddress": outcome.invitation.email,
        "inviteRedirectUrl": outcome.invitation.redirect_url,
        "inviteRedeemUrl": outcome.redeem_url,
        "createdDateTime": time(outcome.invitation.created_date_time),
        "expiresDateTime": outcome.invitation.expires_date_time.map(time),
        "mailDelivery": mails.last().map(delivery_json),
    });
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn pending_json(pending: &PendingInvitation) -> Value {
    let invitation = &pending.invitation;
    json!({
        "id": invitation.id.to_string(),
        "invitedUserId": invitation.user_id.to_string(),
        "invitedUserEmailAddress": invitation.email,
        "inviteRedirectUrl": invitation.redirect_url,
        "createdDateTime": time(invitation.created_date_time),
        "expiresDateTime": invitation.expires_date_time.map(time),
        "state": invitation.state.as_str(),
        "resetRedemption": invitation.reset_redemption,
        "sendInvitationMessage": invitation.send_invitation_message,
        "mailDelivery": pending.mail.as_ref().map(delivery_json),
    })
}

/// A message's delivery, without its content.
fn delivery_json(record: &MailRecord) -> Value {
    json!({
        "id": record.mail.id.to_string(),
        "state": record.state.as_str(),
        "recipient": record.mail.recipient,
        "cc": record.mail.cc,
        "language": record.mail.language,
        "attempts": record.attempts,
        "createdDateTime": time(record.mail.created_date_time),
        "nextAttemptDateTime": (record.state == guestlist_domain::mail::DeliveryState::Pending).then(|| time(record.next_attempt_date_time)),
        "sentDateTime": record.sent_date_time.map(time),
        "lastError": record.last_error,
    })
}

/// `$skiptoken`: the last listed invitation's creation time and id, opaque to clients.
fn skiptoken(cursor: InvitationCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", cursor.created_date_time.to_rfc3339_opts(SecondsFormat::Micros, true), cursor.id))
}

fn parse_skiptoken(text: &str) -> Result<InvitationCursor, ApiError> {
    let invalid = || ApiError::bad_request("Invalid $skiptoken: pass back the one from @odata.nextLink.");
    let decoded = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (time, id) = decoded.split_once('|').ok_or_else(invalid)?;
    Ok(InvitationCursor {
        created_date_time: DateTime::parse_from_rfc3339(time).map_err(|_| invalid())?.with_timezone(&Utc),
        id: ObjectId::parse(id).map_err(|_| invalid())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptokens_round_trip_and_garbage_is_refused() {
        let cursor = InvitationCursor { created_date_time: Utc::now(), id: ObjectId::new_random() };
        let parsed = parse_skiptoken(&skiptoken(cursor)).unwrap();
        assert_eq!(parsed.id, cursor.id);
        assert_eq!(parsed.created_date_time.timestamp_micros(), cursor.created_date_time.timestamp_micros());
        for bad in ["", "!!", &URL_SAFE_NO_PAD.encode("no-separator"), &URL_SAFE_NO_PAD.encode("2024-01-01T00:00:00Z|not-an-id")] {
            assert!(parse_skiptoken(bad).is_err(), "{bad}");
        }
    }
}
