//! Query options of `/groups` and of the member lists (`/groups/{id}/members`, `.../memberOf`).

use guestlist_domain::filter::{GroupFilter, GroupOrder};

use crate::filter::parse_group_filter;
use crate::properties::canonical_user_property;
use crate::query::{orderby_key, parse_query_options, sorting_not_supported, QueryOptions};
use crate::ODataError;

/// Structural properties of `microsoft.graph.group` in Graph's casing (v1.0 CSDL: `entity`, `directoryObject`,
/// `group`), taken from /work/shared/spec/graph-schema-v1.json.
pub const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "accessType",
    "allowExternalSenders",
    "assignedLabels",
    "assignedLicenses",
    "autoSubscribeNewMembers",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "hasMembersWithLicenseErrors",
    "hideFromAddressLists",
    "hideFromOutlookClients",
    "infoCatalogs",
    "isArchived",
    "isAssignableToRole",
    "isFavorite",
    "isManagementRestricted",
    "isSubscribedByMail",
    "licenseProcessingState",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "organizationId",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "serviceProvisioningErrors",
    "theme",
    "uniqueName",
    "unseenConversationsCount",
    "unseenCount",
    "unseenMessagesCount",
    "visibility",
    "welcomeMessageEnabled",
];

pub fn canonical_group_property(name: &str) -> Option<&'static str> {
    GROUP_PROPERTIES.iter().copied().find(|p| p.eq_ignore_ascii_case(name))
}

/// Query options of `GET /groups` and `GET /groups/{id}`, typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupListOptions {
    pub filter: Option<GroupFilter>,
    /// Property names in Graph's casing.
    pub select: Option<Vec<String>>,
    pub top: Option<u32>,
    pub skiptoken: Option<String>,
    pub count: bool,
    pub orderby: Option<GroupOrder>,
    pub search: Option<String>,
    pub expand: Option<String>,
}

/// `$orderby` on `/groups`: `displayName`, optionally `asc` or `desc` (Graph's group list reference).
pub fn parse_group_orderby(text: &str) -> Result<GroupOrder, ODataError> {
    let (property, descending) = orderby_key(text)?;
    match canonical_group_property(property) {
        Some("displayName") => Ok(GroupOrder { descending }),
        Some(_) => Err(sorting_not_supported()),
        None => {
            Err(ODataError::DirectoryBadRequest(format!("Could not find a property named '{property}' on type 'microsoft.graph.group'.")))
        }
    }
}

/// `$select` names checked with `canonical`, in Graph's casing and without duplicates; `type_name` is
/// the `microsoft.graph.*` type the refusal names.
fn select_of(names: &[String], canonical: impl Fn(&str) -> Option<&'static str>, type_name: &str) -> Result<Vec<String>, ODataError> {
    let mut selected: Vec<String> = Vec::new();
    for name in names {
        let property = canonical(name).ok_or_else(|| {
            ODataError::DirectoryBadRequest(format!("Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."))
        })?;
        if !selected.iter().any(|s| s == property) {
            selected.push(property.to_string());
        }
    }
    Ok(selected)
}

/// `parse_query_options`, then `$filter` and `$select` checked against the group entity.
pub fn parse_group_list_options(raw_query: &str) -> Result<GroupListOptions, ODataError> {
    let QueryOptions { filter, select, top, skiptoken, count, orderby, search, expand } = parse_query_options(raw_query)?;
    Ok(GroupListOptions {
        filter: filter.as_deref().map(parse_group_filter).transpose()?,
        select: select.as_deref().map(|names| select_of(names, canonical_group_property, "group")).transpose()?,
        top,
        skiptoken,
        count,
        orderby: orderby.as_deref().map(parse_group_orderby).transpose()?,
        search,
        expand,
    })
}

/// Query options of a list of directory objects (members, memberOf): `$select` names a property of a user or
/// of a group; `$filter`, `$orderby` and `$search` are not served there by guestlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberListOptions {
    pub select: Option<Vec<String>>,
    pub top: Option<u32>,
    pub skiptoken: Option<String>,
    /// `$count=true`, honoured with `ConsistencyLevel: eventual`.
    pub count: bool,
}

