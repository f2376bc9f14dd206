//! The SQL text and the row mapping both engines share. Both accept `$N` placeholders
//! (sqlx-sqlite maps `$N` to argument N), so one statement serves SQLite and PostgreSQL.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use chrono::{DateTime, SubsecRound, Utc};
use guestlist_domain::audit::AuditRecord;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::tenant::{Application, InvitationThrottle, UpnOnReset};
use guestlist_domain::ticket::{InvitationRecord, TicketState};
use guestlist_domain::user::{ExternalUserState, UserType};
use guestlist_domain::{Tenant, Upn, User};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{SigningKeyRecord, SigningKeyReseal, StoreError, StoreResult, UserWrite};

/// A value bound to a `$N` placeholder. Each engine binds `Time` its own way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(Some(value))
    }
}
impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(Some(value.to_string()))
    }
}
impl From<Option<String>> for SqlValue {
    fn from(value: Option<String>) -> Self {
        SqlValue::Text(value)
    }
}
impl From<ObjectId> for SqlValue {
    fn from(value: ObjectId) -> Self {
        SqlValue::Text(Some(value.to_string()))
    }
}
impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Int(Some(value))
    }
}
impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}
impl From<DateTime<Utc>> for SqlValue {
    fn from(value: DateTime<Utc>) -> Self {
        SqlValue::Time(Some(value))
    }
}
impl From<Option<DateTime<Utc>>> for SqlValue {
    fn from(value: Option<DateTime<Utc>>) -> Self {
        SqlValue::Time(value)
    }
}

/// Both engines keep microseconds; rounding here keeps what a write returns equal to what a read returns.
pub(crate) fn stored_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// One statement and its arguments, run by an engine inside a transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub sql: &'static str,
    pub values: Vec<SqlValue>,
}

/// Typed access to a result row, implemented by each engine's row type.
pub(crate) trait RowAccess {
    fn text(&self, column: &str) -> StoreResult<String>;
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn boolean(&self, column: &str) -> StoreResult<bool>;
    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>>;
    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>>;
}

pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("unreadable value in column {column}: {detail}"))
}

pub(crate) fn object_id(row: &impl RowAccess, column: &str) -> StoreResult<ObjectId> {
    let text = row.text(column)?;
    ObjectId::parse(&text).map_err(|e| corrupt(column, e))
}

pub(crate) fn from_json<T: DeserializeOwned>(row: &impl RowAccess, column: &str) -> StoreResult<T> {
    serde_json::from_str(&row.text(column)?).map_err(|e| corrupt(column, e))
}

pub(crate) fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(format!("cannot encode JSON column: {e}")))
}

fn parsed<T>(row: &impl RowAccess, column: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let text = row.text(column)?;
    parse(&text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}")))
}

pub(crate) fn insert_statement(table: &str, columns: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), placeholders.join(", "))
}

/// `c = $N, ...` for the columns after the first `keys` ones, numbered by their position.
pub(crate) fn set_list(columns: &[&str], keys: usize) -> String {
    columns.iter().enumerate().skip(keys).map(|(i, column)| format!("{column} = ${}", i + 1)).collect::<Vec<_>>().join(", ")
}

// ---- tenants -------------------------------------------------------------------------------

const TENANT_COLUMNS: [&str; 8] = [
    "id",
    "display_name",
    "initial_domain",
    "upn_on_reset",
    "invitation_lifetime_days",
    "created_date_time",
    "invitation_throttle_requests",
    "invitation_throttle_window_seconds",
];
static TENANT_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {} FROM tenants", TENANT_COLUMNS.join(", ")));
pub(crate) static TENANT_INSERT: LazyLock<String> = LazyLock::new(|| insert_statement("tenants", &TENANT_COLUMNS));
pub(crate) static TENANT_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("UPDATE tenants SET {} WHERE id = $1", set_list(&TENANT_COLUMNS, 1)));
pub(crate) static TENANT_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{} WHERE id = $1", *TENANT_SELECT));
pub(crate) static TENANT_BY_DOMAIN: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE lower(initial_domain) = lower($1)", *TENANT_SELECT));
pub(crate) static TENANTS: LazyLock<String> = LazyLock::new(|| format!("{} ORDER BY created_date_time, id", *TENANT_SELECT));

