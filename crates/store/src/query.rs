//! `$filter` trees and keyset paging turned into SQL shared by both engines. Values only ever
//! travel as bound parameters; the SQL text is built from fixed column names and operators.
//!
//! Every predicate this module writes is two-valued (never SQL NULL), so `not(...)` means what
//! OData means: `not(mail eq 'x')` holds for a user without `mail`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use guestlist_domain::filter::{
    CompareOp, IdentityField, IdentityPredicate, Literal, StringCollection, StringPredicate, UserField, UserFilter, UserOrder, UserQuery,
};
use guestlist_domain::ids::TenantId;
use guestlist_domain::User;
use serde::{Deserialize, Serialize};

use crate::schema::{fold, stored_time, SqlValue, USER_SELECT};
use crate::{StoreError, StoreResult, UserPage};

/// A SQL fragment under construction with its bound values; `$N` numbers follow `values`.
#[derive(Debug, Default)]
pub(crate) struct SqlBuilder {
    pub sql: String,
    pub values: Vec<SqlValue>,
    /// The placeholder of the tenant id, once bound, so side-table lookups can name it and use
    /// their `(tenant_id, value)` indexes instead of probing row by row.
    pub tenant: Option<String>,
}

impl SqlBuilder {
    /// Binds a value and returns its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<SqlValue>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }
}

pub(crate) const NEVER: &str = "(1 = 0)";
pub(crate) const ALWAYS: &str = "(1 = 1)";

/// The operands of an n-ary `AND`/`OR`, each written by `write`, in one parenthesised list.
/// Recursion follows the filter's nesting, which the parser bounds; chains are flat.
pub(crate) fn joined<F>(sql: &mut SqlBuilder, items: &[F], connective: &str, write: FilterSql<F>) -> StoreResult<String> {
    let parts = items.iter().map(|item| write(sql, item)).collect::<StoreResult<Vec<_>>>()?;
    Ok(format!("({})", parts.join(connective)))
}

pub(crate) fn operator(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Ge => ">=",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Lt => "<",
    }
}

/// How a user property is stored, for comparisons.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// Text compared case-insensitively. `folded` names a column already lower-cased by
    /// [`fold`] (so an index serves it); otherwise both sides go through SQL `lower()`.
    Text {
        column: &'static str,
        folded: Option<&'static str>,
        nullable: bool,
    },
    Guid(&'static str),
    Boolean(&'static str),
    Time {
        column: &'static str,
        nullable: bool,
    },
}

fn column(field: UserField) -> Column {
    let text = |column, nullable| Column::Text { column, folded: None, nullable };
    match field {
        UserField::Id => Column::Guid("id"),
        UserField::DisplayName => text("display_name", false),
        UserField::GivenName => text("given_name", true),
        UserField::Surname => text("surname", true),
        UserField::Mail => Column::Text { column: "mail", folded: Some("mail_lower"), nullable: true },
        UserField::UserPrincipalName => Column::Text { column: "user_principal_name", folded: Some("upn_lower"), nullable: false },
        UserField::UserType => text("user_type", false),
        UserField::CreationType => text("creation_type", true),
        UserField::ExternalUserState => text("external_user_state", true),
        UserField::ExternalUserStateChangeDateTime => Column::Time { column: "external_user_state_change_date_time", nullable: true },
        UserField::AccountEnabled => Column::Boolean("account_enabled"),
        UserField::CreatedDateTime => Column::Time { column: "created_date_time", nullable: false },
        UserField::CompanyName => text("company_name", true),
        UserField::JobTitle => text("job_title", true),
        UserField::Department => text("department", true),
    }
}

impl Column {
    fn name(&self) -> &'static str {
        match *self {
            Column::Text { column, .. } | Column::Guid(column) | Column::Boolean(column) | Column::Time { column, .. } => column,
        }
    }

    fn nullable(&self) -> bool {
        matches!(self, Column::Text { nullable: true, .. } | Column::Time { nullable: true, .. })
    }

    /// The case-folded column expression and the placeholder of `value` folded the same way.
    fn folded_operands(&self, sql: &mut SqlBuilder, value: &str) -> (String, String) {
        match *self {
            Column::Text { folded: Some(folded), .. } => (folded.to_string(), sql.bind(fold(value))),
            Column::Guid(column) => (column.to_string(), sql.bind(fold(value))),
            _ => (format!("lower({})", self.name()), format!("lower({})", sql.bind(value))),
        }
    }

    /// `left` made two-valued: a null property matches `ne` and fails every other comparison.
    fn null_safe(&self, op: CompareOp, predicate: String) -> String {
        match (self.nullable(), op) {
            (false, _) => format!("({predicate})"),
            (true, CompareOp::Ne) => format!("({} IS NULL OR {predicate})", self.name()),
            (true, _) => format!("({} IS NOT NULL AND {predicate})", self.name()),
        }
    }
}

