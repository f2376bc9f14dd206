//! SQLite, the embedded default: one file (or a private in-memory database), WAL, fsync on commit.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};

use crate::engine::{impl_store, migrate_error, store_error};
use crate::group_commit::GroupWriter;
use crate::{Conflict, StoreError, StoreResult};

/// Readers share a small pool; a single writer connection serializes writes in this process
/// (busy_timeout covers other processes), so concurrent writes queue instead of failing with
/// SQLITE_BUSY. On a file, the writer commits the writes queued meanwhile together
/// ([`GroupWriter`]): one fsync for many acknowledged writes.
pub struct SqliteStore {
    reads: SqlitePool,
    writes: SqlitePool,
    group: Option<GroupWriter<SqliteConnection>>,
}

const READ_CONNECTIONS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> StoreResult<Arc<Self>> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens a `sqlite:` URL (as sqlx parses it) and migrates it.
    pub async fn open_url(url: &str) -> StoreResult<Arc<Self>> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Database(format!("invalid SQLite URL: {e}")))?;
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> StoreResult<Arc<Self>> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // The writer opens (and creates) the file and migrates before any reader connects.
        // No ping before each use: a local file connection does not go stale, and the ping
        // doubled the round trips to sqlx's connection thread (BENCHMARKS.md).
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        migrate(&writes).await?;
        let reads = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(map_error)?;
        // The group writer holds the pool's one connection from now on.
        let writer = writes.acquire().await.map_err(map_error)?;
        let group = Some(GroupWriter::start(writer, exec));
        Ok(Arc::new(SqliteStore { reads, writes, group }))
    }

    /// A private in-memory database: one connection that is never recycled, since the data
    /// lives only as long as that connection.
    pub async fn in_memory() -> StoreResult<Arc<Self>> {
        let options = SqliteConnectOptions::new().in_memory(true).foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(map_error)?;
        migrate(&pool).await?;
        // One connection serves reads too, so writes commit one by one (no fsync to share anyway).
        Ok(Arc::new(SqliteStore { reads: pool.clone(), writes: pool, group: None }))
    }
}

async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await.map_err(|e| migrate_error(e, map_error))
}

/// Runs a statement without parameters for the group writer.
fn exec<'c>(connection: &'c mut SqliteConnection, sql: &'static str) -> BoxFuture<'c, StoreResult<()>> {
    Box::pin(async move { sqlx::Executor::execute(&mut *connection, sql).await.map(|_| ()).map_err(map_error) })
}

/// Timestamps are fixed-width RFC 3339 text, so SQLite's text comparison orders them by time.
fn time_param(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// SQLite names the columns of a failed UNIQUE constraint, not the constraint:
/// "UNIQUE constraint failed: users.tenant_id, users.upn_lower".
fn conflict_of(error: &dyn sqlx::error::DatabaseError) -> Conflict {
    let message = error.message();
    if message.contains("users.upn_lower") {
        Conflict::UserPrincipalName
    } else if message.contains("user_proxy_addresses.address_lower") {
        Conflict::ProxyAddress
    } else {
        Conflict::Duplicate
    }
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), in any extended form: another writer held on past busy_timeout.
fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    let code = error.code().and_then(|code| code.parse::<i32>().ok());
    matches!(code.map(|code| code & 0xff), Some(5 | 6))
}

fn map_error(error: sqlx::Error) -> StoreError {
    store_error(error, conflict_of, is_unavailable)
}

impl_store! {
    store: SqliteStore,
    database: sqlx::Sqlite,
    row: SqliteRow,
    engine: crate::Engine::Sqlite,
    time_param: time_param,
    map_error: map_error,
    // Take the write lock up front: a deferred transaction that reads first can't wait for it.
    begin_write: "BEGIN IMMEDIATE",
}

#[cfg(test)]
mod tests {
    use guestlist_domain::filter::{
        CompareOp, IdentityField, IdentityPredicate, Literal, StringCollection, StringPredicate, UserField, UserFilter, UserQuery,
    };
    use guestlist_domain::ids::ObjectId;
    use sqlx::Row;

    use super::*;
    use crate::query::list_users_sql;
    use crate::schema::SqlValue;