pub(crate) fn tenant_values(tenant: &Tenant) -> Vec<SqlValue> {
    vec![
        tenant.id.into(),
        tenant.display_name.as_str().into(),
        tenant.initial_domain.as_str().into(),
        tenant.upn_on_reset.as_str().into(),
        SqlValue::Int(tenant.invitation_lifetime_days.map(i64::from)),
        stored_time(tenant.created_date_time).into(),
        SqlValue::Int(tenant.invitation_throttle.map(|t| i64::from(t.requests))),
        SqlValue::Int(tenant.invitation_throttle.map(|t| i64::from(t.window_seconds))),
    ]
}

pub(crate) fn tenant_from_row(row: &impl RowAccess) -> StoreResult<Tenant> {
    let lifetime = row.opt_int("invitation_lifetime_days")?;
    Ok(Tenant {
        id: object_id(row, "id")?,
        display_name: row.text("display_name")?,
        initial_domain: row.text("initial_domain")?,
        upn_on_reset: parsed(row, "upn_on_reset", UpnOnReset::parse)?,
        invitation_lifetime_days: lifetime
            .map(|days| u32::try_from(days).map_err(|e| corrupt("invitation_lifetime_days", e)))
            .transpose()?,
        created_date_time: row.time("created_date_time")?,
        invitation_throttle: invitation_throttle_from_row(row)?,
    })
}

fn invitation_throttle_from_row(row: &impl RowAccess) -> StoreResult<Option<InvitationThrottle>> {
    let to_u32 = |name: &'static str, value: i64| u32::try_from(value).map_err(|e| corrupt(name, e));
    match (row.opt_int("invitation_throttle_requests")?, row.opt_int("invitation_throttle_window_seconds")?) {
        (Some(requests), Some(seconds)) => Ok(Some(InvitationThrottle {
            requests: to_u32("invitation_throttle_requests", requests)?,
            window_seconds: to_u32("invitation_throttle_window_seconds", seconds)?,
        })),
        _ => Ok(None),
    }
}

/// Counts one request in a throttling window and returns the window's count so far. One
/// upsert, so replicas sharing the database share the count.
pub(crate) const THROTTLE_COUNT: &str =
    "INSERT INTO throttle_windows (tenant_id, scope, window_start, request_count) VALUES ($1, $2, $3, 1) \
     ON CONFLICT (tenant_id, scope, window_start) DO UPDATE SET request_count = throttle_windows.request_count + 1 RETURNING request_count";
/// Windows that ended long ago are of no further use.
pub(crate) const THROTTLE_PRUNE: &str = "DELETE FROM throttle_windows WHERE tenant_id = $1 AND scope = $2 AND window_start < $3";

// ---- applications --------------------------------------------------------------------------

const APPLICATION_COLUMNS: [&str; 7] =
    ["tenant_id", "app_id", "service_principal_id", "display_name", "secret_hash", "app_roles", "created_date_time"];
static APPLICATION_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {} FROM applications", APPLICATION_COLUMNS.join(", ")));
pub(crate) static APPLICATION_INSERT: LazyLock<String> = LazyLock::new(|| insert_statement("applications", &APPLICATION_COLUMNS));
pub(crate) static APPLICATION_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND app_id = $2", *APPLICATION_SELECT));
pub(crate) static APPLICATIONS: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE tenant_id = $1 ORDER BY created_date_time, app_id", *APPLICATION_SELECT));
pub(crate) const APPLICATION_SECRET_UPDATE: &str = "UPDATE applications SET secret_hash = $3 WHERE tenant_id = $1 AND app_id = $2";

pub(crate) fn application_values(app: &Application) -> StoreResult<Vec<SqlValue>> {
    Ok(vec![
        app.tenant_id.into(),
        app.app_id.into(),
        app.service_principal_id.into(),
        app.display_name.as_str().into(),
        app.secret_hash.as_str().into(),
        to_json(&app.app_roles)?.into(),
        stored_time(app.created_date_time).into(),
    ])
}

