//! Every bound on the size of a query, in one place. Each is checked while parsing, before any
//! tree reaches the store, so no request can make the server recurse without end, exhaust a
//! worker's stack, or write SQL that SQLite or PostgreSQL refuse for its size.
//!
//! The SQL budget these numbers keep (see the store's `query.rs`): at most
//! `MAX_FILTER_CLAUSES × MAX_IN_VALUES` (10,000) bound values from `$filter` plus 6 per `$search`
//! word (192) and a handful for tenant, paging and `LIMIT`, well below SQLite's 32,766 host
//! parameters and PostgreSQL's 65,535; and an expression depth of at most about
//! `MAX_FILTER_NESTING + MAX_FILTER_CLAUSES + MAX_IN_VALUES + MAX_SEARCH_WORDS` plus a few levels
//! per leaf (under 300), well below SQLite's `SQLITE_MAX_EXPR_DEPTH` of 1,000.

use crate::ODataError;

/// The raw query string (after `?`, percent-encoded), in bytes. Graph documents 2,048 characters
/// for advanced queries (`in` lists); guestlist allows four times that so that any URL Graph
/// accepts, plus its `$skiptoken`, is served. Longer ones get 400 with Graph's error body rather
/// than 414; over HTTP/2 a request whose headers pass 16 KiB in all is refused earlier still, with
/// 431, by the HTTP layer.
pub const MAX_QUERY_STRING_LENGTH: usize = 8 * 1024;

/// Comparisons, `in` tests, function calls and lambda-body comparisons in one `$filter`. Graph
/// refuses more than 15 `or`-joined expressions in simple queries; guestlist accepts more
/// (Graph's advanced queries are bounded by URL length only) but not without end.
pub const MAX_FILTER_CLAUSES: usize = 100;

/// Nesting of parentheses, `not` and lambdas in one `$filter`: the parser recurses once per level.
pub const MAX_FILTER_NESTING: usize = 50;

/// Values in one `in (...)` list (also inside `any()`). Graph's default is 15 (query parameter
/// known issues); as with clauses, guestlist accepts more but bounds it.
pub const MAX_IN_VALUES: usize = 100;

/// Words in one `$search`, over all its clauses: each word is its own prefix test (six `LIKE`
/// patterns) that every row must pass, so long searches cost linear SQL and work per row.
pub const MAX_SEARCH_WORDS: usize = 32;

/// The largest page when `$expand` is asked for: Graph returns at most 100 directory objects per
/// page with `$expand`, whatever `$top` says (query parameters, "expand" limitations).
pub const MAX_PAGE_SIZE_WITH_EXPAND: u32 = 100;

/// Refuses a query string longer than [`MAX_QUERY_STRING_LENGTH`].
pub(crate) fn check_query_string_length(raw_query: &str) -> Result<(), ODataError> {
    if raw_query.len() > MAX_QUERY_STRING_LENGTH {
        return Err(ODataError::BadRequest(format!(
            "The query string is {} characters long; guestlist accepts at most {MAX_QUERY_STRING_LENGTH}.",
            raw_query.len()
        )));
    }
    Ok(())
}

pub(crate) fn too_many_clauses() -> ODataError {
    ODataError::BadRequest(format!("Invalid filter clause: The filter has more than {MAX_FILTER_CLAUSES} clauses."))
}

pub(crate) fn too_many_in_values(count: usize) -> ODataError {
    ODataError::UnsupportedQuery(format!(
        "Too many values in an 'in' list: {count}. Max allowed: {MAX_IN_VALUES}. Split the query into several requests."
    ))
}

pub(crate) fn too_many_search_words() -> ODataError {
    ODataError::BadRequest(format!("Invalid $search: the search has more than {MAX_SEARCH_WORDS} words."))
}

/// The page size a list request runs with: `$top` (or `default`), at most
/// [`MAX_PAGE_SIZE_WITH_EXPAND`] when objects are expanded, as Graph caps it.
pub fn page_size(top: Option<u32>, default: u32, expanding: bool) -> u32 {
    let size = top.unwrap_or(default);
    if expanding {
        size.min(MAX_PAGE_SIZE_WITH_EXPAND)
    } else {
        size
    }
}
