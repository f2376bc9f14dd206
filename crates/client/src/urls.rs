//! Graph URLs: percent-encoded path segments and OData query options, and `@odata.nextLink` paging.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use url::Url;

/// Everything but RFC 3986 unreserved characters, as JavaScript's `encodeURIComponent` minus `!'()*`.
/// A guest UPN `a_b.com#EXT#@t.onmicrosoft.com` must travel as `a_b.com%23EXT%23%40t.onmicrosoft.com`:
/// an unencoded `#` starts a fragment and truncates the key (clients.md §4).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// As [`COMPONENT`], but commas stay literal: `$select=id,displayName`, as the Python SDK sends it.
const SELECT_VALUE: &AsciiSet = &COMPONENT.remove(b',');

/// Percent-encodes one path segment (an object id or a UPN).
pub fn encode_path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, COMPONENT).to_string()
}

/// Percent-encodes an OData query value such as a `$filter` expression. Spaces become `%20` (never `+`)
/// and a literal `+` in an address becomes `%2B`, so form-style decoding on the server can't corrupt it.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// OData query options in the order the Graph SDKs send them (`$filter, $select, $top`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pub filter: Option<&'a str>,
    pub select: Option<&'a str>,
    pub top: Option<u32>,
}

impl Query<'_> {
    /// `$filter=..&$select=..&$top=..` with each value encoded; empty when nothing is set.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.filter {
            parts.push(format!("$filter={}", encode_query_value(f)));
        }
        if let Some(s) = self.select {
            parts.push(format!("$select={}", utf8_percent_encode(s, SELECT_VALUE)));
        }
        if let Some(t) = self.top {
            parts.push(format!("$top={t}"));
        }
        parts.join("&")
    }
}

/// Joins a Graph origin (`https://127.0.0.1:8443`, possibly with a path prefix), the `v1.0` version,
/// raw path segments (encoded here) and a query.
pub fn graph_url(base: &Url, segments: &[&str], query: &Query<'_>) -> Url {
    let mut s = base.as_str().trim_end_matches('/').to_string();
    s.push_str("/v1.0");
    for seg in segments {
        s.push('/');
        s.push_str(&encode_path_segment(seg));
    }
    let q = query.to_query_string();
    if !q.is_empty() {
        s.push('?');
        s.push_str(&q);
    }
    // Every piece is either a parsed URL or percent-encoded, so this can't fail.
    Url::parse(&s).expect("graph URL built from a valid base and encoded parts")
}

/// Reads `@odata.nextLink` from a collection page. A relative link is joined to `current`. A link to another
/// origin is refused: following it would send the bearer token to a host the connection didn't name.
pub fn next_link(page: &Value, current: &Url) -> Result<Option<Url>, String> {
    let Some(link) = page.get("@odata.nextLink") else { return Ok(None) };
    let link = match link {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        other => return Err(format!("@odata.nextLink is not a string: {other}")),
    };
    let next = current.join(link).map_err(|e| format!("@odata.nextLink {link:?} is not a URL: {e}"))?;
    if next.origin() != current.origin() {
        return Err(format!("refusing to follow @odata.nextLink to another origin: {next}"));
    }
    Ok(Some(next))
}

