//! The redemption pages (contract §3.3, §4.2-4.5; DECISIONS 2, 3, 10, 11):
//!
//! | Route | Page |
//! |---|---|
//! | `GET /redeem?tenant&user&ticket&ver` | landing: who invited whom; "Continue". Consumes nothing. |
//! | `GET /redeem/verify?…` | "Send code" (or straight to consent with a session for the address) |
//! | `POST /redeem/send-code` | mails a code, then `303` to the code page |
//! | `GET /redeem/code?…` | "Enter code" |
//! | `POST /redeem/code` | checks it; a right code sets the session cookie, `303` to consent |
//! | `GET /redeem/consent?…` | "Review permissions": Accept / Cancel |
//! | `POST /redeem/consent` | Accept consumes the ticket, `303` to `inviteRedirectUrl`; Cancel changes nothing |

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use guestlist_domain::redemption::{self as rules, SessionToken};
use minijinja::context;
use serde::Deserialize;

use super::csrf::{self, CsrfRejection};
use super::{security_headers, Page};
use crate::http::AppState;
use crate::services::redemption::{Acceptance, CodeCheck, CodeSending, LinkRefusal, OpenInvitation, RedeemLink};
use crate::services::ServiceError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/redeem", get(landing))
        .route("/redeem/verify", get(verify))
        .route("/redeem/send-code", post(send_code))
        .route("/redeem/code", get(code_page).post(check_code))
        .route("/redeem/consent", get(consent).post(decide))
}

/// The session cookie's name: `__Host-` prefixed over TLS.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-guestlist-redeem"
    } else {
        "guestlist-redeem"
    }
}

/// What every form of the flow posts: the redeem link and the CSRF token.
#[derive(Deserialize)]
struct LinkForm {
    #[serde(flatten)]
    link: RedeemLink,
    csrf_token: Option<String>,
    code: Option<String>,
    decision: Option<String>,
}

/// Whether the browser reaches us over TLS (cookies get `Secure` and the `__Host-` prefix).
fn secure(state: &AppState) -> bool {
    state.services.public_origin.starts_with("https://")
}

/// A page path with the redeem link as its query (the same parameters the mailed link has).
fn flow_url(path: &str, link: &RedeemLink, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("tenant", &link.tenant).append_pair("user", &link.user).append_pair("ticket", &link.ticket).append_pair("ver", "2.0");
    for (key, value) in extra {
        query.append_pair(key, value);
    }
    format!("{path}?{}", query.finish())
}

fn see_other(location: &str, set_cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = set_cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    security_headers(headers);
    response
}

fn link_context(link: &RedeemLink) -> minijinja::Value {
    context! { tenant => &link.tenant, user => &link.user, ticket => &link.ticket }
}

/// A page of the flow that has forms: it carries this browser's CSRF token (and sets its cookie).
fn form_page(state: &AppState, headers: &HeaderMap, status: StatusCode, template: &str, link: &RedeemLink, page: minijinja::Value) -> Page {
    let (token, set_cookie) = csrf::token_for(headers, secure(state));
    let context = context! { link => link_context(link), csrf_token => token, ..page };
    let mut page = Page::render(status, template, context);
    page.set_cookies.extend(set_cookie);
    page
}

/// A page that explains what happened and what to do next, with an optional "send a new code"
/// button and an optional link.
#[allow(clippy::too_many_arguments)]
fn message(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    open: Option<&OpenInvitation>,
    link: &RedeemLink,
    title: &str,
    paragraphs: &[String],
    resend: Option<&str>,
    back: Option<(&str, String)>,
) -> Page {
    let (back_label, back_url) = back.map(|(label, url)| (Some(label.to_string()), Some(url))).unwrap_or((None, None));
    let page = context! {
        title, organization => open.map(|o| o.tenant.display_name.clone()), paragraphs, resend, back_label, back_url,
    };
    form_page(state, headers, status, "message.html", link, page)
}