fn unsupported(field: UserField, what: &str) -> StoreError {
    StoreError::InvalidQuery(format!(
        "Unsupported or invalid query filter clause specified for property '{}' of resource 'User': {what}.",
        field.graph_name()
    ))
}

fn compare(sql: &mut SqlBuilder, field: UserField, op: CompareOp, value: &Literal) -> StoreResult<String> {
    let column = column(field);
    let predicate = match (column, value) {
        (_, Literal::Null) => {
            return Ok(match op {
                CompareOp::Eq => format!("({} IS NULL)", column.name()),
                CompareOp::Ne => format!("({} IS NOT NULL)", column.name()),
                // OData: an ordering comparison with null is false.
                _ => NEVER.to_string(),
            });
        }
        (Column::Text { .. } | Column::Guid(_), Literal::String(text)) => {
            let (left, right) = column.folded_operands(sql, text);
            format!("{left} {} {right}", operator(op))
        }
        (Column::Boolean(name), Literal::Boolean(flag)) => format!("{name} {} {}", operator(op), sql.bind(*flag)),
        (Column::Time { column: name, .. }, Literal::DateTime(time)) => format!("{name} {} {}", operator(op), sql.bind(stored_time(*time))),
        _ => return Err(unsupported(field, "the value has the wrong type")),
    };
    Ok(column.null_safe(op, predicate))
}

/// `%`, `_` and the escape character itself match literally in a LIKE pattern.
pub(crate) fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

enum Affix<'a> {
    Prefix(&'a str),
    Suffix(&'a str),
}

impl Affix<'_> {
    fn pattern(&self) -> String {
        match self {
            Affix::Prefix(prefix) => format!("{}%", like_escaped(prefix)),
            Affix::Suffix(suffix) => format!("%{}", like_escaped(suffix)),
        }
    }
}

fn affix(sql: &mut SqlBuilder, field: UserField, affix: Affix<'_>) -> StoreResult<String> {
    let column = column(field);
    if !matches!(column, Column::Text { .. } | Column::Guid(_)) {
        return Err(unsupported(field, "startsWith and endsWith apply to text"));
    }
    let (left, right) = column.folded_operands(sql, &affix.pattern());
    Ok(column.null_safe(CompareOp::Eq, format!("{left} LIKE {right} ESCAPE '\\'")))
}

/// Characters Graph's search tokenizer splits words at (`$search` on displayName and mail).
const WORD_SEPARATORS: [&str; 5] = [" ", ".", "-", "@", "\\_"];

/// `$search` on users and groups: the property starts with the term, or a word inside it does.
/// `like` writes the property's `LIKE` test against one (escaped) pattern; no null guard.
pub(crate) fn word_prefix(sql: &mut SqlBuilder, term: &str, mut like: impl FnMut(&mut SqlBuilder, &str) -> String) -> String {
    let escaped = like_escaped(term);
    let patterns = std::iter::once(format!("{escaped}%")).chain(WORD_SEPARATORS.iter().map(|separator| format!("%{separator}{escaped}%")));
    let alternatives: Vec<String> = patterns.map(|pattern| like(sql, &pattern)).collect();
    format!("({})", alternatives.join(" OR "))
}

fn user_word_prefix(sql: &mut SqlBuilder, field: UserField, term: &str) -> StoreResult<String> {
    let column = column(field);
    if !matches!(column, Column::Text { .. }) {
        return Err(unsupported(field, "$search applies to text"));
    }
    let matched = word_prefix(sql, term, |sql, pattern| {
        let (left, right) = column.folded_operands(sql, pattern);
        format!("{left} LIKE {right} ESCAPE '\\'")
    });
    Ok(column.null_safe(CompareOp::Eq, matched))
}

