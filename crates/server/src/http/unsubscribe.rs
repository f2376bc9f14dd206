//! "Block future invitations" (contract §4.1): the link in every invitation email opens a page
//! that asks, and only its form post unsubscribes (mail scanners follow links). The page uses
//! the redeem pages' layout, CSRF helper and security headers.
//!
//! | Route | Page |
//! |---|---|
//! | `GET /unsubscribe?token=…` | what the link would block, and a "Block future invitations" button |
//! | `POST /unsubscribe` | puts the address on the tenant's list (`Email unsubscribed`), then says so |

use std::sync::LazyLock;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Form, Router};
use minijinja::{context, AutoEscape, Environment};
use serde::Deserialize;

use super::pages::{csrf, Page};
use super::AppState;
use crate::services::mail::UnsubscribeTarget;

/// Longest token looked up at all.
const MAX_TOKEN: usize = 128;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    let templates = [
        ("layout.html", include_str!("../../templates/pages/layout.html")),
        ("unsubscribe.html", include_str!("../../templates/pages/unsubscribe.html")),
        ("notice.html", "{% extends \"layout.html\" %}{% block content %}<p>{{ text }}</p>{% endblock %}"),
    ];
    for (name, source) in templates {
        env.add_template(name, source).expect("the embedded page templates parse");
    }
    env
});

pub fn router() -> Router<AppState> {
    Router::new().route("/unsubscribe", get(ask).post(confirm))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct UnsubscribeForm {
    #[serde(default)]
    token: String,
    csrf_token: Option<String>,
}

fn secure(state: &AppState) -> bool {
    state.services.public_origin.starts_with("https://")
}

fn render(status: StatusCode, template: &str, context: minijinja::Value) -> Page {
    let html = TEMPLATES.get_template(template).and_then(|t| t.render(context)).unwrap_or_else(|error| {
        tracing::error!(%error, "unsubscribe template failed");
        String::from("<!doctype html><html lang=\"en\"><title>Error</title><h1>Something went wrong</h1></html>")
    });
    Page { status, html, form_action: None, set_cookies: Vec::new() }
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    target: &UnsubscribeTarget,
    token: &str,
    done: bool,
    problem: Option<&str>,
) -> Page {
    let (csrf_token, set_cookie) = csrf::token_for(headers, secure(state));
    let title = if done { "You're unsubscribed" } else { "Block future invitations" };
    let mut page = render(
        status,
        "unsubscribe.html",
        context! {
            title, organization => &target.tenant.display_name, domain => &target.tenant.initial_domain,
            email => &target.address, token, csrf_token, done, problem,
        },
    );
    page.set_cookies.extend(set_cookie);
    page
}

/// A page with a title and one paragraph; nothing to submit.
fn notice(status: StatusCode, title: &str, text: &str) -> Page {
    render(status, "notice.html", context! { title, text })
}

fn unknown_link() -> Page {
    notice(
        StatusCode::NOT_FOUND,
        "This link isn't valid",
        "We couldn't find what this link is for. Open the whole \"Block future invitations\" link from the invitation email.",
    )
}

fn unavailable() -> Page {
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "Something went wrong on our side; nothing was changed. Try again in a minute.",
    )
}

async fn ask(State(state): State<AppState>, headers: HeaderMap, query: Result<Query<TokenQuery>, QueryRejection>) -> Page {
    let Ok(Query(TokenQuery { token })) = query else { return unknown_link() };
    if token.is_empty() || token.len() > MAX_TOKEN {
        return unknown_link();
    }
    match state.services.unsubscribe_target(&token).await {
        Ok(Some(target)) => {
            let done = target.already_unsubscribed;
            page(&state, &headers, StatusCode::OK, &target, &token, done, None)
        }
        Ok(None) => unknown_link(),
        Err(error) => {
            tracing::error!(%error, "unsubscribe page");
            unavailable()
        }
    }
}

async fn confirm(State(state): State<AppState>, headers: HeaderMap, form: Result<Form<UnsubscribeForm>, FormRejection>) -> Page {
    let Ok(Form(form)) = form else { return unknown_link() };
    if form.token.is_empty() || form.token.len() > MAX_TOKEN {
        return unknown_link();
    }
    if csrf::verify(&headers, secure(&state), &state.services.public_origin, form.csrf_token.as_deref()).is_err() {
        // Show the question again with a fresh form; nothing changed.
        return match state.services.unsubscribe_target(&form.token).await {
            Ok(Some(target)) => {
                let problem =
                    "Your request could not be checked (the page may have expired, or cookies are blocked). Please press the button again.";
                page(&state, &headers, StatusCode::FORBIDDEN, &target, &form.token, false, Some(problem))
            }
            Ok(None) => unknown_link(),
            Err(_) => unavailable(),
        };
    }
    match state.services.unsubscribe(&form.token).await {
        Ok(Some(target)) => page(&state, &headers, StatusCode::OK, &target, &form.token, true, None),
        Ok(None) => unknown_link(),
        Err(error) => {
            tracing::error!(%error, "unsubscribe");
            unavailable()
        }
    }
}
