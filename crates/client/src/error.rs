//! Errors the client reports: Graph error bodies, token endpoint errors, and failures to reach the server.
//!
//! The client's methods return `anyhow::Result`; these types sit inside and are found with
//! `err.downcast_ref::<GraphError>()` and friends.

use std::fmt;

use serde_json::Value;

/// A Graph error response: `{"error": {"code", "message", "innerError": {"request-id", ...}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// `innerError.request-id`, else the `request-id` response header.
    pub request_id: Option<String>,
}

impl GraphError {
    /// Reads a Graph error from a non-2xx response. A body that is not a Graph error (empty, HTML, OAuth-style)
    /// becomes `UnknownError` with the body text as the message, as Graph itself does for unknown routes.
    pub fn from_response(status: u16, header_request_id: Option<&str>, body: &str) -> Self {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let code = text(err.and_then(|e| e.get("code"))).unwrap_or_else(|| "UnknownError".to_string());
        let message = text(err.and_then(|e| e.get("message"))).unwrap_or_else(|| body_snippet(body, status));
        let inner = err.and_then(|e| e.get("innerError").or_else(|| e.get("innererror")));
        let request_id = text(inner.and_then(|i| i.get("request-id"))).or_else(|| header_request_id.map(str::to_string));
        GraphError { status, code, message, request_id }
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (HTTP {}", self.code, self.message, self.status)?;
        if let Some(id) = &self.request_id {
            write!(f, ", request-id {id}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for GraphError {}

/// An error from the token endpoint: `{"error", "error_description": "AADSTS...", "error_codes": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub status: u16,
    /// OAuth error such as `invalid_client`.
    pub error: String,
    /// `error_description`, which carries the `AADSTSnnnn:` code and sentence.
    pub description: String,
    pub error_codes: Vec<i64>,
    /// `trace_id` when the server sends one.
    pub trace_id: Option<String>,
}

impl TokenError {
    pub fn from_response(status: u16, body: &str) -> Self {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let text = |k: &str| parsed.get(k).and_then(Value::as_str).map(str::to_string);
        TokenError {
            status,
            error: text("error").unwrap_or_else(|| "token_request_failed".to_string()),
            description: text("error_description").unwrap_or_else(|| body_snippet(body, status)),
            error_codes: parsed
                .get("error_codes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default(),
            trace_id: text("trace_id"),
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (HTTP {} from the token endpoint", self.error, self.description, self.status)?;
        if let Some(id) = &self.trace_id {
            write!(f, ", trace-id {id}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for TokenError {}

/// The server could not be reached, or TLS failed, before any HTTP answer arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    pub url: String,
    /// The whole cause chain, e.g. `... : Connection refused (os error 111)`.
    pub detail: String,
    pub hint: Option<&'static str>,
}

impl ConnectionError {
    pub fn from_reqwest(url: &url::Url, err: &reqwest::Error) -> Self {
        let mut detail = String::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
        while let Some(e) = source {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&e.to_string());
            source = e.source();
        }
        if detail.is_empty() {
            detail = err.to_string();
        }
        let lower = detail.to_ascii_lowercase();
        let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
            Some("the server's certificate is not trusted: check caCertificate in connection.json or pass --ca-cert")
        } else if err.is_connect() {
            Some("is the server running? Start it with `guestlist serve`")
        } else if err.is_timeout() {
            Some("the server did not answer in time")
        } else {
            None
        };
        ConnectionError { url: without_query(url), detail, hint }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not reach {}: {}", self.url, self.detail)?;
        if let Some(h) = self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectionError {}

/// A 2xx answer the client could not use (not JSON, or missing members it needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidResponse(pub String);

impl fmt::Display for InvalidResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected response: {}", self.0)
    }
}

impl std::error::Error for InvalidResponse {}

fn body_snippet(body: &str, status: u16) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return format!("HTTP {status} with an empty body");
    }
    let mut s: String = trimmed.chars().take(300).collect();
    if s.len() < trimmed.len() {
        s.push('…');
    }
    s
}

fn without_query(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_error_from_full_body() {
        let body = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist or one of its queried reference-property objects are not present.","innerError":{"date":"2024-01-01T00:00:00","request-id":"rid-1","client-request-id":"rid-1"}}}"#;
        let e = GraphError::from_response(404, Some("header-rid"), body);
        assert_eq!(e.code, "Request_ResourceNotFound");
        assert_eq!(e.request_id.as_deref(), Some("rid-1"));
        assert_eq!(
            e.to_string(),
            "Request_ResourceNotFound: Resource 'x' does not exist or one of its queried reference-property objects are not present. (HTTP 404, request-id rid-1)"
        );
    }

    #[test]
    fn graph_error_without_inner_error_uses_header() {
        let e =
            GraphError::from_response(403, Some("hdr"), r#"{"error":{"code":"Forbidden","message":"Generic authorization exception."}}"#);
        assert_eq!(e.request_id.as_deref(), Some("hdr"));
        assert_eq!(e.message, "Generic authorization exception.");
    }

    #[test]
    fn graph_error_from_non_graph_bodies() {
        let e = GraphError::from_response(502, None, "<html>Bad gateway</html>");
        assert_eq!((e.code.as_str(), e.message.as_str(), e.request_id), ("UnknownError", "<html>Bad gateway</html>", None));
        let e = GraphError::from_response(500, None, "");
        assert_eq!(e.message, "HTTP 500 with an empty body");
        let e = GraphError::from_response(400, None, r#"{"error":"invalid_request"}"#);
        assert_eq!(e.code, "UnknownError");
        assert_eq!(e.to_string(), r#"UnknownError: {"error":"invalid_request"} (HTTP 400)"#);
    }

    #[test]
    fn token_error_keeps_aadsts_description() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"tr"}"#;
        let e = TokenError::from_response(401, body);
        assert_eq!(e.error, "invalid_client");
        assert_eq!(e.error_codes, vec![7000215]);
        assert_eq!(
            e.to_string(),
            "invalid_client: AADSTS7000215: Invalid client secret provided. (HTTP 401 from the token endpoint, trace-id tr)"
        );
    }

    #[test]
    fn token_error_from_garbage() {
        let e = TokenError::from_response(404, "not found");
        assert_eq!(e.error, "token_request_failed");
        assert_eq!(e.description, "not found");
    }
}
