//! Groups and memberships: the SQL both engines share, the row mapping, `$filter` on groups, and
//! keyset paging by object id. Values only ever travel as bound parameters.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use guestlist_domain::filter::{CompareOp, GroupField, GroupFilter, GroupOrder, GroupQuery, Literal, StringPredicate};
use guestlist_domain::group::{DirectoryObject, Group, Visibility};
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::User;

use crate::query::{
    count_sql, joined, keyset_order_by, like_escaped, operator, tenant_and_filter, word_prefix, Continuation, SortValue, SqlBuilder,
    ALWAYS, NEVER,
};
use crate::schema::{
    corrupt, fold, from_json, insert_statement, object_id, set_list, stored_time, to_json, RowAccess, SqlValue, Statement, USER_SELECT,
};
use crate::{StoreError, StoreResult};

/// A group to write: a new one, or a new state of an existing one whose `version` is the version
/// the caller read (the write fails with [`Conflict::StaleVersion`](crate::Conflict::StaleVersion) if it moved on).
#[derive(Debug, Clone, PartialEq)]
pub enum GroupWrite {
    Create(Group),
    Update(Group),
}

impl GroupWrite {
    pub fn group(&self) -> &Group {
        match self {
            GroupWrite::Create(group) | GroupWrite::Update(group) => group,
        }
    }
}

/// A page of groups and the continuation for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPage {
    pub groups: Vec<Group>,
    /// Opaque; pass back as `after`. `None` on the last page.
    pub next: Option<String>,
}

/// A page of a group's members (users and groups, in id order) and the continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberPage {
    pub members: Vec<DirectoryObject>,
    pub next: Option<String>,
}

/// One page of a relationship list (members, memberOf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size, already clamped to Graph's limits.
    pub top: u32,
    /// Opaque continuation from the previous page.
    pub after: Option<String>,
}

// ---- rows ----------------------------------------------------------------------------------

/// Every column of `groups` but `version`; `id` and `tenant_id` first so an update keys on them.
const GROUP_COLUMNS: [&str; 12] = [
    "id",
    "tenant_id",
    "display_name",
    "description",
    "mail_nickname",
    "mail",
    "mail_lower",
    "mail_enabled",
    "security_enabled",
    "group_types",
    "visibility",
    "created_date_time",
];
const VERSION_PLACEHOLDER: usize = GROUP_COLUMNS.len() + 1;

/// `SELECT <every group column> FROM groups`; filters refer to the table as `groups`.
static GROUP_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {}, version FROM groups", GROUP_COLUMNS.join(", ")));
static GROUP_INSERT: LazyLock<String> = LazyLock::new(|| {
    let mut columns = GROUP_COLUMNS.to_vec();
    columns.push("version");
    insert_statement("groups", &columns)
});
/// Optimistic concurrency: the row is only rewritten while it still has the version the caller read.
pub(crate) static GROUP_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE groups SET {}, version = version + 1 WHERE id = $1 AND tenant_id = $2 AND version = ${VERSION_PLACEHOLDER}",
        set_list(&GROUP_COLUMNS, 2)
    )
});
pub(crate) const GROUP_EXISTS: &str = "SELECT id FROM groups WHERE id = $1 AND tenant_id = $2";
pub(crate) static GROUP_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND id = $2", *GROUP_SELECT));
const GROUP_TYPE_INSERT: &str = "INSERT INTO group_types (tenant_id, group_id, group_type_lower) VALUES ($1, $2, $3)";
const GROUP_TYPES_DELETE: &str = "DELETE FROM group_types WHERE tenant_id = $1 AND group_id = $2";
/// Memberships in both directions go by cascade.
pub(crate) const GROUP_DELETE: &str = "DELETE FROM groups WHERE tenant_id = $1 AND id = $2";

