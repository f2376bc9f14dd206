//! `/me`: Graph's alias for the signed-in user of a delegated token. `/me`, `/me/memberOf`,
//! `/me/sponsors` and the rest are served as `/users/{oid}/...` by rewriting the path before
//! the version's routes see it; an app token gets Graph's 400.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::CallerPrincipal;

/// The `/users/...` path a `/me...` path stands for, or `None` when it isn't one.
pub fn users_path(path: &str, user_segment: &str) -> Option<String> {
    let rest = path.strip_prefix("/me")?;
    (rest.is_empty() || rest.starts_with('/')).then(|| format!("/users/{user_segment}{rest}"))
}

pub async fn alias(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if users_path(request.uri().path(), "").is_none() {
        return next.run(request).await;
    }
    let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let bearer = header.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, token)| token.trim());
    let segment = match state.services.authenticate(bearer).await {
        Ok(caller) => match caller.principal {
            CallerPrincipal::User { user_id, .. } => user_id.to_string(),
            CallerPrincipal::App { .. } => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
                .into_response();
            }
        },
        // No valid token: the route's own authentication gives Graph's 401.
        Err(_) => "me".to_string(),
    };
    let Some(path) = users_path(request.uri().path(), &segment) else { return next.run(request).await };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(uri) = path_and_query.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_me_and_its_children_are_rewritten() {
        assert_eq!(users_path("/me", "u1").as_deref(), Some("/users/u1"));
        assert_eq!(users_path("/me/memberOf/$count", "u1").as_deref(), Some("/users/u1/memberOf/$count"));
        assert_eq!(users_path("/members", "u1"), None);
        assert_eq!(users_path("/users/me", "u1"), None);
    }
}
