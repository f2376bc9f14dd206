//! The bearer-token extractor for Graph routes.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::services::tokens::AuthError;
use crate::services::Caller;

/// A Graph request whose access token was validated.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
            _ => None,
        };
        match state.services.authenticate(token).await {
            Ok(caller) => Ok(Authenticated(caller)),
            Err(AuthError::Token(error)) => Err(ApiError::invalid_token(error.message())),
            Err(AuthError::UnknownTenant) => {
                Err(ApiError::invalid_token("Access token validation failure. The tenant of the token does not exist."))
            }
            Err(AuthError::Service(error)) => Err(error.into()),
        }
    }
}
