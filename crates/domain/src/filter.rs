//! The typed query over users that `$filter` parses into and every store translates to SQL.
//! No query text is ever spliced into SQL: values travel as bound parameters.

use chrono::{DateTime, Utc};

/// Single-valued user properties that can be filtered and ordered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserField {
    Id,
    DisplayName,
    GivenName,
    Surname,
    Mail,
    UserPrincipalName,
    UserType,
    CreationType,
    ExternalUserState,
    ExternalUserStateChangeDateTime,
    AccountEnabled,
    CreatedDateTime,
    CompanyName,
    JobTitle,
    Department,
}

impl UserField {
    pub const ALL: [UserField; 15] = [
        UserField::Id,
        UserField::DisplayName,
        UserField::GivenName,
        UserField::Surname,
        UserField::Mail,
        UserField::UserPrincipalName,
        UserField::UserType,
        UserField::CreationType,
        UserField::ExternalUserState,
        UserField::ExternalUserStateChangeDateTime,
        UserField::AccountEnabled,
        UserField::CreatedDateTime,
        UserField::CompanyName,
        UserField::JobTitle,
        UserField::Department,
    ];

    /// The Graph property name.
    pub fn graph_name(&self) -> &'static str {
        match self {
            UserField::Id => "id",
            UserField::DisplayName => "displayName",
            UserField::GivenName => "givenName",
            UserField::Surname => "surname",
            UserField::Mail => "mail",
            UserField::UserPrincipalName => "userPrincipalName",
            UserField::UserType => "userType",
            UserField::CreationType => "creationType",
            UserField::ExternalUserState => "externalUserState",
            UserField::ExternalUserStateChangeDateTime => "externalUserStateChangeDateTime",
            UserField::AccountEnabled => "accountEnabled",
            UserField::CreatedDateTime => "createdDateTime",
            UserField::CompanyName => "companyName",
            UserField::JobTitle => "jobTitle",
            UserField::Department => "department",
        }
    }

    /// Graph property names are case-insensitive in `$filter`.
    pub fn from_graph_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.graph_name().eq_ignore_ascii_case(name))
    }

    pub fn kind(&self) -> FieldKind {
        match self {
            UserField::AccountEnabled => FieldKind::Boolean,
            UserField::CreatedDateTime | UserField::ExternalUserStateChangeDateTime => FieldKind::DateTime,
            UserField::Id => FieldKind::Guid,
            _ => FieldKind::String,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Guid,
    Boolean,
    DateTime,
}

/// Collections of strings on a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringCollection {
    OtherMails,
    ProxyAddresses,
}

impl StringCollection {
    pub fn graph_name(&self) -> &'static str {
        match self {
            StringCollection::OtherMails => "otherMails",
            StringCollection::ProxyAddresses => "proxyAddresses",
        }
    }

    pub fn from_graph_name(name: &str) -> Option<Self> {
        [StringCollection::OtherMails, StringCollection::ProxyAddresses].into_iter().find(|c| c.graph_name().eq_ignore_ascii_case(name))
    }
}

/// Properties of `objectIdentity` usable inside `identities/any(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityField {
    SignInType,
    Issuer,
    IssuerAssignedId,
}

impl IdentityField {
    pub fn from_graph_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "signintype" => Some(IdentityField::SignInType),
            "issuer" => Some(IdentityField::Issuer),
            "issuerassignedid" => Some(IdentityField::IssuerAssignedId),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Boolean(bool),
    DateTime(DateTime<Utc>),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

/// A predicate on one string value (the lambda body of `any()` on a string collection).
#[derive(Debug, Clone, PartialEq)]
pub enum StringPredicate {
    Compare(CompareOp, String),
    StartsWith(String),
    EndsWith(String),
    In(Vec<String>),
}

/// A predicate on one `objectIdentity`: a conjunction of equalities (Graph allows only `eq` and `and` here).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityPredicate {
    pub equals: Vec<(IdentityField, String)>,
}

