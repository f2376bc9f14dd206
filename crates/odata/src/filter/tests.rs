use chrono::{TimeZone, Utc};
use guestlist_domain::filter::{
    CompareOp, IdentityField, IdentityPredicate, Literal, StringCollection, StringPredicate, UserField, UserFilter,
};
use proptest::prelude::*;

use super::syntax::NESTED_TOO_DEEPLY;
use super::{format_user_filter, parse_audit_filter, parse_group_filter, parse_user_filter};
use crate::limits::{MAX_FILTER_CLAUSES as MAX_CLAUSES, MAX_FILTER_NESTING as MAX_NESTING, MAX_IN_VALUES};
use crate::ODataError;

fn parse(text: &str) -> UserFilter {
    parse_user_filter(text).unwrap_or_else(|e| panic!("{text:?} should parse, got {e:?}"))
}

fn error(text: &str) -> ODataError {
    match parse_user_filter(text) {
        Ok(filter) => panic!("{text:?} should fail, got {filter:?}"),
        Err(e) => e,
    }
}

fn string(field: UserField, op: CompareOp, value: &str) -> UserFilter {
    UserFilter::Compare { field, op, value: Literal::String(value.to_string()) }
}

fn guest() -> UserFilter {
    string(UserField::UserType, CompareOp::Eq, "Guest")
}

fn unsupported(property: &str) -> ODataError {
    ODataError::UnsupportedQuery(format!(
        "Unsupported or invalid query filter clause specified for property '{property}' of resource 'User'."
    ))
}

const GUID: &str = "bf883dbf-0b2e-4f6a-9d0c-1a2b3c4d5e6f";

#[test]
fn every_comparison_operator() {
    for (text, op) in [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("ge", CompareOp::Ge),
        ("le", CompareOp::Le),
        ("gt", CompareOp::Gt),
        ("lt", CompareOp::Lt),
    ] {
        assert_eq!(parse(&format!("mail {text} 'a@b.com'")), string(UserField::Mail, op, "a@b.com"));
    }
}

#[test]
fn property_names_and_operators_are_case_insensitive() {
    assert_eq!(parse("USERTYPE EQ 'Guest'"), guest());
    assert_eq!(parse("userType Eq 'Guest'"), guest());
}

#[test]
fn values_keep_their_case() {
    assert_eq!(parse("userType eq 'gUeSt'"), string(UserField::UserType, CompareOp::Eq, "gUeSt"));
}

#[test]
fn doubled_quote_is_one_quote() {
    assert_eq!(parse("displayName eq 'O''Brien'"), string(UserField::DisplayName, CompareOp::Eq, "O'Brien"));
    assert_eq!(parse("displayName eq ''''"), string(UserField::DisplayName, CompareOp::Eq, "'"));
    assert_eq!(parse("displayName eq ''"), string(UserField::DisplayName, CompareOp::Eq, ""));
    assert_eq!(parse("displayName eq 'a and b or c'"), string(UserField::DisplayName, CompareOp::Eq, "a and b or c"));
}

#[test]
fn booleans_null_and_datetimes() {
    assert_eq!(
        parse("accountEnabled eq false"),
        UserFilter::Compare { field: UserField::AccountEnabled, op: CompareOp::Eq, value: Literal::Boolean(false) }
    );
    assert_eq!(
        parse("accountEnabled ne true"),
        UserFilter::Compare { field: UserField::AccountEnabled, op: CompareOp::Ne, value: Literal::Boolean(true) }
    );
    assert_eq!(parse("userType eq null"), UserFilter::Compare { field: UserField::UserType, op: CompareOp::Eq, value: Literal::Null });
    assert_eq!(
        parse("createdDateTime ge 2024-01-01T00:00:00Z"),
        UserFilter::Compare {
            field: UserField::CreatedDateTime,
            op: CompareOp::Ge,
            value: Literal::DateTime(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap())
        }
    );
    assert_eq!(
        parse("externalUserStateChangeDateTime lt 2024-06-01T12:30:00.5-02:00"),
        UserFilter::Compare {
            field: UserField::ExternalUserStateChangeDateTime,
            op: CompareOp::Lt,
            value: Literal::DateTime(Utc.with_ymd_and_hms(2024, 6, 1, 14, 30, 0).unwrap() + chrono::Duration::milliseconds(500))
        }
    );
}

