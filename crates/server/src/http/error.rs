//! The one place where Graph's error bodies and common response headers are produced.
//!
//! Handlers return [`ApiError`]; it becomes a response carrying a [`PendingGraphError`]
//! extension, and [`graph_envelope`] renders the body with the request's ids
//! (`{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use crate::services::ServiceError;

pub const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A Graph error on its way out.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `innerError.code`, where Graph nests one (throttling: `throttledRequest`).
    pub inner_code: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), inner_code: None, headers: vec![] }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    /// The invitation API's own, unprefixed code (contract §6.2).
    pub fn invitation_bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        ApiError {
            headers: vec![("www-authenticate", "Bearer".into())],
            ..Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
        }
    }

    /// Graph's answer for a path segment it does not serve.
    pub fn unknown_segment(path: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", format!("Resource not found for the segment '{}'.", last_segment(path)))
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", format!("The HTTP method '{method}' is not allowed for '{path}'."))
    }
}

fn last_segment(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::InvitationRejected(_) => ApiError::invitation_bad_request(message),
            ServiceError::InvalidRequest(_) | ServiceError::UniqueValueTaken(_) => ApiError::bad_request(message),
            ServiceError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", message),
            ServiceError::InviteNotPermitted(_) => ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message),
            ServiceError::ResetNotPermitted => ApiError::new(StatusCode::FORBIDDEN, "Forbidden", message),
            ServiceError::DirectoryAccessDenied => ApiError::new(StatusCode::FORBIDDEN, "Authorization_RequestDenied", message),
            // Graph's throttling answer (contract §6.2-6.3); SDK retry handlers honour Retry-After.
            ServiceError::Throttled { tenant_id, app_id, retry_after_seconds } => ApiError {
                inner_code: Some("throttledRequest"),
                headers: vec![
                    ("retry-after", retry_after_seconds.to_string()),
                    ("x-ms-throttle-scope", format!("Tenant/InvitationManager/{app_id}/{tenant_id}")),
                    ("x-ms-throttle-information", "ResourceUnitLimitExceeded".into()),
                ],
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
            },
            // Graph's answer to a request it can't take now; SDK retry handlers honour Retry-After.
            ServiceError::Busy => ApiError {
                headers: vec![("retry-after", "1".into())],
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
            },
            ServiceError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable", message),
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "An internal server error occurred.")
            }
        }
    }
}

impl From<guestlist_odata::ODataError> for ApiError {
    fn from(error: guestlist_odata::ODataError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, error.code(), error.message())
    }
}

/// Marker carried by an error response until [`graph_envelope`] renders it.
#[derive(Debug, Clone)]
pub struct PendingGraphError {
    code: &'static str,
    message: String,
    inner_code: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response.extensions_mut().insert(PendingGraphError { code: self.code, message: self.message, inner_code: self.inner_code });
        response
    }
}

/// The ids Graph puts on every response.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    fn from_headers(headers: &HeaderMap) -> Self {
        let request_id = Uuid::new_v4().to_string();
        // Echo the caller's id only when it is a sane header value; otherwise use ours.
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds { request_id, client_request_id }
    }
}

/// Middleware: assigns request ids, renders pending Graph errors, and sets Graph's headers.
pub async fn graph_envelope(mut request: Request, next: Next) -> Response {
    let ids = RequestIds::from_headers(request.headers());
    request.extensions_mut().insert(ids.clone());
    let mut response = next.run(request).await;
    if response.extensions().get::<PendingGraphError>().is_none() {
        adopt_plain_rejection(&mut response).await;
    }
    if let Some(pending) = response.extensions_mut().remove::<PendingGraphError>() {
        let mut inner = json!({
            "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": ids.request_id,
            "client-request-id": ids.client_request_id,
        });
        if let Some(code) = pending.inner_code {
            inner["code"] = json!(code);
        }
        let body = json!({"error": {"code": pending.code, "message": pending.message, "innerError": inner}});
        *response.body_mut() = Body::from(body.to_string());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(GRAPH_JSON));
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    add_retry_after_to_unavailable(&mut response);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&ids.request_id) {
        headers.insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&ids.client_request_id) {
        headers.insert("client-request-id", value);
    }
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    headers.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(
            r#"{"ServerInfo":{"DataCenter":"guestlist","Slice":"local","Ring":"0","ScaleUnit":"0","RoleInstance":"guestlist"}}"#,
        ),
    );
    response
}

