//! guestlist's storage layer: one [`Store`] trait, with SQLite (the embedded default) and
//! PostgreSQL (for several server replicas) behind it, each with its own migrations.
//!
//! Every method that writes commits all of its changes in one transaction, so an operation and
//! its audit entry are kept or lost together. Uniqueness (UPNs, proxy addresses) is enforced by
//! the database, so concurrent writers on several replicas cannot create duplicates.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use guestlist_domain::audit::AuditRecord;
use guestlist_domain::audit_query::AuditQuery;
use guestlist_domain::filter::{UserFilter, UserQuery};
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::mail::MailRecord;
use guestlist_domain::tenant::Application;
use guestlist_domain::ticket::InvitationRecord;
use guestlist_domain::{Tenant, User};

use std::path::Path;
use std::sync::Arc;

mod audit_query;
mod engine;
mod error;
mod group_commit;
mod groups;
mod mail;
mod postgres;
mod query;
mod redemption;
mod roles;
mod schema;
mod signin;
mod sqlite;

pub use error::{Conflict, StoreError};
pub use groups::{GroupPage, GroupWrite, MemberPage, PageRequest};
pub use mail::{InvitationCursor, MailFailure, MailWrite, PendingInvitation};
pub use postgres::PostgresStore;
pub use redemption::{PasscodeIssue, RedeemResult, RedemptionWrite};
pub use sqlite::SqliteStore;

pub type StoreResult<T> = Result<T, StoreError>;

/// How a route names a user: `/users/{id}` or `/users/{userPrincipalName}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    Id(ObjectId),
    /// Matched case-insensitively.
    UserPrincipalName(String),
}

/// A user to write: a new one, or a new state of an existing one whose `version` is the
/// version the caller read (the write fails with [`Conflict::StaleVersion`] if it moved on).
#[derive(Debug, Clone, PartialEq)]
pub enum UserWrite {
    Create(User),
    Update(User),
}

impl UserWrite {
    pub fn user(&self) -> &User {
        match self {
            UserWrite::Create(user) | UserWrite::Update(user) => user,
        }
    }
}

/// Everything one `POST /invitations` changes, committed together: the user, the revocation of
/// the user's earlier pending tickets (DECISIONS 2), the new invitation, and the audit entries.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationWrite {
    pub user: UserWrite,
    pub invitation: InvitationRecord,
    pub audit: Vec<AuditRecord>,
    /// Users to add as the guest's sponsors (`invitedUserSponsors`); ones it already has, or that
    /// no longer exist, are skipped.
    pub sponsors: Vec<ObjectId>,
    /// The invitation email, when `sendInvitationMessage` asked for one; the user's unsent
    /// invitation mail from earlier invitations is superseded.
    pub mail: Option<MailWrite>,
}

/// What [`Store::add_sponsor`] did; nothing is written unless it is `Added`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SponsorChange {
    Added,
    UserNotFound,
    SponsorNotFound,
    AlreadySponsor,
    /// The user already has [`guestlist_domain::invitation::MAX_SPONSORS`] sponsors.
    LimitReached,
}

/// A page of audit entries, newest first, and the continuation for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Opaque; pass back as [`AuditQuery::after`]. `None` on the last page.
    pub next: Option<String>,
}

/// A page of users and the continuation for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Opaque; pass back as [`UserQuery::after`]. `None` on the last page.
    pub next: Option<String>,
}

/// An RSA key that signs access tokens. Kept in the database so every replica signs and
/// validates with the same keys; the private key is sealed under a key-encryption key the
/// database does not hold. `Debug` leaves the private key out.
#[derive(Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// Sealed by the key-encryption key `key_encryption_key_id`; a plain PKCS#8 PEM when that
    /// is `None` (rows written before keys were sealed, until the server seals them at start).
    pub private_key: String,
    pub key_encryption_key_id: Option<String>,
    pub created_date_time: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("private_key", &format_args!("[redacted]"))
            .field("key_encryption_key_id", &self.key_encryption_key_id)
            .field("created_date_time", &self.created_date_time)
            .finish()
    }
}

/// A signing key's private key sealed anew (first sealing of a plain row, or rotation of the
/// key-encryption key), written only while the row is still as `from_key_encryption_key_id` says.
#[derive(Clone, PartialEq)]
pub struct SigningKeyReseal {
    pub kid: String,
    /// The key that sealed the stored value this replaces; `None` for a plain row.
    pub from_key_encryption_key_id: Option<String>,
    pub private_key: String,
    pub key_encryption_key_id: String,
}