#[test]
fn id_takes_a_quoted_guid() {
    assert_eq!(parse(&format!("id eq '{GUID}'")), string(UserField::Id, CompareOp::Eq, GUID));
    let e = error("id eq 'not-a-guid'");
    assert_eq!((e.code(), e.message()), ("Request_BadRequest", "Invalid object identifier 'not-a-guid'."));
    assert_eq!(error(&format!("id ge '{GUID}'")), unsupported("id"));
}

#[test]
fn in_lists() {
    assert_eq!(
        parse("userType in ('Guest', 'Member')"),
        UserFilter::In { field: UserField::UserType, values: vec![Literal::String("Guest".into()), Literal::String("Member".into())] }
    );
    assert_eq!(
        parse("accountEnabled in (true)"),
        UserFilter::In { field: UserField::AccountEnabled, values: vec![Literal::Boolean(true)] }
    );
    assert_eq!(error("userType in ()").code(), "BadRequest");
}

#[test]
fn starts_with_and_ends_with_any_case() {
    let starts = UserFilter::StartsWith { field: UserField::DisplayName, prefix: "Al".into() };
    assert_eq!(parse("startsWith(displayName,'Al')"), starts);
    assert_eq!(parse("startswith(displayName, 'Al')"), starts);
    assert_eq!(parse("STARTSWITH( displayName , 'Al' )"), starts);
    assert_eq!(
        parse("endsWith(userPrincipalName,'#EXT#@contoso.onmicrosoft.com')"),
        UserFilter::EndsWith { field: UserField::UserPrincipalName, suffix: "#EXT#@contoso.onmicrosoft.com".into() }
    );
}

#[test]
fn starts_with_on_a_non_string_names_the_signature() {
    let e = error("startsWith(accountEnabled,'t')");
    assert_eq!(e.code(), "BadRequest");
    assert_eq!(
        e.message(),
        "Invalid filter clause: No function signature for the function with name 'startsWith' matches the specified arguments. The function signatures considered are: startsWith(Edm.String Nullable=true, Edm.String Nullable=true)."
    );
    assert_eq!(error("startsWith(displayName)").code(), "BadRequest");
}

#[test]
fn lambda_on_string_collections() {
    let any = |collection, predicate| UserFilter::AnyString { collection, predicate };
    assert_eq!(
        parse("otherMails/any(x:x eq 'a@b.com')"),
        any(StringCollection::OtherMails, StringPredicate::Compare(CompareOp::Eq, "a@b.com".into()))
    );
    assert_eq!(
        parse("proxyAddresses/any(p: p eq 'SMTP:a@b.com')"),
        any(StringCollection::ProxyAddresses, StringPredicate::Compare(CompareOp::Eq, "SMTP:a@b.com".into()))
    );
    assert_eq!(parse("otherMails/any(x:startsWith(x,'a'))"), any(StringCollection::OtherMails, StringPredicate::StartsWith("a".into())));
    assert_eq!(parse("othermails/ANY(x:endswith(x,'.org'))"), any(StringCollection::OtherMails, StringPredicate::EndsWith(".org".into())));
    assert_eq!(
        parse("otherMails/any(x:x in ('a@b.com','c@d.com'))"),
        any(StringCollection::OtherMails, StringPredicate::In(vec!["a@b.com".into(), "c@d.com".into()]))
    );
    assert_eq!(parse("otherMails/any(x:x ge 'm')"), any(StringCollection::OtherMails, StringPredicate::Compare(CompareOp::Ge, "m".into())));
}

#[test]
fn lambda_shapes_graph_refuses() {
    assert_eq!(error("otherMails/any(x:x eq 'a' or x eq 'b')"), unsupported("otherMails"));
    assert_eq!(error("otherMails/any(x:y eq 'a')"), unsupported("otherMails"));
    assert_eq!(error("otherMails/all(x:x eq 'a')"), unsupported("otherMails"));
    assert_eq!(error("otherMails/any()"), unsupported("otherMails"));
    assert_eq!(error("otherMails/any(x:x eq null)"), unsupported("otherMails"));
    assert_eq!(error("otherMails eq 'a@b.com'"), unsupported("otherMails"));
    assert_eq!(error("businessPhones/any(x:x eq '1')"), unsupported("businessPhones"));
}

