//! PostgreSQL, for several server replicas sharing one directory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};

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
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl PostgresStore {
    /// Connects to a `postgres://` URL and migrates the database (sqlx holds an advisory lock,
    /// so replicas starting together migrate once).
    pub async fn connect(url: &str) -> StoreResult<Arc<Self>> {
        let pool =
            PgPoolOptions::new().max_connections(MAX_CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT).connect(url).await.map_err(map_error)?;
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

/// Connection exceptions (08), insufficient resources (53) and shutdowns (57P0x) pass; a retry may succeed.
fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| code.starts_with("08") || code.starts_with("53") || code.starts_with("57P"))
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
