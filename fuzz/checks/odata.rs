//! What the fuzz targets check on the OData parsers, beyond "no panic": every refusal is a Graph 400,
//! a parsed `$filter` prints back to text that parses into the same tree, and percent-decoding
//! undoes percent-encoding. Shared by `fuzz/fuzz_targets/` and the corpus replay in
//! `crates/odata/tests/fuzz_corpus.rs`.

use guestlist_odata::{
    decode_path_segment, format_user_filter, parse_audit_filter, parse_group_filter, parse_group_list_options, parse_group_search,
    parse_member_list_options, parse_query_options, parse_user_filter, parse_user_list_options, parse_user_search, ODataError,
};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// Every query refusal is answered 400 with one of Graph's codes and a message to show.
fn assert_graph_refusal(error: &ODataError) {
    assert_eq!(error.status(), 400, "{error:?}");
    assert!(["BadRequest", "Request_BadRequest", "Request_UnsupportedQuery"].contains(&error.code()), "{error:?}");
    assert!(!error.message().is_empty(), "{error:?}");
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `$filter` on `/users`; what parses prints back (`format_user_filter`, used for `@odata.nextLink`) into the same tree.
pub fn user_filter(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match parse_user_filter(text) {
        Ok(filter) => {
            let _ = filter.needs_advanced_query();
            let printed = format_user_filter(&filter);
            match parse_user_filter(&printed) {
                Ok(reparsed) => assert_eq!(reparsed, filter, "{text:?} printed as {printed:?}"),
                // The printer parenthesises every operand, so a long flat `or` chain may print deeper than the parser nests.
                Err(error) => assert!(error.message().contains("nested too deeply"), "{text:?} printed as {printed:?}: {error:?}"),
            }
        }
        Err(error) => assert_graph_refusal(&error),
    }
}

/// `$filter` on `/groups`.
pub fn group_filter(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Err(error) = parse_group_filter(text) {
        assert_graph_refusal(&error);
    }
}

/// `$filter` on `/auditLogs/directoryAudits`.
pub fn audit_filter(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match parse_audit_filter(text) {
        Ok(filter) => assert!(filter.clauses.len() <= guestlist_odata::MAX_FILTER_CLAUSES),
        Err(error) => assert_graph_refusal(&error),
    }
}

/// `$search` on `/users` and `/groups`.
pub fn search(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match parse_user_search(text) {
        Ok(filter) => {
            let _ = filter.needs_advanced_query();
        }
        Err(error) => assert_graph_refusal(&error),
    }
    if let Err(error) = parse_group_search(text) {
        assert_graph_refusal(&error);
    }
}

/// A raw query string as the server receives it (`$select`, `$orderby`, `$expand`, `$top`, `$count`, ... together),
/// read for users, groups and member lists; the options read as a whole agree with the typed readers.
pub fn query_string(data: &[u8]) {
    let Some(raw) = text(data) else { return };
    let options = parse_query_options(raw);
    if let Err(error) = &options {
        assert_graph_refusal(error);
    }
    for typed in [
        parse_user_list_options(raw).map(|o| (o.top, o.count)),
        parse_group_list_options(raw).map(|o| (o.top, o.count)),
        parse_member_list_options(raw).map(|o| (o.top, o.count)),
    ] {
        match typed {
            Ok((top, count)) => {
                let options = options.as_ref().expect("a typed reader accepted what the generic reader refused");
                assert_eq!((top, count), (options.top, options.count));
                assert!(top.is_none_or(|top| (1..=guestlist_odata::MAX_PAGE_SIZE).contains(&top)));
            }
            Err(error) => assert_graph_refusal(&error),
        }
    }
}

/// Path segments (`/users/{id or UPN}`): decoding what was encoded gives the text back, and decoding
/// arbitrary bytes either fails with a 400 or gives text that encodes back to a decodable form.
pub fn percent_decoding(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let encoded = utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    assert_eq!(decode_path_segment(&encoded).as_deref(), Ok(text));
    match decode_path_segment(text) {
        Ok(decoded) => {
            assert!(decoded.len() <= text.len());
            let again = utf8_percent_encode(&decoded, NON_ALPHANUMERIC).to_string();
            assert_eq!(decode_path_segment(&again).as_deref(), Ok(decoded.as_str()));
        }
        Err(error) => assert_graph_refusal(&error),
    }
    // The same text as a query value: `+` is a space there, and a bad escape is a 400.
    let query = format!("$skiptoken={text}");
    if let Err(error) = parse_query_options(&query) {
        assert_graph_refusal(&error);
    }
}