impl std::fmt::Debug for SigningKeyReseal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyReseal")
            .field("kid", &self.kid)
            .field("from_key_encryption_key_id", &self.from_key_encryption_key_id)
            .field("private_key", &format_args!("[redacted]"))
            .field("key_encryption_key_id", &self.key_encryption_key_id)
            .finish()
    }
}

/// A member's stored password: the argon2 hash and `passwordProfile.forceChangePasswordNextSignIn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassword {
    pub hash: String,
    pub force_change_next_sign_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn engine(&self) -> Engine;

    // Tenants and their app registrations.
    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    /// By id (GUID text) or initial domain, case-insensitively.
    async fn tenant(&self, id_or_domain: &str) -> StoreResult<Option<Tenant>>;
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn insert_application(&self, app: &Application) -> StoreResult<()>;
    async fn application(&self, tenant: TenantId, app_id: ObjectId) -> StoreResult<Option<Application>>;
    async fn applications(&self, tenant: TenantId) -> StoreResult<Vec<Application>>;
    async fn set_application_secret_hash(&self, tenant: TenantId, app_id: ObjectId, secret_hash: &str) -> StoreResult<()>;

    // Token signing keys, newest first.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Writes all of `reseals` in one transaction, or nothing: `Conflict::StaleVersion` when a
    /// row is no longer sealed as its `from_key_encryption_key_id` says (another process
    /// resealed it first) or is missing.
    async fn reseal_signing_keys(&self, reseals: &[SigningKeyReseal]) -> StoreResult<()>;

    // Users.
    async fn user(&self, tenant: TenantId, key: &UserKey) -> StoreResult<Option<User>>;
    /// Users that own `address` (case-insensitive) as `mail`, an `otherMails` entry, a proxy
    /// address (any prefix) or the address they were invited with.
    async fn users_by_address(&self, tenant: TenantId, address: &str) -> StoreResult<Vec<User>>;
    async fn list_users(&self, tenant: TenantId, query: &UserQuery) -> StoreResult<UserPage>;
    async fn count_users(&self, tenant: TenantId, filter: Option<&UserFilter>) -> StoreResult<u64>;
    /// Writes the user (and audit entries) and returns it as stored, `version` advanced.
    async fn write_user(&self, write: &UserWrite, audit: &[AuditRecord]) -> StoreResult<User>;

    // Invitations.
    /// Writes the user, revokes its earlier pending invitations, inserts the new one and the
    /// audit entries, all in one transaction. Returns the user as stored, `version` advanced.
    async fn record_invitation(&self, write: &InvitationWrite) -> StoreResult<User>;
    async fn invitation_by_ticket_hash(&self, tenant: TenantId, ticket_hash: &str) -> StoreResult<Option<InvitationRecord>>;
    /// Oldest first.
    async fn invitations_for_user(&self, tenant: TenantId, user_id: ObjectId) -> StoreResult<Vec<InvitationRecord>>;

    // Redemption with email one-time passcode (contract §3.3, DECISIONS 10, 11).
    /// Inserts a mailed code unless `max_per_window` codes went to its address since
    /// `window_start` (then nothing is written); the invitation's earlier active codes are superseded.
    /// A `Reserved` record only takes its slot of the limit (before the code is hashed), and
    /// [`Store::activate_passcode`] makes it the invitation's code.
    async fn issue_passcode(
        &self,
        code: &guestlist_domain::redemption::PasscodeRecord,
        window_start: DateTime<Utc>,
        max_per_window: u32,
    ) -> StoreResult<PasscodeIssue>;
    /// Stores the hash of a reserved code and makes it the invitation's only active code, in one
    /// transaction; `false` when the reservation is gone.
    async fn activate_passcode(&self, tenant: TenantId, invitation_id: ObjectId, code_id: ObjectId, code_hash: &str) -> StoreResult<bool>;
    /// Deletes a reservation whose code was never hashed, giving its slot back.
    async fn release_passcode(&self, tenant: TenantId, code_id: ObjectId) -> StoreResult<()>;
    /// Gives back a try [`Store::reserve_passcode_try`] counted that never compared the code.
    async fn release_passcode_try(&self, tenant: TenantId, code_id: ObjectId) -> StoreResult<()>;
    /// The invitation's newest code, whatever its state (reservations are not codes yet).
    async fn latest_passcode(
        &self,
        tenant: TenantId,
        invitation_id: ObjectId,
    ) -> StoreResult<Option<guestlist_domain::redemption::PasscodeRecord>>;
    /// Counts one try against an active, unexpired code that has tries left, before the code is
    /// compared; `false` (nothing counted) otherwise.
    async fn reserve_passcode_try(&self, tenant: TenantId, code_id: ObjectId, now: DateTime<Utc>, max_tries: u32) -> StoreResult<bool>;
    /// Marks the code used (giving back the try that compared it) and starts the session, in one
    /// transaction; `false` (nothing written) when the code was used or replaced meanwhile.
    async fn use_passcode(
        &self,
        tenant: TenantId,
        code_id: ObjectId,
        session: &guestlist_domain::redemption::RedemptionSession,
    ) -> StoreResult<bool>;
    async fn redemption_session(&self, token_hash: &str) -> StoreResult<Option<guestlist_domain::redemption::RedemptionSession>>;
    /// Consumes the ticket only while it is pending and unexpired, then writes the guest and the
    /// audit entries, in one transaction. A stale user version is `Conflict::StaleVersion`.
    async fn redeem_invitation(&self, write: &RedemptionWrite) -> StoreResult<RedeemResult>;

    // Audit log, newest first.
    async fn audit_records(&self, tenant: TenantId, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// One page of the audit log matching the query's filter, newest first.
    async fn list_audit_records(&self, tenant: TenantId, query: &AuditQuery) -> StoreResult<AuditPage>;
    async fn audit_record(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<AuditRecord>>;

    // Groups and memberships.
    async fn group(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<guestlist_domain::Group>>;
    /// One page of the tenant's groups that match the query's filter, in id order or the query's.
    async fn list_groups(&self, tenant: TenantId, query: &guestlist_domain::filter::GroupQuery) -> StoreResult<GroupPage>;
    /// How many of the tenant's groups match the filter (`$count`).
    async fn count_groups(&self, tenant: TenantId, filter: Option<&guestlist_domain::filter::GroupFilter>) -> StoreResult<u64>;
    /// How many direct members, users and groups, a group has.
    async fn count_group_members(&self, tenant: TenantId, group_id: ObjectId) -> StoreResult<u64>;
    /// How many groups [`Store::member_of`] lists in all.
    async fn count_member_of(&self, tenant: TenantId, member_id: ObjectId, transitive: bool) -> StoreResult<u64>;
    /// Writes the group (and audit entries) in one transaction and returns it as stored, `version` advanced.
    async fn write_group(&self, write: &GroupWrite, audit: &[AuditRecord]) -> StoreResult<guestlist_domain::Group>;
    /// Deletes the group with the audit entries; its memberships, both as group and as member, go
    /// by cascade. `NotFound` when there is no such group.
    async fn delete_group(&self, tenant: TenantId, group_id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()>;
    /// Adds a user or a group of the tenant to a group, with the audit entries. `NotFound` when the
    /// group or the member does not exist; `Conflict::Duplicate` when it is a member already.
    async fn add_group_member(&self, tenant: TenantId, group_id: ObjectId, member_id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()>;
    /// Removes a direct member with the audit entries; `NotFound` when it is not one.
    async fn remove_group_member(
        &self,
        tenant: TenantId,
        group_id: ObjectId,
        member_id: ObjectId,
        audit: &[AuditRecord],
    ) -> StoreResult<()>;
    /// One page of a group's direct members, users and groups, in id order.
    async fn group_members(&self, tenant: TenantId, group_id: ObjectId, page: &PageRequest) -> StoreResult<MemberPage>;
    /// One page of the groups a user or group is a direct member of, or with `transitive` also a
    /// member through nested groups (cycles end; the object itself is never listed), in id order.
    async fn member_of(&self, tenant: TenantId, member_id: ObjectId, transitive: bool, page: &PageRequest) -> StoreResult<GroupPage>;

    // Throttling, shared by every replica on the database.
    /// Counts one request of `scope` in the fixed window starting at `window_start` (seconds since
    /// the epoch), drops the scope's windows that started before `prune_before`, and returns the
    /// window's count including this request.
    async fn count_request(&self, tenant: TenantId, scope: &str, window_start: i64, prune_before: i64) -> StoreResult<u64>;

    // Directory roles and tenant policies (issue 5 items 2 and 3).
    /// The tenant's role assignments, or those of one principal, oldest first.
    async fn role_assignments(
        &self,
        tenant: TenantId,
        principal: Option<ObjectId>,
    ) -> StoreResult<Vec<guestlist_domain::roles::RoleAssignment>>;
    async fn role_assignment(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<guestlist_domain::roles::RoleAssignment>>;
    /// Inserts the assignment with the audit entries. `NotFound` when the principal is not a user
    /// of the tenant; `Conflict::Duplicate` when it holds the role already.
    async fn add_role_assignment(&self, assignment: &guestlist_domain::roles::RoleAssignment, audit: &[AuditRecord]) -> StoreResult<()>;
    /// Removes an assignment with the audit entries; `NotFound` when there is none.
    async fn remove_role_assignment(&self, tenant: TenantId, id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()>;
    /// A policy's stored definition (JSON text) by policy type; `None` until first written.
    async fn tenant_policy(&self, tenant: TenantId, policy_type: &str) -> StoreResult<Option<String>>;
    /// Writes a policy's definition with the audit entries, in one transaction.
    async fn put_tenant_policy(
        &self,
        tenant: TenantId,
        policy_type: &str,
        definition: &str,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<()>;

    // Deletion and sponsors.
    /// Deletes the user with the audit entries in one transaction: its pending invitations are
    /// revoked (and kept), its sponsorships of other users and its own sponsor links go, group
    /// memberships follow by cascade. `NotFound` when there is no such user.
    async fn delete_user(&self, tenant: TenantId, user_id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()>;
    /// The user's sponsors that are users, oldest link first.
    async fn sponsors(&self, tenant: TenantId, user_id: ObjectId) -> StoreResult<Vec<User>>;
    /// Adds a user as sponsor, with the audit entries, unless one of [`SponsorChange`]'s refusals applies.
    async fn add_sponsor(
        &self,
        tenant: TenantId,
        user_id: ObjectId,
        sponsor_id: ObjectId,
        audit: &[AuditRecord],
    ) -> StoreResult<SponsorChange>;
    /// Removes a sponsor link with the audit entries; `NotFound` when there is none.
    async fn remove_sponsor(&self, tenant: TenantId, user_id: ObjectId, sponsor_id: ObjectId, audit: &[AuditRecord]) -> StoreResult<()>;

    // Mail outbox and the unsubscribe list.
    /// Puts a message in the outbox with the audit entries, in one transaction.
    async fn enqueue_mail(&self, write: &MailWrite, audit: &[AuditRecord]) -> StoreResult<()>;
    /// Claims up to `limit` due messages for `worker` until `lease_until`; no two workers hold
    /// one message at once, and a message whose lease ran out can be claimed again.
    async fn claim_mail(&self, worker: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<MailRecord>>;
    /// Records delivery; `false` (and nothing written) when `worker` no longer holds the message.
    async fn mark_mail_sent(&self, id: ObjectId, worker: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Records a failed attempt and its audit entries; `false` (and nothing written) when `worker`
    /// no longer holds the message.
    async fn mark_mail_failed(&self, id: ObjectId, worker: &str, failure: &MailFailure, audit: &[AuditRecord]) -> StoreResult<bool>;
    async fn mail(&self, tenant: TenantId, id: ObjectId) -> StoreResult<Option<MailRecord>>;
    /// The messages of one invitation, oldest first.
    async fn mails_for_invitation(&self, tenant: TenantId, invitation_id: ObjectId) -> StoreResult<Vec<MailRecord>>;
    async fn invitation(&self, tenant: TenantId, invitation_id: ObjectId) -> StoreResult<Option<InvitationRecord>>;
    /// Up to `limit` pending invitations after `after`, oldest first, each with its newest mail.
    async fn pending_invitations(
        &self,
        tenant: TenantId,
        after: Option<InvitationCursor>,
        limit: u32,
    ) -> StoreResult<Vec<PendingInvitation>>;
    /// Whether `address` (case-insensitive) asked the tenant for no more invitation mail.
    async fn is_unsubscribed(&self, tenant: TenantId, address: &str) -> StoreResult<bool>;
    /// The tenant and address an unsubscribe token (by its hash) was issued for.
    async fn unsubscribe_link(&self, token_hash: &str) -> StoreResult<Option<(TenantId, String)>>;
    /// Adds the address to the tenant's unsubscribe list with the audit entries; `false` (and
    /// nothing written) when it is on the list already.
    async fn unsubscribe(&self, tenant: TenantId, address: &str, at: DateTime<Utc>, audit: &[AuditRecord]) -> StoreResult<bool>;

    // Member sign-in (issue 5).
    /// Writes audit entries that record no other change (failed sign-ins).
    async fn record_audit(&self, audit: &[AuditRecord]) -> StoreResult<()>;
    /// Sets (or replaces) a user's argon2 password hash.
    async fn set_user_password(
        &self,
        tenant: TenantId,
        user_id: ObjectId,
        password_hash: &str,
        force_change: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn user_password(&self, tenant: TenantId, user_id: ObjectId) -> StoreResult<Option<StoredPassword>>;
    /// Replaces the password whose hash is still `current_hash` with `new_hash`, clears
    /// `force_change_next_sign_in` and writes the audit entries, in one transaction; `false` (and
    /// nothing written) when the password changed since it was read.
    async fn change_user_password(
        &self,
        tenant: TenantId,
        user_id: ObjectId,
        current_hash: &str,
        new_hash: &str,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<bool>;
    /// Takes one of `limit` attempt slots of `scope` in the fixed window starting at
    /// `window_start`, atomically with the check: the window's count with this attempt, or
    /// `None` (nothing counted) when `limit` slots are taken.
    async fn reserve_attempt(&self, scope: &str, window_start: i64, limit: u64) -> StoreResult<Option<u64>>;
    /// Gives back a slot [`Store::reserve_attempt`] took (the attempt succeeded or never ran).
    async fn release_attempt(&self, scope: &str, window_start: i64) -> StoreResult<()>;
    /// The slots taken in a window (0 when none).
    async fn attempt_count(&self, scope: &str, window_start: i64) -> StoreResult<u64>;
    /// Deletes at most `batch` attempt windows that started before `before`; how many.
    async fn prune_attempts(&self, before: i64, batch: u32) -> StoreResult<u64>;
    async fn insert_oauth_grant(&self, grant: &guestlist_domain::signin::OAuthGrant) -> StoreResult<()>;
    async fn oauth_grant(&self, token_hash: &str) -> StoreResult<Option<guestlist_domain::signin::OAuthGrant>>;
    async fn oauth_grant_by_user_code(&self, user_code: &str) -> StoreResult<Option<guestlist_domain::signin::OAuthGrant>>;
    /// Moves a grant from `from` to `to` (setting `user_id` when given) if it is in `from` and
    /// unexpired at `now`; whether this call moved it (so two redemptions cannot both win).
    async fn transition_oauth_grant(
        &self,
        token_hash: &str,
        from: guestlist_domain::signin::GrantState,
        to: guestlist_domain::signin::GrantState,
        user_id: Option<ObjectId>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Spends `spent_hash` (`from` → used, if unexpired at `now`) and stores `issued` (the next
    /// refresh token of the family) in one transaction; false, and nothing written, if it was spent.
    async fn exchange_oauth_grant(
        &self,
        spent_hash: &str,
        from: guestlist_domain::signin::GrantState,
        issued: &guestlist_domain::signin::OAuthGrant,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Revokes every live grant of a sign-in family; how many it revoked.
    async fn revoke_oauth_family(&self, tenant: TenantId, family_id: ObjectId) -> StoreResult<u64>;
    /// Records a device code poll at `now` unless the previous one came after `not_before`;
    /// false means the client polls too fast.
    async fn record_device_poll(&self, token_hash: &str, now: DateTime<Utc>, not_before: DateTime<Utc>) -> StoreResult<bool>;
    /// Deletes up to `limit` grants, oldest expiry first, that expired before `expired_before`,
    /// whatever their state; how many it deleted. Idempotent: replicas sharing the database may
    /// run it at the same time.
    async fn prune_oauth_grants(&self, expired_before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
}

/// Opens the configured store and migrates it: PostgreSQL when `database_url` is a
/// `postgres://`/`postgresql://` URL; otherwise SQLite, private and in memory when `in_memory`,
/// else at `database_url` when it is a `sqlite:` URL, else at `sqlite_path` (created if missing).
pub async fn connect(database_url: Option<&str>, sqlite_path: Option<&Path>, in_memory: bool) -> StoreResult<Arc<dyn Store>> {
    let url = database_url.map(str::trim).filter(|url| !url.is_empty());
    if let Some(url) = url.filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(PostgresStore::connect(url).await?);
    }
    if in_memory {
        return Ok(SqliteStore::in_memory().await?);
    }
    match (url, sqlite_path) {
        (Some(url), _) if url.starts_with("sqlite:") => Ok(SqliteStore::open_url(url).await?),
        (Some(url), _) => {
            Err(StoreError::Unavailable(format!("unsupported database URL scheme in {:?}", url.split(':').next().unwrap_or_default())))
        }
        (None, Some(path)) => Ok(SqliteStore::open(path).await?),
        (None, None) => Err(StoreError::Unavailable("no database configured: give a PostgreSQL URL, a SQLite path, or in-memory".into())),
    }
}