pub(crate) fn application_from_row(row: &impl RowAccess) -> StoreResult<Application> {
    Ok(Application {
        tenant_id: object_id(row, "tenant_id")?,
        app_id: object_id(row, "app_id")?,
        service_principal_id: object_id(row, "service_principal_id")?,
        display_name: row.text("display_name")?,
        secret_hash: row.text("secret_hash")?,
        app_roles: from_json(row, "app_roles")?,
        created_date_time: row.time("created_date_time")?,
    })
}

// ---- signing keys --------------------------------------------------------------------------

pub(crate) const SIGNING_KEY_INSERT: &str =
    "INSERT INTO signing_keys (kid, private_key, key_encryption_key_id, created_date_time) VALUES ($1, $2, $3, $4)";
pub(crate) const SIGNING_KEYS: &str =
    "SELECT kid, private_key, key_encryption_key_id, created_date_time FROM signing_keys ORDER BY created_date_time DESC, kid DESC";
/// '' is never a key id, so COALESCE compares "plain" (NULL) portably on both engines.
pub(crate) const SIGNING_KEY_RESEAL: &str = "UPDATE signing_keys SET private_key = $2, key_encryption_key_id = $3 \
     WHERE kid = $1 AND COALESCE(key_encryption_key_id, '') = COALESCE($4, '')";

pub(crate) fn signing_key_values(key: &SigningKeyRecord) -> Vec<SqlValue> {
    vec![
        key.kid.as_str().into(),
        key.private_key.as_str().into(),
        key.key_encryption_key_id.clone().into(),
        stored_time(key.created_date_time).into(),
    ]
}

pub(crate) fn signing_key_reseal_values(reseal: &SigningKeyReseal) -> Vec<SqlValue> {
    vec![
        reseal.kid.as_str().into(),
        reseal.private_key.as_str().into(),
        reseal.key_encryption_key_id.as_str().into(),
        reseal.from_key_encryption_key_id.clone().into(),
    ]
}

pub(crate) fn signing_key_from_row(row: &impl RowAccess) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.text("kid")?,
        private_key: row.text("private_key")?,
        key_encryption_key_id: row.opt_text("key_encryption_key_id")?,
        created_date_time: row.time("created_date_time")?,
    })
}

// ---- users ---------------------------------------------------------------------------------

/// Every column of `users` but `version`, in the order [`user_values`] binds them; `id` and
/// `tenant_id` come first so an update can use them as its key.
const USER_COLUMNS: [&str; 28] = [
    "id",
    "tenant_id",
    "user_principal_name",
    "upn_lower",
    "display_name",
    "given_name",
    "surname",
    "mail",
    "mail_lower",
    "other_mails",
    "proxy_addresses",
    "user_type",
    "creation_type",
    "external_user_state",
    "external_user_state_change_date_time",
    "identities",
    "account_enabled",
    "created_date_time",
    "company_name",
    "job_title",
    "department",
    "mobile_phone",
    "office_location",
    "preferred_language",
    "business_phones",
    "usage_location",
    "invited_email",
    "invited_email_lower",
];
const VERSION_PLACEHOLDER: usize = USER_COLUMNS.len() + 1;

/// `SELECT <every user column> FROM users`; filters refer to the table as `users`.
pub(crate) static USER_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {}, version FROM users", USER_COLUMNS.join(", ")));
static USER_INSERT: LazyLock<String> = LazyLock::new(|| {
    let mut columns = USER_COLUMNS.to_vec();
    columns.push("version");
    insert_statement("users", &columns)
});
/// Optimistic concurrency: the row is only rewritten while it still has the version the caller read.
static USER_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE users SET {}, version = version + 1 WHERE id = $1 AND tenant_id = $2 AND version = ${VERSION_PLACEHOLDER}",
        set_list(&USER_COLUMNS, 2)
    )
});
pub(crate) const USER_EXISTS: &str = "SELECT id FROM users WHERE id = $1 AND tenant_id = $2";
pub(crate) static USER_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND id = $2", *USER_SELECT));
pub(crate) static USER_BY_UPN: LazyLock<String> = LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND upn_lower = $2", *USER_SELECT));
pub(crate) static USERS_BY_ADDRESS: LazyLock<String> = LazyLock::new(|| {
    // One indexed lookup per place an address can live, united: an OR across columns and
    // correlated subqueries would walk every user of the tenant (measured: 64 ms per invitation
    // at 10k users on SQLite, against 0.2 ms this way; BENCHMARKS.md).
    format!(
        "{} WHERE tenant_id = $1 AND id IN (\
         SELECT id FROM users WHERE tenant_id = $1 AND mail_lower = $2 \
         UNION SELECT id FROM users WHERE tenant_id = $1 AND invited_email_lower = $2 \
         UNION SELECT id FROM users WHERE tenant_id = $1 AND upn_lower = $2 \
         UNION SELECT user_id FROM user_other_mails WHERE tenant_id = $1 AND address_lower = $2 \
         UNION SELECT user_id FROM user_proxy_addresses WHERE tenant_id = $1 AND address_lower = $2) \
         ORDER BY id",
        *USER_SELECT
    )
});