/// Inserts the membership when the group and the member (a user or a group) exist in the tenant;
/// changes no row otherwise. A second insert of the same pair breaks the primary key.
pub(crate) const MEMBER_INSERT: &str = "INSERT INTO group_members (tenant_id, group_id, member_id, member_user_id, member_group_id) \
     SELECT g.tenant_id, g.id, $3, u.id, mg.id FROM groups g \
     LEFT JOIN users u ON u.tenant_id = g.tenant_id AND u.id = $3 \
     LEFT JOIN groups mg ON mg.tenant_id = g.tenant_id AND mg.id = $3 \
     WHERE g.tenant_id = $1 AND g.id = $2 AND (u.id IS NOT NULL OR mg.id IS NOT NULL)";
pub(crate) const MEMBER_DELETE: &str = "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3";

fn group_values(group: &Group, version: i64) -> StoreResult<Vec<SqlValue>> {
    Ok(vec![
        group.id.into(),
        group.tenant_id.into(),
        group.display_name.as_str().into(),
        group.description.clone().into(),
        group.mail_nickname.as_str().into(),
        group.mail.clone().into(),
        group.mail.as_deref().map(fold).into(),
        group.mail_enabled.into(),
        group.security_enabled.into(),
        to_json(&group.group_types)?.into(),
        group.visibility.map(|v| v.as_str().to_string()).into(),
        stored_time(group.created_date_time).into(),
        version.into(),
    ])
}

/// How a [`GroupWrite`] reaches the database: the statement on the `groups` row (an update must
/// change exactly one row), then the rows of `group_types`.
pub(crate) struct GroupWritePlan {
    pub group_row: Statement,
    pub is_update: bool,
    pub follow_up: Vec<Statement>,
    /// The group as it reads back after the write.
    pub stored: Group,
}

pub(crate) fn plan_group_write(write: &GroupWrite) -> StoreResult<GroupWritePlan> {
    let group = write.group();
    let key = || -> Vec<SqlValue> { vec![group.tenant_id.into(), group.id.into()] };
    let (group_row, is_update, version) = match write {
        GroupWrite::Create(_) => (Statement { sql: GROUP_INSERT.as_str(), values: group_values(group, 1)? }, false, 1),
        GroupWrite::Update(_) => {
            (Statement { sql: GROUP_UPDATE.as_str(), values: group_values(group, group.version)? }, true, group.version + 1)
        }
    };
    let mut follow_up = vec![Statement { sql: GROUP_TYPES_DELETE, values: key() }];
    for group_type in &group.group_types {
        follow_up.push(Statement { sql: GROUP_TYPE_INSERT, values: [key(), vec![fold(group_type).into()]].concat() });
    }
    let stored = Group { version, created_date_time: stored_time(group.created_date_time), ..group.clone() };
    Ok(GroupWritePlan { group_row, is_update, follow_up, stored })
}

pub(crate) fn group_from_row(row: &impl RowAccess) -> StoreResult<Group> {
    let visibility = row
        .opt_text("visibility")?
        .map(|text| Visibility::parse(&text).ok_or_else(|| corrupt("visibility", format!("unknown value {text:?}"))))
        .transpose()?;
    Ok(Group {
        id: object_id(row, "id")?,
        tenant_id: object_id(row, "tenant_id")?,
        display_name: row.text("display_name")?,
        description: row.opt_text("description")?,
        mail_nickname: row.text("mail_nickname")?,
        mail: row.opt_text("mail")?,
        mail_enabled: row.boolean("mail_enabled")?,
        security_enabled: row.boolean("security_enabled")?,
        group_types: from_json(row, "group_types")?,
        visibility,
        created_date_time: row.time("created_date_time")?,
        version: row.int("version")?,
    })
}

// ---- $filter on groups ---------------------------------------------------------------------