/// The `value` array of a collection page.
pub fn page_values(page: &Value) -> Result<&Vec<Value>, String> {
    page.get("value").and_then(Value::as_array).ok_or_else(|| "collection response has no \"value\" array".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Url {
        Url::parse("https://127.0.0.1:8443").unwrap()
    }

    #[test]
    fn upn_segment_encodes_hash_and_at() {
        assert_eq!(
            encode_path_segment("alice_example.org#EXT#@contoso.onmicrosoft.com"),
            "alice_example.org%23EXT%23%40contoso.onmicrosoft.com"
        );
    }

    #[test]
    fn guid_segment_is_unchanged() {
        let id = "bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11";
        assert_eq!(encode_path_segment(id), id);
    }

    #[test]
    fn segment_encodes_slash_question_percent_space_and_non_ascii() {
        assert_eq!(encode_path_segment("a/b?c%d e"), "a%2Fb%3Fc%25d%20e");
        assert_eq!(encode_path_segment("zoë"), "zo%C3%AB");
    }

    #[test]
    fn user_url_by_upn() {
        let u = graph_url(&base(), &["users", "alice_example.org#EXT#@contoso.onmicrosoft.com"], &Query::default());
        assert_eq!(u.as_str(), "https://127.0.0.1:8443/v1.0/users/alice_example.org%23EXT%23%40contoso.onmicrosoft.com");
        assert_eq!(u.fragment(), None);
        assert_eq!(u.path_segments().unwrap().count(), 3);
    }

    #[test]
    fn base_with_trailing_slash_or_prefix() {
        let u = graph_url(&Url::parse("http://127.0.0.1:8080/").unwrap(), &["invitations"], &Query::default());
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/v1.0/invitations");
        let u = graph_url(&Url::parse("https://example.test/graph/").unwrap(), &["users"], &Query::default());
        assert_eq!(u.as_str(), "https://example.test/graph/v1.0/users");
    }

    #[test]
    fn filter_value_encoding_matches_python_sdk() {
        assert_eq!(
            encode_query_value("otherMails/any(x:x eq 'alice@example.org')"),
            "otherMails%2Fany%28x%3Ax%20eq%20%27alice%40example.org%27%29"
        );
    }

    #[test]
    fn filter_value_keeps_plus_and_hash_intact() {
        assert_eq!(encode_query_value("mail eq 'a+b@x.com'"), "mail%20eq%20%27a%2Bb%40x.com%27");
        assert_eq!(encode_query_value("endsWith(userPrincipalName,'#EXT#@t')"), "endsWith%28userPrincipalName%2C%27%23EXT%23%40t%27%29");
    }

    #[test]
    fn query_string_order_and_select_commas() {
        let q = Query { filter: Some("userType eq 'Guest'"), select: Some("id,displayName,userType"), top: Some(5) };
        assert_eq!(q.to_query_string(), "$filter=userType%20eq%20%27Guest%27&$select=id,displayName,userType&$top=5");
        let u = graph_url(&base(), &["users"], &q);
        let pairs: Vec<(String, String)> = u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(
            pairs,
            vec![
                ("$filter".into(), "userType eq 'Guest'".into()),
                ("$select".into(), "id,displayName,userType".into()),
                ("$top".into(), "5".into())
            ]
        );
    }

    #[test]
    fn empty_query_adds_no_question_mark() {
        assert_eq!(graph_url(&base(), &["users"], &Query::default()).as_str(), "https://127.0.0.1:8443/v1.0/users");
    }

    #[test]
    fn next_link_absent_or_null_ends_paging() {
        let cur = graph_url(&base(), &["users"], &Query::default());
        assert_eq!(next_link(&json!({"value": []}), &cur).unwrap(), None);
        assert_eq!(next_link(&json!({"value": [], "@odata.nextLink": null}), &cur).unwrap(), None);
    }

    #[test]
    fn next_link_absolute_same_origin_is_followed_verbatim() {
        let cur = graph_url(&base(), &["users"], &Query { top: Some(2), ..Default::default() });
        let page = json!({"value": [], "@odata.nextLink": "https://127.0.0.1:8443/v1.0/users?$top=2&$skiptoken=X%2BY"});
        let next = next_link(&page, &cur).unwrap().unwrap();
        assert_eq!(next.as_str(), "https://127.0.0.1:8443/v1.0/users?$top=2&$skiptoken=X%2BY");
    }

    #[test]
    fn next_link_relative_is_joined() {
        let cur = graph_url(&base(), &["users"], &Query::default());
        let next = next_link(&json!({"@odata.nextLink": "/v1.0/users?$skiptoken=abc"}), &cur).unwrap().unwrap();
        assert_eq!(next.as_str(), "https://127.0.0.1:8443/v1.0/users?$skiptoken=abc");
    }

    #[test]
    fn next_link_to_other_origin_is_refused() {
        let cur = graph_url(&base(), &["users"], &Query::default());
        for link in [
            "https://graph.microsoft.com/v1.0/users?$skiptoken=abc",
            "http://127.0.0.1:8443/v1.0/users",
            "https://127.0.0.1:9443/v1.0/users",
        ] {
            let err = next_link(&json!({"@odata.nextLink": link}), &cur).unwrap_err();
            assert!(err.contains("another origin"), "{link}: {err}");
        }
    }

    #[test]
    fn next_link_of_wrong_type_is_an_error() {
        let cur = graph_url(&base(), &["users"], &Query::default());
        assert!(next_link(&json!({"@odata.nextLink": 3}), &cur).is_err());
    }

    #[test]
    fn page_values_requires_array() {
        assert_eq!(page_values(&json!({"value": [{"id": "a"}]})).unwrap().len(), 1);
        assert!(page_values(&json!({"error": {}})).is_err());
    }
}