const OTHER_MAIL_INSERT: &str = "INSERT INTO user_other_mails (tenant_id, user_id, address_lower) VALUES ($1, $2, $3)";
const PROXY_ADDRESS_INSERT: &str =
    "INSERT INTO user_proxy_addresses (tenant_id, user_id, address_full_lower, address_lower) VALUES ($1, $2, $3, $4)";
const IDENTITY_INSERT: &str =
    "INSERT INTO user_identities (tenant_id, user_id, sign_in_type, issuer_lower, issuer_assigned_id_lower) VALUES ($1, $2, $3, $4, $5)";
const SIDE_TABLE_DELETES: [&str; 3] = [
    "DELETE FROM user_other_mails WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM user_proxy_addresses WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM user_identities WHERE tenant_id = $1 AND user_id = $2",
];

/// Case-insensitive comparisons of addresses and names use this one lower-casing everywhere.
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// The address a proxy address stands for: the part after its `SMTP:`/`smtp:`/`sip:`... prefix,
/// lower-cased. Proxy addresses are unique across objects by this part.
pub(crate) fn proxy_address_part(proxy_address: &str) -> String {
    let address = match proxy_address.split_once(':') {
        Some((prefix, rest)) if !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_alphanumeric()) => rest,
        _ => proxy_address,
    };
    fold(address)
}

fn user_values(user: &User, version: i64) -> StoreResult<Vec<SqlValue>> {
    Ok(vec![
        user.id.into(),
        user.tenant_id.into(),
        user.user_principal_name.as_str().into(),
        user.user_principal_name.normalized().into(),
        user.display_name.as_str().into(),
        user.given_name.clone().into(),
        user.surname.clone().into(),
        user.mail.clone().into(),
        user.mail.as_deref().map(fold).into(),
        to_json(&user.other_mails)?.into(),
        to_json(&user.proxy_addresses)?.into(),
        user.user_type.as_str().into(),
        user.creation_type.clone().into(),
        user.external_user_state.map(|state| state.as_str().to_string()).into(),
        user.external_user_state_change_date_time.map(stored_time).into(),
        to_json(&user.identities)?.into(),
        user.account_enabled.into(),
        stored_time(user.created_date_time).into(),
        user.company_name.clone().into(),
        user.job_title.clone().into(),
        user.department.clone().into(),
        user.mobile_phone.clone().into(),
        user.office_location.clone().into(),
        user.preferred_language.clone().into(),
        to_json(&user.business_phones)?.into(),
        user.usage_location.clone().into(),
        user.invited_email.clone().into(),
        user.invited_email.as_deref().map(fold).into(),
        version.into(),
    ])
}

/// The rows of the lookup tables that let filters and address lookups use indexes.
fn side_table_rows(user: &User) -> Vec<Statement> {
    let key = || -> Vec<SqlValue> { vec![user.tenant_id.into(), user.id.into()] };
    let mut statements = Vec::new();
    for address in &user.other_mails {
        statements.push(Statement { sql: OTHER_MAIL_INSERT, values: [key(), vec![fold(address).into()]].concat() });
    }
    // One user listing the same address twice (say SMTP: and smtp:) is not a clash with another object.
    let mut seen = BTreeSet::new();
    for proxy_address in &user.proxy_addresses {
        let address = proxy_address_part(proxy_address);
        if seen.insert(address.clone()) {
            statements
                .push(Statement { sql: PROXY_ADDRESS_INSERT, values: [key(), vec![fold(proxy_address).into(), address.into()]].concat() });
        }
    }
    for identity in &user.identities {
        let values = vec![
            identity.sign_in_type.as_str().into(),
            fold(&identity.issuer).into(),
            identity.issuer_assigned_id.as_deref().map(fold).into(),
        ];
        statements.push(Statement { sql: IDENTITY_INSERT, values: [key(), values].concat() });
    }
    statements
}