pub fn parse_member_list_options(raw_query: &str) -> Result<MemberListOptions, ODataError> {
    let options = parse_query_options(raw_query)?;
    if let Some(name) = [
        options.filter.as_ref().map(|_| "$filter"),
        options.orderby.as_ref().map(|_| "$orderby"),
        options.search.as_ref().map(|_| "$search"),
        options.expand.as_ref().map(|_| "$expand"),
    ]
    .into_iter()
    .flatten()
    .next()
    {
        return Err(ODataError::UnsupportedQuery(format!("The query option '{name}' is not supported on this collection by guestlist.")));
    }
    let either = |name: &str| canonical_group_property(name).or_else(|| canonical_user_property(name));
    Ok(MemberListOptions {
        select: options.select.as_deref().map(|names| select_of(names, either, "directoryObject")).transpose()?,
        top: options.top,
        skiptoken: options.skiptoken,
        count: options.count,
    })
}

#[cfg(test)]
mod tests {
    use guestlist_domain::filter::{CompareOp, GroupField, Literal, StringPredicate};

    use super::*;

    #[test]
    fn filters_graph_documents_for_groups() {
        let options = parse_group_list_options("$filter=groupTypes/any(c:c%20eq%20'Unified')").unwrap();
        assert_eq!(options.filter, Some(GroupFilter::AnyGroupType(StringPredicate::Compare(CompareOp::Eq, "Unified".into()))));
        let options = parse_group_list_options("$filter=securityEnabled eq true and startsWith(displayName,'Par')").unwrap();
        assert_eq!(
            options.filter,
            Some(
                GroupFilter::Compare { field: GroupField::SecurityEnabled, op: CompareOp::Eq, value: Literal::Boolean(true) }
                    .and(GroupFilter::StartsWith { field: GroupField::DisplayName, prefix: "Par".into() })
            )
        );
        let options = parse_group_list_options("$filter=mailNickname in ('a','b')").unwrap();
        assert!(matches!(options.filter, Some(GroupFilter::In { field: GroupField::MailNickname, .. })));
    }

    #[test]
    fn refuses_what_groups_do_not_have() {
        for (query, code) in [
            ("$filter=userType eq 'Guest'", "Request_UnsupportedQuery"),
            ("$filter=securityEnabled eq 'yes'", "BadRequest"),
            ("$filter=endsWith(displayName,'x')", "Request_UnsupportedQuery"),
            ("$filter=otherMails/any(x:x eq 'a')", "Request_UnsupportedQuery"),
            ("$select=userPrincipalName", "Request_BadRequest"),
        ] {
            let error = parse_group_list_options(query).unwrap_err();
            assert_eq!(error.code(), code, "{query}: {error}");
        }
        assert!(parse_group_list_options("$filter=securityEnabled eq 'yes'").unwrap_err().message().contains("Edm.Boolean"));
    }

    #[test]
    fn groups_sort_by_display_name_only() {
        assert_eq!(parse_group_list_options("$orderby=displayName").unwrap().orderby, Some(GroupOrder { descending: false }));
        assert_eq!(parse_group_list_options("$orderby=DISPLAYNAME%20desc").unwrap().orderby, Some(GroupOrder { descending: true }));
        for (query, code) in [
            ("$orderby=mail", "Request_UnsupportedQuery"),
            ("$orderby=displayName sideways", "Request_UnsupportedQuery"),
            ("$orderby=displayName,mail", "Request_UnsupportedQuery"),
            ("$orderby=nope", "Request_BadRequest"),
        ] {
            assert_eq!(parse_group_list_options(query).unwrap_err().code(), code, "{query}");
        }
    }

    #[test]
    fn advanced_operators_are_named() {
        for (filter, operator) in [
            ("endsWith(mail,'@contoso.com')", Some("endsWith")),
            ("endsWith(mailNickname,'-eu')", Some("endsWith")),
            ("mail ne null", Some("ne")),
            ("not(securityEnabled eq true)", Some("not")),
            ("displayName eq 'x' and mail ne 'y'", Some("ne")),
            ("startsWith(displayName,'x')", None),
        ] {
            let parsed = parse_group_filter(filter).unwrap();
            assert_eq!(parsed.advanced_operator(), operator, "{filter}");
        }
        assert_eq!(parse_group_filter("endsWith(displayName,'x')").unwrap_err().code(), "Request_UnsupportedQuery");
    }

    #[test]
    fn member_lists_select_user_or_group_properties() {
        let options = parse_member_list_options("$select=ID,userPrincipalName,groupTypes&$top=5").unwrap();
        assert_eq!(options.select, Some(vec!["id".to_string(), "userPrincipalName".into(), "groupTypes".into()]));
        assert_eq!(options.top, Some(5));
        assert_eq!(parse_member_list_options("$select=nope").unwrap_err().code(), "Request_BadRequest");
        assert_eq!(parse_member_list_options("$filter=id eq 'x'").unwrap_err().code(), "Request_UnsupportedQuery");
    }
}
