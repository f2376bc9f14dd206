//! Member sign-in pages (issue 5 items 1 and 5):
//!
//! | Route | Page |
//! |---|---|
//! | `GET /{tenant}/oauth2/v2.0/authorize?…` | checks the request, then the sign-in form (username = UPN, password) |
//! | `POST /{tenant}/oauth2/v2.0/authorize` | signs in; `302` to `redirect_uri?code=…&state=…` |
//! | `GET /devicelogin` | "Enter code" for the device code flow |
//! | `POST /devicelogin` | finds the pending device code, then the sign-in form |
//! | `POST /devicelogin/signin` | signs in and approves the device (or Cancel declines it) |
//!
//! A member whose `forceChangePasswordNextSignIn` is set gets "Update your password" in place
//! of the code or the approval; that form posts to the same route with the same hidden fields
//! plus `new_password` and `confirm_password`, and the sign-in then goes on as usual.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guestlist_domain::signin::NewPasswordProblem;
use guestlist_domain::Tenant;
use minijinja::context;
use serde::Deserialize;

use super::csrf::{self, CsrfRejection};
use super::{security_headers, Page};
use crate::http::AppState;
use crate::services::signin::{AuthorizeParams, AuthorizeRefusal, NewPassword, SignInFailure};
use crate::services::ServiceError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize_page).post(authorize_submit))
        .route("/devicelogin", get(device_page).post(device_code))
        .route("/devicelogin/signin", post(device_sign_in))
}

fn secure(state: &AppState) -> bool {
    state.services.public_origin.starts_with("https://")
}

/// The client address the per-address sign-in limit counts (see `http::client_address`).
pub(crate) fn client_address(parts: &Parts) -> String {
    crate::http::client_address::of(parts)
}

/// The sign-in pages' header before a tenant is known (the guest pages say "Guest invitation").
const SITE: &str = "Sign in";
const FOOTER: &str = "Sign-in provided by guestlist.";

fn message(status: StatusCode, title: &str, paragraphs: &[&str]) -> Response {
    let paragraphs: Vec<String> = paragraphs.iter().map(|p| p.to_string()).collect();
    Page::render(status, "message.html", context! { title, paragraphs, site => SITE, footer => FOOTER }).into_response()
}

fn csrf_refused(rejection: CsrfRejection) -> Response {
    message(StatusCode::FORBIDDEN, "We couldn't accept this form", &[rejection.explanation()])
}

fn service_failed(error: ServiceError) -> Response {
    tracing::error!(%error, "sign-in page failed");
    message(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", &["We couldn't complete the sign-in. Try again in a few minutes."])
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    security_headers(response.headers_mut());
    response
}

/// `redirect_uri` with the response parameters in its query.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in params {
                    query.append_pair(name, value);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

fn origin_of(uri: &str) -> Option<String> {
    url::Url::parse(uri).ok().map(|url| url.origin().ascii_serialization())
}

/// Text the sign-in form shows for a failure (Entra's wording, AADSTS50126 / 50053 / 50057).
pub(crate) fn failure_text(failure: &SignInFailure) -> &'static str {
    match failure {
        SignInFailure::InvalidCredentials => "Your account or password is incorrect.",
        SignInFailure::AccountLocked => {
            "Your account is temporarily locked to prevent unauthorized use. Try again in 15 minutes, or ask your administrator."
        }
        SignInFailure::AddressLocked => "Too many failed sign-ins from your network. Try again in 15 minutes.",
        SignInFailure::Busy => "Too many sign-ins are in progress right now. Wait a moment and try again.",
        SignInFailure::AccountDisabled => "Your account has been disabled. Contact your administrator.",
        SignInFailure::PasswordChangeRequired => {
            "You need to update your password because this is the first time you are signing in, or because your password has expired."
        }
        SignInFailure::NewPasswordRefused(problem) => problem.message(),
        SignInFailure::Service(_) => "We couldn't sign you in. Try again in a few minutes.",
    }
}