struct SideTable {
    table: &'static str,
    /// The folded column `any()` predicates compare.
    value_column: &'static str,
}

fn side_table(collection: StringCollection) -> SideTable {
    match collection {
        StringCollection::OtherMails => SideTable { table: "user_other_mails", value_column: "address_lower" },
        // `proxyAddresses/any(x:x eq 'SMTP:a@b.com')` compares the whole stored string.
        StringCollection::ProxyAddresses => SideTable { table: "user_proxy_addresses", value_column: "address_full_lower" },
    }
}

fn rows_of_user(table: &str) -> String {
    format!("FROM {table} c WHERE c.tenant_id = users.tenant_id AND c.user_id = users.id")
}

/// `users.id IN (matching side-table rows)`: uncorrelated, so the database looks the value up
/// in the side table's `(tenant_id, value)` index first, rather than testing every user of the
/// tenant (what a correlated `EXISTS` does).
fn users_with(sql: &SqlBuilder, table: &str, condition: &str) -> String {
    let tenant = sql.tenant.as_deref().unwrap_or("users.tenant_id");
    format!("users.id IN (SELECT c.user_id FROM {table} c WHERE c.tenant_id = {tenant} AND {condition})")
}

fn any_string(sql: &mut SqlBuilder, collection: StringCollection, predicate: &StringPredicate) -> String {
    let side = side_table(collection);
    let value = format!("c.{}", side.value_column);
    let condition = match predicate {
        StringPredicate::Compare(op, text) => format!("{value} {} {}", operator(*op), sql.bind(fold(text))),
        StringPredicate::StartsWith(prefix) => format!("{value} LIKE {} ESCAPE '\\'", sql.bind(fold(&Affix::Prefix(prefix).pattern()))),
        StringPredicate::EndsWith(suffix) => format!("{value} LIKE {} ESCAPE '\\'", sql.bind(fold(&Affix::Suffix(suffix).pattern()))),
        StringPredicate::In(texts) if texts.is_empty() => NEVER.to_string(),
        StringPredicate::In(texts) => {
            let placeholders: Vec<String> = texts.iter().map(|text| sql.bind(fold(text))).collect();
            format!("{value} IN ({})", placeholders.join(", "))
        }
    };
    users_with(sql, side.table, &condition)
}

fn any_identity(sql: &mut SqlBuilder, predicate: &IdentityPredicate) -> String {
    // All equalities hold on one and the same identity.
    let equalities: Vec<String> = predicate
        .equals
        .iter()
        .map(|(field, text)| match field {
            IdentityField::SignInType => format!("lower(c.sign_in_type) = lower({})", sql.bind(text.as_str())),
            IdentityField::Issuer => format!("c.issuer_lower = {}", sql.bind(fold(text))),
            IdentityField::IssuerAssignedId => format!("c.issuer_assigned_id_lower = {}", sql.bind(fold(text))),
        })
        .collect();
    let condition = if equalities.is_empty() { "1 = 1".to_string() } else { equalities.join(" AND ") };
    users_with(sql, "user_identities", &condition)
}

