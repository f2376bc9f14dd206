//! System query options (`$filter`, `$select`, `$top`, ...) from a raw query string, in both client encodings.

use guestlist_domain::filter::{UserField, UserFilter, UserOrder};

use crate::filter::parse_user_filter;
use crate::limits::check_query_string_length;
use crate::percent::decode_query_component;
use crate::properties::canonical_user_property;
use crate::ODataError;

/// Graph's largest page on `/users` (contract §6.4).
pub const MAX_PAGE_SIZE: u32 = 999;

/// The system query options of one request, decoded but not yet tied to a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// `$filter` text, percent-decoded; see `parse_user_filter`.
    pub filter: Option<String>,
    /// `$select` names, trimmed, in request order; not yet checked against a type.
    pub select: Option<Vec<String>>,
    /// `$top`, already within 1..=999.
    pub top: Option<u32>,
    pub skiptoken: Option<String>,
    /// `$count=true`.
    pub count: bool,
    pub orderby: Option<String>,
    pub search: Option<String>,
    pub expand: Option<String>,
}

/// Query options of `GET /users` (and `$select` of `GET /users/{id}`), typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserListOptions {
    pub filter: Option<UserFilter>,
    /// Property names in Graph's casing.
    pub select: Option<Vec<String>>,
    pub top: Option<u32>,
    pub skiptoken: Option<String>,
    pub count: bool,
    pub orderby: Option<UserOrder>,
    pub search: Option<String>,
    pub expand: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionName {
    Filter,
    Select,
    Top,
    SkipToken,
    Count,
    OrderBy,
    Search,
    Expand,
    Skip,
}

impl OptionName {
    const ALL: [OptionName; 9] = [
        OptionName::Filter,
        OptionName::Select,
        OptionName::Top,
        OptionName::SkipToken,
        OptionName::Count,
        OptionName::OrderBy,
        OptionName::Search,
        OptionName::Expand,
        OptionName::Skip,
    ];

    /// ODataLib's name for the option kind, as it appears in its duplicate-option message.
    fn title(self) -> &'static str {
        match self {
            OptionName::Filter => "Filter",
            OptionName::Select => "Select",
            OptionName::Top => "Top",
            OptionName::SkipToken => "SkipToken",
            OptionName::Count => "Count",
            OptionName::OrderBy => "OrderBy",
            OptionName::Search => "Search",
            OptionName::Expand => "Expand",
            OptionName::Skip => "Skip",
        }
    }

    fn from_key(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|option| option.title().eq_ignore_ascii_case(name))
    }
}

/// Reads the raw query string (after `?`, still percent-encoded). Both encodings are accepted: the Python SDK's
/// (`$filter=otherMails%2Fany%28x%3Ax%20eq%20%27a%40b.com%27%29`) and the Node client's (`/ ( : @` literal).
/// Option names are case-insensitive, with or without `$` (Graph accepts `filter=`); other names without `$` are ignored.
/// A query string longer than [`MAX_QUERY_STRING_LENGTH`](crate::MAX_QUERY_STRING_LENGTH) is refused before anything is decoded.
pub fn parse_query_options(raw_query: &str) -> Result<QueryOptions, ODataError> {
    check_query_string_length(raw_query)?;
    let mut options = QueryOptions::default();
    let mut seen: Vec<OptionName> = Vec::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query_component(raw_key)?;
        let value = decode_query_component(raw_value)?;
        let (dollar, bare) = match key.strip_prefix('$') {
            Some(bare) => (true, bare),
            None => (false, key.as_str()),
        };
        let Some(name) = OptionName::from_key(bare) else {
            if dollar {
                return Err(ODataError::BadRequest(format!("Query option '{key}' is not supported.")));
            }
            continue;
        };
        if seen.contains(&name) {
            return Err(ODataError::BadRequest(format!(
                "Query option '{}' was specified more than once, but it must be specified at most once.",
                name.title()
            )));
        }
        seen.push(name);
        match name {
            OptionName::Filter => options.filter = Some(value),
            OptionName::Select => options.select = Some(value.split(',').map(|item| item.trim().to_string()).collect()),
            OptionName::Top => options.top = Some(parse_top(&value)?),
            OptionName::SkipToken => options.skiptoken = Some(value),
            OptionName::Count => options.count = parse_count(&value)?,
            OptionName::OrderBy => options.orderby = Some(value),
            OptionName::Search => options.search = Some(value),
            OptionName::Expand => options.expand = Some(value),
            OptionName::Skip => return Err(ODataError::DirectoryBadRequest("'$skip' is not supported by the service.".to_string())),
        }
    }
    Ok(options)
}