/// `And` and `Or` are n-ary and built by [`UserFilter::and`] / [`UserFilter::or`], which never
/// nest a connective in one of its own kind: `a and b and c` is one node of three, so long chains
/// stay flat and only parentheses (bounded while parsing) make the tree deeper.
#[derive(Debug, Clone, PartialEq)]
pub enum UserFilter {
    And(Vec<UserFilter>),
    Or(Vec<UserFilter>),
    Not(Box<UserFilter>),
    Compare {
        field: UserField,
        op: CompareOp,
        value: Literal,
    },
    In {
        field: UserField,
        values: Vec<Literal>,
    },
    StartsWith {
        field: UserField,
        prefix: String,
    },
    EndsWith {
        field: UserField,
        suffix: String,
    },
    AnyString {
        collection: StringCollection,
        predicate: StringPredicate,
    },
    AnyIdentity(IdentityPredicate),
    /// `otherMails/$count eq 0` and friends (advanced queries).
    CollectionCount {
        collection: StringCollection,
        op: CompareOp,
        count: u32,
    },
    /// `$search="displayName:wa"`: some word of the property starts with the term (Graph's
    /// tokenized search). Produced by `$search`, never by `$filter`.
    Search {
        field: UserField,
        term: String,
    },
}

impl UserFilter {
    /// Both hold; joins into an existing `And` rather than nesting.
    pub fn and(self, other: UserFilter) -> UserFilter {
        let mut items = match self {
            UserFilter::And(items) => items,
            single => vec![single],
        };
        match other {
            UserFilter::And(more) => items.extend(more),
            single => items.push(single),
        }
        UserFilter::And(items)
    }

    /// Either holds; joins into an existing `Or` rather than nesting.
    pub fn or(self, other: UserFilter) -> UserFilter {
        let mut items = match self {
            UserFilter::Or(items) => items,
            single => vec![single],
        };
        match other {
            UserFilter::Or(more) => items.extend(more),
            single => items.push(single),
        }
        UserFilter::Or(items)
    }

    /// Every node, parents before children and left to right, walked with an explicit stack.
    fn nodes(&self) -> impl Iterator<Item = &UserFilter> {
        let mut pending = vec![self];
        std::iter::from_fn(move || {
            let node = pending.pop()?;
            match node {
                UserFilter::And(items) | UserFilter::Or(items) => pending.extend(items.iter().rev()),
                UserFilter::Not(inner) => pending.push(inner),
                _ => {}
            }
            Some(node)
        })
    }

    /// True when any node of the tree satisfies `test`.
    pub fn any_node(&self, test: &dyn Fn(&UserFilter) -> bool) -> bool {
        self.nodes().any(test)
    }

    /// The first operator Graph serves only as an advanced query (`ConsistencyLevel: eventual`
    /// and `$count=true`, contract §6.4), named as Graph's refusal names it.
    pub fn advanced_operator(&self) -> Option<&'static str> {
        self.nodes().find_map(|node| match node {
            UserFilter::Not(_) => Some("not"),
            UserFilter::EndsWith { .. } | UserFilter::AnyString { predicate: StringPredicate::EndsWith(_), .. } => Some("endsWith"),
            UserFilter::CollectionCount { .. } => Some("$count"),
            UserFilter::Compare { op: CompareOp::Ne, .. } => Some("ne"),
            _ => None,
        })
    }

    pub fn needs_advanced_query(&self) -> bool {
        self.advanced_operator().is_some()
    }
}

/// Sort keys Graph offers on `/users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserOrder {
    pub field: UserField,
    pub descending: bool,
}

/// One page request against the user store.
#[derive(Debug, Clone, PartialEq)]
pub struct UserQuery {
    pub filter: Option<UserFilter>,
    pub order: Option<UserOrder>,
    /// Page size, already clamped to Graph's limits.
    pub top: u32,
    /// Opaque continuation from the previous page (the store's own format).
    pub after: Option<String>,
}