/// The page for a link that can't be used. None of these changes anything (DECISIONS 2, 3).
fn refusal_page(refusal: LinkRefusal) -> Page {
    let ask = "Ask the person who invited you to send you a new invitation.".to_string();
    let (status, title, paragraphs) = match refusal {
        LinkRefusal::Unknown => (
            StatusCode::NOT_FOUND,
            "This invitation link isn't valid",
            vec![
                "We couldn't find an invitation for this link. Check that you opened the whole link from the invitation email.".into(),
                ask,
            ],
        ),
        LinkRefusal::AlreadyRedeemed => (
            StatusCode::GONE,
            "This invitation link is no longer valid",
            vec![
                "This invitation has already been accepted. Each invitation link can be used once.".into(),
                "If you accepted it, sign in to the organisation's apps directly. Otherwise, ask the person who invited you for a new one."
                    .into(),
            ],
        ),
        LinkRefusal::Revoked => (
            StatusCode::GONE,
            "This invitation link is no longer valid",
            vec![
                "A newer invitation replaced this link, or the invitation was withdrawn.".into(),
                "This invitation link is no longer valid; ask the person who invited you for a new one.".into(),
            ],
        ),
        LinkRefusal::Expired => (
            StatusCode::GONE,
            "This invitation link has expired",
            vec!["The organisation's invitations are valid for a limited time, and this one has run out.".into(), ask],
        ),
        LinkRefusal::DomainBlocked => (
            StatusCode::FORBIDDEN,
            "This invitation can't be accepted",
            vec!["The inviting organisation no longer accepts guests from your email domain.".into(), ask],
        ),
    };
    Page::render(status, "message.html", context! { title, paragraphs })
}

fn csrf_page(rejection: CsrfRejection, link: &RedeemLink) -> Page {
    let reason = match rejection {
        CsrfRejection::MissingCookie => {
            "Your browser didn't send the cookie this page needs. Check that cookies are allowed for this site."
        }
        CsrfRejection::TokenMismatch => "The form was out of date, perhaps because it was open in another tab for a long time.",
        CsrfRejection::CrossSite => "The form was sent from another website.",
    };
    let paragraphs = vec!["We couldn't accept this form, so nothing was changed.".to_string(), reason.to_string()];
    let back = (!link.ticket.is_empty()).then(|| flow_url("/redeem", link, &[]));
    Page::render(
        StatusCode::FORBIDDEN,
        "message.html",
        context! { title => "Please try again", paragraphs, back_label => back.as_ref().map(|_| "Start again"), back_url => back },
    )
}

/// A post that isn't a form of ours (wrong content type, too big, not URL-encoded).
fn unreadable_form() -> Page {
    let paragraphs = vec!["We couldn't read this form, so nothing was changed. Open the invitation link again and retry.".to_string()];
    Page::render(StatusCode::BAD_REQUEST, "message.html", context! { title => "Please try again", paragraphs })
}

fn error_page(error: ServiceError) -> Response {
    let (status, paragraph) = match &error {
        // Too many codes are being hashed at once: the guest's to retry, not a server fault.
        ServiceError::Busy => (StatusCode::TOO_MANY_REQUESTS, "Too many requests are in progress right now. Wait a moment and try again."),
        ServiceError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "The service is busy right now. Please try again in a minute."),
        ServiceError::Internal(detail) => {
            tracing::error!(%detail, "redemption page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Please try again in a minute.")
        }
        other => {
            tracing::warn!(error = %other, "redemption page refused");
            (StatusCode::BAD_REQUEST, "This request couldn't be handled. Please open the invitation link again.")
        }
    };
    Page::render(status, "message.html", context! { title => "Something went wrong", paragraphs => vec![paragraph] }).into_response()
}

/// Opens the link or answers with the page that explains why it can't be used.
async fn open(state: &AppState, link: &RedeemLink) -> Result<OpenInvitation, Response> {
    match state.services.open_redeem_link(link).await {
        Ok(Ok(open)) => Ok(open),
        Ok(Err(refusal)) => Err(refusal_page(refusal).into_response()),
        Err(error) => Err(error_page(error)),
    }
}

fn session_token(state: &AppState, headers: &HeaderMap) -> Option<SessionToken> {
    csrf::cookie(headers, session_cookie_name(secure(state))).and_then(SessionToken::from_cookie)
}