/// Appends the SQL of `filter` to `sql`: a boolean expression over the `users` table.
pub(crate) fn filter_sql(sql: &mut SqlBuilder, filter: &UserFilter) -> StoreResult<String> {
    Ok(match filter {
        UserFilter::And(items) if items.is_empty() => ALWAYS.to_string(),
        UserFilter::Or(items) if items.is_empty() => NEVER.to_string(),
        UserFilter::And(items) => joined(sql, items, " AND ", filter_sql)?,
        UserFilter::Or(items) => joined(sql, items, " OR ", filter_sql)?,
        UserFilter::Not(inner) => format!("(NOT {})", filter_sql(sql, inner)?),
        UserFilter::Compare { field, op, value } => compare(sql, *field, *op, value)?,
        UserFilter::In { values, .. } if values.is_empty() => NEVER.to_string(),
        UserFilter::In { field, values } => {
            let alternatives = values.iter().map(|value| compare(sql, *field, CompareOp::Eq, value)).collect::<StoreResult<Vec<_>>>()?;
            format!("({})", alternatives.join(" OR "))
        }
        UserFilter::StartsWith { field, prefix } => affix(sql, *field, Affix::Prefix(prefix))?,
        UserFilter::EndsWith { field, suffix } => affix(sql, *field, Affix::Suffix(suffix))?,
        UserFilter::AnyString { collection, predicate } => any_string(sql, *collection, predicate),
        UserFilter::AnyIdentity(predicate) => any_identity(sql, predicate),
        UserFilter::Search { field, term } => user_word_prefix(sql, *field, term)?,
        UserFilter::CollectionCount { collection, op, count } => {
            let side = side_table(*collection);
            format!("((SELECT COUNT(*) {}) {} {})", rows_of_user(side.table), operator(*op), sql.bind(i64::from(*count)))
        }
    })
}

/// The SQL of one filter tree (users' or groups'), appended to `sql`'s bound values.
pub(crate) type FilterSql<F> = fn(&mut SqlBuilder, &F) -> StoreResult<String>;

/// `WHERE` over one tenant's rows and the optional filter, which `write` turns into SQL.
pub(crate) fn tenant_and_filter<F>(sql: &mut SqlBuilder, tenant: TenantId, filter: Option<&F>, write: FilterSql<F>) -> StoreResult<String> {
    let tenant = sql.bind(tenant);
    sql.tenant = Some(tenant.clone());
    Ok(match filter {
        Some(filter) => format!("WHERE tenant_id = {tenant} AND {}", write(sql, filter)?),
        None => format!("WHERE tenant_id = {tenant}"),
    })
}

/// `$count`: how many of one tenant's rows of `table` match the filter.
pub(crate) fn count_sql<F>(table: &str, tenant: TenantId, filter: Option<&F>, write: FilterSql<F>) -> StoreResult<SqlBuilder> {
    let mut sql = SqlBuilder::default();
    let condition = tenant_and_filter(&mut sql, tenant, filter, write)?;
    sql.sql = format!("SELECT COUNT(*) AS count FROM {table} {condition}");
    Ok(sql)
}

pub(crate) fn count_users_sql(tenant: TenantId, filter: Option<&UserFilter>) -> StoreResult<SqlBuilder> {
    count_sql("users", tenant, filter, filter_sql)
}

// ---- keyset paging -------------------------------------------------------------------------

/// The sort key of one row, as a continuation token carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum SortValue {
    Text(String),
    Time(DateTime<Utc>),
    Boolean(bool),
}

impl From<SortValue> for SqlValue {
    fn from(value: SortValue) -> Self {
        match value {
            SortValue::Text(text) => text.into(),
            SortValue::Time(time) => time.into(),
            SortValue::Boolean(flag) => flag.into(),
        }
    }
}

/// Where the previous page ended. Serialized as base64url JSON; it names its order so a token
/// can't be replayed against another one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Continuation {
    pub order: Option<String>,
    pub descending: bool,
    pub key: Option<SortValue>,
    pub id: String,
}

