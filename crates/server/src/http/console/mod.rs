//! The admin console (issue 5 item 4): server-rendered pages for people who manage guests
//! without scripting, as Entra's portal does. A member signs in with UPN and password; the
//! session is a delegated access token of the tenant's "guestlist admin console" client in an
//! HttpOnly cookie, validated on every request exactly as a Graph bearer token is, so the
//! console keeps no state of its own and any replica serves any request. Every action calls the
//! same service as its Graph route, and a refusal shows Graph's error code and message.
//!
//! | Route | Page |
//! |---|---|
//! | `GET/POST /console/signin`, `POST /console/signout` | sign in and out |
//! | `GET /console/guests?state=&domain=&q=` | guests with their state, filters and search |
//! | `GET /console/guests/{id}` | a guest: identities, invitations, memberships, sponsors, audit history |
//! | `POST /console/guests/{id}/resend` | a new redeem link and mail for the pending invitation |
//! | `GET/POST /console/guests/{id}/reset` | reset redemption status, with the email picker |
//! | `GET/POST /console/guests/{id}/delete` | delete the guest (after a confirmation page) |
//! | `GET/POST /console/invite`, `POST /console/invite/bulk`, `GET /console/invite/template.csv` | invite one, or many from a CSV file |
//! | `GET /console/settings`, `POST /console/settings/invitations`, `POST /console/settings/domains` | external collaboration settings |

mod guests;
mod invite;
mod settings;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use minijinja::{context, Value};
use serde::Deserialize;

use super::error::ApiError;
use super::pages::csrf::{self, CsrfRejection};
use super::pages::{change_password_page, client_address, security_headers, sign_in_retry, ChangePasswordForm, Page, SignInRetry};
use super::AppState;
use crate::services::invitations::InvitationOutcome;
use crate::services::signin::{NewPassword, SignInFailure};
use crate::services::tokens::AuthError;
use crate::services::{Caller, CallerPrincipal, ServiceError};

/// Form posts are short, but a bulk invitation file may be up to this size.
const MAX_UPLOAD_BYTES: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { see_other("/console/guests") }))
        .route("/console/signin", get(sign_in_page).post(sign_in))
        .route("/console/signout", post(sign_out))
        .merge(guests::router())
        .merge(invite::router())
        .merge(settings::router())
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}

fn secure(state: &AppState) -> bool {
    state.services.public_origin.starts_with("https://")
}

/// The session cookie: `__Host-` prefixed over TLS, so no other host can plant one.
fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-guestlist-console"
    } else {
        "guestlist-console"
    }
}

/// A signed-in person on a console page: the same [`Caller`] a Graph request with their token
/// would have, and this browser's CSRF token for the page's forms.
pub(crate) struct Session {
    pub caller: Caller,
    pub user_principal_name: String,
    csrf_token: String,
    csrf_cookie: Option<HeaderValue>,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secure = secure(state);
        let token = csrf::cookie(&parts.headers, session_cookie(secure));
        let sign_in = || {
            let next = parts.uri.path_and_query().map_or("/console/guests", |p| p.as_str());
            let next = if parts.method == axum::http::Method::GET { next } else { parts.uri.path() };
            see_other(&format!("/console/signin?next={}", percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)))
        };
        let caller = match state.services.authenticate(token).await {
            Ok(caller) => caller,
            // The database is away: the session may be fine, so say "try again" rather than
            // sending the person to sign in (which would fail the same way).
            Err(AuthError::Service(error)) => return Err(unavailable(error)),
            Err(_) => return Err(sign_in()),
        };
        let CallerPrincipal::User { user_principal_name, .. } = &caller.principal else { return Err(sign_in()) };
        let user_principal_name = user_principal_name.clone();
        let (csrf_token, csrf_cookie) = csrf::token_for(&parts.headers, secure);
        Ok(Session { caller, user_principal_name, csrf_token, csrf_cookie })
    }
}

impl Session {
    /// Renders a console page with the layout's context (who is signed in, the CSRF token).
    fn render(&self, status: StatusCode, template: &str, section: &str, page: Value) -> Response {
        let context = context! {
            organization => &self.caller.tenant.display_name,
            signed_in_as => &self.user_principal_name,
            csrf_token => &self.csrf_token,
            section,
            ..page
        };
        let mut page = Page::render(status, template, context);
        page.set_cookies.extend(self.csrf_cookie.clone());
        page.into_response()
    }

