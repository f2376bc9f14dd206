use guestlist_domain::filter::{CompareOp, Literal, StringCollection, StringPredicate, UserField, UserFilter, UserOrder};
use proptest::prelude::*;

use super::*;
use crate::{decode_path_segment, USER_PROPERTIES};

fn options(raw: &str) -> QueryOptions {
    parse_query_options(raw).unwrap_or_else(|e| panic!("{raw:?} should parse, got {e:?}"))
}

fn user_options(raw: &str) -> UserListOptions {
    parse_user_list_options(raw).unwrap_or_else(|e| panic!("{raw:?} should parse, got {e:?}"))
}

fn error(raw: &str) -> ODataError {
    match parse_user_list_options(raw) {
        Ok(parsed) => panic!("{raw:?} should fail, got {parsed:?}"),
        Err(e) => e,
    }
}

fn other_mail(address: &str) -> UserFilter {
    UserFilter::AnyString {
        collection: StringCollection::OtherMails,
        predicate: StringPredicate::Compare(CompareOp::Eq, address.to_string()),
    }
}

fn names(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

/// Recorded from msgraph-sdk (Python) 1.65.0, clients.md §3.
#[test]
fn python_sdk_encoding() {
    let parsed = user_options("$filter=otherMails%2Fany%28x%3Ax%20eq%20%27alice%40example.org%27%29&$select=id,otherMails");
    assert_eq!(parsed.filter, Some(other_mail("alice@example.org")));
    assert_eq!(parsed.select, names(&["id", "otherMails"]));
    assert!(!parsed.count);

    let parsed = user_options("$count=true&$filter=otherMails%2Fany%28x%3Ax%20eq%20%27alice%40example.org%27%29&$select=id&$top=5");
    assert_eq!(parsed.filter, Some(other_mail("alice@example.org")));
    assert_eq!((parsed.count, parsed.top, parsed.select), (true, Some(5), names(&["id"])));

    let parsed = user_options("$select=id,userType,externalUserState,creationType,userPrincipalName,mail,otherMails");
    assert_eq!(parsed.select.map(|s| s.len()), Some(7));
}

/// Recorded from @microsoft/microsoft-graph-client 3.0.7 on Node 20, clients.md §4: `/ ( : @` stay literal.
#[test]
fn node_client_encoding() {
    let parsed = user_options("$filter=otherMails/any(x:x%20eq%20%27m@example.com%27)&$select=id,otherMails&$count=true");
    assert_eq!(parsed.filter, Some(other_mail("m@example.com")));
    assert_eq!(parsed.select, names(&["id", "otherMails"]));
    assert!(parsed.count);
    assert_eq!(user_options("$select=id,userType,externalUserState,otherMails").select.map(|s| s.len()), Some(4));
}

#[test]
fn both_encodings_agree() {
    let python = user_options("$filter=userType%20eq%20%27Guest%27%20and%20startsWith%28mail%2C%27a%27%29");
    let node = user_options("$filter=userType%20eq%20%27Guest%27%20and%20startsWith(mail,%27a%27)");
    assert_eq!(python, node);
    assert!(python.filter.is_some());
}

#[test]
fn plus_is_a_space_as_aspnet_decodes_it() {
    assert_eq!(user_options("$filter=userType+eq+'Guest'").filter, user_options("$filter=userType%20eq%20'Guest'").filter);
    // An unencoded '+' in an address becomes a space, as on Graph; `%2B` keeps it.
    assert_eq!(user_options("$filter=mail+eq+'a+b@c.com'").filter.unwrap(), string_eq(UserField::Mail, "a b@c.com"));
    assert_eq!(user_options("$filter=mail+eq+'a%2Bb@c.com'").filter.unwrap(), string_eq(UserField::Mail, "a+b@c.com"));
}

fn string_eq(field: UserField, value: &str) -> UserFilter {
    UserFilter::Compare { field, op: CompareOp::Eq, value: Literal::String(value.to_string()) }
}

#[test]
fn option_names_are_case_insensitive_with_or_without_dollar() {
    let expected = Some("userType eq 'Guest'".to_string());
    for raw in [
        "$filter=userType eq 'Guest'",
        "%24filter=userType eq 'Guest'",
        "$FILTER=userType eq 'Guest'",
        "filter=userType eq 'Guest'",
        "Filter=userType eq 'Guest'",
    ] {
        assert_eq!(options(raw).filter, expected, "{raw}");
    }
    assert_eq!(options("$Top=10").top, Some(10));
    assert_eq!(options("$orderBy=displayName").orderby.as_deref(), Some("displayName"));
    assert_eq!(options("$skipToken=abc%3D").skiptoken.as_deref(), Some("abc="));
}

#[test]
fn all_options_together() {
    let parsed = user_options(
        "$filter=userType eq 'Guest'&$select=ID, displayname ,MAIL&$top=999&$skiptoken=X%2BY&$count=false&$orderby=displayName%20desc&$search=%22displayName:al%22&$expand=sponsors",
    );
    assert_eq!(
        parsed,
        UserListOptions {
            filter: Some(string_eq(UserField::UserType, "Guest")),
            select: names(&["id", "displayName", "mail"]),
            top: Some(999),
            skiptoken: Some("X+Y".to_string()),
            count: false,
            orderby: Some(UserOrder { field: UserField::DisplayName, descending: true }),
            search: Some("\"displayName:al\"".to_string()),
            expand: Some("sponsors".to_string()),
        }
    );
}

#[test]
fn empty_query_and_unknown_plain_parameters() {
    assert_eq!(options(""), QueryOptions::default());
    assert_eq!(options("&&"), QueryOptions::default());
    assert_eq!(options("api-version=1.6&foo=bar&x"), QueryOptions::default());
}

#[test]
fn bad_percent_encoding_is_bad_request() {
    for raw in ["$filter=%zz", "$filter=mail eq '%'", "$filter=%4", "%2$filter=a", "$filter=%C3%28", "$select=%FF"] {
        let e = parse_query_options(raw).expect_err(raw);
        assert_eq!(e.code(), "BadRequest", "{raw}");
        assert!(e.message().starts_with("The query string is not valid: "), "{}", e.message());
    }
    assert_eq!(
        parse_query_options("$filter=a%zzb").unwrap_err().message(),
        "The query string is not valid: invalid percent-encoding '%zz' at position 1."
    );
}

#[test]
fn the_query_string_length_is_bounded() {
    let of_length = |n: usize| format!("$filter=mail eq '{}'", "a".repeat(n - "$filter=mail eq ''".len()));
    assert!(parse_query_options(&of_length(crate::MAX_QUERY_STRING_LENGTH)).is_ok());
    let refused = parse_query_options(&of_length(crate::MAX_QUERY_STRING_LENGTH + 1)).unwrap_err();
    assert_eq!(refused.code(), "BadRequest");
    assert!(refused.message().contains(&format!("at most {}", crate::MAX_QUERY_STRING_LENGTH)), "{refused}");
    assert_eq!(parse_query_options(&"&".repeat(1_000_000)).unwrap_err().code(), "BadRequest");
}

#[test]
fn expanding_caps_the_page_size_as_graph_does() {
    use crate::{page_size, MAX_PAGE_SIZE_WITH_EXPAND};
    assert_eq!(page_size(None, 100, false), 100);
    assert_eq!(page_size(Some(999), 100, false), 999);
    assert_eq!(page_size(Some(999), 100, true), MAX_PAGE_SIZE_WITH_EXPAND);
    assert_eq!(page_size(Some(5), 100, true), 5);
}

#[test]
fn duplicate_options_are_refused() {
    let e = error("$filter=userType eq 'Guest'&$filter=userType eq 'Member'");
    assert_eq!(e.code(), "BadRequest");
    assert_eq!(e.message(), "Query option 'Filter' was specified more than once, but it must be specified at most once.");
    assert_eq!(error("$top=1&top=2").message(), "Query option 'Top' was specified more than once, but it must be specified at most once.");
    assert_eq!(error("$select=id&%24SELECT=mail").code(), "BadRequest");
}

#[test]
fn top_must_be_between_1_and_999() {
    assert_eq!(options("$top=1").top, Some(1));
    assert_eq!(options("$top=999").top, Some(999));
    for value in ["0", "1000", "99999999999999999999"] {
        let e = error(&format!("$top={value}"));
        assert_eq!(e.code(), "Request_BadRequest");
        assert_eq!(e.message(), format!("Invalid page size specified: '{value}'. Must be between 1 and 999 inclusive."));
    }
    for value in ["abc", "-1", "", "1.5"] {
        let e = error(&format!("$top={value}"));
        assert_eq!(e.code(), "BadRequest", "{value}");
        assert_eq!(
            e.message(),
            format!("Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value.")
        );
    }
}

#[test]
fn skip_and_unknown_system_options() {
    let e = error("$skip=10");
    assert_eq!((e.code(), e.message()), ("Request_BadRequest", "'$skip' is not supported by the service."));
    let e = error("$format=json");
    assert_eq!((e.code(), e.message()), ("BadRequest", "Query option '$format' is not supported."));
    assert_eq!(error("%24apply=x").message(), "Query option '$apply' is not supported.");
}

#[test]
fn count_is_boolean() {
    assert!(options("$count=true").count);
    assert!(options("$count=True").count);
    assert!(!options("$count=false").count);
    let e = error("$count=yes");
    assert_eq!((e.code(), e.message()), ("BadRequest", "'yes' is not a valid count option."));
}

#[test]
fn select_is_checked_against_the_user_entity() {
    assert_eq!(user_options("$select=id,id,ID").select, names(&["id"]));
    assert_eq!(user_options("$select=externaluserstatechangedatetime").select, names(&["externalUserStateChangeDateTime"]));
    let e = error("$select=id,favouriteColour");
    assert_eq!(e.code(), "Request_BadRequest");
    assert_eq!(e.message(), "Could not find a property named 'favouriteColour' on type 'microsoft.graph.user'.");
    assert_eq!(error("$select=id,").message(), "Could not find a property named '' on type 'microsoft.graph.user'.");
}

#[test]
fn user_properties_follow_the_schema() {
    for name in ["id", "deletedDateTime", "displayName", "otherMails", "proxyAddresses", "identities", "externalUserState", "userType"] {
        assert!(USER_PROPERTIES.contains(&name), "{name}");
    }
    for field in UserField::ALL {
        assert!(USER_PROPERTIES.contains(&field.graph_name()), "{}", field.graph_name());
    }
    assert!(!USER_PROPERTIES.contains(&"manager"), "navigation properties are expanded, not selected");
}

#[test]
fn orderby_on_the_three_sort_keys() {
    let order = |raw: &str| parse_user_orderby(raw).unwrap();
    assert_eq!(order("displayName"), UserOrder { field: UserField::DisplayName, descending: false });
    assert_eq!(order("userPrincipalName asc"), UserOrder { field: UserField::UserPrincipalName, descending: false });
    assert_eq!(order("createdDateTime DESC"), UserOrder { field: UserField::CreatedDateTime, descending: true });
    assert_eq!(order(" displayname  desc "), UserOrder { field: UserField::DisplayName, descending: true });
    for raw in ["mail", "displayName up", "displayName,mail", "displayName desc mail"] {
        let e = parse_user_orderby(raw).unwrap_err();
        assert_eq!((e.code(), e.message()), ("Request_UnsupportedQuery", "Sorting not supported for current query."), "{raw}");
    }
    assert_eq!(parse_user_orderby("colour").unwrap_err().code(), "Request_BadRequest");
    assert_eq!(user_options("$orderby=createdDateTime%20desc").orderby, Some(order("createdDateTime desc")));
}

#[test]
fn filter_errors_surface_through_the_options() {
    let e = error("$filter=userType%20eq");
    assert_eq!(e.message(), "Invalid filter clause: Syntax error at position 11 in 'userType eq'.");
    assert_eq!(error("$filter=colour%20eq%20'x'").code(), "Request_UnsupportedQuery");
}

#[test]
fn path_segments() {
    assert_eq!(
        decode_path_segment("alice_example.org%23EXT%23%40contoso.onmicrosoft.com").unwrap(),
        "alice_example.org#EXT#@contoso.onmicrosoft.com"
    );
    assert_eq!(decode_path_segment("bf883dbf-0b2e-4f6a-9d0c-1a2b3c4d5e6f").unwrap(), "bf883dbf-0b2e-4f6a-9d0c-1a2b3c4d5e6f");
    // '+' is literal in paths.
    assert_eq!(decode_path_segment("a+b_c.com%23EXT%23@t.onmicrosoft.com").unwrap(), "a+b_c.com#EXT#@t.onmicrosoft.com");
    assert_eq!(decode_path_segment("J%C3%BCrgen").unwrap(), "Jürgen");
    for bad in ["%zz", "abc%", "%2", "%FF%FE", "%C3"] {
        let e = decode_path_segment(bad).unwrap_err();
        assert_eq!(e.code(), "BadRequest", "{bad}");
        assert!(e.message().starts_with("The request URL path is not valid: "), "{}", e.message());
    }
}

proptest! {
    #[test]
    fn arbitrary_query_strings_never_panic(raw in any::<String>()) {
        let _ = parse_user_list_options(&raw);
        let _ = decode_path_segment(&raw);
    }

    #[test]
    fn arbitrary_encoded_pieces_never_panic(pieces in prop::collection::vec(proptest::sample::select(vec![
        "$filter=", "$select=", "$top=", "&", "=", "%", "%2", "%28", "%29", "%27", "%C3", "%A9", "+", "id", ",", "userType%20eq%20", "$count=true", "$skip=1",
    ]), 0..30)) {
        let _ = parse_user_list_options(&pieces.concat());
    }

    /// The Python SDK's full percent-encoding and Node's partial one decode to the same filter.
    #[test]
    fn python_and_node_encodings_decode_alike(local in "[a-z0-9._+-]{1,10}", domain in "[a-z]{1,8}\\.(com|org)") {
        let address = format!("{local}@{domain}");
        let python_value: String = format!("otherMails/any(x:x eq '{address}')")
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let node_value = format!("otherMails/any(x:x eq '{address}')").replace(' ', "%20").replace('\'', "%27").replace('+', "%2B");
        let python = parse_user_list_options(&format!("$filter={python_value}&$select=id,otherMails")).unwrap();
        let node = parse_user_list_options(&format!("$filter={node_value}&$select=id,otherMails")).unwrap();
        prop_assert_eq!(&python, &node);
        prop_assert_eq!(python.filter, Some(other_mail(&address)));
    }
}