/// How a [`UserWrite`] reaches the database: the statement on the `users` row (an update must
/// change exactly one row), then the statements that rewrite its lookup rows.
pub(crate) struct UserWritePlan {
    pub user_row: Statement,
    pub is_update: bool,
    pub follow_up: Vec<Statement>,
    /// The user as it reads back after the write.
    pub stored: User,
}

pub(crate) fn plan_user_write(write: &UserWrite) -> StoreResult<UserWritePlan> {
    let user = write.user();
    let (user_row, is_update, new_version, mut follow_up) = match write {
        UserWrite::Create(_) => (Statement { sql: USER_INSERT.as_str(), values: user_values(user, 1)? }, false, 1, Vec::new()),
        UserWrite::Update(_) => {
            let deletes =
                SIDE_TABLE_DELETES.iter().map(|sql| Statement { sql, values: vec![user.tenant_id.into(), user.id.into()] }).collect();
            (Statement { sql: USER_UPDATE.as_str(), values: user_values(user, user.version)? }, true, user.version + 1, deletes)
        }
    };
    follow_up.extend(side_table_rows(user));
    let stored = User {
        version: new_version,
        created_date_time: stored_time(user.created_date_time),
        external_user_state_change_date_time: user.external_user_state_change_date_time.map(stored_time),
        ..user.clone()
    };
    Ok(UserWritePlan { user_row, is_update, follow_up, stored })
}

pub(crate) fn user_from_row(row: &impl RowAccess) -> StoreResult<User> {
    let upn = row.text("user_principal_name")?;
    let external_user_state = row
        .opt_text("external_user_state")?
        .map(|text| ExternalUserState::parse(&text).ok_or_else(|| corrupt("external_user_state", format!("unknown value {text:?}"))))
        .transpose()?;
    Ok(User {
        id: object_id(row, "id")?,
        tenant_id: object_id(row, "tenant_id")?,
        user_principal_name: Upn::parse(&upn).map_err(|e| corrupt("user_principal_name", e))?,
        display_name: row.text("display_name")?,
        given_name: row.opt_text("given_name")?,
        surname: row.opt_text("surname")?,
        mail: row.opt_text("mail")?,
        other_mails: from_json(row, "other_mails")?,
        proxy_addresses: from_json(row, "proxy_addresses")?,
        user_type: parsed(row, "user_type", UserType::parse)?,
        creation_type: row.opt_text("creation_type")?,
        external_user_state,
        external_user_state_change_date_time: row.opt_time("external_user_state_change_date_time")?,
        identities: from_json(row, "identities")?,
        account_enabled: row.boolean("account_enabled")?,
        created_date_time: row.time("created_date_time")?,
        company_name: row.opt_text("company_name")?,
        job_title: row.opt_text("job_title")?,
        department: row.opt_text("department")?,
        mobile_phone: row.opt_text("mobile_phone")?,
        office_location: row.opt_text("office_location")?,
        preferred_language: row.opt_text("preferred_language")?,
        business_phones: from_json(row, "business_phones")?,
        usage_location: row.opt_text("usage_location")?,
        invited_email: row.opt_text("invited_email")?,
        version: row.int("version")?,
    })
}

// ---- invitations ---------------------------------------------------------------------------

const INVITATION_COLUMNS: [&str; 11] = [
    "id",
    "tenant_id",
    "user_id",
    "email",
    "redirect_url",
    "ticket_hash",
    "state",
    "reset_redemption",
    "send_invitation_message",
    "created_date_time",
    "expires_date_time",
];
static INVITATION_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {} FROM invitations", INVITATION_COLUMNS.join(", ")));
static INVITATION_INSERT: LazyLock<String> = LazyLock::new(|| insert_statement("invitations", &INVITATION_COLUMNS));
pub(crate) static INVITATION_BY_TICKET_HASH: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND ticket_hash = $2", *INVITATION_SELECT));
pub(crate) static INVITATIONS_FOR_USER: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_date_time, id", *INVITATION_SELECT));
/// A reset or re-invite revokes every earlier pending ticket of the user (DECISIONS 2).
pub(crate) const REVOKE_PENDING_INVITATIONS: &str =
    "UPDATE invitations SET state = 'revoked' WHERE tenant_id = $1 AND user_id = $2 AND state = 'pending'";