impl Continuation {
    pub(crate) fn encode(&self) -> StoreResult<String> {
        let json = serde_json::to_vec(self).map_err(|e| StoreError::Database(format!("cannot encode continuation: {e}")))?;
        Ok(URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads a token, which must have been made for the same order (`None`: by id) and direction.
    pub(crate) fn decode(token: &str, order: Option<&str>, descending: bool) -> StoreResult<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
        let continuation: Continuation = serde_json::from_slice(&bytes).map_err(|_| invalid_token())?;
        if continuation.order.as_deref() != order || continuation.descending != descending {
            return Err(invalid_token());
        }
        Ok(continuation)
    }

    /// The rows after this one in the order by `expression` (`None`: by id alone), then id.
    pub(crate) fn after_condition(self, sql: &mut SqlBuilder, expression: Option<&str>) -> StoreResult<String> {
        let beyond = if self.descending { "<" } else { ">" };
        let id = sql.bind(self.id);
        match (expression, self.key) {
            (Some(expression), Some(value)) => {
                let value = sql.bind(value);
                Ok(format!("({expression} {beyond} {value} OR ({expression} = {value} AND id {beyond} {id}))"))
            }
            (None, None) => Ok(format!("id {beyond} {id}")),
            _ => Err(invalid_token()),
        }
    }
}

/// `ORDER BY` of a keyset order: by `expression` if any, always then by id.
pub(crate) fn keyset_order_by(expression: Option<&str>, descending: bool) -> String {
    let direction = if descending { "DESC" } else { "ASC" };
    match expression {
        Some(expression) => format!("{expression} {direction}, id {direction}"),
        None => format!("id {direction}"),
    }
}

/// The SQL expression a sort field orders by; `None` for the id, which every order ends with.
fn sort_expression(field: UserField) -> StoreResult<Option<&'static str>> {
    Ok(Some(match field {
        UserField::Id => return Ok(None),
        UserField::DisplayName => "display_name",
        UserField::UserPrincipalName => "upn_lower",
        UserField::CreatedDateTime => "created_date_time",
        UserField::AccountEnabled => "account_enabled",
        UserField::UserType => "user_type",
        // Nullable text sorts as '' so every row has a key to continue from.
        UserField::Mail => "COALESCE(mail_lower, '')",
        UserField::GivenName => "COALESCE(given_name, '')",
        UserField::Surname => "COALESCE(surname, '')",
        UserField::CreationType => "COALESCE(creation_type, '')",
        UserField::ExternalUserState => "COALESCE(external_user_state, '')",
        UserField::CompanyName => "COALESCE(company_name, '')",
        UserField::JobTitle => "COALESCE(job_title, '')",
        UserField::Department => "COALESCE(department, '')",
        UserField::ExternalUserStateChangeDateTime => {
            return Err(StoreError::InvalidQuery(format!("Sorting by '{}' is not supported.", field.graph_name())))
        }
    }))
}

/// The value [`sort_expression`] computes, read from a user.
fn sort_value(field: UserField, user: &User) -> SortValue {
    let text = |value: Option<&str>| SortValue::Text(value.unwrap_or_default().to_string());
    match field {
        UserField::Id => SortValue::Text(user.id.to_string()),
        UserField::DisplayName => text(Some(&user.display_name)),
        UserField::UserPrincipalName => SortValue::Text(user.user_principal_name.normalized()),
        UserField::CreatedDateTime => SortValue::Time(user.created_date_time),
        UserField::ExternalUserStateChangeDateTime => {
            user.external_user_state_change_date_time.map(SortValue::Time).unwrap_or(SortValue::Text(String::new()))
        }
        UserField::AccountEnabled => SortValue::Boolean(user.account_enabled),
        UserField::UserType => text(Some(user.user_type.as_str())),
        UserField::Mail => SortValue::Text(user.mail.as_deref().map(fold).unwrap_or_default()),
        UserField::GivenName => text(user.given_name.as_deref()),
        UserField::Surname => text(user.surname.as_deref()),
        UserField::CreationType => text(user.creation_type.as_deref()),
        UserField::ExternalUserState => text(user.external_user_state.map(|state| state.as_str())),
        UserField::CompanyName => text(user.company_name.as_deref()),
        UserField::JobTitle => text(user.job_title.as_deref()),
        UserField::Department => text(user.department.as_deref()),
    }
}

/// The order's sort expression, if it sorts by more than the id.
fn keyed_order(order: Option<UserOrder>) -> StoreResult<Option<(&'static str, UserField)>> {
    Ok(match order {
        Some(order) => sort_expression(order.field)?.map(|expression| (expression, order.field)),
        None => None,
    })
}

fn order_name(order: Option<UserOrder>) -> Option<String> {
    order.map(|o| o.field.graph_name().to_string())
}

pub(crate) fn invalid_token() -> StoreError {
    StoreError::InvalidQuery("The continuation token is not valid for this query.".into())
}

fn decode_continuation(token: &str, order: Option<UserOrder>) -> StoreResult<Continuation> {
    Continuation::decode(token, order_name(order).as_deref(), order.is_some_and(|o| o.descending))
}

