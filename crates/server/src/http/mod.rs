//! HTTP: the Graph API, the OAuth endpoints, and the error mapping, on axum.

pub mod auth;
pub mod client_address;
mod console;
pub mod error;
pub mod graph;
pub mod guestlist_api;
pub mod oauth;
pub mod pages;
pub mod server;
pub mod unsubscribe;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::services::Services;
use graph::GraphVersion;

/// Request bodies larger than this are refused with 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// `https` or `http`, for URLs built from the request's Host header.
    pub scheme: &'static str,
}

/// One Graph version's routes, with `/me` resolved to the caller's `/users/{id}` first: a path
/// rewrite has to happen before routing, so it wraps the version's whole router.
fn graph_version(
    version: GraphVersion,
    state: &AppState,
) -> impl tower::Service<axum::extract::Request, Response = axum::response::Response, Error = std::convert::Infallible, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static {
    use tower::Layer;
    let routes = graph::router(version).with_state(state.clone());
    middleware::from_fn_with_state(state.clone(), graph::me::alias).layer(routes)
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest_service("/v1.0", graph_version(GraphVersion::V1, &state))
        .nest_service("/beta", graph_version(GraphVersion::Beta, &state))
        .merge(oauth::router())
        .merge(guestlist_api::router())
        .merge(graph::policies::guestlist_router())
        .merge(unsubscribe::router())
        .merge(pages::router())
        .merge(console::router())
        .fallback(|uri: axum::http::Uri| async move {
            error::ApiError::new(axum::http::StatusCode::NOT_FOUND, "NotFound", format!("No resource at '{}'.", uri.path()))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(error::graph_envelope))
        // Page URLs hold redeem tickets: spans name the path only (pages::log_safe_uri).
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::debug_span!("request", method = %request.method(), uri = %pages::log_safe_uri(request.uri()), version = ?request.version())
        }))
        .with_state(state)
}