pub(crate) fn failure_status(failure: &SignInFailure) -> StatusCode {
    match failure {
        // Over a limit is the caller's to wait out, never a server fault.
        SignInFailure::AccountLocked | SignInFailure::AddressLocked | SignInFailure::Busy => StatusCode::TOO_MANY_REQUESTS,
        SignInFailure::AccountDisabled => StatusCode::FORBIDDEN,
        SignInFailure::Service(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    }
}

/// What to show a field on "Update your password": the text and the input it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeProblem {
    pub text: &'static str,
    pub field: &'static str,
}

/// The form a failed sign-in answers with: the sign-in form with the failure's text, or "Update
/// your password" (first shown, or again with what was wrong). `changing`: the failed post came
/// from "Update your password".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    SignIn { status: StatusCode, problem: &'static str },
    ChangePassword(Option<ChangeProblem>),
}

pub(crate) fn retry_after(failure: &SignInFailure, changing: bool) -> Retry {
    let change = |text, field| Retry::ChangePassword(Some(ChangeProblem { text, field }));
    match failure {
        SignInFailure::PasswordChangeRequired => Retry::ChangePassword(None),
        SignInFailure::NewPasswordRefused(problem @ NewPasswordProblem::Mismatch) => change(problem.message(), "confirm_password"),
        SignInFailure::NewPasswordRefused(problem) => change(problem.message(), "new_password"),
        SignInFailure::InvalidCredentials if changing => change("Your current password is incorrect.", "password"),
        failure => Retry::SignIn { status: failure_status(failure), problem: failure_text(failure) },
    }
}

/// "Update your password": posts to `action` with `hidden`, the username, the current password
/// and the new one twice. `site` and `footer` frame the page when no organization is named.
pub(crate) struct ChangePasswordForm<'a> {
    pub action: &'a str,
    pub hidden: Vec<(&'a str, String)>,
    pub username: &'a str,
    pub organization: Option<&'a str>,
    pub site: &'a str,
    pub footer: &'a str,
    pub can_cancel: bool,
    pub problem: Option<ChangeProblem>,
}

pub(crate) fn change_password_page(headers: &HeaderMap, secure: bool, form: ChangePasswordForm<'_>) -> Page {
    let (token, set_cookie) = csrf::token_for(headers, secure);
    let hidden: Vec<(String, String)> = form.hidden.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let page = context! {
        title => "Update your password", organization => form.organization, site => form.site, footer => form.footer,
        action => form.action, hidden, username => form.username, can_cancel => form.can_cancel,
        problem => form.problem.map(|p| p.text), problem_field => form.problem.map(|p| p.field), csrf_token => token,
    };
    let mut page = Page::render(StatusCode::OK, "change_password.html", page);
    page.set_cookies.extend(set_cookie);
    page
}

/// A sign-in form's frame: the tenant and app it signs in to, where it posts and what it carries.
struct SignInPage<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    tenant: &'a Tenant,
    app_name: &'a str,
    action: String,
    hidden: Vec<(&'static str, String)>,
    can_cancel: bool,
    /// The sign-in post answers with a redirect to the client's loopback address.
    redirect_origin: Option<String>,
}

impl SignInPage<'_> {
    fn sign_in_form(&self, status: StatusCode, username: &str, problem: Option<&str>) -> Response {
        let (token, set_cookie) = csrf::token_for(self.headers, secure(self.state));
        let hidden: Vec<(String, String)> = self.hidden.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let page = context! {
            title => "Sign in", organization => &self.tenant.display_name, app_name => self.app_name, action => &self.action, hidden,
            username, problem, can_cancel => self.can_cancel, csrf_token => token,
        };
        let mut page = Page::render(status, "signin.html", page);
        page.set_cookies.extend(set_cookie);
        page.form_action = self.redirect_origin.clone();
        page.into_response()
    }

    fn change_password_form(&self, username: &str, problem: Option<ChangeProblem>) -> Response {
        let footer = format!("Sign-in for {}, provided by guestlist.", self.tenant.display_name);
        let form = ChangePasswordForm {
            action: &self.action,
            hidden: self.hidden.clone(),
            username,
            organization: Some(&self.tenant.display_name),
            site: SITE,
            footer: &footer,
            can_cancel: self.can_cancel,
            problem,
        };
        let mut page = change_password_page(self.headers, secure(self.state), form);
        page.form_action = self.redirect_origin.clone();
        page.into_response()
    }

    /// The answer to a sign-in that did not succeed.
    fn failed(&self, failure: SignInFailure, username: &str, changing: bool) -> Response {
        if let SignInFailure::Service(error) = failure {
            return service_failed(error);
        }
        match retry_after(&failure, changing) {
            Retry::SignIn { status, problem } => self.sign_in_form(status, username, Some(problem)),
            Retry::ChangePassword(problem) => self.change_password_form(username, problem),
        }
    }
}

