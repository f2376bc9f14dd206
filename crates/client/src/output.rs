//! What the CLI prints: readable text by default, Graph's JSON with `--json`, and error reports.

use serde_json::{json, Value};

use crate::connection::ConfigError;
use crate::error::{ConnectionError, GraphError, InvalidResponse, TokenError};

/// The properties `user list` selects and shows as table columns.
pub const USER_LIST_SELECT: &str = "id,displayName,userPrincipalName,userType,externalUserState";

/// The properties `user get` selects when the caller names none: Graph's default set leaves out the B2B ones.
pub const USER_GET_SELECT: &str =
    "id,displayName,userPrincipalName,mail,otherMails,userType,creationType,externalUserState,externalUserStateChangeDateTime,createdDateTime";

/// Exit code for a failure reported by the server (Graph or token endpoint) or on the way to it.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or configuration problem on the caller's side.
pub const EXIT_CONFIG: u8 = 2;

/// A value as one table cell or line: strings raw, null as `-`, arrays joined with `, `.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) if s.is_empty() => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "-".to_string(),
        Some(Value::Array(a)) => a.iter().map(|x| cell(Some(x))).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
    }
}

/// Rows of cells under `headers`, columns left-aligned and two spaces apart, no trailing spaces.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            s.extend(std::iter::repeat_n(' ', widths[i].saturating_sub(c.chars().count())));
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// The column names of a `$select` list.
pub fn select_columns(select: &str) -> Vec<&str> {
    select.split(',').map(str::trim).filter(|c| !c.is_empty()).collect()
}

/// `user list` as a table with one column per selected property.
pub fn render_user_table(users: &[Value], select: &str) -> String {
    if users.is_empty() {
        return "No users.\n".to_string();
    }
    let columns = select_columns(select);
    let rows: Vec<Vec<String>> = users.iter().map(|u| columns.iter().map(|c| cell(u.get(*c))).collect()).collect();
    render_table(&columns, &rows)
}

/// `user get` as aligned `name  value` lines without `@odata.*`: the `select` properties in their order
/// (`-` for one the server left out), then any others by name.
pub fn render_user(user: &Value, select: &str) -> String {
    let Some(obj) = user.as_object() else { return format!("{user}\n") };
    let columns = select_columns(select);
    let mut fields: Vec<(&str, Option<&Value>)> = columns.iter().map(|c| (*c, obj.get(*c))).collect();
    fields.extend(
        obj.iter().filter(|(k, _)| !k.starts_with("@odata.") && !columns.contains(&k.as_str())).map(|(k, v)| (k.as_str(), Some(v))),
    );
    let width = fields.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    fields.iter().map(|(k, v)| format!("{k:<width$}  {}\n", cell(*v))).collect()
}

/// The readable summary of a created invitation, under `heading` (`Invited alice@example.com`).
pub fn render_invitation(heading: &str, inv: &Value) -> String {
    let user = inv.get("invitedUser");
    let mut lines: Vec<(&str, String)> = vec![("user id", cell(user.and_then(|u| u.get("id"))))];
    if let Some(upn) = user.and_then(|u| u.get("userPrincipalName")).filter(|v| !v.is_null()) {
        lines.push(("UPN", cell(Some(upn))));
    }
    lines.push(("redeem URL", cell(inv.get("inviteRedeemUrl"))));
    lines.push(("status", cell(inv.get("status"))));
    let sent = inv.get("sendInvitationMessage").and_then(Value::as_bool).unwrap_or(false);
    lines.push(("email", if sent { "sent".to_string() } else { "not sent (share the redeem URL)".to_string() }));
    let width = lines.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = format!("{heading}\n");
    for (k, v) in lines {
        out.push_str(&format!("  {:<width$}  {v}\n", format!("{k}:")));
    }
    out
}

/// An error as the CLI reports it. Built from the error chain of a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Graph's `error.code`, the OAuth `error`, or one of the client's own codes:
    /// `ConfigurationError`, `ConnectionFailed`, `InvalidResponse`, `ClientError`.
    pub code: String,
    pub message: String,
    /// Graph's `request-id` (or the token endpoint's `trace_id`).
    pub request_id: Option<String>,
    /// The one-line readable form (without the `error: ` prefix).
    pub text: String,
    pub exit_code: u8,
}