/// Single-valued group properties `$filter` can compare on `/groups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupField {
    Id,
    DisplayName,
    Description,
    Mail,
    MailNickname,
    MailEnabled,
    SecurityEnabled,
    Visibility,
    CreatedDateTime,
}

impl GroupField {
    pub const ALL: [GroupField; 9] = [
        GroupField::Id,
        GroupField::DisplayName,
        GroupField::Description,
        GroupField::Mail,
        GroupField::MailNickname,
        GroupField::MailEnabled,
        GroupField::SecurityEnabled,
        GroupField::Visibility,
        GroupField::CreatedDateTime,
    ];

    pub fn graph_name(&self) -> &'static str {
        match self {
            GroupField::Id => "id",
            GroupField::DisplayName => "displayName",
            GroupField::Description => "description",
            GroupField::Mail => "mail",
            GroupField::MailNickname => "mailNickname",
            GroupField::MailEnabled => "mailEnabled",
            GroupField::SecurityEnabled => "securityEnabled",
            GroupField::Visibility => "visibility",
            GroupField::CreatedDateTime => "createdDateTime",
        }
    }

    pub fn from_graph_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.graph_name().eq_ignore_ascii_case(name))
    }

    pub fn kind(&self) -> FieldKind {
        match self {
            GroupField::MailEnabled | GroupField::SecurityEnabled => FieldKind::Boolean,
            GroupField::CreatedDateTime => FieldKind::DateTime,
            GroupField::Id => FieldKind::Guid,
            _ => FieldKind::String,
        }
    }
}

/// The typed query over groups that `$filter` on `/groups` parses into; `And` and `Or` are n-ary
/// and flat, as in [`UserFilter`].
#[derive(Debug, Clone, PartialEq)]
pub enum GroupFilter {
    And(Vec<GroupFilter>),
    Or(Vec<GroupFilter>),
    Not(Box<GroupFilter>),
    Compare {
        field: GroupField,
        op: CompareOp,
        value: Literal,
    },
    In {
        field: GroupField,
        values: Vec<Literal>,
    },
    StartsWith {
        field: GroupField,
        prefix: String,
    },
    /// `endsWith(mail,'@contoso.com')`: an advanced query on `mail` and `mailNickname`.
    EndsWith {
        field: GroupField,
        suffix: String,
    },
    /// `groupTypes/any(c:c eq 'Unified')`.
    AnyGroupType(StringPredicate),
    /// `$search="displayName:wa"`, as [`UserFilter::Search`]. Produced by `$search`, never by `$filter`.
    Search {
        field: GroupField,
        term: String,
    },
}

impl GroupFilter {
    /// Both hold; joins into an existing `And` rather than nesting.
    pub fn and(self, other: GroupFilter) -> GroupFilter {
        let mut items = match self {
            GroupFilter::And(items) => items,
            single => vec![single],
        };
        match other {
            GroupFilter::And(more) => items.extend(more),
            single => items.push(single),
        }
        GroupFilter::And(items)
    }

    /// Either holds; joins into an existing `Or` rather than nesting.
    pub fn or(self, other: GroupFilter) -> GroupFilter {
        let mut items = match self {
            GroupFilter::Or(items) => items,
            single => vec![single],
        };
        match other {
            GroupFilter::Or(more) => items.extend(more),
            single => items.push(single),
        }
        GroupFilter::Or(items)
    }