async fn landing(State(state): State<AppState>, link: Result<Query<RedeemLink>, QueryRejection>) -> Response {
    let Ok(Query(link)) = link else { return refusal_page(LinkRefusal::Unknown).into_response() };
    let open = match open(&state, &link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    let page = context! {
        title => format!("You're invited to {}", open.tenant.display_name),
        organization => &open.tenant.display_name,
        email => &open.invitation.email,
        verify_url => flow_url("/redeem/verify", &link, &[]),
    };
    Page::render(StatusCode::OK, "landing.html", page).into_response()
}

async fn verify(State(state): State<AppState>, headers: HeaderMap, link: Result<Query<RedeemLink>, QueryRejection>) -> Response {
    let Ok(Query(link)) = link else { return refusal_page(LinkRefusal::Unknown).into_response() };
    let open = match open(&state, &link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    let services = &state.services;
    match services.session_covers(&open, session_token(&state, &headers).as_ref()).await {
        Ok(true) => return see_other(&flow_url("/redeem/consent", &link, &[]), None),
        Ok(false) => {}
        Err(error) => return error_page(error),
    }
    let has_code = match services.has_active_redemption_code(&open).await {
        Ok(has_code) => has_code,
        Err(error) => return error_page(error),
    };
    let page = context! {
        title => "Verify your email", organization => &open.tenant.display_name, email => &open.invitation.email,
        has_code, code_url => flow_url("/redeem/code", &link, &[]), can_mail => services.can_mail_codes(),
    };
    form_page(&state, &headers, StatusCode::OK, "verify.html", &link, page).into_response()
}

async fn send_code(State(state): State<AppState>, headers: HeaderMap, form: Result<Form<LinkForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else { return unreadable_form().into_response() };
    if let Err(rejection) = csrf::verify(&headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_page(rejection, &form.link).into_response();
    }
    let link = &form.link;
    let open = match open(&state, link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    match state.services.send_redemption_code(&open).await {
        Ok(CodeSending::Sent) => see_other(&flow_url("/redeem/code", link, &[("sent", "1")]), None),
        Ok(CodeSending::LimitReached { retry_at }) => {
            let has_code = state.services.has_active_redemption_code(&open).await.unwrap_or(false);
            let mut paragraphs = vec![
                format!("You've asked for {} codes in the last hour, which is the most we send.", rules::MAX_CODES_PER_HOUR),
                format!("You can ask for a new code after {}.", describe_time(retry_at)),
            ];
            if has_code {
                paragraphs.push("The last code we sent still works: enter it to continue.".into());
            }
            let back = if has_code {
                ("Enter the code", flow_url("/redeem/code", link, &[]))
            } else {
                ("Back to the invitation", flow_url("/redeem", link, &[]))
            };
            message(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&open),
                link,
                "Too many codes requested",
                &paragraphs,
                None,
                Some(back),
            )
            .into_response()
        }
        Err(error) => error_page(error),
    }
}

#[derive(Deserialize)]
struct CodeQuery {
    #[serde(flatten)]
    link: RedeemLink,
    sent: Option<String>,
}

async fn code_page(State(state): State<AppState>, headers: HeaderMap, query: Result<Query<CodeQuery>, QueryRejection>) -> Response {
    let Ok(Query(query)) = query else { return refusal_page(LinkRefusal::Unknown).into_response() };
    let open = match open(&state, &query.link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    match state.services.session_covers(&open, session_token(&state, &headers).as_ref()).await {
        Ok(true) => return see_other(&flow_url("/redeem/consent", &query.link, &[]), None),
        Ok(false) => {}
        Err(error) => return error_page(error),
    }
    code_form(&state, &headers, StatusCode::OK, &open, &query.link, None, query.sent.is_some()).into_response()
}

fn code_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    open: &OpenInvitation,
    link: &RedeemLink,
    problem: Option<String>,
    sent: bool,
) -> Page {
    let page = context! {
        title => "Enter code", organization => &open.tenant.display_name, email => &open.invitation.email, problem, sent,
    };
    form_page(state, headers, status, "code.html", link, page)
}

async fn check_code(State(state): State<AppState>, headers: HeaderMap, form: Result<Form<LinkForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else { return unreadable_form().into_response() };
    let secure = secure(&state);
    if let Err(rejection) = csrf::verify(&headers, secure, &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_page(rejection, &form.link).into_response();
    }
    let link = &form.link;
    let open = match open(&state, link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    let entered = form.code.as_deref().unwrap_or_default();
    let check = match state.services.check_redemption_code(&open, entered).await {
        Ok(check) => check,
        Err(error) => return error_page(error),
    };
    let resend = |title: &str, paragraphs: Vec<String>, status: StatusCode| {
        let back = Some(("Back to the invitation", flow_url("/redeem", link, &[])));
        message(&state, &headers, status, Some(&open), link, title, &paragraphs, Some("Send a new code"), back).into_response()
    };
    match check {
        CodeCheck::Verified(token) => {
            let max_age = rules::session_lifetime().num_seconds();
            let cookie = csrf::set_cookie(session_cookie_name(secure), token.expose(), secure, Some(max_age));
            see_other(&flow_url("/redeem/consent", link, &[]), Some(cookie))
        }
        CodeCheck::Malformed => {
            let problem = "Enter the 8-digit code from the email we sent you.".to_string();
            code_form(&state, &headers, StatusCode::BAD_REQUEST, &open, link, Some(problem), false).into_response()
        }
        CodeCheck::Wrong { tries_left } => {
            let tries = if tries_left == 1 { "1 more try".to_string() } else { format!("{tries_left} more tries") };
            let problem = format!(
                "That code isn't right. Check that you typed the code from the most recent email. You have {tries} with this code; after that, ask for a new one."
            );
            code_form(&state, &headers, StatusCode::BAD_REQUEST, &open, link, Some(problem), false).into_response()
        }
        CodeCheck::TooManyTries => resend(
            "Too many wrong codes",
            vec![
                format!("A code can be tried {} times, and this one has been tried too often.", rules::MAX_WRONG_TRIES),
                "Ask for a new code and use the one in the newest email.".into(),
            ],
            StatusCode::TOO_MANY_REQUESTS,
        ),
        CodeCheck::Expired => resend(
            "This code has expired",
            vec!["Codes are valid for 30 minutes, and this one has run out.".into(), "Ask for a new code to continue.".into()],
            StatusCode::BAD_REQUEST,
        ),
        CodeCheck::NoActiveCode => resend(
            "This code can't be used",
            vec![
                "There is no code waiting for this invitation: it was used already, or a newer one was sent.".into(),
                "Ask for a new code to continue.".into(),
            ],
            StatusCode::BAD_REQUEST,
        ),
    }
}

async fn consent(State(state): State<AppState>, headers: HeaderMap, link: Result<Query<RedeemLink>, QueryRejection>) -> Response {
    let Ok(Query(link)) = link else { return refusal_page(LinkRefusal::Unknown).into_response() };
    let open = match open(&state, &link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    match state.services.session_covers(&open, session_token(&state, &headers).as_ref()).await {
        Ok(true) => {}
        Ok(false) => return see_other(&flow_url("/redeem/verify", &link, &[]), None),
        Err(error) => return error_page(error),
    }
    let redirect = url::Url::parse(&open.invitation.redirect_url).ok();
    let page = context! {
        title => "Review permissions", organization => &open.tenant.display_name, email => &open.invitation.email,
        redirect_host => redirect.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default(),
        privacy_url => None::<String>,
    };
    let mut page = form_page(&state, &headers, StatusCode::OK, "consent.html", &link, page);
    // Accept redirects to inviteRedirectUrl, and browsers hold form redirects to form-action.
    page.form_action = redirect.map(|u| u.origin().ascii_serialization()).filter(|origin| origin != "null");
    page.into_response()
}

async fn decide(State(state): State<AppState>, headers: HeaderMap, form: Result<Form<LinkForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else { return unreadable_form().into_response() };
    if let Err(rejection) = csrf::verify(&headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_page(rejection, &form.link).into_response();
    }
    let link = &form.link;
    let open = match open(&state, link).await {
        Ok(open) => open,
        Err(page) => return page,
    };
    if form.decision.as_deref() != Some("accept") {
        let organization = &open.tenant.display_name;
        let paragraphs = vec![
            format!("You didn't accept the invitation, and nothing was shared with {organization}."),
            "Your invitation link still works if you change your mind.".to_string(),
        ];
        let back = Some(("Back to the invitation", flow_url("/redeem", link, &[])));
        return message(&state, &headers, StatusCode::OK, Some(&open), link, "Invitation not accepted", &paragraphs, None, back)
            .into_response();
    }
    match state.services.accept_invitation(&open, session_token(&state, &headers).as_ref()).await {
        Ok(Acceptance::Redeemed { redirect_url }) => see_other(&redirect_url, None),
        Ok(Acceptance::NeedsVerification) => see_other(&flow_url("/redeem/verify", link, &[]), None),
        // A double-clicked Accept: this browser's other request won; say so and lead on.
        Ok(Acceptance::Refused(LinkRefusal::AlreadyRedeemed)) if accepted_here(&state, &headers, &open).await => {
            let paragraphs = vec![format!("You've accepted the invitation from {}.", open.tenant.display_name)];
            let back = Some(("Continue", open.invitation.redirect_url.clone()));
            message(&state, &headers, StatusCode::GONE, Some(&open), link, "Invitation already accepted", &paragraphs, None, back)
                .into_response()
        }
        Ok(Acceptance::Refused(refusal)) => refusal_page(refusal).into_response(),
        Err(error) => error_page(error),
    }
}

/// Whether this browser verified the invited address, so an "already accepted" was its own doing.
async fn accepted_here(state: &AppState, headers: &HeaderMap, open: &OpenInvitation) -> bool {
    state.services.session_covers(open, session_token(state, headers).as_ref()).await.unwrap_or(false)
}

/// A time for a page: the UTC clock time, and how far away it is.
fn describe_time(at: DateTime<Utc>) -> String {
    let minutes = (at - Utc::now()).num_minutes().max(0) + 1;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("{} UTC (in about {minutes} {unit})", at.format("%H:%M"))
}