/// How a group property is stored, for comparisons.
#[derive(Clone, Copy)]
enum GroupColumn {
    /// Compared case-insensitively through SQL `lower()`, or against a column already folded.
    Text {
        column: &'static str,
        folded: Option<&'static str>,
        nullable: bool,
    },
    Flag(&'static str),
    Time(&'static str),
}

fn group_column(field: GroupField) -> GroupColumn {
    let text = |column, nullable| GroupColumn::Text { column, folded: None, nullable };
    match field {
        GroupField::Id => GroupColumn::Text { column: "id", folded: Some("id"), nullable: false },
        GroupField::DisplayName => text("display_name", false),
        GroupField::Description => text("description", true),
        GroupField::Mail => GroupColumn::Text { column: "mail", folded: Some("mail_lower"), nullable: true },
        GroupField::MailNickname => text("mail_nickname", false),
        GroupField::Visibility => text("visibility", true),
        GroupField::MailEnabled => GroupColumn::Flag("mail_enabled"),
        GroupField::SecurityEnabled => GroupColumn::Flag("security_enabled"),
        GroupField::CreatedDateTime => GroupColumn::Time("created_date_time"),
    }
}

fn unsupported(field: GroupField) -> StoreError {
    StoreError::InvalidQuery(format!(
        "Unsupported or invalid query filter clause specified for property '{}' of resource 'Group'.",
        field.graph_name()
    ))
}

/// `left op right` on text, case-insensitive; a null property matches `ne` and fails every other comparison.
fn text_predicate(sql: &mut SqlBuilder, column: GroupColumn, op: &str, value: &str, negated: bool) -> String {
    let predicate = text_comparison(sql, column, op, value);
    null_guarded(column, negated, predicate)
}

/// `left op right` on text, case-insensitive, without the null guard.
fn text_comparison(sql: &mut SqlBuilder, column: GroupColumn, op: &str, value: &str) -> String {
    let GroupColumn::Text { column, folded, .. } = column else {
        return NEVER.to_string();
    };
    // `%`, `_` and `\` in a LIKE pattern were escaped by `like_escaped`.
    let escape = if op == "LIKE" { " ESCAPE '\\'" } else { "" };
    match folded {
        Some(folded) => format!("{folded} {op} {}{escape}", sql.bind(fold(value))),
        None => format!("lower({column}) {op} lower({}){escape}", sql.bind(value)),
    }
}

/// `predicate` made two-valued: a null property holds for a negated test and fails any other.
fn null_guarded(column: GroupColumn, negated: bool, predicate: String) -> String {
    let GroupColumn::Text { column, nullable, .. } = column else {
        return NEVER.to_string();
    };
    match (nullable, negated) {
        (false, _) => format!("({predicate})"),
        (true, true) => format!("({column} IS NULL OR {predicate})"),
        (true, false) => format!("({column} IS NOT NULL AND {predicate})"),
    }
}

fn compare(sql: &mut SqlBuilder, field: GroupField, op: CompareOp, value: &Literal) -> StoreResult<String> {
    let column = group_column(field);
    Ok(match (column, value) {
        (GroupColumn::Text { column: name, .. } | GroupColumn::Time(name), Literal::Null) => match op {
            CompareOp::Eq => format!("({name} IS NULL)"),
            CompareOp::Ne => format!("({name} IS NOT NULL)"),
            _ => NEVER.to_string(),
        },
        (GroupColumn::Text { .. }, Literal::String(text)) => text_predicate(sql, column, operator(op), text, op == CompareOp::Ne),
        (GroupColumn::Flag(name), Literal::Boolean(flag)) => format!("({name} {} {})", operator(op), sql.bind(*flag)),
        (GroupColumn::Time(name), Literal::DateTime(time)) => format!("({name} {} {})", operator(op), sql.bind(stored_time(*time))),
        _ => return Err(unsupported(field)),
    })
}

fn any_group_type(sql: &mut SqlBuilder, predicate: &StringPredicate) -> String {
    let condition = match predicate {
        StringPredicate::Compare(op, text) => format!("t.group_type_lower {} {}", operator(*op), sql.bind(fold(text))),
        StringPredicate::StartsWith(prefix) => {
            format!("t.group_type_lower LIKE {} ESCAPE '\\'", sql.bind(fold(&format!("{}%", like_escaped(prefix)))))
        }
        StringPredicate::EndsWith(suffix) => {
            format!("t.group_type_lower LIKE {} ESCAPE '\\'", sql.bind(fold(&format!("%{}", like_escaped(suffix)))))
        }
        StringPredicate::In(texts) if texts.is_empty() => NEVER.to_string(),
        StringPredicate::In(texts) => {
            let placeholders: Vec<String> = texts.iter().map(|text| sql.bind(fold(text))).collect();
            format!("t.group_type_lower IN ({})", placeholders.join(", "))
        }
    };
    format!("EXISTS (SELECT 1 FROM group_types t WHERE t.tenant_id = groups.tenant_id AND t.group_id = groups.id AND {condition})")
}

/// The SQL of `filter`: a boolean expression over the `groups` table.
fn filter_sql(sql: &mut SqlBuilder, filter: &GroupFilter) -> StoreResult<String> {
    Ok(match filter {
        GroupFilter::And(items) if items.is_empty() => ALWAYS.to_string(),
        GroupFilter::Or(items) if items.is_empty() => NEVER.to_string(),
        GroupFilter::And(items) => joined(sql, items, " AND ", filter_sql)?,
        GroupFilter::Or(items) => joined(sql, items, " OR ", filter_sql)?,
        GroupFilter::Not(inner) => format!("(NOT {})", filter_sql(sql, inner)?),
        GroupFilter::Compare { field, op, value } => compare(sql, *field, *op, value)?,
        GroupFilter::In { values, .. } if values.is_empty() => NEVER.to_string(),
        GroupFilter::In { field, values } => {
            let alternatives = values.iter().map(|value| compare(sql, *field, CompareOp::Eq, value)).collect::<StoreResult<Vec<_>>>()?;
            format!("({})", alternatives.join(" OR "))
        }
        GroupFilter::StartsWith { field, prefix } => {
            let column = group_column(*field);
            if !matches!(column, GroupColumn::Text { .. }) {
                return Err(unsupported(*field));
            }
            text_predicate(sql, column, "LIKE", &format!("{}%", like_escaped(prefix)), false)
        }
        GroupFilter::EndsWith { field, suffix } => {
            let column = group_column(*field);
            if !matches!(column, GroupColumn::Text { .. }) {
                return Err(unsupported(*field));
            }
            text_predicate(sql, column, "LIKE", &format!("%{}", like_escaped(suffix)), false)
        }
        GroupFilter::AnyGroupType(predicate) => any_group_type(sql, predicate),
        GroupFilter::Search { field, term } => {
            let column = group_column(*field);
            if !matches!(column, GroupColumn::Text { .. }) {
                return Err(unsupported(*field));
            }
            let matched = word_prefix(sql, term, |sql, pattern| text_comparison(sql, column, "LIKE", pattern));
            null_guarded(column, false, matched)
        }
    })
}

pub(crate) fn count_groups_sql(tenant: TenantId, filter: Option<&GroupFilter>) -> StoreResult<SqlBuilder> {
    count_sql("groups", tenant, filter, filter_sql)
}

// ---- keyset paging by id -------------------------------------------------------------------

fn invalid_token() -> StoreError {
    StoreError::InvalidQuery("The continuation token is not valid for this query.".into())
}

/// The last id of a page, as the opaque continuation of the next.
fn encode_after(id: ObjectId) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The id the previous page ended at; ids sort as text, so `''` starts from the beginning.
fn decode_after(token: Option<&str>) -> StoreResult<String> {
    let Some(token) = token else { return Ok(String::new()) };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid_token())?;
    ObjectId::parse(&text).map(|id| id.to_string()).map_err(|_| invalid_token())
}

fn limit_of(top: u32) -> i64 {
    i64::from(top.max(1)) + 1
}

/// Cuts the `top + 1` items fetched in id order into a page and its continuation.
fn page_of<T>(mut items: Vec<T>, top: u32, id: fn(&T) -> ObjectId) -> (Vec<T>, Option<String>) {
    let top = top.max(1) as usize;
    if items.len() <= top {
        return (items, None);
    }
    items.truncate(top);
    let next = items.last().map(|last| encode_after(id(last)));
    (items, next)
}

/// The name a `$orderby=displayName` continuation carries, so it can't be replayed in id order.
const DISPLAY_NAME_ORDER: &str = "displayName";
/// What `$orderby=displayName` sorts by; `display_name` is never null.
const DISPLAY_NAME_KEY: &str = "display_name";

/// In id order, continuations are the last id; by display name, the users' keyset continuation.
pub(crate) fn list_groups_sql(tenant: TenantId, query: &GroupQuery) -> StoreResult<SqlBuilder> {
    let mut sql = SqlBuilder::default();
    let mut condition = tenant_and_filter(&mut sql, tenant, query.filter.as_ref(), filter_sql)?;
    let order_by = match query.order {
        None => {
            let after = sql.bind(decode_after(query.after.as_deref())?);
            condition.push_str(&format!(" AND id > {after}"));
            keyset_order_by(None, false)
        }
        Some(GroupOrder { descending }) => {
            if let Some(token) = &query.after {
                let after =
                    Continuation::decode(token, Some(DISPLAY_NAME_ORDER), descending)?.after_condition(&mut sql, Some(DISPLAY_NAME_KEY))?;
                condition.push_str(&format!(" AND {after}"));
            }
            keyset_order_by(Some(DISPLAY_NAME_KEY), descending)
        }
    };
    let limit = sql.bind(limit_of(query.top));
    sql.sql = format!("{} {condition} ORDER BY {order_by} LIMIT {limit}", *GROUP_SELECT);
    Ok(sql)
}

/// Cuts the `top + 1` groups [`list_groups_sql`] fetched into a page and its continuation.
pub(crate) fn list_groups_page(mut groups: Vec<Group>, query: &GroupQuery) -> StoreResult<GroupPage> {
    let Some(GroupOrder { descending }) = query.order else { return Ok(group_page(groups, query.top)) };
    let top = query.top.max(1) as usize;
    if groups.len() <= top {
        return Ok(GroupPage { groups, next: None });
    }
    groups.truncate(top);
    let next = match groups.last() {
        Some(last) => Some(
            Continuation {
                order: Some(DISPLAY_NAME_ORDER.to_string()),
                descending,
                key: Some(SortValue::Text(last.display_name.clone())),
                id: last.id.to_string(),
            }
            .encode()?,
        ),
        None => None,
    };
    Ok(GroupPage { groups, next })
}

pub(crate) fn group_page(groups: Vec<Group>, top: u32) -> GroupPage {
    let (groups, next) = page_of(groups, top, |g| g.id);
    GroupPage { groups, next }
}

/// The user members of a group, then the group members, each in id order after the continuation:
/// `$1` tenant, `$2` group, `$3` after, `$4` limit.
pub(crate) static MEMBER_USERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE tenant_id = $1 AND id > $3 AND id IN \
         (SELECT member_user_id FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_user_id IS NOT NULL) \
         ORDER BY id LIMIT $4",
        *USER_SELECT
    )
});
pub(crate) static MEMBER_GROUPS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE tenant_id = $1 AND id > $3 AND id IN \
         (SELECT member_group_id FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_group_id IS NOT NULL) \
         ORDER BY id LIMIT $4",
        *GROUP_SELECT
    )
});

