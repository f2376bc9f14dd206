//! Member sign-in pages (issue 5 items 1 and 5):
//!
//! | Route | Page |
//! |---|---|
//! | `GET /{tenant}/oauth2/v2.0/authorize?…` | checks the request, then the sign-in form (username = UPN, password) |
//! | `POST /{tenant}/oauth2/v2.0/authorize` | signs in; `302` to `redirect_uri?code=…&state=…` |
//! | `GET /devicelogin` | "Enter code" for the device code flow |
//! | `POST /devicelogin` | finds the pending device code, then the sign-in form |
//! | `POST /devicelogin/signin` | signs in and approves the device (or Cancel declines it) |

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use guestlist_domain::Tenant;
use minijinja::context;
use serde::Deserialize;

use super::csrf::{self, CsrfRejection};
use super::{security_headers, Page};
use crate::http::AppState;
use crate::services::signin::{AuthorizeParams, AuthorizeRefusal, SignInFailure};
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

/// The peer address, for the per-address sign-in limit (behind a proxy this is the proxy).
fn client_address(parts: &Parts) -> String {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_string(), |ConnectInfo(addr)| addr.ip().to_string())
}

/// The sign-in pages' header before a tenant is known (the guest pages say "Guest invitation").
const SITE: &str = "Sign in";
const FOOTER: &str = "Sign-in provided by guestlist.";

fn message(status: StatusCode, title: &str, paragraphs: &[&str]) -> Response {
    let paragraphs: Vec<String> = paragraphs.iter().map(|p| p.to_string()).collect();
    Page::render(status, "message.html", context! { title, paragraphs, site => SITE, footer => FOOTER }).into_response()
}

fn csrf_refused(rejection: CsrfRejection) -> Response {
    let text = match rejection {
        CsrfRejection::MissingCookie => "Your browser didn't send the cookie this form needs. Allow cookies for this site and try again.",
        CsrfRejection::TokenMismatch => "This form has expired. Go back, reload the page and try again.",
        CsrfRejection::CrossSite => "This form was sent from another site, so it was not accepted.",
    };
    message(StatusCode::FORBIDDEN, "We couldn't accept this form", &[text])
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
        SignInFailure::AccountDisabled => "Your account has been disabled. Contact your administrator.",
        SignInFailure::Service(_) => "We couldn't sign you in. Try again in a few minutes.",
    }
}

fn failure_status(failure: &SignInFailure) -> StatusCode {
    match failure {
        SignInFailure::AccountLocked | SignInFailure::AddressLocked => StatusCode::TOO_MANY_REQUESTS,
        SignInFailure::AccountDisabled => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    }
}

#[allow(clippy::too_many_arguments)]
fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    tenant: &Tenant,
    app_name: &str,
    action: &str,
    hidden: Vec<(&str, String)>,
    username: &str,
    problem: Option<&str>,
    can_cancel: bool,
    redirect_origin: Option<String>,
) -> Response {
    let (token, set_cookie) = csrf::token_for(headers, secure(state));
    let hidden: Vec<(String, String)> = hidden.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let page = context! {
        title => "Sign in", organization => &tenant.display_name, app_name, action, hidden, username, problem, can_cancel,
        csrf_token => token,
    };
    let mut page = Page::render(status, "signin.html", page);
    page.set_cookies.extend(set_cookie);
    // The sign-in post answers with a redirect to the client's loopback address.
    page.form_action = redirect_origin;
    page.into_response()
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
    sign_in_form(
        &state,
        &headers,
        StatusCode::OK,
        &authorization.tenant,
        &authorization.app.display_name,
        &format!("/{tenant}/oauth2/v2.0/authorize"),
        authorize_hidden(&params),
        &username,
        None,
        false,
        origin_of(&authorization.redirect_uri),
    )
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
    match state.services.sign_in(&authorization.tenant, username, password, &client_address(&parts)).await {
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
        Err(SignInFailure::Service(error)) => service_failed(error),
        Err(failure) => sign_in_form(
            &state,
            &parts.headers,
            failure_status(&failure),
            &authorization.tenant,
            &authorization.app.display_name,
            &format!("/{tenant}/oauth2/v2.0/authorize"),
            authorize_hidden(&form.params),
            username,
            Some(failure_text(&failure)),
            false,
            origin_of(&authorization.redirect_uri),
        ),
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
        Ok(Some((grant, tenant, app))) => sign_in_form(
            &state,
            &headers,
            StatusCode::OK,
            &tenant,
            &app.display_name,
            "/devicelogin/signin",
            vec![("user_code", grant.user_code.unwrap_or_default())],
            "",
            None,
            true,
            None,
        ),
        Ok(None) => device_form(&state, &headers, StatusCode::OK, Some(UNKNOWN_CODE)),
        Err(error) => service_failed(error),
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
    match state.services.sign_in(&tenant, username, password, &client_address(&parts)).await {
        Ok(user) => match state.services.decide_device_code(&grant, Some(&user)).await {
            Ok(true) => message(
                StatusCode::OK,
                "You're signed in",
                &[&format!("You have signed in to {} on your device. You can close this window.", app.display_name)],
            ),
            Ok(false) => device_form(&state, headers, StatusCode::OK, Some(UNKNOWN_CODE)),
            Err(error) => service_failed(error),
        },
        Err(SignInFailure::Service(error)) => service_failed(error),
        Err(failure) => sign_in_form(
            &state,
            headers,
            failure_status(&failure),
            &tenant,
            &app.display_name,
            "/devicelogin/signin",
            vec![("user_code", user_code)],
            username,
            Some(failure_text(&failure)),
            true,
            None,
        ),
    }
}