#[test]
fn identities_lambda() {
    assert_eq!(
        parse("identities/any(c:c/issuerAssignedId eq 'x' and c/issuer eq 'y')"),
        UserFilter::AnyIdentity(IdentityPredicate {
            equals: vec![(IdentityField::IssuerAssignedId, "x".into()), (IdentityField::Issuer, "y".into())]
        })
    );
    assert_eq!(
        parse("identities/any(id:id/signInType eq 'federated')"),
        UserFilter::AnyIdentity(IdentityPredicate { equals: vec![(IdentityField::SignInType, "federated".into())] })
    );
    assert_eq!(error("identities/any(c:c/issuer eq 'y' or c/issuer eq 'z')"), unsupported("identities"));
    assert_eq!(error("identities/any(c:c/issuer ne 'y')"), unsupported("identities"));
    assert_eq!(error("identities/any(c:c/colour eq 'y')"), unsupported("identities"));
}

#[test]
fn collection_count() {
    assert_eq!(
        parse("otherMails/$count eq 0"),
        UserFilter::CollectionCount { collection: StringCollection::OtherMails, op: CompareOp::Eq, count: 0 }
    );
    assert_eq!(
        parse("proxyAddresses/$count ne 1"),
        UserFilter::CollectionCount { collection: StringCollection::ProxyAddresses, op: CompareOp::Ne, count: 1 }
    );
    assert_eq!(error("otherMails/$count eq 'x'").code(), "BadRequest");
    assert_eq!(error("mail/$count eq 0"), unsupported("mail"));
}

#[test]
fn or_binds_looser_than_and() {
    let a = string(UserField::Mail, CompareOp::Eq, "a");
    let b = string(UserField::Mail, CompareOp::Eq, "b");
    let c = string(UserField::Mail, CompareOp::Eq, "c");
    assert_eq!(parse("mail eq 'a' or mail eq 'b' and mail eq 'c'"), a.clone().or(b.clone().and(c.clone())));
    assert_eq!(parse("mail eq 'a' and mail eq 'b' or mail eq 'c'"), a.clone().and(b.clone()).or(c.clone()));
    assert_eq!(parse("(mail eq 'a' or mail eq 'b') and mail eq 'c'"), a.clone().or(b.clone()).and(c.clone()));
    // Left-associative, as OData reads them.
    assert_eq!(parse("mail eq 'a' or mail eq 'b' or mail eq 'c'"), a.clone().or(b.clone()).or(c.clone()));
}

#[test]
fn not_with_and_without_parentheses() {
    let not_guest = UserFilter::Not(Box::new(guest()));
    assert_eq!(parse("not(userType eq 'Guest')"), not_guest);
    assert_eq!(parse("not (userType eq 'Guest')"), not_guest);
    assert_eq!(parse("NOT(userType eq 'Guest')"), not_guest);
    assert_eq!(
        parse("not(startsWith(mail,'a')) and userType eq 'Guest'"),
        UserFilter::Not(Box::new(UserFilter::StartsWith { field: UserField::Mail, prefix: "a".into() })).and(guest())
    );
    assert_eq!(parse("not(not(userType eq 'Guest'))"), UserFilter::Not(Box::new(not_guest)));
}

#[test]
fn whitespace_is_flexible() {
    assert_eq!(parse("  userType   eq\t'Guest'  "), guest());
    assert_eq!(parse("(userType eq 'Guest')and(userType eq 'Guest')"), guest().and(guest()));
    assert_eq!(parse("userType eq'Guest'"), guest());
    assert_eq!(parse("otherMails/any( x : x eq 'a' )"), parse("otherMails/any(x:x eq 'a')"));
}

#[test]
fn keywords_are_not_prefixes_of_names() {
    assert_eq!(error("userType eqx 'Guest'").code(), "BadRequest");
    assert_eq!(error("userType eq 'Guest' andy mail eq 'a'").code(), "BadRequest");
    assert_eq!(error("notes eq 'a'"), unsupported("notes"));
}

#[test]
fn unknown_property_is_unsupported_query() {
    let e = error("favouriteColour eq 'blue'");
    assert_eq!(e.code(), "Request_UnsupportedQuery");
    assert_eq!(e.message(), "Unsupported or invalid query filter clause specified for property 'favouriteColour' of resource 'User'.");
    assert_eq!(e.status(), 400);
    assert_eq!(error("manager/displayName eq 'a'"), unsupported("manager"));
    assert_eq!(error("'Guest' eq userType"), unsupported("userType"));
    assert_eq!(error("userType eq mail"), unsupported("userType"));
    assert_eq!(error("accountEnabled ge true"), unsupported("accountEnabled"));
    assert_eq!(error("accountEnabled eq null"), unsupported("accountEnabled"));
    assert_eq!(error("userType gt null"), unsupported("userType"));
}

