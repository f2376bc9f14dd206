//! One [`Store`](crate::Store) implementation, expanded for each engine's concrete sqlx types
//! (code generic over `sqlx::Database` drowns in trait bounds). Everything engine-specific is a
//! macro argument; the SQL and the row mapping live in `schema` and `query`.

/// Expands `impl Store for $store`. `$store` must have `reads` and `writes` pools of `$database`
/// and a `group: Option<GroupWriter<$database's connection>>` (group commit, or `None`).
/// - `time_param`: how the engine binds a timestamp.
/// - `map_error`: `sqlx::Error` to [`StoreError`](crate::StoreError), with the engine's constraint names.
/// - `begin_write`: the statement that opens a write transaction.
macro_rules! impl_store {
    (
        store: $store:ident,
        database: $database:ty,
        row: $row:ty,
        engine: $engine:expr,
        time_param: $time_param:path,
        map_error: $map_error:path,
        begin_write: $begin_write:expr $(,)?
    ) => {
        // A module of its own, so the helpers below don't leak into the engine's namespace.
        mod generated {
            use super::*;
            use guestlist_domain::audit::AuditRecord;
            use guestlist_domain::audit_query::AuditQuery;
            use guestlist_domain::filter::{UserFilter, UserQuery};
            use guestlist_domain::ids::{ObjectId, TenantId};
            use guestlist_domain::tenant::Application;
            use guestlist_domain::ticket::InvitationRecord;
            use guestlist_domain::{Tenant, User};
            use $crate::group_commit::Commit;
            use $crate::schema::{self as schema, RowAccess, SqlValue, Statement};
            use $crate::{query, InvitationWrite, SigningKeyRecord, Store, StoreError, StoreResult, UserKey, UserPage, UserWrite};

            type Connection = <$database as sqlx::Database>::Connection;
            type Query<'q> = sqlx::query::Query<'q, $database, <$database as sqlx::Database>::Arguments<'q>>;

            fn column<'r, T: sqlx::Decode<'r, $database> + sqlx::Type<$database>>(row: &'r $row, column: &str) -> StoreResult<T> {
                sqlx::Row::try_get(row, column).map_err(|e| StoreError::Database(format!("reading column {column}: {e}")))
            }

            impl RowAccess for $row {
                fn text(&self, name: &str) -> StoreResult<String> {
                    column(self, name)
                }
                fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
                    column(self, name)
                }
                fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
                    column(self, name)
                }
                fn int(&self, name: &str) -> StoreResult<i64> {
                    column(self, name)
                }
                fn boolean(&self, name: &str) -> StoreResult<bool> {
                    column(self, name)
                }
                fn time(&self, name: &str) -> StoreResult<chrono::DateTime<chrono::Utc>> {
                    column(self, name)
                }
                fn opt_time(&self, name: &str) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                    column(self, name)
                }
            }

            fn bound(sql: &str, values: Vec<SqlValue>) -> Query<'_> {
                values.into_iter().fold(sqlx::query(sql), |query, value| match value {
                    SqlValue::Text(text) => query.bind(text),
                    SqlValue::Int(number) => query.bind(number),
                    SqlValue::Bool(flag) => query.bind(flag),
                    SqlValue::Time(time) => query.bind(time.map($time_param)),
                })
            }

            async fn execute(connection: &mut Connection, sql: &str, values: Vec<SqlValue>) -> StoreResult<u64> {
                let done = bound(sql, values).execute(&mut *connection).await.map_err($map_error)?;
                Ok(done.rows_affected())
            }

            async fn fetch(connection: &mut Connection, sql: &str, values: Vec<SqlValue>) -> StoreResult<Vec<$row>> {
                bound(sql, values).fetch_all(&mut *connection).await.map_err($map_error)
            }

            async fn execute_all(connection: &mut Connection, statements: Vec<Statement>) -> StoreResult<()> {
                for statement in statements {
                    execute(connection, statement.sql, statement.values).await?;
                }
                Ok(())
            }

            /// Writes the user row and its lookup rows; part of a caller's transaction.
            async fn write_user_in(connection: &mut Connection, write: &UserWrite) -> StoreResult<User> {
                let plan = schema::plan_user_write(write)?;
                let changed = execute(connection, plan.user_row.sql, plan.user_row.values).await?;
                if plan.is_update && changed == 0 {
                    let user = write.user();
                    let existing = fetch(connection, schema::USER_EXISTS, vec![user.id.into(), user.tenant_id.into()]).await?;
                    return Err(if existing.is_empty() {
                        StoreError::NotFound
                    } else {
                        StoreError::Conflict($crate::Conflict::StaleVersion)
                    });
                }
                execute_all(connection, plan.follow_up).await?;
                Ok(plan.stored)
            }

            fn one<T>(rows: Vec<$row>, map: fn(&$row) -> StoreResult<T>) -> StoreResult<Option<T>> {
                rows.first().map(map).transpose()
            }

            fn all<T>(rows: Vec<$row>, map: fn(&$row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
                rows.iter().map(map).collect()
            }

            impl $store {
                /// Runs `work` as one write transaction and answers once it is committed: through
                /// the group writer where the engine has one (the SQLite file), else on its own.
                async fn transact<T, F>(&self, work: F) -> StoreResult<T>
                where
                    T: Send + 'static,
                    F: for<'c> FnOnce(&'c mut Connection) -> futures::future::BoxFuture<'c, StoreResult<Commit<T>>> + Send + 'static,
                {
                    if let Some(group) = &self.group {
                        return group.run(work).await;
                    }
                    let mut transaction = self.writes.begin_with($begin_write).await.map_err($map_error)?;
                    match work(&mut *transaction).await? {
                        Commit::Keep(value) => {
                            transaction.commit().await.map_err($map_error)?;
                            Ok(value)
                        }
                        // Dropped unfinished: rolled back.
                        Commit::Discard(value) => Ok(value),
                    }
                }

                async fn read(&self, sql: &str, values: Vec<SqlValue>) -> StoreResult<Vec<$row>> {
                    let mut connection = self.reads.acquire().await.map_err($map_error)?;
                    fetch(&mut connection, sql, values).await
                }

                /// Runs a `SELECT COUNT(*) AS count` query.
                async fn count(&self, sql: &str, values: Vec<SqlValue>) -> StoreResult<u64> {
                    let rows = self.read(sql, values).await?;
                    let count = rows.first().map(|row| row.int("count")).transpose()?.unwrap_or(0);
                    u64::try_from(count).map_err(|e| StoreError::Database(format!("negative count: {e}")))
                }

                /// Runs `statements` in one write transaction.
                async fn write(&self, statements: Vec<Statement>) -> StoreResult<()> {
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            execute_all(&mut transaction, statements).await?;
                            Ok(Commit::Keep(()))
                        })
                    })
                    .await
                }

                /// Runs one statement that must change a row; `NotFound` when it changed none.
                async fn change_one(&self, sql: &'static str, values: Vec<SqlValue>) -> StoreResult<()> {
                    self.transact(move |mut connection| {
                        Box::pin(async move {
                            match execute(&mut connection, sql, values).await? {
                                0 => Err(StoreError::NotFound),
                                _ => Ok(Commit::Keep(())),
                            }
                        })
                    })
                    .await
                }

                /// The user write, then `statements`, in one transaction.
                /// `before` runs ahead of the user row, `after` behind it, in one transaction.
                async fn write_user_with(
                    &self,
                    write: &UserWrite,
                    before: Vec<Statement>,
                    statements: Vec<Statement>,
                ) -> StoreResult<User> {
                    let write = write.clone();
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            execute_all(&mut transaction, before).await?;
                            let user = write_user_in(&mut transaction, &write).await?;
                            execute_all(&mut transaction, statements).await?;
                            Ok(Commit::Keep(user))
                        })
                    })
                    .await
                }
            }

            impl $store {
                /// Runs one statement that must change a row, then the audit statements, in one
                /// transaction; `NotFound` (and nothing written) when the statement changed none.
                async fn change_one_audited(&self, sql: &'static str, values: Vec<SqlValue>, audit: &[AuditRecord]) -> StoreResult<()> {
                    let audit = schema::audit_statements(audit)?;
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, sql, values).await? == 0 {
                                return Err(StoreError::NotFound);
                            }
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(()))
                        })
                    })
                    .await
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                fn engine(&self) -> $crate::Engine {
                    $engine
                }

                async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
                    self.write(vec![Statement { sql: schema::TENANT_INSERT.as_str(), values: schema::tenant_values(tenant) }]).await
                }

                async fn tenant(&self, id_or_domain: &str) -> StoreResult<Option<Tenant>> {
                    let rows = match ObjectId::parse(id_or_domain) {
                        Ok(id) => self.read(&schema::TENANT_BY_ID, vec![id.into()]).await?,
                        // No domain holds U+0000, and PostgreSQL refuses it in a text parameter.
                        Err(_) if id_or_domain.contains('\0') => return Ok(None),
                        Err(_) => self.read(&schema::TENANT_BY_DOMAIN, vec![id_or_domain.into()]).await?,
                    };
                    one(rows, schema::tenant_from_row)
                }

                async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
                    all(self.read(&schema::TENANTS, Vec::new()).await?, schema::tenant_from_row)
                }

                async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
                    self.change_one(schema::TENANT_UPDATE.as_str(), schema::tenant_values(tenant)).await
                }

                async fn insert_application(&self, app: &Application) -> StoreResult<()> {
                    self.write(vec![Statement { sql: schema::APPLICATION_INSERT.as_str(), values: schema::application_values(app)? }]).await
                }

                async fn application(&self, tenant: TenantId, app_id: ObjectId) -> StoreResult<Option<Application>> {
                    one(self.read(&schema::APPLICATION_BY_ID, vec![tenant.into(), app_id.into()]).await?, schema::application_from_row)
                }

                async fn applications(&self, tenant: TenantId) -> StoreResult<Vec<Application>> {
                    all(self.read(&schema::APPLICATIONS, vec![tenant.into()]).await?, schema::application_from_row)
                }

                async fn set_application_secret_hash(&self, tenant: TenantId, app_id: ObjectId, secret_hash: &str) -> StoreResult<()> {
                    self.change_one(schema::APPLICATION_SECRET_UPDATE, vec![tenant.into(), app_id.into(), secret_hash.into()]).await
                }

                async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
                    self.write(vec![Statement { sql: schema::SIGNING_KEY_INSERT, values: schema::signing_key_values(key) }]).await
                }

                async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                    all(self.read(schema::SIGNING_KEYS, Vec::new()).await?, schema::signing_key_from_row)
                }

                async fn reseal_signing_keys(&self, reseals: &[$crate::SigningKeyReseal]) -> StoreResult<()> {
                    let values: Vec<Vec<SqlValue>> = reseals.iter().map(schema::signing_key_reseal_values).collect();
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            for row in values {
                                if execute(&mut transaction, schema::SIGNING_KEY_RESEAL, row).await? == 0 {
                                    return Err(StoreError::Conflict($crate::Conflict::StaleVersion));
                                }
                            }
                            Ok(Commit::Keep(()))
                        })
                    })
                    .await
                }

                async fn user(&self, tenant: TenantId, key: &UserKey) -> StoreResult<Option<User>> {
                    let rows = match key {
                        UserKey::Id(id) => self.read(&schema::USER_BY_ID, vec![tenant.into(), (*id).into()]).await?,
                        UserKey::UserPrincipalName(upn) => {
                            self.read(&schema::USER_BY_UPN, vec![tenant.into(), schema::fold(upn).into()]).await?
                        }
                    };
                    one(rows, schema::user_from_row)
                }

                async fn users_by_address(&self, tenant: TenantId, address: &str) -> StoreResult<Vec<User>> {
                    all(
                        self.read(&schema::USERS_BY_ADDRESS, vec![tenant.into(), schema::fold(address).into()]).await?,
                        schema::user_from_row,
                    )
                }

                async fn list_users(&self, tenant: TenantId, query: &UserQuery) -> StoreResult<UserPage> {
                    let sql = query::list_users_sql(tenant, query)?;
                    let users = all(self.read(&sql.sql, sql.values).await?, schema::user_from_row)?;
                    query::page_of(users, query)
                }

                async fn count_users(&self, tenant: TenantId, filter: Option<&UserFilter>) -> StoreResult<u64> {
                    let sql = query::count_users_sql(tenant, filter)?;
                    self.count(&sql.sql, sql.values).await
                }

                async fn write_user(&self, write: &UserWrite, audit: &[AuditRecord]) -> StoreResult<User> {
                    self.write_user_with(write, vec![], schema::audit_statements(audit)?).await
                }

                async fn record_invitation(&self, write: &InvitationWrite) -> StoreResult<User> {
                    // Lock order: the user's invitation rows before the user row, as redemption and
                    // deletion take them; a reset racing a redemption on another replica then waits
                    // for it instead of deadlocking with it (PostgreSQL would fail one of the two).
                    let before = vec![schema::revoke_pending_invitations(&write.invitation)];
                    let mut statements = vec![schema::invitation_insert(&write.invitation)];
                    statements.extend(schema::invitation_sponsor_statements(&write.invitation, &write.sponsors));
                    statements.extend(schema::audit_statements(&write.audit)?);
                    statements.extend(write.mail.iter().flat_map($crate::mail::mail_statements));
                    self.write_user_with(&write.user, before, statements).await
                }

                async fn invitation_by_ticket_hash(&self, tenant: TenantId, ticket_hash: &str) -> StoreResult<Option<InvitationRecord>> {
                    one(
                        self.read(&schema::INVITATION_BY_TICKET_HASH, vec![tenant.into(), ticket_hash.into()]).await?,
                        schema::invitation_from_row,
                    )
                }

                async fn invitations_for_user(&self, tenant: TenantId, user_id: ObjectId) -> StoreResult<Vec<InvitationRecord>> {
                    all(self.read(&schema::INVITATIONS_FOR_USER, vec![tenant.into(), user_id.into()]).await?, schema::invitation_from_row)
                }

                async fn issue_passcode(
                    &self,
                    code: &guestlist_domain::redemption::PasscodeRecord,
                    window_start: chrono::DateTime<chrono::Utc>,
                    max_per_window: u32,
                ) -> StoreResult<$crate::PasscodeIssue> {
                    use $crate::redemption as r;
                    let code = code.clone();
                    let address =
                        vec![SqlValue::from(code.tenant_id), code.email_lower.as_str().into(), schema::stored_time(window_start).into()];
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            execute(&mut transaction, r::PASSCODE_LOCK, vec![code.tenant_id.into(), code.invitation_id.into()]).await?;
                            execute(&mut transaction, r::PASSCODE_PRUNE, address.clone()).await?;
                            let counted = fetch(&mut transaction, r::PASSCODES_IN_WINDOW, address).await?;
                            if counted.len() >= max_per_window as usize {
                                let oldest = counted.first().map(|row| row.time("created_date_time")).transpose()?.unwrap_or(window_start);
                                // The oldest counted code leaves the window one window length after it was sent.
                                let window = code.created_date_time - window_start;
                                return Ok(Commit::Discard($crate::PasscodeIssue::LimitReached { retry_at: oldest + window }));
                            }
                            if code.state != guestlist_domain::redemption::PasscodeState::Reserved {
                                let invitation = vec![code.tenant_id.into(), code.invitation_id.into()];
                                execute(&mut transaction, r::PASSCODE_SUPERSEDE, invitation).await?;
                            }
                            execute(&mut transaction, &r::passcode_insert(), r::passcode_values(&code)).await?;
                            Ok(Commit::Keep($crate::PasscodeIssue::Issued))
                        })
                    })
                    .await
                }

                async fn activate_passcode(
                    &self,
                    tenant: TenantId,
                    invitation_id: ObjectId,
                    code_id: ObjectId,
                    code_hash: &str,
                ) -> StoreResult<bool> {
                    use $crate::redemption as r;
                    let code_hash = code_hash.to_string();
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            execute(&mut transaction, r::PASSCODE_SUPERSEDE, vec![tenant.into(), invitation_id.into()]).await?;
                            let activated =
                                execute(&mut transaction, r::PASSCODE_ACTIVATE, vec![tenant.into(), code_id.into(), code_hash.into()])
                                    .await?;
                            Ok(if activated == 1 { Commit::Keep(true) } else { Commit::Discard(false) })
                        })
                    })
                    .await
                }

                async fn release_passcode(&self, tenant: TenantId, code_id: ObjectId) -> StoreResult<()> {
                    let values = vec![tenant.into(), code_id.into()];
                    self.write(vec![Statement { sql: $crate::redemption::PASSCODE_RELEASE, values }]).await
                }

                async fn release_passcode_try(&self, tenant: TenantId, code_id: ObjectId) -> StoreResult<()> {
                    let values = vec![tenant.into(), code_id.into()];
                    self.write(vec![Statement { sql: $crate::redemption::PASSCODE_RELEASE_TRY, values }]).await
                }

                async fn latest_passcode(
                    &self,
                    tenant: TenantId,
                    invitation_id: ObjectId,
                ) -> StoreResult<Option<guestlist_domain::redemption::PasscodeRecord>> {
                    one(
                        self.read($crate::redemption::LATEST_PASSCODE, vec![tenant.into(), invitation_id.into()]).await?,
                        $crate::redemption::passcode_from_row,
                    )
                }

                async fn reserve_passcode_try(
                    &self,
                    tenant: TenantId,
                    code_id: ObjectId,
                    now: chrono::DateTime<chrono::Utc>,
                    max_tries: u32,
                ) -> StoreResult<bool> {
                    self.transact(move |mut connection| {
                        Box::pin(async move {
                            let values = vec![tenant.into(), code_id.into(), schema::stored_time(now).into(), i64::from(max_tries).into()];
                            Ok(Commit::Keep(execute(&mut connection, $crate::redemption::PASSCODE_RESERVE_TRY, values).await? == 1))
                        })
                    })
                    .await
                }

                async fn use_passcode(
                    &self,
                    tenant: TenantId,
                    code_id: ObjectId,
                    session: &guestlist_domain::redemption::RedemptionSession,
                ) -> StoreResult<bool> {
                    use $crate::redemption as r;
                    let prune =
                        vec![tenant.into(), session.email_lower.as_str().into(), schema::stored_time(session.created_date_time).into()];
                    let session = r::session_values(session);
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, r::PASSCODE_USE, vec![tenant.into(), code_id.into()]).await? == 0 {
                                return Ok(Commit::Discard(false));
                            }
                            execute(&mut transaction, r::SESSION_PRUNE, prune).await?;
                            execute(&mut transaction, &r::session_insert(), session).await?;
                            Ok(Commit::Keep(true))
                        })
                    })
                    .await
                }

                async fn redemption_session(
                    &self,
                    token_hash: &str,
                ) -> StoreResult<Option<guestlist_domain::redemption::RedemptionSession>> {
                    one(
                        self.read($crate::redemption::SESSION_BY_TOKEN_HASH, vec![token_hash.into()]).await?,
                        $crate::redemption::session_from_row,
                    )
                }

                async fn redeem_invitation(&self, write: &$crate::RedemptionWrite) -> StoreResult<$crate::RedeemResult> {
                    let audit = schema::audit_statements(&write.audit)?;
                    let guard = vec![write.tenant_id.into(), write.invitation_id.into(), schema::stored_time(write.now).into()];
                    let user = UserWrite::Update(write.user.clone());
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, $crate::redemption::INVITATION_REDEEM, guard).await? == 0 {
                                return Ok(Commit::Discard($crate::RedeemResult::TicketNotPending));
                            }
                            let user = write_user_in(&mut transaction, &user).await?;
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep($crate::RedeemResult::Redeemed(Box::new(user))))
                        })
                    })
                    .await
                }

                async fn audit_records(&self, tenant: TenantId, limit: u32) -> StoreResult<Vec<AuditRecord>> {
                    all(self.read(&schema::AUDIT_NEWEST, vec![tenant.into(), i64::from(limit).into()]).await?, schema::audit_from_row)
                }

                async fn group(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<guestlist_domain::Group>> {
                    one(self.read(&$crate::groups::GROUP_BY_ID, vec![tenant.into(), id.into()]).await?, $crate::groups::group_from_row)
                }

                async fn list_groups(
                    &self,
                    tenant: TenantId,
                    query: &guestlist_domain::filter::GroupQuery,
                ) -> StoreResult<$crate::GroupPage> {
                    let sql = $crate::groups::list_groups_sql(tenant, query)?;
                    let groups = all(self.read(&sql.sql, sql.values).await?, $crate::groups::group_from_row)?;
                    $crate::groups::list_groups_page(groups, query)
                }

                async fn count_groups(&self, tenant: TenantId, filter: Option<&guestlist_domain::filter::GroupFilter>) -> StoreResult<u64> {
                    let sql = $crate::groups::count_groups_sql(tenant, filter)?;
                    self.count(&sql.sql, sql.values).await
                }

                async fn count_group_members(&self, tenant: TenantId, group_id: ObjectId) -> StoreResult<u64> {
                    self.count($crate::groups::MEMBER_COUNT, vec![tenant.into(), group_id.into()]).await
                }

                async fn count_member_of(&self, tenant: TenantId, member_id: ObjectId, transitive: bool) -> StoreResult<u64> {
                    let sql =
                        if transitive { $crate::groups::TRANSITIVE_MEMBER_OF_COUNT.as_str() } else { $crate::groups::MEMBER_OF_COUNT };
                    self.count(sql, vec![tenant.into(), member_id.into()]).await
                }

                async fn write_group(&self, write: &$crate::GroupWrite, audit: &[AuditRecord]) -> StoreResult<guestlist_domain::Group> {
                    let plan = $crate::groups::plan_group_write(write)?;
                    let audit = schema::audit_statements(audit)?;
                    let exists = vec![write.group().id.into(), write.group().tenant_id.into()];
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            let changed = execute(&mut transaction, plan.group_row.sql, plan.group_row.values).await?;
                            if plan.is_update && changed == 0 {
                                let existing = fetch(&mut transaction, $crate::groups::GROUP_EXISTS, exists).await?;
                                return Err(if existing.is_empty() {
                                    StoreError::NotFound
                                } else {
                                    StoreError::Conflict($crate::Conflict::StaleVersion)
                                });
                            }
                            execute_all(&mut transaction, plan.follow_up).await?;
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(plan.stored))
                        })
                    })
                    .await
                }

                async fn delete_group(&self, tenant: TenantId, group_id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()> {
                    self.change_one_audited($crate::groups::GROUP_DELETE, vec![tenant.into(), group_id.into()], audit).await
                }

                async fn add_group_member(
                    &self,
                    tenant: TenantId,
                    group_id: ObjectId,
                    member_id: ObjectId,
                    audit: &[AuditRecord],
                ) -> StoreResult<()> {
                    self.change_one_audited($crate::groups::MEMBER_INSERT, vec![tenant.into(), group_id.into(), member_id.into()], audit)
                        .await
                }

                async fn remove_group_member(
                    &self,
                    tenant: TenantId,
                    group_id: ObjectId,
                    member_id: ObjectId,
                    audit: &[AuditRecord],
                ) -> StoreResult<()> {
                    self.change_one_audited($crate::groups::MEMBER_DELETE, vec![tenant.into(), group_id.into(), member_id.into()], audit)
                        .await
                }

                async fn group_members(
                    &self,
                    tenant: TenantId,
                    group_id: ObjectId,
                    page: &$crate::PageRequest,
                ) -> StoreResult<$crate::MemberPage> {
                    let values = $crate::groups::relationship_values(tenant, group_id, page)?;
                    let users = all(self.read(&$crate::groups::MEMBER_USERS, values.clone()).await?, schema::user_from_row)?;
                    let groups = all(self.read(&$crate::groups::MEMBER_GROUPS, values).await?, $crate::groups::group_from_row)?;
                    Ok($crate::groups::member_page(users, groups, page))
                }

                async fn member_of(
                    &self,
                    tenant: TenantId,
                    member_id: ObjectId,
                    transitive: bool,
                    page: &$crate::PageRequest,
                ) -> StoreResult<$crate::GroupPage> {
                    let sql = if transitive { &$crate::groups::TRANSITIVE_MEMBER_OF } else { &$crate::groups::MEMBER_OF };
                    let values = $crate::groups::relationship_values(tenant, member_id, page)?;
                    let groups = all(self.read(sql, values).await?, $crate::groups::group_from_row)?;
                    Ok($crate::groups::group_page(groups, page.top))
                }

                async fn list_audit_records(&self, tenant: TenantId, query: &AuditQuery) -> StoreResult<$crate::AuditPage> {
                    let sql = $crate::audit_query::list_audit_sql(tenant, query)?;
                    let records = all(self.read(&sql.sql, sql.values).await?, schema::audit_from_row)?;
                    $crate::audit_query::audit_page_of(records, query)
                }

                async fn audit_record(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<AuditRecord>> {
                    one(self.read(&schema::AUDIT_BY_ID, vec![tenant.into(), id.into()]).await?, schema::audit_from_row)
                }

                async fn delete_user(&self, tenant: TenantId, user_id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()> {
                    let audit = schema::audit_statements(audit)?;
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            let key = || vec![SqlValue::from(tenant), SqlValue::from(user_id)];
                            execute(&mut transaction, schema::REVOKE_PENDING_INVITATIONS, key()).await?;
                            execute(&mut transaction, schema::SPONSORSHIPS_OF_DELETE, key()).await?;
                            if execute(&mut transaction, schema::USER_DELETE, key()).await? == 0 {
                                return Err(StoreError::NotFound);
                            }
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(()))
                        })
                    })
                    .await
                }

                async fn sponsors(&self, tenant: TenantId, user_id: ObjectId) -> StoreResult<Vec<User>> {
                    all(self.read(&schema::SPONSOR_USERS, vec![tenant.into(), user_id.into()]).await?, schema::user_from_row)
                }

                async fn add_sponsor(
                    &self,
                    tenant: TenantId,
                    user_id: ObjectId,
                    sponsor_id: ObjectId,
                    audit: &[AuditRecord],
                ) -> StoreResult<$crate::SponsorChange> {
                    use $crate::SponsorChange;
                    let audit = schema::audit_statements(audit)?;
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, schema::USER_LOCK, vec![tenant.into(), user_id.into()]).await? == 0 {
                                return Ok(Commit::Discard(SponsorChange::UserNotFound));
                            }
                            if fetch(&mut transaction, schema::USER_EXISTS, vec![sponsor_id.into(), tenant.into()]).await?.is_empty() {
                                return Ok(Commit::Discard(SponsorChange::SponsorNotFound));
                            }
                            let current = fetch(&mut transaction, schema::SPONSOR_IDS, vec![tenant.into(), user_id.into()]).await?;
                            let current = current.iter().map(|row| row.text("sponsor_id")).collect::<StoreResult<Vec<_>>>()?;
                            if current.contains(&sponsor_id.to_string()) {
                                return Ok(Commit::Discard(SponsorChange::AlreadySponsor));
                            }
                            if current.len() >= guestlist_domain::invitation::MAX_SPONSORS {
                                return Ok(Commit::Discard(SponsorChange::LimitReached));
                            }
                            let now = schema::stored_time(chrono::Utc::now());
                            execute(
                                &mut transaction,
                                schema::SPONSOR_INSERT,
                                vec![tenant.into(), user_id.into(), sponsor_id.into(), now.into()],
                            )
                            .await?;
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(SponsorChange::Added))
                        })
                    })
                    .await
                }

                async fn remove_sponsor(
                    &self,
                    tenant: TenantId,
                    user_id: ObjectId,
                    sponsor_id: ObjectId,
                    audit: &[AuditRecord],
                ) -> StoreResult<()> {
                    let audit = schema::audit_statements(audit)?;
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            let key = vec![tenant.into(), user_id.into(), sponsor_id.into()];
                            if execute(&mut transaction, schema::SPONSOR_DELETE, key).await? == 0 {
                                return Err(StoreError::NotFound);
                            }
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(()))
                        })
                    })
                    .await
                }

                async fn count_request(&self, tenant: TenantId, scope: &str, window_start: i64, prune_before: i64) -> StoreResult<u64> {
                    let scope = scope.to_string();
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            execute(
                                &mut transaction,
                                schema::THROTTLE_PRUNE,
                                vec![tenant.into(), scope.as_str().into(), prune_before.into()],
                            )
                            .await?;
                            let rows = fetch(
                                &mut transaction,
                                schema::THROTTLE_COUNT,
                                vec![tenant.into(), scope.as_str().into(), window_start.into()],
                            )
                            .await?;
                            let count = rows
                                .first()
                                .ok_or_else(|| StoreError::Database("the throttle upsert returned no row".into()))?
                                .int("request_count")?;
                            u64::try_from(count).map(Commit::Keep).map_err(|e| StoreError::Database(format!("request_count: {e}")))
                        })
                    })
                    .await
                }

                async fn record_audit(&self, audit: &[AuditRecord]) -> StoreResult<()> {
                    self.write(schema::audit_statements(audit)?).await
                }

                async fn set_user_password(
                    &self,
                    tenant: TenantId,
                    user_id: ObjectId,
                    password_hash: &str,
                    force_change: bool,
                    at: chrono::DateTime<chrono::Utc>,
                ) -> StoreResult<()> {
                    let values =
                        vec![user_id.into(), tenant.into(), password_hash.into(), force_change.into(), schema::stored_time(at).into()];
                    self.write(vec![Statement { sql: $crate::signin::PASSWORD_UPSERT, values }]).await
                }

                async fn user_password(&self, tenant: TenantId, user_id: ObjectId) -> StoreResult<Option<$crate::StoredPassword>> {
                    let rows = self.read($crate::signin::PASSWORD, vec![tenant.into(), user_id.into()]).await?;
                    one(rows, |row| {
                        Ok($crate::StoredPassword {
                            hash: row.text("password_hash")?,
                            force_change_next_sign_in: row.boolean("force_change_next_sign_in")?,
                        })
                    })
                }

                async fn change_user_password(
                    &self,
                    tenant: TenantId,
                    user_id: ObjectId,
                    current_hash: &str,
                    new_hash: &str,
                    at: chrono::DateTime<chrono::Utc>,
                    audit: &[AuditRecord],
                ) -> StoreResult<bool> {
                    let values = vec![
                        tenant.into(),
                        user_id.into(),
                        current_hash.into(),
                        new_hash.into(),
                        false.into(),
                        schema::stored_time(at).into(),
                    ];
                    let audit = schema::audit_statements(audit)?;
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, $crate::signin::PASSWORD_CHANGE, values).await? != 1 {
                                return Ok(Commit::Discard(false));
                            }
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(true))
                        })
                    })
                    .await
                }

                async fn reserve_attempt(&self, scope: &str, window_start: i64, limit: u64) -> StoreResult<Option<u64>> {
                    let limit = i64::try_from(limit).map_err(|e| StoreError::Database(format!("attempt limit: {e}")))?;
                    let values = vec![scope.into(), window_start.into(), limit.into()];
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            let rows = fetch(&mut transaction, $crate::signin::ATTEMPT_RESERVE, values).await?;
                            let Some(row) = rows.first() else { return Ok(Commit::Discard(None)) };
                            let count = u64::try_from(row.int("attempts")?).map_err(|e| StoreError::Database(format!("attempts: {e}")))?;
                            Ok(Commit::Keep(Some(count)))
                        })
                    })
                    .await
                }

                async fn release_attempt(&self, scope: &str, window_start: i64) -> StoreResult<()> {
                    let values = vec![scope.into(), window_start.into()];
                    self.write(vec![Statement { sql: $crate::signin::ATTEMPT_RELEASE, values }]).await
                }

                async fn attempt_count(&self, scope: &str, window_start: i64) -> StoreResult<u64> {
                    let rows = self.read($crate::signin::ATTEMPT_COUNT, vec![scope.into(), window_start.into()]).await?;
                    let count = rows.first().map(|row| row.int("attempts")).transpose()?.unwrap_or(0);
                    u64::try_from(count).map_err(|e| StoreError::Database(format!("attempts: {e}")))
                }

                async fn prune_attempts(&self, before: i64, batch: u32) -> StoreResult<u64> {
                    let values = vec![before.into(), i64::from(batch).into()];
                    self.transact(move |mut transaction| {
                        Box::pin(async move { Ok(Commit::Keep(execute(&mut transaction, $crate::signin::ATTEMPT_PRUNE, values).await?)) })
                    })
                    .await
                }

                async fn insert_oauth_grant(&self, grant: &guestlist_domain::signin::OAuthGrant) -> StoreResult<()> {
                    let values = $crate::signin::grant_values(grant);
                    self.transact(move |mut connection| {
                        Box::pin(async move {
                            execute(&mut connection, &$crate::signin::grant_insert(), values).await?;
                            Ok(Commit::Keep(()))
                        })
                    })
                    .await
                }

                async fn oauth_grant(&self, token_hash: &str) -> StoreResult<Option<guestlist_domain::signin::OAuthGrant>> {
                    one(self.read($crate::signin::GRANT_BY_HASH, vec![token_hash.into()]).await?, $crate::signin::grant_from_row)
                }

                async fn oauth_grant_by_user_code(&self, user_code: &str) -> StoreResult<Option<guestlist_domain::signin::OAuthGrant>> {
                    one(self.read($crate::signin::GRANT_BY_USER_CODE, vec![user_code.into()]).await?, $crate::signin::grant_from_row)
                }

                async fn transition_oauth_grant(
                    &self,
                    token_hash: &str,
                    from: guestlist_domain::signin::GrantState,
                    to: guestlist_domain::signin::GrantState,
                    user_id: Option<ObjectId>,
                    now: chrono::DateTime<chrono::Utc>,
                ) -> StoreResult<bool> {
                    let values = vec![
                        token_hash.into(),
                        from.as_str().into(),
                        to.as_str().into(),
                        user_id.map(|id| id.to_string()).into(),
                        schema::stored_time(now).into(),
                    ];
                    self.transact(move |mut connection| {
                        Box::pin(
                            async move { Ok(Commit::Keep(execute(&mut connection, $crate::signin::GRANT_TRANSITION, values).await? == 1)) },
                        )
                    })
                    .await
                }

                async fn exchange_oauth_grant(
                    &self,
                    spent_hash: &str,
                    from: guestlist_domain::signin::GrantState,
                    issued: &guestlist_domain::signin::OAuthGrant,
                    now: chrono::DateTime<chrono::Utc>,
                ) -> StoreResult<bool> {
                    let spend = vec![
                        spent_hash.into(),
                        from.as_str().into(),
                        guestlist_domain::signin::GrantState::Used.as_str().into(),
                        Option::<String>::None.into(),
                        schema::stored_time(now).into(),
                    ];
                    let issued = $crate::signin::grant_values(issued);
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, $crate::signin::GRANT_TRANSITION, spend).await? != 1 {
                                return Ok(Commit::Discard(false));
                            }
                            execute(&mut transaction, &$crate::signin::grant_insert(), issued).await?;
                            Ok(Commit::Keep(true))
                        })
                    })
                    .await
                }

                async fn revoke_oauth_family(&self, tenant: TenantId, family_id: ObjectId) -> StoreResult<u64> {
                    self.transact(move |mut connection| {
                        Box::pin(async move {
                            execute(&mut connection, $crate::signin::GRANT_REVOKE_FAMILY, vec![tenant.into(), family_id.into()])
                                .await
                                .map(Commit::Keep)
                        })
                    })
                    .await
                }

                async fn record_device_poll(
                    &self,
                    token_hash: &str,
                    now: chrono::DateTime<chrono::Utc>,
                    not_before: chrono::DateTime<chrono::Utc>,
                ) -> StoreResult<bool> {
                    let values = vec![token_hash.into(), schema::stored_time(now).into(), schema::stored_time(not_before).into()];
                    self.transact(move |mut connection| {
                        Box::pin(async move { Ok(Commit::Keep(execute(&mut connection, $crate::signin::DEVICE_POLL, values).await? == 1)) })
                    })
                    .await
                }

                async fn prune_oauth_grants(&self, expired_before: chrono::DateTime<chrono::Utc>, limit: u32) -> StoreResult<u64> {
                    let values = vec![schema::stored_time(expired_before).into(), i64::from(limit).into()];
                    self.transact(move |mut connection| {
                        Box::pin(async move { execute(&mut connection, $crate::signin::GRANT_PRUNE, values).await.map(Commit::Keep) })
                    })
                    .await
                }

                async fn role_assignments(
                    &self,
                    tenant: TenantId,
                    principal: Option<ObjectId>,
                ) -> StoreResult<Vec<guestlist_domain::roles::RoleAssignment>> {
                    use $crate::roles as r;
                    let rows = match principal {
                        Some(principal) => self.read(&r::ASSIGNMENTS_OF_PRINCIPAL, vec![tenant.into(), principal.into()]).await?,
                        None => self.read(&r::ASSIGNMENTS, vec![tenant.into()]).await?,
                    };
                    all(rows, r::assignment_from_row)
                }

                async fn role_assignment(
                    &self,
                    tenant: TenantId,
                    id: ObjectId,
                ) -> StoreResult<Option<guestlist_domain::roles::RoleAssignment>> {
                    one(
                        self.read(&$crate::roles::ASSIGNMENT_BY_ID, vec![tenant.into(), id.into()]).await?,
                        $crate::roles::assignment_from_row,
                    )
                }

                async fn add_role_assignment(
                    &self,
                    assignment: &guestlist_domain::roles::RoleAssignment,
                    audit: &[AuditRecord],
                ) -> StoreResult<()> {
                    self.change_one_audited($crate::roles::ASSIGNMENT_INSERT, $crate::roles::assignment_values(assignment), audit).await
                }

                async fn remove_role_assignment(&self, tenant: TenantId, id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()> {
                    self.change_one_audited($crate::roles::ASSIGNMENT_DELETE, vec![tenant.into(), id.into()], audit).await
                }

                async fn tenant_policy(&self, tenant: TenantId, policy_type: &str) -> StoreResult<Option<String>> {
                    let rows = self.read($crate::roles::POLICY_BY_TYPE, vec![tenant.into(), policy_type.into()]).await?;
                    rows.first().map(|row| row.text("definition")).transpose()
                }

                async fn put_tenant_policy(
                    &self,
                    tenant: TenantId,
                    policy_type: &str,
                    definition: &str,
                    at: chrono::DateTime<chrono::Utc>,
                    audit: &[AuditRecord],
                ) -> StoreResult<()> {
                    let values = vec![tenant.into(), policy_type.into(), definition.into(), schema::stored_time(at).into()];
                    let mut statements = vec![Statement { sql: $crate::roles::POLICY_UPSERT, values }];
                    statements.extend(schema::audit_statements(audit)?);
                    self.write(statements).await
                }

                async fn enqueue_mail(&self, write: &$crate::MailWrite, audit: &[AuditRecord]) -> StoreResult<()> {
                    let mut statements = $crate::mail::mail_statements(write);
                    statements.extend(schema::audit_statements(audit)?);
                    self.write(statements).await
                }

                async fn claim_mail(
                    &self,
                    worker: &str,
                    now: chrono::DateTime<chrono::Utc>,
                    lease_until: chrono::DateTime<chrono::Utc>,
                    limit: u32,
                ) -> StoreResult<Vec<guestlist_domain::mail::MailRecord>> {
                    let values = vec![
                        worker.into(),
                        schema::stored_time(lease_until).into(),
                        schema::stored_time(now).into(),
                        i64::from(limit).into(),
                    ];
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            let rows = fetch(&mut transaction, $crate::mail::claim_sql($engine), values).await?;
                            let mut claimed = all(rows, $crate::mail::mail_from_row)?;
                            claimed.sort_by_key(|record| (record.next_attempt_date_time, record.mail.id));
                            Ok(Commit::Keep(claimed))
                        })
                    })
                    .await
                }

                async fn mark_mail_sent(&self, id: ObjectId, worker: &str, at: chrono::DateTime<chrono::Utc>) -> StoreResult<bool> {
                    let values = vec![id.into(), worker.into(), schema::stored_time(at).into()];
                    self.transact(move |mut connection| {
                        Box::pin(async move { Ok(Commit::Keep(execute(&mut connection, $crate::mail::MARK_SENT, values).await? == 1)) })
                    })
                    .await
                }

                async fn mark_mail_failed(
                    &self,
                    id: ObjectId,
                    worker: &str,
                    failure: &$crate::MailFailure,
                    audit: &[AuditRecord],
                ) -> StoreResult<bool> {
                    let (sql, values) = $crate::mail::failure_values(id, worker, failure);
                    let audit = schema::audit_statements(audit)?;
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, sql, values).await? == 0 {
                                return Ok(Commit::Discard(false));
                            }
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(true))
                        })
                    })
                    .await
                }

                async fn mail(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<guestlist_domain::mail::MailRecord>> {
                    one(self.read(&$crate::mail::MAIL_BY_ID, vec![tenant.into(), id.into()]).await?, $crate::mail::mail_from_row)
                }

                async fn mails_for_invitation(
                    &self,
                    tenant: TenantId,
                    invitation_id: ObjectId,
                ) -> StoreResult<Vec<guestlist_domain::mail::MailRecord>> {
                    all(
                        self.read(&$crate::mail::MAILS_FOR_INVITATION, vec![tenant.into(), invitation_id.into()]).await?,
                        $crate::mail::mail_from_row,
                    )
                }

                async fn invitation(&self, tenant: TenantId, invitation_id: ObjectId) -> StoreResult<Option<InvitationRecord>> {
                    one(
                        self.read(&$crate::mail::INVITATION_BY_ID, vec![tenant.into(), invitation_id.into()]).await?,
                        schema::invitation_from_row,
                    )
                }

                async fn pending_invitations(
                    &self,
                    tenant: TenantId,
                    after: Option<$crate::InvitationCursor>,
                    limit: u32,
                ) -> StoreResult<Vec<$crate::PendingInvitation>> {
                    let values = $crate::mail::pending_values(tenant, after, limit);
                    all(self.read(&$crate::mail::PENDING_INVITATIONS, values).await?, $crate::mail::pending_invitation_from_row)
                }

                async fn is_unsubscribed(&self, tenant: TenantId, address: &str) -> StoreResult<bool> {
                    let rows = self.read($crate::mail::IS_UNSUBSCRIBED, vec![tenant.into(), schema::fold(address).into()]).await?;
                    Ok(!rows.is_empty())
                }

                async fn unsubscribe_link(&self, token_hash: &str) -> StoreResult<Option<(TenantId, String)>> {
                    one(self.read($crate::mail::UNSUBSCRIBE_TOKEN, vec![token_hash.into()]).await?, $crate::mail::unsubscribe_link_from_row)
                }

                async fn unsubscribe(
                    &self,
                    tenant: TenantId,
                    address: &str,
                    at: chrono::DateTime<chrono::Utc>,
                    audit: &[AuditRecord],
                ) -> StoreResult<bool> {
                    let audit = schema::audit_statements(audit)?;
                    let unsubscribe = $crate::mail::unsubscribe_values(tenant, address, at);
                    self.transact(move |mut transaction| {
                        Box::pin(async move {
                            if execute(&mut transaction, $crate::mail::UNSUBSCRIBE, unsubscribe).await? == 0 {
                                return Ok(Commit::Discard(false));
                            }
                            execute_all(&mut transaction, audit).await?;
                            Ok(Commit::Keep(true))
                        })
                    })
                    .await
                }
            }
        }
    };
}

pub(crate) use impl_store;

/// What both engines agree on about errors; `conflict_of` and `is_unavailable` read the engine's
/// own constraint names and error codes.
pub(crate) fn store_error(
    error: sqlx::Error,
    conflict_of: fn(&dyn sqlx::error::DatabaseError) -> crate::Conflict,
    is_unavailable: fn(&dyn sqlx::error::DatabaseError) -> bool,
) -> crate::StoreError {
    use crate::StoreError;
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::Conflict(conflict_of(e.as_ref())),
        sqlx::Error::Database(e) if is_unavailable(e.as_ref()) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(error.to_string())
        }
        other => StoreError::Database(other.to_string()),
    }
}

/// Migration failures: a database we could not reach is `Unavailable`, anything else is a fault.
pub(crate) fn migrate_error(error: sqlx::migrate::MigrateError, map_error: fn(sqlx::Error) -> crate::StoreError) -> crate::StoreError {
    match error {
        sqlx::migrate::MigrateError::Execute(e) => map_error(e),
        other => crate::StoreError::Database(format!("migration failed: {other}")),
    }
}
