//! Graph's advanced-query rules (contract §6.4), shared by `/users`, `/groups` and the member
//! lists: what needs `ConsistencyLevel: eventual` (and `$count=true`), the `/$count` segment, and
//! the `$expand` names a type serves.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use guestlist_odata::parse_expand;

use crate::http::error::ApiError;

/// Graph returns at most 20 objects of an expanded directory relationship.
pub(crate) const MAX_EXPANDED: u32 = 20;

pub(crate) fn is_eventual(headers: &HeaderMap) -> bool {
    headers.get("consistencylevel").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

pub(crate) fn unsupported_query(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
}

/// What one list request asks for, as far as the advanced-query rules look.
pub(crate) struct QueryShape {
    /// `ConsistencyLevel: eventual` was sent.
    pub eventual: bool,
    /// `$count=true`.
    pub count: bool,
    pub search: bool,
    pub expand: bool,
    /// Why the query is an advanced one, as Graph's refusal begins (`Operator 'ne' is not supported`).
    pub advanced: Option<String>,
}

impl QueryShape {
    /// Advanced-query-only shapes need the header and `$count=true`; `$search` needs the header;
    /// `$expand` is refused in advanced queries (contract §6.4).
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if self.expand && self.eventual && (self.count || self.search) {
            return Err(unsupported_query(
                "$expand is not supported in advanced queries (ConsistencyLevel: eventual with $count or $search).",
            ));
        }
        if let Some(what) = &self.advanced {
            if !(self.eventual && self.count) {
                return Err(unsupported_query(format!(
                    "{what} because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
                )));
            }
        }
        if self.search && !self.eventual {
            return Err(unsupported_query(
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        Ok(())
    }

    /// `@odata.count` is added only for `$count=true` with the header; without it Graph ignores
    /// `$count=true` silently.
    pub(crate) fn counts(&self) -> bool {
        self.count && self.eventual
    }
}

/// Why a filter and an order make an advanced query, in Graph's words.
pub(crate) fn advanced_reason(operator: Option<&str>, filtered_sort: bool) -> Option<String> {
    operator
        .map(|op| format!("Operator '{op}' is not supported"))
        .or_else(|| filtered_sort.then(|| "Sorting a filtered query is not supported".to_string()))
}

/// `$filter` and `$search` together: both must hold.
pub(crate) fn both<F>(filter: Option<F>, search: Option<F>, and: fn(F, F) -> F) -> Option<F> {
    match (filter, search) {
        (Some(filter), Some(search)) => Some(and(filter, search)),
        (filter, search) => filter.or(search),
    }
}

/// A `/$count` segment is served only with `ConsistencyLevel: eventual` (contract §6.2).
pub(crate) fn require_eventual_count(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_eventual(headers) {
        Ok(())
    } else {
        Err(ApiError::bad_request("$count is not currently supported."))
    }
}

/// The body of a `/$count` segment: the number as text.
pub(crate) fn count_response(total: u64) -> Response {
    ([(header::CONTENT_TYPE, "text/plain;charset=utf-8")], total.to_string()).into_response()
}

/// The navigation properties `$expand` names, each one of `navigation` (in its casing); a
/// structural property of the type, or anything else, is refused as Graph refuses it; so are a
/// second level and a name given twice (`parse_expand`).
pub(crate) fn expansions(
    text: Option<&str>,
    type_name: &str,
    navigation: &[&'static str],
    is_property: fn(&str) -> bool,
) -> Result<Vec<&'static str>, ApiError> {
    let Some(text) = text else { return Ok(vec![]) };
    parse_expand(text)?
        .into_iter()
        .map(|name| {
            if let Some(found) = navigation.iter().find(|n| n.eq_ignore_ascii_case(name)) {
                return Ok(*found);
            }
            if is_property(name) {
                return Err(ApiError::bad_request(format!(
                    "Property '{name}' on type 'microsoft.graph.{type_name}' is not a navigation property or complex property. Only navigation properties can be expanded."
                )));
            }
            Err(unsupported_query(format!(
                "Expanding '{name}' is not supported on 'microsoft.graph.{type_name}' by guestlist; {} can be expanded.",
                navigation.join(" and ")
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(eventual: bool, count: bool, search: bool, expand: bool, advanced: Option<&str>) -> QueryShape {
        QueryShape { eventual, count, search, expand, advanced: advanced.map(str::to_string) }
    }

    #[test]
    fn advanced_shapes_need_the_header_and_count() {
        let ne = Some("Operator 'ne' is not supported");
        assert!(shape(true, true, false, false, ne).check().is_ok());
        for refused in [shape(false, true, false, false, ne), shape(true, false, false, false, ne), shape(false, false, true, false, None)]
        {
            assert_eq!(refused.check().unwrap_err().code, "Request_UnsupportedQuery");
        }
        assert!(shape(true, false, true, false, None).check().is_ok(), "$search needs only the header");
        assert!(shape(true, true, false, true, None).check().is_err(), "no $expand in advanced queries");
        assert!(shape(false, true, false, true, None).check().is_ok(), "without the header $count=true is ignored");
        assert!(!shape(false, true, false, false, None).counts());
    }

    #[test]
    fn expansions_name_navigation_properties() {
        let nav = ["memberOf", "sponsors"];
        assert_eq!(expansions(Some("MEMBEROF, sponsors($select=id)"), "user", &nav, |_| false).unwrap(), ["memberOf", "sponsors"]);
        assert_eq!(expansions(Some("mail"), "user", &nav, |n| n == "mail").unwrap_err().code, "Request_BadRequest");
        assert_eq!(expansions(Some("manager"), "user", &nav, |_| false).unwrap_err().code, "Request_UnsupportedQuery");
        assert!(expansions(None, "user", &nav, |_| false).unwrap().is_empty());
    }
}