#[test]
fn mismatched_types_use_odatas_wording() {
    let e = error("accountEnabled eq 'true'");
    assert_eq!(e.code(), "BadRequest");
    assert_eq!(
        e.message(),
        "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'Equal'."
    );
    assert_eq!(
        error("createdDateTime ge '2024-01-01T00:00:00Z'").message(),
        "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThanOrEqual'."
    );
    assert_eq!(error("userType eq true").code(), "BadRequest");
    assert_eq!(error("mail eq 2024-01-01T00:00:00Z").code(), "BadRequest");
    assert_eq!(error("userType in ('Guest', 1)").code(), "BadRequest");
}

#[test]
fn unknown_and_unsupported_functions() {
    assert_eq!(error("contains(displayName,'a')").code(), "Request_UnsupportedQuery");
    let e = error("frobnicate(displayName,'a')");
    assert_eq!((e.code(), e.message()), ("BadRequest", "Invalid filter clause: An unknown function with name 'frobnicate' was found."));
}

#[test]
fn syntax_errors_name_the_position() {
    let e = error("userType eq");
    assert_eq!(e.code(), "BadRequest");
    assert_eq!(e.message(), "Invalid filter clause: Syntax error at position 11 in 'userType eq'.");
    assert_eq!(
        error("userType eq 'Guest' and").message(),
        "Invalid filter clause: Syntax error at position 23 in 'userType eq 'Guest' and'."
    );
    assert_eq!(error("userType eq 'Guest)").message(), "Invalid filter clause: Syntax error at position 19 in 'userType eq 'Guest)'.");
    assert_eq!(
        error("userType eq #").message(),
        "Invalid filter clause: Syntax error: character '#' is not valid at position 12 in 'userType eq #'."
    );
    assert_eq!(error("(userType eq 'Guest'").message(), "Invalid filter clause: Syntax error at position 20 in '(userType eq 'Guest''.");
    assert_eq!(
        error("createdDateTime ge 2024-13-01T00:00:00Z").message(),
        "Invalid filter clause: Invalid DateTimeOffset literal at position 19 in 'createdDateTime ge 2024-13-01T00:00:00Z'."
    );
    // Positions count characters, not bytes.
    assert_eq!(
        error("mail eq 'é' x").message(),
        "Invalid filter clause: Syntax error: character 'x' is not valid at position 12 in 'mail eq 'é' x'."
    );
    for text in [
        "",
        "   ",
        "()",
        "userType",
        "userType eq 'Guest' 'x'",
        "eq 'x'",
        "userType eq 'Guest' or or mail eq 'a'",
        "otherMails/any(x:x eq 'a'",
    ] {
        assert_eq!(error(text).code(), "BadRequest", "{text:?}");
    }
}