fn parse_top(value: &str) -> Result<u32, ODataError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ODataError::BadRequest(format!(
            "Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value."
        )));
    }
    match trimmed.parse::<u32>() {
        Ok(top) if (1..=MAX_PAGE_SIZE).contains(&top) => Ok(top),
        _ => Err(ODataError::DirectoryBadRequest(format!(
            "Invalid page size specified: '{trimmed}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive."
        ))),
    }
}

fn parse_count(value: &str) -> Result<bool, ODataError> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ODataError::BadRequest(format!("'{value}' is not a valid count option."))),
    }
}

/// Checks `$select` names against the user entity and returns them in Graph's casing, without duplicates.
pub fn parse_user_select(names: &[String]) -> Result<Vec<String>, ODataError> {
    let mut selected: Vec<String> = Vec::new();
    for name in names {
        let canonical = canonical_user_property(name).ok_or_else(|| ODataError::unknown_user_property(name))?;
        if !selected.iter().any(|s| s == canonical) {
            selected.push(canonical.to_string());
        }
    }
    Ok(selected)
}

/// `$orderby` text as one property and its direction (`asc` by default); Graph sorts by one key only.
pub(crate) fn orderby_key(text: &str) -> Result<(&str, bool), ODataError> {
    let mut words = text.split_whitespace();
    let property = words.next().unwrap_or("");
    let descending = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("asc") => false,
        Some(word) if word.eq_ignore_ascii_case("desc") => true,
        Some(_) => return Err(sorting_not_supported()),
    };
    if words.next().is_some() || property.contains(',') {
        return Err(sorting_not_supported());
    }
    Ok((property, descending))
}

/// `$orderby` on `/users`: one of `displayName`, `userPrincipalName`, `createdDateTime`, optionally `asc` or `desc`.
pub fn parse_user_orderby(text: &str) -> Result<UserOrder, ODataError> {
    let (property, descending) = orderby_key(text)?;
    match UserField::from_graph_name(property) {
        Some(field @ (UserField::DisplayName | UserField::UserPrincipalName | UserField::CreatedDateTime)) => {
            Ok(UserOrder { field, descending })
        }
        _ if canonical_user_property(property).is_some() => Err(sorting_not_supported()),
        _ => Err(ODataError::unknown_user_property(property)),
    }
}

pub(crate) fn sorting_not_supported() -> ODataError {
    ODataError::UnsupportedQuery("Sorting not supported for current query.".to_string())
}

/// `parse_query_options`, then `$filter`, `$select` and `$orderby` checked against the user entity.
pub fn parse_user_list_options(raw_query: &str) -> Result<UserListOptions, ODataError> {
    UserListOptions::from_options(parse_query_options(raw_query)?)
}

impl UserListOptions {
    pub fn from_options(options: QueryOptions) -> Result<Self, ODataError> {
        Ok(UserListOptions {
            filter: options.filter.as_deref().map(parse_user_filter).transpose()?,
            select: options.select.as_deref().map(parse_user_select).transpose()?,
            top: options.top,
            skiptoken: options.skiptoken,
            count: options.count,
            orderby: options.orderby.as_deref().map(parse_user_orderby).transpose()?,
            search: options.search,
            expand: options.expand,
        })
    }
}

#[cfg(test)]
mod tests;
