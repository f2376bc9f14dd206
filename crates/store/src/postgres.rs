//! PostgreSQL, for several server replicas sharing one directory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};

use crate::engine::{impl_store, migrate_error, store_error};
use crate::group_commit::GroupWriter;
use crate::{Conflict, StoreError, StoreResult};

pub struct PostgresStore {
    reads: PgPool,
    writes: PgPool,
    /// PostgreSQL commits each transaction itself (with its own group commit), so never one here.
    group: Option<GroupWriter<PgConnection>>,
}

const MAX_CONNECTIONS: u32 = 10;
/// How long a request waits for a connection (including connecting, which sqlx retries while the
/// server refuses or is starting up) before it gets `Unavailable`: a database that is down or
/// restarting answers callers with 503 within this bound instead of holding them.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// No statement runs longer server-side; a stuck lock or query becomes an error, not a hang.
const STATEMENT_TIMEOUT: &str = "30s";

impl PostgresStore {
    /// Connects to a `postgres://` URL and migrates the database (sqlx holds an advisory lock,
    /// so replicas starting together migrate once).
    pub async fn connect(url: &str) -> StoreResult<Arc<Self>> {
        let options = url.parse::<PgConnectOptions>().map_err(map_error)?.options([("statement_timeout", STATEMENT_TIMEOUT)]);
        // `test_before_acquire` (on by default) pings an idle connection before handing it out,
        // so connections a database restart broke are dropped and replaced without a restart of ours.
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(map_error)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(|e| migrate_error(e, map_error))?;
        Ok(Arc::new(PostgresStore { reads: pool.clone(), writes: pool, group: None }))
    }
}

fn time_param(time: DateTime<Utc>) -> DateTime<Utc> {
    time
}

fn conflict_of(error: &dyn sqlx::error::DatabaseError) -> Conflict {
    match error.constraint() {
        Some("users_upn_unique") => Conflict::UserPrincipalName,
        Some("user_proxy_addresses_unique") => Conflict::ProxyAddress,
        _ => Conflict::Duplicate,
    }
}

/// Connection exceptions (08), insufficient resources (53), shutdowns (57P0x), statements cut
/// off by `statement_timeout` (57014), and a transaction PostgreSQL chose to roll back (40001
/// serialization failure, 40P01 deadlock victim) pass; a retry may succeed.
fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| is_unavailable_code(&code))
}

fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") || ["57014", "40001", "40P01"].contains(&code)
}

fn map_error(error: sqlx::Error) -> StoreError {
    store_error(error, conflict_of, is_unavailable)
}

impl_store! {
    store: PostgresStore,
    database: sqlx::Postgres,
    row: PgRow,
    engine: crate::Engine::Postgres,
    time_param: time_param,
    map_error: map_error,
    begin_write: "BEGIN",
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database that is down, restarting or out of connections is `Unavailable` (the callers'
    /// 503 with Retry-After), never a fault (500).
    #[test]
    fn an_unreachable_or_restarting_database_is_unavailable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let closed = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        for error in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed, sqlx::Error::Io(refused), sqlx::Error::Io(closed)] {
            assert!(matches!(map_error(error), StoreError::Unavailable(_)));
        }
        // admin_shutdown (a fast stop), cannot_connect_now (starting up), too_many_connections,
        // connection_failure, query_canceled (statement_timeout), serialization_failure, deadlock_detected.
        for code in ["57P01", "57P03", "53300", "08006", "57014", "40001", "40P01"] {
            assert!(is_unavailable_code(code), "{code}");
        }
        // A constraint or syntax problem is ours, not the database's availability.
        for code in ["23505", "42601", "23503"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
        assert!(matches!(map_error(sqlx::Error::RowNotFound), StoreError::Database(_)));
    }
}