#[test]
fn nesting_and_size_are_bounded() {
    let nested = |depth: usize| format!("{}userType eq 'Guest'{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(parse(&nested(MAX_NESTING - 1)), guest());
    let refused = error(&nested(MAX_NESTING));
    assert!(refused.message().contains(&format!("nested more than {MAX_NESTING} levels")), "{refused}");
    assert!(NESTED_TOO_DEEPLY.ends_with(&format!(" {MAX_NESTING} levels deep")));
    assert_eq!(error(&nested(100_000)).code(), "BadRequest");
    assert_eq!(error(&"not ".repeat(100_000)).code(), "BadRequest");
    assert_eq!(error(&"not(".repeat(100_000)).code(), "BadRequest");
    assert_eq!(error(&"otherMails/any(x:".repeat(10_000)).code(), "BadRequest");
    let many = vec!["userType eq 'Guest'"; MAX_CLAUSES].join(" or ");
    assert!(parse_user_filter(&many).is_ok());
    let too_many = vec!["userType eq 'Guest'"; MAX_CLAUSES + 1].join(" or ");
    let refused = error(&too_many);
    assert_eq!(refused.code(), "BadRequest");
    assert!(refused.message().contains(&format!("more than {MAX_CLAUSES} clauses")), "{refused}");
    // A huge flat chain neither overflows the stack nor builds a huge tree.
    assert_eq!(error(&vec!["userType eq 'Guest'"; 200_000].join(" and ")).code(), "BadRequest");
}

#[test]
fn chains_parse_into_one_flat_node() {
    let chain = parse(&vec!["userType eq 'Guest'"; MAX_CLAUSES].join(" or "));
    assert!(matches!(&chain, UserFilter::Or(items) if items.len() == MAX_CLAUSES), "{chain:?}");
    // Parentheses that only regroup one connective do not nest it either.
    assert_eq!(
        parse("(userType eq 'Guest' and mail eq 'a') and (mail eq 'b')"),
        guest().and(string(UserField::Mail, CompareOp::Eq, "a")).and(string(UserField::Mail, CompareOp::Eq, "b"))
    );
    assert!(matches!(parse("(userType eq 'Guest' and mail eq 'a') and mail eq 'b'"), UserFilter::And(items) if items.len() == 3));
}

/// `$filter` of the same size refused on every resource: users, groups and the audit log share one gate.
#[test]
fn every_filter_passes_the_same_size_gate() {
    let clauses = |n: usize| vec!["mail eq 'a@b.com'"; n].join(" and ");
    let in_list = |n: usize| format!("mail in ({})", vec!["'a@b.com'"; n].join(","));
    let deep = |n: usize| format!("{}mail eq 'a@b.com'{}", "(".repeat(n), ")".repeat(n));
    let audit = |text: &str| text.replace("mail", "category");
    type Parse = Box<dyn Fn(&str) -> Result<(), ODataError>>;
    let parsers: [(&str, Parse); 3] = [
        ("users", Box::new(|text| parse_user_filter(text).map(drop))),
        ("groups", Box::new(|text| parse_group_filter(text).map(drop))),
        ("audit", Box::new(move |text| parse_audit_filter(&audit(text)).map(drop))),
    ];
    for (resource, parse) in &parsers {
        assert_eq!(parse(&clauses(MAX_CLAUSES)), Ok(()), "{resource}");
        assert_eq!(parse(&deep(MAX_NESTING - 1)), Ok(()), "{resource}");
        let over = [clauses(MAX_CLAUSES + 1), deep(MAX_NESTING), clauses(50_000), deep(100_000)];
        for text in over {
            let refused = parse(&text).expect_err(resource);
            assert_eq!(refused.code(), "BadRequest", "{resource}: {refused}");
        }
        // The audit log serves no `in`; its size is refused before its shape is looked at.
        if *resource != "audit" {
            assert_eq!(parse(&in_list(MAX_IN_VALUES)), Ok(()), "{resource}");
        }
        let refused = parse(&in_list(MAX_IN_VALUES + 1)).expect_err(resource);
        assert_eq!(refused.code(), "Request_UnsupportedQuery", "{resource}");
        assert!(refused.message().contains(&format!("Max allowed: {MAX_IN_VALUES}")), "{resource}: {refused}");
    }
}

#[test]
fn in_lists_inside_lambdas_and_lambda_bodies_count_too() {
    let list = |n: usize| vec!["'a@b.com'"; n].join(",");
    assert!(parse_user_filter(&format!("otherMails/any(x:x in ({}))", list(MAX_IN_VALUES))).is_ok());
    let refused = error(&format!("otherMails/any(x:x in ({}))", list(MAX_IN_VALUES + 1)));
    assert_eq!(refused.code(), "Request_UnsupportedQuery");
    let equalities = |n: usize| format!("identities/any(c:{})", vec!["c/issuer eq 'x'"; n].join(" and "));
    assert!(parse_user_filter(&equalities(MAX_CLAUSES)).is_ok());
    assert_eq!(error(&equalities(MAX_CLAUSES + 1)).code(), "BadRequest");
}

// ---- property tests ----

fn field_of(kind_filter: impl Fn(UserField) -> bool) -> impl Strategy<Value = UserField> {
    proptest::sample::select(UserField::ALL.into_iter().filter(|f| kind_filter(*f)).collect::<Vec<_>>())
}

fn any_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Ge),
        Just(CompareOp::Le),
        Just(CompareOp::Gt),
        Just(CompareOp::Lt)
    ]
}

fn equality_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![Just(CompareOp::Eq), Just(CompareOp::Ne)]
}

fn text() -> impl Strategy<Value = String> {
    // Quotes, keywords, parentheses and non-ASCII inside literals must all survive the round trip.
    "[a-zA-Z0-9 '()@#./:,éß+%-]{0,12}"
}

fn guid() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
}