    /// Checks a form post's CSRF token against this browser's cookie and the request's origin.
    fn verify(&self, state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> Result<(), CsrfRejection> {
        csrf::verify(headers, secure(state), &state.services.public_origin, submitted)
    }
}

/// A console page the service could not serve: 503 (with `Retry-After`) and "try again".
fn unavailable(error: ServiceError) -> Response {
    tracing::warn!(%error, "console page unavailable");
    let paragraphs = vec!["The directory can't be reached right now; nothing was changed. Try again in a minute."];
    Page::render(StatusCode::SERVICE_UNAVAILABLE, "message.html", context! { title => "Please try again", paragraphs }).into_response()
}

/// What a refused or failed action shows: Graph's error code and message for the same refusal.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Problem {
    pub code: &'static str,
    pub message: String,
    #[serde(skip)]
    pub status: StatusCode,
}

impl From<ServiceError> for Problem {
    fn from(error: ServiceError) -> Self {
        let graph = ApiError::from(error);
        Problem { code: graph.code, message: graph.message, status: graph.status }
    }
}

impl Problem {
    /// A form the console itself refuses before any service runs (the field is named in `message`).
    fn invalid(message: impl Into<String>) -> Self {
        Problem { code: "Request_BadRequest", message: message.into(), status: StatusCode::BAD_REQUEST }
    }
}

/// After an invite, reset or resend that mailed nothing (mail is off, or the admin didn't ask for
/// it), the guest's page shows the redeem link once. Only the link's hash is stored, so it travels
/// in a short-lived cookie of this browser, bound to the guest.
fn redeem_link_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-guestlist-redeem-link"
    } else {
        "guestlist-redeem-link"
    }
}

pub(crate) fn with_redeem_link(state: &AppState, mut response: Response, outcome: &InvitationOutcome) -> Response {
    let mailed = outcome.request.send_invitation_message && state.services.mail.is_configured();
    if !mailed {
        let value = URL_SAFE_NO_PAD.encode(format!("{}|{}", outcome.user.id, outcome.redeem_url));
        let cookie = csrf::set_cookie(redeem_link_cookie(secure(state)), &value, secure(state), Some(300));
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The redeem link waiting for `user_id`'s page, with the `Set-Cookie` that forgets it.
pub(crate) fn take_redeem_link(state: &AppState, headers: &HeaderMap, user_id: &str) -> Option<(String, HeaderValue)> {
    let name = redeem_link_cookie(secure(state));
    let decoded = URL_SAFE_NO_PAD.decode(csrf::cookie(headers, name)?).ok()?;
    let (owner, link) = std::str::from_utf8(&decoded).ok()?.split_once('|')?;
    (owner == user_id).then(|| (link.to_string(), csrf::set_cookie(name, "", secure(state), Some(0))))
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    security_headers(response.headers_mut());
    response
}

fn csrf_refused(rejection: CsrfRejection) -> Response {
    let page = context! {
        title => "We couldn't accept this form", paragraphs => vec![rejection.explanation()],
        site => "guestlist admin console", footer => CONSOLE_SIGN_IN_FOOTER,
    };
    Page::render(StatusCode::FORBIDDEN, "message.html", page).into_response()
}

/// Only console paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if next.starts_with("/console") && !next.contains("//") && !next.contains('\\') => next,
        _ => "/console/guests",
    }
}

#[derive(Deserialize, Default)]
struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    username: &str,
    problem: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let (token, set_cookie) = csrf::token_for(headers, secure(state));
    let page = context! {
        title => "Sign in to the admin console", next, username, problem, notice, csrf_token => token,
    };
    let mut page = Page::render(status, "console/signin.html", page);
    page.set_cookies.extend(set_cookie);
    page.into_response()
}

async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<SignInQuery>) -> Response {
    let notice = query.signed_out.is_some().then_some("You have signed out.");
    sign_in_form(&state, &headers, StatusCode::OK, safe_next(query.next.as_deref()), "", None, notice)
}