/// Revokes the user's pending tickets (ahead of a new invitation).
pub(crate) fn revoke_pending_invitations(invitation: &InvitationRecord) -> Statement {
    Statement { sql: REVOKE_PENDING_INVITATIONS, values: vec![invitation.tenant_id.into(), invitation.user_id.into()] }
}

/// Inserts the new invitation.
pub(crate) fn invitation_insert(invitation: &InvitationRecord) -> Statement {
    let values = vec![
        invitation.id.into(),
        invitation.tenant_id.into(),
        invitation.user_id.into(),
        invitation.email.as_str().into(),
        invitation.redirect_url.as_str().into(),
        invitation.ticket_hash.as_str().into(),
        invitation.state.as_str().into(),
        invitation.reset_redemption.into(),
        invitation.send_invitation_message.into(),
        stored_time(invitation.created_date_time).into(),
        invitation.expires_date_time.map(stored_time).into(),
    ];
    Statement { sql: INVITATION_INSERT.as_str(), values }
}

pub(crate) fn invitation_from_row(row: &impl RowAccess) -> StoreResult<InvitationRecord> {
    Ok(InvitationRecord {
        id: object_id(row, "id")?,
        tenant_id: object_id(row, "tenant_id")?,
        user_id: object_id(row, "user_id")?,
        email: row.text("email")?,
        redirect_url: row.text("redirect_url")?,
        ticket_hash: row.text("ticket_hash")?,
        state: parsed(row, "state", TicketState::parse)?,
        reset_redemption: row.boolean("reset_redemption")?,
        send_invitation_message: row.boolean("send_invitation_message")?,
        created_date_time: row.time("created_date_time")?,
        expires_date_time: row.opt_time("expires_date_time")?,
    })
}

// ---- audit ---------------------------------------------------------------------------------

const AUDIT_COLUMNS: [&str; 13] = [
    "id",
    "tenant_id",
    "activity_date_time",
    "activity_display_name",
    "category",
    "logged_by_service",
    "operation_type",
    "result",
    "correlation_id",
    "initiated_by",
    "target_resources",
    "initiated_by_app_id",
    "initiated_by_user_id",
];
/// Every audit column, for readers elsewhere in the crate.
pub(crate) static AUDIT_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {} FROM audit_records", AUDIT_COLUMNS.join(", ")));
pub(crate) static AUDIT_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND id = $2", *AUDIT_SELECT));
/// The ids `targetResources/any(t:t/id eq ...)` filters on, one row per target.
const AUDIT_TARGET_INSERT: &str = "INSERT INTO audit_target_resources (tenant_id, audit_id, target_id_lower) VALUES ($1, $2, $3)";
static AUDIT_INSERT: LazyLock<String> = LazyLock::new(|| insert_statement("audit_records", &AUDIT_COLUMNS));
pub(crate) static AUDIT_NEWEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM audit_records WHERE tenant_id = $1 ORDER BY activity_date_time DESC, id DESC LIMIT $2",
        AUDIT_COLUMNS.join(", ")
    )
});

pub(crate) fn audit_statements(records: &[AuditRecord]) -> StoreResult<Vec<Statement>> {
    records
        .iter()
        .map(|record| {
            let values = vec![
                record.id.into(),
                record.tenant_id.into(),
                stored_time(record.activity_date_time).into(),
                record.activity_display_name.as_str().into(),
                record.category.as_str().into(),
                record.logged_by_service.as_str().into(),
                record.operation_type.as_str().into(),
                record.result.as_str().into(),
                record.correlation_id.into(),
                to_json(&record.initiated_by)?.into(),
                to_json(&record.target_resources)?.into(),
                record.initiated_by.app_id().map(fold).into(),
                record.initiated_by.user_id().map(fold).into(),
            ];
            let targets = record.target_resources.iter().map(|target| Statement {
                sql: AUDIT_TARGET_INSERT,
                values: vec![record.tenant_id.into(), record.id.into(), fold(&target.id).into()],
            });
            Ok(std::iter::once(Statement { sql: AUDIT_INSERT.as_str(), values }).chain(targets).collect::<Vec<_>>())
        })
        .collect::<StoreResult<Vec<_>>>()
        .map(|statements| statements.into_iter().flatten().collect())
}

