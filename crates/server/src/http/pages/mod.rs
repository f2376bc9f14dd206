//! Server-rendered HTML pages (the guest's redemption flow), outside Graph's namespace: one
//! layout, one served CSS file, a CSRF helper ([`csrf`]) for every form, and the security
//! headers every page carries. Templates live in `templates/pages/` and are embedded at compile
//! time; `.html` templates escape every value.

pub mod csrf;
mod redeem;
mod signin;

pub(crate) use signin::{change_password_page, client_address, retry_after as sign_in_retry, ChangePasswordForm, Retry as SignInRetry};

use std::sync::LazyLock;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{AutoEscape, Environment};

use super::AppState;

/// Form posts are a few short fields; anything bigger is refused before parsing.
const MAX_FORM_BYTES: usize = 8 * 1024;

const STYLESHEET: &str = include_str!("../../../templates/pages/guestlist.css");

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    let templates = [
        ("layout.html", include_str!("../../../templates/pages/layout.html")),
        ("hidden_link.html", include_str!("../../../templates/pages/hidden_link.html")),
        ("landing.html", include_str!("../../../templates/pages/landing.html")),
        ("verify.html", include_str!("../../../templates/pages/verify.html")),
        ("code.html", include_str!("../../../templates/pages/code.html")),
        ("consent.html", include_str!("../../../templates/pages/consent.html")),
        ("message.html", include_str!("../../../templates/pages/message.html")),
        ("signin.html", include_str!("../../../templates/pages/signin.html")),
        ("change_password.html", include_str!("../../../templates/pages/change_password.html")),
        ("devicelogin.html", include_str!("../../../templates/pages/devicelogin.html")),
        ("console/layout.html", include_str!("../../../templates/pages/console/layout.html")),
        ("console/signin.html", include_str!("../../../templates/pages/console/signin.html")),
        ("console/guests.html", include_str!("../../../templates/pages/console/guests.html")),
        ("console/guest.html", include_str!("../../../templates/pages/console/guest.html")),
        ("console/reset.html", include_str!("../../../templates/pages/console/reset.html")),
        ("console/invite.html", include_str!("../../../templates/pages/console/invite.html")),
        ("console/bulk.html", include_str!("../../../templates/pages/console/bulk.html")),
        ("console/settings.html", include_str!("../../../templates/pages/console/settings.html")),
        ("console/delete.html", include_str!("../../../templates/pages/console/delete.html")),
    ];
    for (name, source) in templates {
        env.add_template(name, source).expect("the embedded page templates parse");
    }
    env
});

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(redeem::router())
        .merge(signin::router())
        .route("/assets/guestlist.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A rendered page with its status and headers; `form_action` widens the CSP's `form-action`
/// to one more origin (the consent form's post redirects to the invitation's redirect URL).
pub(crate) struct Page {
    pub status: StatusCode,
    pub html: String,
    pub form_action: Option<String>,
    pub set_cookies: Vec<HeaderValue>,
}

impl Page {
    pub fn render(status: StatusCode, template: &str, context: minijinja::Value) -> Page {
        let html = TEMPLATES.get_template(template).and_then(|t| t.render(context)).unwrap_or_else(|error| {
            tracing::error!(%error, template, "page template failed");
            String::from("<!doctype html><html lang=\"en\"><title>Error</title><h1>Something went wrong</h1></html>")
        });
        Page { status, html, form_action: None, set_cookies: Vec::new() }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        for cookie in self.set_cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
        let form_action = match self.form_action {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_string(),
        };
        let policy = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        );
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        security_headers(headers);
        response
    }
}

/// Headers for every page response, redirects included: no caching (pages show addresses and
/// hold form tokens), no framing, and no referrer to other sites (the URL holds the redeem
/// ticket); same-origin requests keep theirs, so form posts carry a real `Origin`.
pub(crate) fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
}

/// The request URI as logs may show it: pages carry tickets and tokens in their queries, so only
/// Graph's own routes keep theirs.
pub fn log_safe_uri(uri: &Uri) -> String {
    let path = uri.path();
    if path.starts_with("/v1.0/") || path.starts_with("/beta/") {
        uri.to_string()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_escapes() {
        let context = minijinja::context! {
            title => "T", organization => "<Contoso>", email => "a@example.com", paragraphs => vec!["<b>x</b>"],
            link => minijinja::context! { tenant => "t", user => "u", ticket => "\"><script>" }, csrf_token => "c",
        };
        for name in ["landing.html", "verify.html", "code.html", "consent.html", "message.html"] {
            let page = Page::render(StatusCode::OK, name, context.clone());
            assert!(page.html.starts_with("<!doctype html>\n<html lang=\"en\">"), "{name}");
            assert!(!page.html.contains("<Contoso>") && !page.html.contains("\"><script>"), "{name} escapes");
            assert!(!page.html.contains("<script"), "{name} has no script");
            assert!(!page.html.contains("style="), "{name} has no inline style");
        }
    }

    #[test]
    fn page_queries_stay_out_of_logs() {
        assert_eq!(log_safe_uri(&"/redeem?tenant=t&ticket=secret".parse().unwrap()), "/redeem");
        assert_eq!(log_safe_uri(&"/v1.0/users?$top=5".parse().unwrap()), "/v1.0/users?$top=5");
    }
}