/// The groups `$2` is a direct member of: `$1` tenant, `$3` after, `$4` limit.
pub(crate) static MEMBER_OF: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE tenant_id = $1 AND id > $3 AND id IN (SELECT group_id FROM group_members WHERE tenant_id = $1 AND member_id = $2) \
         ORDER BY id LIMIT $4",
        *GROUP_SELECT
    )
});

/// `ancestors`: the groups `$2` is a member of directly or through nested groups (`$1` tenant).
/// `UNION` (not `UNION ALL`) drops rows already found, so a cycle of groups ends the recursion.
const ANCESTORS: &str = "WITH RECURSIVE ancestors (group_id) AS ( \
       SELECT group_id FROM group_members WHERE tenant_id = $1 AND member_id = $2 \
       UNION \
       SELECT m.group_id FROM group_members m JOIN ancestors a ON m.member_id = a.group_id WHERE m.tenant_id = $1 \
     )";

/// The [`ANCESTORS`] of `$2`, without `$2` itself: `$3` after, `$4` limit.
pub(crate) static TRANSITIVE_MEMBER_OF: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{ANCESTORS} {} WHERE tenant_id = $1 AND id > $3 AND id <> $2 AND id IN (SELECT group_id FROM ancestors) ORDER BY id LIMIT $4",
        *GROUP_SELECT
    )
});