#[derive(Deserialize)]
struct SignInForm {
    csrf_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    next: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

async fn sign_in(State(state): State<AppState>, parts: Parts, form: Result<Form<SignInForm>, FormRejection>) -> Response {
    let headers = &parts.headers;
    let Ok(Form(form)) = form else {
        return sign_in_form(&state, headers, StatusCode::BAD_REQUEST, "/console/guests", "", Some("The sign-in form is malformed."), None);
    };
    if let Err(rejection) = csrf::verify(headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_refused(rejection);
    }
    let next = safe_next(form.next.as_deref());
    let username = form.username.as_deref().unwrap_or_default().trim();
    let password = form.password.as_deref().unwrap_or_default();
    let address = client_address(&parts);
    // Posted by "Update your password" (forceChangePasswordNextSignIn).
    let new_password =
        form.new_password.clone().map(|password| NewPassword { password, confirmation: form.confirm_password.clone().unwrap_or_default() });
    match state.services.console_sign_in(username, password, new_password.as_ref(), &address).await {
        Ok(session) => {
            let mut response = see_other(next);
            let cookie =
                csrf::set_cookie(session_cookie(secure(&state)), &session.access_token, secure(&state), Some(session.expires_in as i64));
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(SignInFailure::Service(error)) => {
            tracing::error!(%error, "console sign-in failed");
            let text = "We couldn't sign you in. Try again in a few minutes.";
            sign_in_form(&state, headers, StatusCode::SERVICE_UNAVAILABLE, next, username, Some(text), None)
        }
        Err(failure) => match sign_in_retry(&failure, new_password.is_some()) {
            SignInRetry::SignIn { status, problem } => sign_in_form(&state, headers, status, next, username, Some(problem), None),
            SignInRetry::ChangePassword(problem) => {
                let form = ChangePasswordForm {
                    action: "/console/signin",
                    hidden: vec![("next", next.to_string())],
                    username,
                    organization: None,
                    site: "guestlist admin console",
                    footer: CONSOLE_SIGN_IN_FOOTER,
                    can_cancel: false,
                    problem,
                };
                change_password_page(headers, secure(&state), form).into_response()
            }
        },
    }
}

const CONSOLE_SIGN_IN_FOOTER: &str = "guestlist admin console. Sign-ins are rate-limited and failures are audited.";

#[derive(Deserialize)]
struct CsrfOnly {
    csrf_token: Option<String>,
}

/// Signing out drops the session cookie. The token itself stays valid until it expires (at most
/// an hour), as a Graph access token does after sign-out in Entra.
async fn sign_out(State(state): State<AppState>, headers: HeaderMap, form: Result<Form<CsrfOnly>, FormRejection>) -> Response {
    let submitted = form.ok().and_then(|Form(f)| f.csrf_token);
    if let Err(rejection) = csrf::verify(&headers, secure(&state), &state.services.public_origin, submitted.as_deref()) {
        return csrf_refused(rejection);
    }
    let mut response = see_other("/console/signin?signed_out=1");
    let cookie = csrf::set_cookie(session_cookie(secure(&state)), "", secure(&state), Some(0));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_template_renders_escaped_without_script_or_inline_style() {
        let evil = "<script>alert(1)</script>";
        let guest = context! {
            id => "\"><script>", display_name => evil, mail => evil, user_principal_name => evil, state => evil,
            identities => vec![(evil, evil, evil)], other_mails => vec![evil],
        };
        let problem = context! { code => "Forbidden", message => evil };
        let page = context! {
            title => evil, organization => evil, signed_in_as => evil, csrf_token => "\"><script>", section => "guests",
            guests => vec![guest.clone()], guest, filters => context! { state => "all", domain => evil, q => evil },
            choices => vec![context! { address => evil, source => evil }], selected => evil, new_email => evil, redirect_url => evil,
            form => context! { email => evil, display_name => evil, redirect_url => evil, message => evil },
            results => vec![context! { line => 2, email => evil, invited => false, problem => problem.clone() }],
            invitations => context! { items => vec![context! { email => evil, state => "Pending" }] },
            groups => context! { problem => problem.clone() }, sponsors => context! { items => vec![evil] },
            audit => context! { items => vec![context! { activity => evil, initiated_by => evil, changes => vec![evil] }] },
            listed => evil, mode => "block", notice => evil, problem, username => evil, next => evil,
        };
        for name in ["signin", "guests", "guest", "reset", "invite", "bulk", "settings", "delete"] {
            let html = Page::render(StatusCode::OK, &format!("console/{name}.html"), page.clone()).html;
            assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"), "{name}");
            assert!(!html.contains("<script"), "{name} lets a value through unescaped or has a script");
            assert!(!html.contains("style="), "{name} has an inline style");
            assert!(html.contains("&lt;script&gt;"), "{name} shows the values");
        }
    }

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/console/guests/1?x=2")), "/console/guests/1?x=2");
        for bad in
            ["https://evil.example/console", "//evil.example/console", "/console//evil", "/consolation", "/v1.0/users", "/console\\x"]
        {
            assert_eq!(safe_next(Some(bad)), "/console/guests", "{bad}");
        }
        assert_eq!(safe_next(None), "/console/guests");
    }
}