fn authorize_hidden(params: &AuthorizeParams) -> Vec<(&'static str, String)> {
    let fields = [
        ("client_id", &params.client_id),
        ("response_type", &params.response_type),
        ("redirect_uri", &params.redirect_uri),
        ("scope", &params.scope),
        ("state", &params.state),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("nonce", &params.nonce),
    ];
    fields.into_iter().filter_map(|(name, value)| value.clone().map(|v| (name, v))).collect()
}

fn refusal_response(refusal: AuthorizeRefusal) -> Response {
    match refusal {
        AuthorizeRefusal::UnknownTenant => message(
            StatusCode::BAD_REQUEST,
            "We couldn't sign you in",
            &["AADSTS90002: The tenant in this sign-in address was not found. Check the address with the app's publisher."],
        ),
        AuthorizeRefusal::UnknownClient => message(
            StatusCode::BAD_REQUEST,
            "We couldn't sign you in",
            &["AADSTS700016: The application asking you to sign in is not registered in this directory."],
        ),
        AuthorizeRefusal::InvalidRedirectUri => message(
            StatusCode::BAD_REQUEST,
            "We couldn't sign you in",
            &["AADSTS50011: The redirect URI of this request is not allowed. Apps on this server redirect to http://localhost or http://127.0.0.1."],
        ),
        AuthorizeRefusal::Redirect { redirect_uri, state, error, description } => {
            let mut params = vec![("error", error), ("error_description", description.as_str())];
            if let Some(state) = state.as_deref() {
                params.push(("state", state));
            }
            redirect(&redirect_with(&redirect_uri, &params))
        }
        AuthorizeRefusal::Service(error) => service_failed(error),
    }
}

async fn authorize_page(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return message(StatusCode::BAD_REQUEST, "We couldn't sign you in", &["The sign-in request is malformed."]);
    };
    let authorization = match state.services.check_authorization(&tenant, &params).await {
        Ok(authorization) => authorization,
        Err(refusal) => return refusal_response(refusal),
    };
    let username = params.login_hint.clone().unwrap_or_default();
    let page = SignInPage {
        state: &state,
        headers: &headers,
        tenant: &authorization.tenant,
        app_name: &authorization.app.display_name,
        action: format!("/{tenant}/oauth2/v2.0/authorize"),
        hidden: authorize_hidden(&params),
        can_cancel: false,
        redirect_origin: origin_of(&authorization.redirect_uri),
    };
    page.sign_in_form(StatusCode::OK, &username, None)
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    csrf_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    user_code: Option<String>,
    decision: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

impl SignInForm {
    /// The new password when the post comes from "Update your password".
    fn new_password(&self) -> Option<NewPassword> {
        let password = self.new_password.clone()?;
        Some(NewPassword { password, confirmation: self.confirm_password.clone().unwrap_or_default() })
    }
}