impl ErrorReport {
    pub fn from_error(err: &anyhow::Error) -> Self {
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<GraphError>() {
                return ErrorReport {
                    status: Some(e.status),
                    code: e.code.clone(),
                    message: e.message.clone(),
                    request_id: e.request_id.clone(),
                    text: e.to_string(),
                    exit_code: EXIT_FAILURE,
                };
            }
            if let Some(e) = cause.downcast_ref::<TokenError>() {
                return ErrorReport {
                    status: Some(e.status),
                    code: e.error.clone(),
                    message: e.description.clone(),
                    request_id: e.trace_id.clone(),
                    text: e.to_string(),
                    exit_code: EXIT_FAILURE,
                };
            }
            if let Some(e) = cause.downcast_ref::<ConfigError>() {
                return Self::local("ConfigurationError", e.to_string(), EXIT_CONFIG);
            }
            if let Some(e) = cause.downcast_ref::<ConnectionError>() {
                return Self::local("ConnectionFailed", e.to_string(), EXIT_FAILURE);
            }
            if let Some(e) = cause.downcast_ref::<InvalidResponse>() {
                return Self::local("InvalidResponse", e.to_string(), EXIT_FAILURE);
            }
        }
        Self::local("ClientError", format!("{err:#}"), EXIT_FAILURE)
    }

    fn local(code: &str, message: String, exit_code: u8) -> Self {
        ErrorReport { status: None, code: code.to_string(), text: message.clone(), message, request_id: None, exit_code }
    }

    /// `error: <text>` for people.
    pub fn render_text(&self) -> String {
        format!("error: {}\n", self.text)
    }

    /// `{"error": {"status", "code", "message", "requestId"}}` on one line; absent values are `null`.
    pub fn render_json(&self) -> String {
        let v = json!({"error": {"status": self.status, "code": self.code, "message": self.message, "requestId": self.request_id}});
        format!("{v}\n")
    }

    pub fn render(&self, json: bool) -> String {
        if json {
            self.render_json()
        } else {
            self.render_text()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<Value> {
        vec![
            json!({"id": "bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11", "displayName": "Alice", "userPrincipalName": "alice_example.com#EXT#@contoso.onmicrosoft.com", "userType": "Guest", "externalUserState": "PendingAcceptance"}),
            json!({"id": "0a1b2c3d-0000-4000-8000-000000000001", "displayName": "Bob Admin", "userPrincipalName": "bob@contoso.onmicrosoft.com", "userType": "Member", "externalUserState": null}),
        ]
    }

    #[test]
    fn user_table_is_aligned_with_graph_names_as_headers() {
        let t = render_user_table(&users(), USER_LIST_SELECT);
        let expected = "\
id                                    displayName  userPrincipalName                               userType  externalUserState
bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11  Alice        alice_example.com#EXT#@contoso.onmicrosoft.com  Guest     PendingAcceptance
0a1b2c3d-0000-4000-8000-000000000001  Bob Admin    bob@contoso.onmicrosoft.com                     Member    -
";
        assert_eq!(t, expected);
    }

    #[test]
    fn user_table_follows_custom_select_and_handles_missing_and_arrays() {
        let u = vec![json!({"id": "a", "otherMails": ["x@e.com", "y@e.com"]}), json!({"id": "bb", "otherMails": []})];
        assert_eq!(
            render_user_table(&u, "id, otherMails,mail"),
            "id  otherMails        mail\na   x@e.com, y@e.com  -\nbb  -                 -\n"
        );
    }

    #[test]
    fn empty_user_list() {
        assert_eq!(render_user_table(&[], USER_LIST_SELECT), "No users.\n");
    }

    #[test]
    fn table_width_counts_characters_not_bytes() {
        let t = render_table(&["n", "x"], &[vec!["Zoë".into(), "1".into()], vec!["Al".into(), "2".into()]]);
        assert_eq!(t, "n    x\nZoë  1\nAl   2\n");
    }

    #[test]
    fn user_detail_lines() {
        let u = json!({"@odata.context": "x", "id": "a", "displayName": "Alice", "otherMails": ["x@e.com"], "mail": null, "accountEnabled": true});
        assert_eq!(
            render_user(&u, "id,displayName,otherMails,mail,userType"),
            "id              a\ndisplayName     Alice\notherMails      x@e.com\nmail            -\nuserType        -\naccountEnabled  true\n"
        );
    }

    #[test]
    fn invitation_summary() {
        let inv = json!({"id": "inv", "inviteRedeemUrl": "https://127.0.0.1:8443/redeem?t=1", "status": "PendingAcceptance",
            "sendInvitationMessage": false, "invitedUser": {"id": "uid", "userPrincipalName": "alice_example.com#EXT#@contoso.onmicrosoft.com"}});
        assert_eq!(
            render_invitation("Invited alice@example.com", &inv),
            "Invited alice@example.com\n  user id:     uid\n  UPN:         alice_example.com#EXT#@contoso.onmicrosoft.com\n  redeem URL:  https://127.0.0.1:8443/redeem?t=1\n  status:      PendingAcceptance\n  email:       not sent (share the redeem URL)\n"
        );
        let without_upn =
            json!({"invitedUser": {"id": "uid"}, "sendInvitationMessage": true, "status": "PendingAcceptance", "inviteRedeemUrl": "u"});
        let s = render_invitation("h", &without_upn);
        assert!(!s.contains("UPN"), "{s}");
        assert!(s.contains("  email:       sent\n"), "{s}");
    }

    fn graph_404() -> anyhow::Error {
        GraphError {
            status: 404,
            code: "Request_ResourceNotFound".into(),
            message: "Resource 'x' does not exist or one of its queried reference-property objects are not present.".into(),
            request_id: Some("rid".into()),
        }
        .into()
    }

    #[test]
    fn graph_error_text_and_json() {
        let r = ErrorReport::from_error(&graph_404());
        assert_eq!(r.exit_code, 1);
        assert_eq!(
            r.render(false),
            "error: Request_ResourceNotFound: Resource 'x' does not exist or one of its queried reference-property objects are not present. (HTTP 404, request-id rid)\n"
        );
        let v: Value = serde_json::from_str(&r.render(true)).unwrap();
        assert_eq!(
            v,
            json!({"error": {"status": 404, "code": "Request_ResourceNotFound", "message": "Resource 'x' does not exist or one of its queried reference-property objects are not present.", "requestId": "rid"}})
        );
        assert_eq!(r.render(true).lines().count(), 1);
    }

    #[test]
    fn error_found_behind_context() {
        let r = ErrorReport::from_error(&graph_404().context("while inviting"));
        assert_eq!(r.code, "Request_ResourceNotFound");
    }

    #[test]
    fn token_error_report() {
        let e: anyhow::Error = TokenError::from_response(
            401,
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
        )
        .into();
        let r = ErrorReport::from_error(&e);
        assert_eq!(r.exit_code, 1);
        assert_eq!(
            r.render_text(),
            "error: invalid_client: AADSTS7000215: Invalid client secret provided. (HTTP 401 from the token endpoint)\n"
        );
        let v: Value = serde_json::from_str(&r.render_json()).unwrap();
        assert_eq!(
            v,
            json!({"error": {"status": 401, "code": "invalid_client", "message": "AADSTS7000215: Invalid client secret provided.", "requestId": null}})
        );
    }

    #[test]
    fn config_error_report_exits_2_with_null_status() {
        let r = ErrorReport::from_error(&ConfigError("no connection file at ./x.json".into()).into());
        assert_eq!(r.exit_code, 2);
        assert_eq!(r.render_text(), "error: no connection file at ./x.json\n");
        let v: Value = serde_json::from_str(&r.render_json()).unwrap();
        assert_eq!(
            v,
            json!({"error": {"status": null, "code": "ConfigurationError", "message": "no connection file at ./x.json", "requestId": null}})
        );
    }

    #[test]
    fn connection_and_other_errors_exit_1() {
        let e: anyhow::Error = ConnectionError {
            url: "https://127.0.0.1:1/x".into(),
            detail: "Connection refused".into(),
            hint: Some("is the server running?"),
        }
        .into();
        let r = ErrorReport::from_error(&e);
        assert_eq!((r.exit_code, r.code.as_str()), (1, "ConnectionFailed"));
        assert_eq!(r.render_text(), "error: could not reach https://127.0.0.1:1/x: Connection refused (is the server running?)\n");
        let r = ErrorReport::from_error(&anyhow::anyhow!("boom"));
        assert_eq!((r.exit_code, r.code.as_str()), (1, "ClientError"));
    }
}
