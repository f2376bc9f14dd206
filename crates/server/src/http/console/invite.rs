//! Invite one guest, or many from Entra's bulk-invite CSV file with a result per row.

use axum::extract::rejection::FormRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use guestlist_domain::bulk_invite::{parse_bulk_invitations, MAX_BULK_ROWS};
use guestlist_domain::invitation::{validate_redirect_url, InvitationRequest, MessageInfo};
use guestlist_domain::user::UserType;
use guestlist_domain::EmailAddress;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{see_other, with_redeem_link, Problem, Session};
use crate::http::AppState;
use crate::services::ServiceError;

const DEFAULT_REDIRECT: &str = "https://myapps.microsoft.com";

/// Entra's bulk-invite template, as its portal offers it for download.
const TEMPLATE: &str = "version:v1.0\r\nEmail address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required,Send invitation message (true or false) [sendEmail],Customized invitation message [customizedMessageBody]\r\nExample: name@example.com,Example: https://myapps.microsoft.com,Example: true,Example: Welcome to Contoso\r\n";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/invite", get(invite_page).post(invite_one))
        .route("/console/invite/bulk", axum::routing::post(invite_bulk))
        .route("/console/invite/template.csv", get(template))
}

#[derive(Deserialize, Serialize, Default)]
struct InviteForm {
    #[serde(skip_serializing)]
    csrf_token: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    redirect_url: Option<String>,
    send_mail: Option<String>,
    message: Option<String>,
    user_type: Option<String>,
}

fn render_form(session: &Session, form: &InviteForm, problem: Option<Problem>, fresh: bool) -> Response {
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    let page = context! {
        title => "Invite guests",
        form => context! {
            email => form.email.clone().unwrap_or_default(),
            display_name => form.display_name.clone().unwrap_or_default(),
            redirect_url => form.redirect_url.clone().unwrap_or_else(|| DEFAULT_REDIRECT.to_string()),
            send_mail => fresh || form.send_mail.is_some(),
            message => form.message.clone().unwrap_or_default(),
            member => form.user_type.as_deref() == Some("Member"),
        },
        max_rows => MAX_BULK_ROWS,
        problem,
    };
    session.render(status, "console/invite.html", "invite", page)
}

async fn invite_page(session: Session) -> Response {
    render_form(&session, &InviteForm::default(), None, true)
}

fn invitation_request(form: &InviteForm) -> Result<InvitationRequest, Problem> {
    let rule = |e| Problem::from(ServiceError::from_invitation_rule(e));
    let email = EmailAddress::parse(form.email.as_deref().unwrap_or_default().trim()).map_err(rule)?;
    let redirect_url = validate_redirect_url(form.redirect_url.as_deref().unwrap_or(DEFAULT_REDIRECT).trim()).map_err(rule)?;
    let user_type = match form.user_type.as_deref() {
        None | Some("Guest") => UserType::Guest,
        Some("Member") => UserType::Member,
        Some(other) => return Err(Problem::invalid(format!("The user type '{other}' is not valid: use Guest or Member."))),
    };
    let message = form.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    Ok(InvitationRequest {
        email,
        redirect_url,
        display_name: form.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
        send_invitation_message: form.send_mail.is_some(),
        message_info: message.map(|m| MessageInfo { customized_message_body: Some(m.to_string()), ..MessageInfo::default() }),
        user_type,
        reset_redemption: false,
        invited_user_id: None,
        sponsors: Vec::new(),
    })
}

async fn invite_one(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    form: Result<Form<InviteForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return render_form(&session, &InviteForm::default(), Some(Problem::invalid("The invitation form is malformed.")), false);
    };
    if let Err(rejection) = session.verify(&state, &headers, form.csrf_token.as_deref()) {
        return super::csrf_refused(rejection);
    }
    let outcome = async {
        let request = invitation_request(&form)?;
        Ok::<_, Problem>(state.services.invite(&session.caller, request).await?)
    }
    .await;
    match outcome {
        Ok(outcome) => with_redeem_link(&state, see_other(&format!("/console/guests/{}?done=invited", outcome.user.id)), &outcome),
        Err(problem) => render_form(&session, &form, Some(problem), false),
    }
}