    /// The first operator Graph serves only as an advanced query, named as in Graph's refusal:
    /// `not`, `ne` and `endsWith` on groups as on users (contract §6.4). Walks with an explicit stack.
    pub fn advanced_operator(&self) -> Option<&'static str> {
        let mut pending = vec![self];
        while let Some(node) = pending.pop() {
            match node {
                GroupFilter::And(items) | GroupFilter::Or(items) => pending.extend(items.iter().rev()),
                GroupFilter::Not(_) => return Some("not"),
                GroupFilter::EndsWith { .. } | GroupFilter::AnyGroupType(StringPredicate::EndsWith(_)) => return Some("endsWith"),
                GroupFilter::Compare { op: CompareOp::Ne, .. } => return Some("ne"),
                _ => {}
            }
        }
        None
    }

    pub fn needs_advanced_query(&self) -> bool {
        self.advanced_operator().is_some()
    }
}

/// `$orderby` on `/groups`: Graph sorts groups by `displayName` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOrder {
    pub descending: bool,
}

/// One page request against the group store; groups are listed in id order, or by display
/// name (then id) with an order.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupQuery {
    pub filter: Option<GroupFilter>,
    pub order: Option<GroupOrder>,
    /// Page size, already clamped to Graph's limits.
    pub top: u32,
    /// Opaque continuation from the previous page.
    pub after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(value: &str) -> UserFilter {
        UserFilter::Compare { field: UserField::Mail, op: CompareOp::Eq, value: Literal::String(value.into()) }
    }

    fn group_mail(value: &str) -> GroupFilter {
        GroupFilter::Compare { field: GroupField::Mail, op: CompareOp::Eq, value: Literal::String(value.into()) }
    }

    #[test]
    fn connectives_join_flat() {
        let (a, b, c, d) = (mail("a"), mail("b"), mail("c"), mail("d"));
        assert_eq!(
            a.clone().and(b.clone()).and(c.clone().and(d.clone())),
            UserFilter::And(vec![a.clone(), b.clone(), c.clone(), d.clone()])
        );
        assert_eq!(a.clone().or(b.clone()).or(c.clone()), UserFilter::Or(vec![a.clone(), b.clone(), c.clone()]));
        // A different connective is an operand, not merged.
        assert_eq!(a.clone().or(b.clone()).and(c.clone()), UserFilter::And(vec![UserFilter::Or(vec![a, b]), c]));
        let (a, b, c) = (group_mail("a"), group_mail("b"), group_mail("c"));
        assert_eq!(a.clone().and(b.clone()).and(c.clone()), GroupFilter::And(vec![a.clone(), b.clone(), c.clone()]));
        assert_eq!(a.clone().or(b.clone().or(c.clone())), GroupFilter::Or(vec![a, b, c]));
    }

    /// However long, a chain is one node: walking and dropping it needs no deep recursion.
    #[test]
    fn long_chains_stay_one_level_deep() {
        let mut chain = mail("0");
        for i in 1..200_000 {
            chain = chain.and(mail(&i.to_string()));
        }
        assert!(matches!(&chain, UserFilter::And(items) if items.len() == 200_000));
        assert_eq!(chain.advanced_operator(), None);
        let chain = chain.and(UserFilter::Not(Box::new(mail("x"))));
        assert_eq!(chain.advanced_operator(), Some("not"));
        assert!(chain.any_node(&|node| node == &mail("199999")));
        drop(chain);
        let mut groups = group_mail("0");
        for i in 1..200_000 {
            groups = groups.or(group_mail(&i.to_string()));
        }
        let groups = groups.or(GroupFilter::Compare { field: GroupField::Mail, op: CompareOp::Ne, value: Literal::Null });
        assert_eq!(groups.advanced_operator(), Some("ne"));
    }

    #[test]
    fn the_first_advanced_operator_in_reading_order_is_named() {
        let ends = UserFilter::EndsWith { field: UserField::Mail, suffix: "@x".into() };
        let ne = UserFilter::Compare { field: UserField::Mail, op: CompareOp::Ne, value: Literal::Null };
        assert_eq!(mail("a").or(ends.clone()).and(ne.clone()).advanced_operator(), Some("endsWith"));
        assert_eq!(ne.and(ends).advanced_operator(), Some("ne"));
    }
}