async fn authorize_submit(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    parts: Parts,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return message(StatusCode::BAD_REQUEST, "We couldn't sign you in", &["The sign-in form is malformed."]);
    };
    if let Err(rejection) = csrf::verify(&parts.headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_refused(rejection);
    }
    let authorization = match state.services.check_authorization(&tenant, &form.params).await {
        Ok(authorization) => authorization,
        Err(refusal) => return refusal_response(refusal),
    };
    let username = form.username.as_deref().unwrap_or_default();
    let password = form.password.as_deref().unwrap_or_default();
    let new_password = form.new_password();
    let page = SignInPage {
        state: &state,
        headers: &parts.headers,
        tenant: &authorization.tenant,
        app_name: &authorization.app.display_name,
        action: format!("/{tenant}/oauth2/v2.0/authorize"),
        hidden: authorize_hidden(&form.params),
        can_cancel: false,
        redirect_origin: origin_of(&authorization.redirect_uri),
    };
    let signed_in = state.services.sign_in(&authorization.tenant, username, password, new_password.as_ref(), &client_address(&parts)).await;
    match signed_in {
        Ok(user) => match state.services.issue_authorization_code(&authorization, &user).await {
            Ok(code) => {
                let mut params = vec![("code", code.as_str())];
                if let Some(state) = authorization.state.as_deref() {
                    params.push(("state", state));
                }
                redirect(&redirect_with(&authorization.redirect_uri, &params))
            }
            Err(error) => service_failed(error),
        },
        Err(failure) => page.failed(failure, username, new_password.is_some()),
    }
}

fn device_form(state: &AppState, headers: &HeaderMap, status: StatusCode, problem: Option<&str>) -> Response {
    let (token, set_cookie) = csrf::token_for(headers, secure(state));
    let mut page = Page::render(status, "devicelogin.html", context! { title => "Enter code", problem, csrf_token => token, site => SITE });
    page.set_cookies.extend(set_cookie);
    page.into_response()
}

async fn device_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    device_form(&state, &headers, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct CodeForm {
    csrf_token: Option<String>,
    user_code: Option<String>,
}

const UNKNOWN_CODE: &str = "That code didn't work. Check the code and try again; codes expire after 15 minutes.";

async fn device_code(State(state): State<AppState>, headers: HeaderMap, form: Result<Form<CodeForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else { return device_form(&state, &headers, StatusCode::BAD_REQUEST, Some(UNKNOWN_CODE)) };
    if let Err(rejection) = csrf::verify(&headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_refused(rejection);
    }
    match state.services.pending_device_code(form.user_code.as_deref().unwrap_or_default()).await {
        Ok(Some((grant, tenant, app))) => {
            device_sign_in_page(&state, &headers, &tenant, &app.display_name, grant.user_code.unwrap_or_default()).sign_in_form(
                StatusCode::OK,
                "",
                None,
            )
        }
        Ok(None) => device_form(&state, &headers, StatusCode::OK, Some(UNKNOWN_CODE)),
        Err(error) => service_failed(error),
    }
}

fn device_sign_in_page<'a>(
    state: &'a AppState,
    headers: &'a HeaderMap,
    tenant: &'a Tenant,
    app_name: &'a str,
    user_code: String,
) -> SignInPage<'a> {
    SignInPage {
        state,
        headers,
        tenant,
        app_name,
        action: "/devicelogin/signin".into(),
        hidden: vec![("user_code", user_code)],
        can_cancel: true,
        redirect_origin: None,
    }
}