#[derive(Serialize)]
struct RowResult {
    line: u64,
    email: String,
    invited: bool,
    user_id: Option<String>,
    problem: Option<Problem>,
}

/// The upload's fields: the CSRF token, "send mail where the row doesn't say", and the file.
struct Upload {
    csrf_token: Option<String>,
    send_mail: bool,
    file: Option<Vec<u8>>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, Problem> {
    let mut upload = Upload { csrf_token: None, send_mail: false, file: None };
    let malformed = |e: axum::extract::multipart::MultipartError| Problem::invalid(format!("The upload is malformed: {}", e.body_text()));
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        match field.name() {
            Some("csrf_token") => upload.csrf_token = Some(field.text().await.map_err(malformed)?),
            Some("send_mail") => upload.send_mail = true,
            Some("file") => upload.file = Some(field.bytes().await.map_err(malformed)?.to_vec()),
            _ => {}
        }
    }
    Ok(upload)
}

async fn invite_bulk(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let upload = match multipart {
        Ok(multipart) => read_upload(multipart).await,
        Err(rejection) => Err(Problem::invalid(format!("Choose a CSV file to upload ({}).", rejection.body_text()))),
    };
    let upload = match upload {
        Ok(upload) => upload,
        Err(problem) => return render_form(&session, &InviteForm::default(), Some(problem), true),
    };
    if let Err(rejection) = session.verify(&state, &headers, upload.csrf_token.as_deref()) {
        return super::csrf_refused(rejection);
    }
    let file = upload.file.unwrap_or_default();
    let rows = match parse_bulk_invitations(&file, upload.send_mail) {
        Ok(rows) => rows,
        Err(error) => return render_form(&session, &InviteForm::default(), Some(Problem::invalid(error.to_string())), true),
    };
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        let outcome = match row.request {
            Err(message) => Err(Problem { code: "BadRequest", message, status: StatusCode::BAD_REQUEST }),
            Ok(request) => state.services.invite(&session.caller, request).await.map_err(Problem::from),
        };
        results.push(match outcome {
            Ok(outcome) => {
                RowResult { line: row.line, email: row.email, invited: true, user_id: Some(outcome.user.id.to_string()), problem: None }
            }
            Err(problem) => RowResult { line: row.line, email: row.email, invited: false, user_id: None, problem: Some(problem) },
        });
    }
    let succeeded = results.iter().filter(|r| r.invited).count();
    let failed = results.len() - succeeded;
    let page = context! { title => "Bulk invitation results", results, succeeded, failed };
    session.render(StatusCode::OK, "console/bulk.html", "invite", page)
}

async fn template(_session: Session) -> Response {
    let mut response = TEMPLATE.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"BulkInviteTemplate.csv\""));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offered_template_parses_to_no_rows_until_filled_in() {
        assert_eq!(parse_bulk_invitations(TEMPLATE.as_bytes(), true), Err(guestlist_domain::bulk_invite::BulkFileError::NoRows));
        let filled = format!("{TEMPLATE}ann@example.com,https://myapps.microsoft.com,true,Hello\r\n");
        let rows = parse_bulk_invitations(filled.as_bytes(), false).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].request.as_ref().unwrap().send_invitation_message);
    }

    #[test]
    fn the_single_form_refuses_bad_input_with_the_invitation_code() {
        let form =
            |email: &str, url: &str| InviteForm { email: Some(email.into()), redirect_url: Some(url.into()), ..InviteForm::default() };
        assert_eq!(invitation_request(&form("nope", "https://x.example")).unwrap_err().code, "BadRequest");
        assert_eq!(invitation_request(&form("a@b.example", "javascript:alert(1)")).unwrap_err().code, "BadRequest");
        let ok = invitation_request(&form("a@b.example", "https://x.example")).unwrap();
        assert_eq!(ok.user_type, UserType::Guest);
        assert!(!ok.send_invitation_message, "an unticked box sends no mail");
    }
}