/// The page query: one row more than `top`, so the store knows whether another page follows.
pub(crate) fn list_users_sql(tenant: TenantId, query: &UserQuery) -> StoreResult<SqlBuilder> {
    let mut sql = SqlBuilder::default();
    let mut condition = tenant_and_filter(&mut sql, tenant, query.filter.as_ref(), filter_sql)?;
    let expression = keyed_order(query.order)?.map(|(expression, _)| expression);
    if let Some(token) = &query.after {
        let after = decode_continuation(token, query.order)?.after_condition(&mut sql, expression)?;
        condition.push_str(&format!(" AND {after}"));
    }
    let order_by = keyset_order_by(expression, query.order.is_some_and(|o| o.descending));
    let limit = sql.bind(i64::from(query.top.max(1)) + 1);
    sql.sql = format!("{} {condition} ORDER BY {order_by} LIMIT {limit}", *USER_SELECT);
    Ok(sql)
}

/// Cuts the `top + 1` rows [`list_users_sql`] fetched into a page and its continuation.
pub(crate) fn page_of(mut users: Vec<User>, query: &UserQuery) -> StoreResult<UserPage> {
    let top = query.top.max(1) as usize;
    if users.len() <= top {
        return Ok(UserPage { users, next: None });
    }
    users.truncate(top);
    let next = match users.last() {
        Some(last) => {
            let key = keyed_order(query.order)?.map(|(_, field)| sort_value(field, last));
            let continuation = Continuation {
                order: order_name(query.order),
                descending: query.order.is_some_and(|o| o.descending),
                key,
                id: last.id.to_string(),
            };
            Some(continuation.encode()?)
        }
        None => None,
    };
    Ok(UserPage { users, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_of(filter: &UserFilter) -> SqlBuilder {
        let mut sql = SqlBuilder::default();
        sql.sql = filter_sql(&mut sql, filter).unwrap();
        sql
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let filter = UserFilter::Compare {
            field: UserField::DisplayName,
            op: CompareOp::Eq,
            value: Literal::String("O'Brien; DROP TABLE users".into()),
        };
        let sql = sql_of(&filter);
        assert_eq!(sql.sql, "(lower(display_name) = lower($1))");
        assert_eq!(sql.values, vec![SqlValue::from("O'Brien; DROP TABLE users")]);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escaped(r"50%_off\"), r"50\%\_off\\");
        let sql = sql_of(&UserFilter::StartsWith { field: UserField::Mail, prefix: "A_b%".into() });
        assert_eq!(sql.sql, r"(mail IS NOT NULL AND mail_lower LIKE $1 ESCAPE '\')");
        assert_eq!(sql.values, vec![SqlValue::from(r"a\_b\%%")]);
    }

    #[test]
    fn chains_are_one_flat_list() {
        let mail = |value: &str| UserFilter::Compare { field: UserField::Id, op: CompareOp::Eq, value: Literal::String(value.into()) };
        let sql = sql_of(&mail("a").and(mail("b")).and(mail("c").or(mail("d"))));
        assert_eq!(sql.sql, "((id = $1) AND (id = $2) AND ((id = $3) OR (id = $4)))");
        assert_eq!(sql_of(&UserFilter::And(vec![])).sql, ALWAYS);
        assert_eq!(sql_of(&UserFilter::Or(vec![])).sql, NEVER);
    }

    #[test]
    fn ne_on_a_nullable_property_holds_for_null() {
        let sql = sql_of(&UserFilter::Compare { field: UserField::Mail, op: CompareOp::Ne, value: Literal::String("a@b.com".into()) });
        assert_eq!(sql.sql, "(mail IS NULL OR mail_lower <> $1)");
    }

    #[test]
    fn tokens_are_tied_to_their_order() {
        let order = UserOrder { field: UserField::DisplayName, descending: false };
        let continuation =
            Continuation { order: order_name(Some(order)), descending: false, key: Some(SortValue::Text("x".into())), id: "i".into() };
        let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&continuation).unwrap());
        assert!(decode_continuation(&token, Some(order)).is_ok());
        assert!(matches!(decode_continuation(&token, None), Err(StoreError::InvalidQuery(_))));
        assert!(matches!(decode_continuation("not a token", Some(order)), Err(StoreError::InvalidQuery(_))));
    }
}