async fn device_sign_in(State(state): State<AppState>, parts: Parts, form: Result<Form<SignInForm>, FormRejection>) -> Response {
    let headers = &parts.headers;
    let Ok(Form(form)) = form else { return device_form(&state, headers, StatusCode::BAD_REQUEST, Some(UNKNOWN_CODE)) };
    if let Err(rejection) = csrf::verify(headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()) {
        return csrf_refused(rejection);
    }
    let user_code = form.user_code.clone().unwrap_or_default();
    let (grant, tenant, app) = match state.services.pending_device_code(&user_code).await {
        Ok(Some(found)) => found,
        Ok(None) => return device_form(&state, headers, StatusCode::OK, Some(UNKNOWN_CODE)),
        Err(error) => return service_failed(error),
    };
    if form.decision.as_deref() == Some("cancel") {
        return match state.services.decide_device_code(&grant, None).await {
            Ok(_) => {
                message(StatusCode::OK, "Sign-in cancelled", &["The app on your device was not signed in. You can close this window."])
            }
            Err(error) => service_failed(error),
        };
    }
    let username = form.username.as_deref().unwrap_or_default();
    let password = form.password.as_deref().unwrap_or_default();
    let new_password = form.new_password();
    let page = device_sign_in_page(&state, headers, &tenant, &app.display_name, user_code);
    match state.services.sign_in(&tenant, username, password, new_password.as_ref(), &client_address(&parts)).await {
        Ok(user) => match state.services.decide_device_code(&grant, Some(&user)).await {
            Ok(true) => message(
                StatusCode::OK,
                "You're signed in",
                &[&format!("You have signed in to {} on your device. You can close this window.", app.display_name)],
            ),
            Ok(false) => device_form(&state, headers, StatusCode::OK, Some(UNKNOWN_CODE)),
            Err(error) => service_failed(error),
        },
        Err(failure) => page.failed(failure, username, new_password.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_password_form_escapes_labels_its_fields_and_marks_the_one_at_fault() {
        let evil = "\"><script>alert(1)</script>";
        let headers = HeaderMap::new();
        let form = |problem| ChangePasswordForm {
            action: "/t/oauth2/v2.0/authorize",
            hidden: vec![("state", evil.to_string())],
            username: evil,
            organization: Some(evil),
            site: SITE,
            footer: FOOTER,
            can_cancel: false,
            problem,
        };
        let page = change_password_page(&headers, false, form(None));
        assert!(page.html.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(!page.html.contains("<script") && !page.html.contains("style="), "escaped, no script or inline style");
        assert!(!page.html.contains("role=\"alert\"") && !page.html.contains("aria-invalid"));
        assert!(!page.set_cookies.is_empty() && page.html.contains("name=\"csrf_token\""));
        for field in ["username", "password", "new_password", "confirm_password"] {
            assert!(page.html.contains(&format!("<label for=\"{field}\">")), "{field} has a label");
            assert!(page.html.contains(&format!("id=\"{field}\" name=\"{field}\"")), "{field}");
        }

        let problem = ChangeProblem { text: NewPasswordProblem::Mismatch.message(), field: "confirm_password" };
        let html = change_password_page(&headers, false, form(Some(problem))).html;
        assert!(html.contains("role=\"alert\" id=\"change-problem\""));
        assert_eq!(html.matches("aria-invalid=\"true\"").count(), 1);
        let confirm = html.split("id=\"confirm_password\"").nth(1).unwrap().split('>').next().unwrap();
        assert!(confirm.contains("aria-describedby=\"change-problem\" aria-invalid=\"true\""), "{confirm}");
    }

    #[test]
    fn failures_lead_to_the_sign_in_form_or_to_update_your_password() {
        let change = |text, field| Retry::ChangePassword(Some(ChangeProblem { text, field }));
        assert_eq!(retry_after(&SignInFailure::PasswordChangeRequired, false), Retry::ChangePassword(None));
        let mismatch = NewPasswordProblem::Mismatch;
        assert_eq!(retry_after(&SignInFailure::NewPasswordRefused(mismatch), true), change(mismatch.message(), "confirm_password"));
        let weak = NewPasswordProblem::TooSimple;
        assert_eq!(retry_after(&SignInFailure::NewPasswordRefused(weak), true), change(weak.message(), "new_password"));
        // A wrong current password stays on the change form; on the sign-in form it reads as usual.
        assert_eq!(retry_after(&SignInFailure::InvalidCredentials, true), change("Your current password is incorrect.", "password"));
        let incorrect = Retry::SignIn { status: StatusCode::OK, problem: "Your account or password is incorrect." };
        assert_eq!(retry_after(&SignInFailure::InvalidCredentials, false), incorrect);
        // A lockout ends the change: back to the sign-in form with 429.
        assert!(matches!(retry_after(&SignInFailure::AccountLocked, true), Retry::SignIn { status: StatusCode::TOO_MANY_REQUESTS, .. }));
    }
}
