//! OData query options of Microsoft Graph as pure parsers: `$filter` into guestlist's typed filter tree
//! (`guestlist_domain::filter::UserFilter`), `$select`, `$top`, `$orderby`, and percent-decoding of query strings and
//! path segments in both encodings the Microsoft clients send (/work/shared/spec/clients.md).

mod error;
mod expand;
mod filter;
mod group;
mod limits;
mod percent;
mod properties;
mod query;
mod search;

pub use error::ODataError;
pub use expand::parse_expand;
pub use filter::{format_user_filter, parse_audit_filter, parse_group_filter, parse_user_filter};
pub use group::{
    canonical_group_property, parse_group_list_options, parse_group_orderby, parse_member_list_options, GroupListOptions,
    MemberListOptions, GROUP_PROPERTIES,
};
pub use limits::{
    page_size, MAX_FILTER_CLAUSES, MAX_FILTER_NESTING, MAX_IN_VALUES, MAX_PAGE_SIZE_WITH_EXPAND, MAX_QUERY_STRING_LENGTH, MAX_SEARCH_WORDS,
};
pub use percent::decode_path_segment;
pub use properties::{canonical_user_property, USER_PROPERTIES};
pub use query::{
    parse_query_options, parse_user_list_options, parse_user_orderby, parse_user_select, QueryOptions, UserListOptions, MAX_PAGE_SIZE,
};
pub use search::{parse_group_search, parse_user_search};