fn datetime() -> impl Strategy<Value = chrono::DateTime<Utc>> {
    (0i64..4_102_444_800, prop_oneof![Just(0u32), 0u32..1_000_000_000])
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).single().expect("valid timestamp"))
}

fn collection() -> impl Strategy<Value = StringCollection> {
    prop_oneof![Just(StringCollection::OtherMails), Just(StringCollection::ProxyAddresses)]
}

use guestlist_domain::filter::FieldKind;

fn leaf() -> impl Strategy<Value = UserFilter> {
    let is = |kind: FieldKind| move |f: UserField| f.kind() == kind;
    prop_oneof![
        (field_of(is(FieldKind::String)), any_op(), text()).prop_map(|(field, op, v)| UserFilter::Compare {
            field,
            op,
            value: Literal::String(v)
        }),
        (field_of(|f| matches!(f.kind(), FieldKind::String | FieldKind::DateTime)), equality_op())
            .prop_map(|(field, op)| UserFilter::Compare { field, op, value: Literal::Null }),
        (equality_op(), guid()).prop_map(|(op, v)| UserFilter::Compare { field: UserField::Id, op, value: Literal::String(v) }),
        (equality_op(), any::<bool>()).prop_map(|(op, b)| UserFilter::Compare {
            field: UserField::AccountEnabled,
            op,
            value: Literal::Boolean(b)
        }),
        (field_of(is(FieldKind::DateTime)), any_op(), datetime()).prop_map(|(field, op, d)| UserFilter::Compare {
            field,
            op,
            value: Literal::DateTime(d)
        }),
        (field_of(is(FieldKind::String)), prop::collection::vec(text(), 1..4))
            .prop_map(|(field, vs)| UserFilter::In { field, values: vs.into_iter().map(Literal::String).collect() }),
        (field_of(is(FieldKind::String)), text()).prop_map(|(field, prefix)| UserFilter::StartsWith { field, prefix }),
        (field_of(is(FieldKind::String)), text()).prop_map(|(field, suffix)| UserFilter::EndsWith { field, suffix }),
        (
            collection(),
            prop_oneof![
                (any_op(), text()).prop_map(|(op, v)| StringPredicate::Compare(op, v)),
                text().prop_map(StringPredicate::StartsWith),
                text().prop_map(StringPredicate::EndsWith),
                prop::collection::vec(text(), 1..4).prop_map(StringPredicate::In),
            ]
        )
            .prop_map(|(collection, predicate)| UserFilter::AnyString { collection, predicate }),
        prop::collection::vec(
            (prop_oneof![Just(IdentityField::SignInType), Just(IdentityField::Issuer), Just(IdentityField::IssuerAssignedId)], text()),
            1..4
        )
        .prop_map(|equals| UserFilter::AnyIdentity(IdentityPredicate { equals })),
        (collection(), any_op(), any::<u32>()).prop_map(|(collection, op, count)| UserFilter::CollectionCount { collection, op, count }),
    ]
}

fn tree() -> impl Strategy<Value = UserFilter> {
    leaf().prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
            inner.prop_map(|a| UserFilter::Not(Box::new(a))),
        ]
    })
}

/// Pieces whose random concatenations exercise nesting, lambdas and half-finished clauses.
fn fragment() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "(",
        ")",
        "not ",
        "not(",
        " and ",
        " or ",
        "userType eq 'Guest'",
        "'",
        "''",
        "otherMails/any(x:",
        "x eq 'a'",
        "identities/any(c:c/issuer eq 'y'",
        "startsWith(",
        "mail,",
        "'a')",
        " in (",
        ",",
        "/$count eq 0",
        "2024-01-01T00:00:00Z",
        "null",
        "true",
        " eq ",
        "é",
        " ",
    ])
}

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_same_tree(filter in tree()) {
        let text = format_user_filter(&filter);
        prop_assert_eq!(parse_user_filter(&text), Ok(filter), "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_user_filter(&text);
    }

    #[test]
    fn arbitrary_fragments_never_panic(pieces in prop::collection::vec(fragment(), 0..60)) {
        let _ = parse_user_filter(&pieces.concat());
    }

    #[test]
    fn deep_nestings_never_panic(depth in 0usize..400, opener in proptest::sample::select(vec!["(", "not(", "not ", "otherMails/any(x:"])) {
        let text = format!("{}userType eq 'Guest'{}", opener.repeat(depth), ")".repeat(depth));
        let _ = parse_user_filter(&text);
    }
}