/// Seconds a client should wait after a 503 before retrying: about how long the database pool
/// waits for a connection, so a retry after it meets a database that had time to come back.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;

/// Every 503 (Graph's `serviceNotAvailable`, the token endpoint, the pages) tells the client when
/// to retry, as Graph does; SDK retry handlers honour it. A handler's own value is kept.
fn add_retry_after_to_unavailable(response: &mut Response) {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE && !response.headers().contains_key(header::RETRY_AFTER) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS));
    }
}

/// axum's own rejections (body too large, bad method, ...) are plain text; give them Graph's
/// error shape too, so every error a client sees is one it can parse.
async fn adopt_plain_rejection(response: &mut Response) {
    let status = response.status();
    let is_plain = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_plain {
        return;
    }
    let body = std::mem::replace(response.body_mut(), Body::empty());
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("Request_EntityTooLarge", format!("The request body is larger than {} bytes.", crate::http::MAX_BODY_BYTES))
        }
        StatusCode::METHOD_NOT_ALLOWED => ("Request_BadRequest", "The HTTP method is not allowed for this resource.".to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("BadRequest", "Unsupported media type.".to_string()),
        _ if status.is_server_error() => ("InternalServerError", "An internal server error occurred.".to_string()),
        _ => ("BadRequest", if text.is_empty() { status.canonical_reason().unwrap_or("Bad request").to_string() } else { text }),
    };
    response.extensions_mut().insert(PendingGraphError { code, message, inner_code: None });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make`'s response as it leaves the router through [`graph_envelope`].
    async fn enveloped(make: fn() -> Response) -> Response {
        let app = axum::Router::new()
            .route("/", axum::routing::get(move || async move { make() }))
            .layer(axum::middleware::from_fn(graph_envelope));
        tower::ServiceExt::oneshot(app, Request::builder().uri("/").body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn json_body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// An unreachable database reaches the caller as Graph's 503 `serviceNotAvailable` with
    /// `Retry-After`.
    #[tokio::test]
    async fn an_unavailable_database_is_graphs_503_with_retry_after() {
        let response = enveloped(|| ApiError::from(ServiceError::Unavailable).into_response()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], UNAVAILABLE_RETRY_AFTER_SECONDS.to_string().as_str());
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], "serviceNotAvailable", "{body}");
        assert!(body["error"]["innerError"]["request-id"].is_string(), "{body}");
    }

    /// The pages' and the token endpoint's own 503s get the header too; a handler's own value
    /// (throttling) stays, and other statuses get none.
    #[tokio::test]
    async fn every_503_carries_retry_after_and_nothing_else_does() {
        let page =
            enveloped(|| (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/html")], "<p>try again</p>").into_response())
                .await;
        assert_eq!(page.headers()[header::RETRY_AFTER], UNAVAILABLE_RETRY_AFTER_SECONDS.to_string().as_str());
        let own = enveloped(|| (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "30")], "busy").into_response()).await;
        assert_eq!(own.headers()[header::RETRY_AFTER], "30");
        let fault = enveloped(|| ApiError::from(ServiceError::Internal("boom".into())).into_response()).await;
        assert_eq!(fault.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!fault.headers().contains_key(header::RETRY_AFTER));
        let fine = enveloped(|| StatusCode::OK.into_response()).await;
        assert!(!fine.headers().contains_key(header::RETRY_AFTER));
    }
}