/// How many direct members `$2` has: `$1` tenant. Memberships go with their objects by cascade.
pub(crate) const MEMBER_COUNT: &str = "SELECT COUNT(*) AS count FROM group_members WHERE tenant_id = $1 AND group_id = $2";
/// How many groups `$2` is a direct member of: `$1` tenant.
pub(crate) const MEMBER_OF_COUNT: &str = "SELECT COUNT(*) AS count FROM group_members WHERE tenant_id = $1 AND member_id = $2";
/// How many groups [`TRANSITIVE_MEMBER_OF`] lists.
pub(crate) static TRANSITIVE_MEMBER_OF_COUNT: LazyLock<String> =
    LazyLock::new(|| format!("{ANCESTORS} SELECT COUNT(*) AS count FROM ancestors WHERE group_id <> $2"));

/// `[tenant, object, after, limit]` for the relationship queries above.
pub(crate) fn relationship_values(tenant: TenantId, object: ObjectId, page: &PageRequest) -> StoreResult<Vec<SqlValue>> {
    Ok(vec![tenant.into(), object.into(), decode_after(page.after.as_deref())?.into(), limit_of(page.top).into()])
}

/// Merges the user and group members (each in id order) into one page in id order.
pub(crate) fn member_page(users: Vec<User>, groups: Vec<Group>, page: &PageRequest) -> MemberPage {
    let mut members: Vec<DirectoryObject> =
        users.into_iter().map(|user| DirectoryObject::User(Box::new(user))).chain(groups.into_iter().map(DirectoryObject::Group)).collect();
    members.sort_by_key(|member| member.id().to_string());
    let (members, next) = page_of(members, page.top, DirectoryObject::id);
    MemberPage { members, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_never_spliced() {
        let mut sql = SqlBuilder::default();
        let filter = GroupFilter::StartsWith { field: GroupField::DisplayName, prefix: "50%_o'ff".into() };
        let text = filter_sql(&mut sql, &filter).unwrap();
        assert_eq!(text, r"(lower(display_name) LIKE lower($1) ESCAPE '\')");
        assert_eq!(sql.values, vec![SqlValue::from(r"50\%\_o'ff%")]);
    }

    #[test]
    fn continuation_tokens_must_name_an_object_id() {
        let id = ObjectId::new_random();
        assert_eq!(decode_after(Some(&encode_after(id))).unwrap(), id.to_string());
        assert_eq!(decode_after(None).unwrap(), "");
        assert!(matches!(decode_after(Some("bm90IGFuIGlk")), Err(StoreError::InvalidQuery(_))));
        assert!(matches!(decode_after(Some("!!")), Err(StoreError::InvalidQuery(_))));
    }

    #[test]
    fn group_update_keys_on_id_tenant_and_version() {
        assert!(GROUP_UPDATE.starts_with("UPDATE groups SET display_name = $3,"));
        assert!(GROUP_UPDATE.ends_with("WHERE id = $1 AND tenant_id = $2 AND version = $13"));
        assert!(GROUP_INSERT.ends_with("$12, $13)"));
    }
}