    /// SQLite's plan for one page of users with `filter`, one line per plan step.
    async fn plan(store: &SqliteStore, filter: UserFilter) -> String {
        let sql = list_users_sql(ObjectId::new_random(), &UserQuery { filter: Some(filter), order: None, top: 100, after: None }).unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {}", sql.sql);
        let query = sql.values.into_iter().fold(sqlx::query(&explain), |query, value| match value {
            SqlValue::Text(text) => query.bind(text),
            SqlValue::Int(number) => query.bind(number),
            SqlValue::Bool(flag) => query.bind(flag),
            SqlValue::Time(time) => query.bind(time.map(|t| t.to_rfc3339())),
        });
        let rows = query.fetch_all(&store.reads).await.unwrap();
        rows.iter().map(|row| row.get::<String, _>("detail")).collect::<Vec<_>>().join("\n")
    }

    fn eq(field: UserField, text: &str) -> UserFilter {
        UserFilter::Compare { field, op: CompareOp::Eq, value: Literal::String(text.into()) }
    }

    /// Finding who owns an address (every invitation does) uses one index per place an
    /// address can live, never a walk over the tenant's users.
    #[tokio::test]
    async fn address_owner_lookup_uses_indexes() {
        let store = SqliteStore::in_memory().await.unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {}", *crate::schema::USERS_BY_ADDRESS);
        let rows = sqlx::query(&explain).bind("tenant").bind("a@b.com").fetch_all(&store.reads).await.unwrap();
        let plan = rows.iter().map(|row| row.get::<String, _>("detail")).collect::<Vec<_>>().join("\n");
        for lookup in [
            "(tenant_id=? AND mail_lower=?)",
            "(tenant_id=? AND invited_email_lower=?)",
            "(tenant_id=? AND upn_lower=?)",
            "user_other_mails USING INDEX user_other_mails_address (tenant_id=? AND address_lower=?)",
            "user_proxy_addresses USING INDEX sqlite_autoindex_user_proxy_addresses_1 (tenant_id=? AND address_lower=?)",
        ] {
            assert!(plan.contains(lookup), "{lookup} missing:\n{plan}");
        }
        assert!(!plan.contains("SCAN users") && !plan.contains("SCAN user_"), "a scan:\n{plan}");
    }

    /// The lookups a guest admin makes go through an index on the looked-up value, never
    /// through every user of the tenant (issue: "no full scans").
    #[tokio::test]
    async fn guest_admin_lookups_use_their_indexes() {
        let store = SqliteStore::in_memory().await.unwrap();
        let any =
            |collection, text: &str| UserFilter::AnyString { collection, predicate: StringPredicate::Compare(CompareOp::Eq, text.into()) };
        let identity = UserFilter::AnyIdentity(IdentityPredicate {
            equals: vec![(IdentityField::IssuerAssignedId, "a@b.com".into()), (IdentityField::Issuer, "mail".into())],
        });
        let cases = [
            (eq(UserField::UserType, "Guest"), "users_user_type (tenant_id=? AND <expr>=?)"),
            (eq(UserField::CreationType, "Invitation"), "users_creation_type (tenant_id=? AND <expr>=?)"),
            (eq(UserField::ExternalUserState, "PendingAcceptance"), "users_external_user_state (tenant_id=? AND <expr>=?)"),
            (eq(UserField::Mail, "a@b.com"), "(tenant_id=? AND mail_lower=?)"),
            (eq(UserField::UserPrincipalName, "a_b.com#EXT#@contoso.onmicrosoft.com"), "(tenant_id=? AND upn_lower=?)"),
            (any(StringCollection::OtherMails, "a@b.com"), "user_other_mails_address (tenant_id=? AND address_lower=?)"),
            (any(StringCollection::ProxyAddresses, "SMTP:a@b.com"), "user_proxy_addresses_full (tenant_id=? AND address_full_lower=?)"),
            (identity, "user_identities"),
        ];
        for (filter, expected) in cases {
            let plan = plan(&store, filter.clone()).await;
            assert!(plan.contains(expected), "{filter:?} should use {expected}:\n{plan}");
            assert!(!plan.contains("SCAN users"), "{filter:?} scans users:\n{plan}");
            assert!(
                !plan.contains("users_tenant_id_unique (tenant_id=?)\n") && !plan.ends_with("users_tenant_id_unique (tenant_id=?)"),
                "{filter:?} walks the tenant:\n{plan}"
            );
        }
    }
}