pub(crate) fn audit_from_row(row: &impl RowAccess) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: object_id(row, "id")?,
        tenant_id: object_id(row, "tenant_id")?,
        activity_date_time: row.time("activity_date_time")?,
        activity_display_name: row.text("activity_display_name")?,
        category: row.text("category")?,
        logged_by_service: row.text("logged_by_service")?,
        operation_type: row.text("operation_type")?,
        result: row.text("result")?,
        correlation_id: object_id(row, "correlation_id")?,
        initiated_by: from_json(row, "initiated_by")?,
        target_resources: from_json(row, "target_resources")?,
    })
}

// ---- deletion and sponsors -----------------------------------------------------------------

pub(crate) const USER_DELETE: &str = "DELETE FROM users WHERE tenant_id = $1 AND id = $2";
/// A deleted user stops sponsoring anyone.
pub(crate) const SPONSORSHIPS_OF_DELETE: &str = "DELETE FROM user_sponsors WHERE tenant_id = $1 AND sponsor_id = $2";
/// Takes the user row's write lock (PostgreSQL), so concurrent sponsor changes of one user queue
/// and the sponsor limit holds; SQLite's write transactions are serialized already.
pub(crate) const USER_LOCK: &str = "UPDATE users SET version = version WHERE tenant_id = $1 AND id = $2";
pub(crate) const SPONSOR_IDS: &str = "SELECT sponsor_id FROM user_sponsors WHERE tenant_id = $1 AND user_id = $2";
pub(crate) const SPONSOR_INSERT: &str =
    "INSERT INTO user_sponsors (tenant_id, user_id, sponsor_id, sponsor_type, created_date_time) VALUES ($1, $2, $3, 'user', $4)";
/// An invitation's sponsor: skipped when already linked or when the sponsor vanished meanwhile.
const SPONSOR_INSERT_IF_PRESENT: &str = "INSERT INTO user_sponsors (tenant_id, user_id, sponsor_id, sponsor_type, created_date_time) \
     SELECT $1, $2, $3, 'user', $4 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $3) \
     ON CONFLICT (user_id, sponsor_id) DO NOTHING";
pub(crate) const SPONSOR_DELETE: &str = "DELETE FROM user_sponsors WHERE tenant_id = $1 AND user_id = $2 AND sponsor_id = $3";
pub(crate) static SPONSOR_USERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE tenant_id = $1 AND id IN (SELECT sponsor_id FROM user_sponsors WHERE tenant_id = $1 AND user_id = $2) \
         ORDER BY (SELECT s.created_date_time FROM user_sponsors s WHERE s.tenant_id = $1 AND s.user_id = $2 AND s.sponsor_id = users.id), id",
        *USER_SELECT
    )
});

/// The sponsor links an invitation adds to its guest.
pub(crate) fn invitation_sponsor_statements(invitation: &InvitationRecord, sponsors: &[ObjectId]) -> Vec<Statement> {
    sponsors
        .iter()
        .map(|sponsor| Statement {
            sql: SPONSOR_INSERT_IF_PRESENT,
            values: vec![
                invitation.tenant_id.into(),
                invitation.user_id.into(),
                (*sponsor).into(),
                stored_time(invitation.created_date_time).into(),
            ],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses_compare_by_their_address_part() {
        assert_eq!(proxy_address_part("SMTP:A@b.com"), "a@b.com");
        assert_eq!(proxy_address_part("smtp:a@B.com"), "a@b.com");
        assert_eq!(proxy_address_part("a@b.com"), "a@b.com");
    }

    #[test]
    fn user_update_keys_on_id_tenant_and_version() {
        assert!(USER_UPDATE.starts_with("UPDATE users SET user_principal_name = $3, upn_lower = $4,"));
        assert!(USER_UPDATE.ends_with("WHERE id = $1 AND tenant_id = $2 AND version = $29"));
        assert!(USER_INSERT.ends_with("$28, $29)"));
    }
}
