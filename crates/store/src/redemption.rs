//! SQL and row mapping for redemption: one-time passcodes, redemption sessions and the guarded
//! consumption of a redeem ticket (contract §3.3, DECISIONS 10, 11).

use chrono::{DateTime, Utc};
use guestlist_domain::audit::AuditRecord;
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::redemption::{PasscodeRecord, PasscodeState, RedemptionSession};
use guestlist_domain::User;

use crate::schema::{corrupt, insert_statement, object_id, stored_time, RowAccess, SqlValue};
use crate::StoreResult;

/// What [`Store::issue_passcode`](crate::Store::issue_passcode) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeIssue {
    Issued,
    /// The address had its codes for this window; nothing was written. A new code can be sent
    /// once the oldest counted code leaves the window, at `retry_at`.
    LimitReached {
        retry_at: DateTime<Utc>,
    },
}

/// Accepting an invitation: the guest as it becomes (an update of the version the caller read)
/// and the audit entries, written only if the ticket is still pending and unexpired at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedemptionWrite {
    pub tenant_id: TenantId,
    pub invitation_id: ObjectId,
    pub user: User,
    pub audit: Vec<AuditRecord>,
    pub now: DateTime<Utc>,
}

/// What [`Store::redeem_invitation`](crate::Store::redeem_invitation) did.
#[derive(Debug, Clone, PartialEq)]
pub enum RedeemResult {
    /// This call consumed the ticket; the guest as stored.
    Redeemed(Box<User>),
    /// The ticket was no longer pending (redeemed by someone else, revoked or expired); nothing written.
    TicketNotPending,
}

const PASSCODE_COLUMNS: [&str; 9] =
    ["id", "tenant_id", "invitation_id", "email_lower", "code_hash", "state", "failed_attempts", "created_date_time", "expires_date_time"];

pub(crate) fn passcode_insert() -> String {
    insert_statement("one_time_passcodes", &PASSCODE_COLUMNS)
}

pub(crate) fn passcode_values(code: &PasscodeRecord) -> Vec<SqlValue> {
    vec![
        code.id.into(),
        code.tenant_id.into(),
        code.invitation_id.into(),
        code.email_lower.as_str().into(),
        code.code_hash.as_str().into(),
        code.state.as_str().into(),
        i64::from(code.failed_attempts).into(),
        stored_time(code.created_date_time).into(),
        stored_time(code.expires_date_time).into(),
    ]
}

pub(crate) fn passcode_from_row(row: &impl RowAccess) -> StoreResult<PasscodeRecord> {
    let state = row.text("state")?;
    let failed_attempts = row.int("failed_attempts")?;
    Ok(PasscodeRecord {
        id: object_id(row, "id")?,
        tenant_id: object_id(row, "tenant_id")?,
        invitation_id: object_id(row, "invitation_id")?,
        email_lower: row.text("email_lower")?,
        code_hash: row.text("code_hash")?,
        state: PasscodeState::parse(&state).ok_or_else(|| corrupt("state", format!("unknown value {state:?}")))?,
        failed_attempts: u32::try_from(failed_attempts).map_err(|e| corrupt("failed_attempts", e))?,
        created_date_time: row.time("created_date_time")?,
        expires_date_time: row.time("expires_date_time")?,
    })
}

/// Takes the write lock of the invitation's guest (PostgreSQL), so concurrent requests for codes
/// to one address queue and the hourly limit holds; SQLite serializes write transactions already.
pub(crate) const PASSCODE_LOCK: &str = "UPDATE users SET version = version \
     WHERE tenant_id = $1 AND id = (SELECT user_id FROM invitations WHERE tenant_id = $1 AND id = $2)";
/// Codes older than the counting window have expired long ago (30 minutes < 1 hour).
pub(crate) const PASSCODE_PRUNE: &str =
    "DELETE FROM one_time_passcodes WHERE tenant_id = $1 AND email_lower = $2 AND created_date_time < $3";
pub(crate) const PASSCODES_IN_WINDOW: &str = "SELECT created_date_time FROM one_time_passcodes \
     WHERE tenant_id = $1 AND email_lower = $2 AND created_date_time >= $3 ORDER BY created_date_time";
/// Only the newest code of an invitation is accepted.
pub(crate) const PASSCODE_SUPERSEDE: &str =
    "UPDATE one_time_passcodes SET state = 'superseded' WHERE tenant_id = $1 AND invitation_id = $2 AND state = 'active'";
pub(crate) const LATEST_PASSCODE: &str = "SELECT id, tenant_id, invitation_id, email_lower, code_hash, state, failed_attempts, \
     created_date_time, expires_date_time FROM one_time_passcodes WHERE tenant_id = $1 AND invitation_id = $2 \
     AND state <> 'reserved' ORDER BY created_date_time DESC, id DESC LIMIT 1";
/// A reserved slot becomes the invitation's code once its hash is known.
pub(crate) const PASSCODE_ACTIVATE: &str = "UPDATE one_time_passcodes SET code_hash = $3, state = 'active' \
     WHERE tenant_id = $1 AND id = $2 AND state = 'reserved'";
/// A reserved slot whose code was never hashed (the hashing was busy) is given back.
pub(crate) const PASSCODE_RELEASE: &str = "DELETE FROM one_time_passcodes WHERE tenant_id = $1 AND id = $2 AND state = 'reserved'";
/// Gives back a try that never compared the code (the hashing was busy).
pub(crate) const PASSCODE_RELEASE_TRY: &str = "UPDATE one_time_passcodes SET failed_attempts = failed_attempts - 1 \
     WHERE tenant_id = $1 AND id = $2 AND state = 'active' AND failed_attempts > 0";
/// Counts a try before the code is compared, so concurrent guesses can't exceed the limit.
pub(crate) const PASSCODE_RESERVE_TRY: &str = "UPDATE one_time_passcodes SET failed_attempts = failed_attempts + 1 \
     WHERE tenant_id = $1 AND id = $2 AND state = 'active' AND expires_date_time > $3 AND failed_attempts < $4";
/// The right code: used, and the try it took is given back.
pub(crate) const PASSCODE_USE: &str = "UPDATE one_time_passcodes SET state = 'used', failed_attempts = failed_attempts - 1 \
     WHERE tenant_id = $1 AND id = $2 AND state = 'active'";

const SESSION_COLUMNS: [&str; 5] = ["token_hash", "tenant_id", "email_lower", "created_date_time", "expires_date_time"];

pub(crate) fn session_insert() -> String {
    insert_statement("redemption_sessions", &SESSION_COLUMNS)
}

pub(crate) fn session_values(session: &RedemptionSession) -> Vec<SqlValue> {
    vec![
        session.token_hash.as_str().into(),
        session.tenant_id.into(),
        session.email_lower.as_str().into(),
        stored_time(session.created_date_time).into(),
        stored_time(session.expires_date_time).into(),
    ]
}

pub(crate) const SESSION_PRUNE: &str =
    "DELETE FROM redemption_sessions WHERE tenant_id = $1 AND email_lower = $2 AND expires_date_time <= $3";
pub(crate) const SESSION_BY_TOKEN_HASH: &str =
    "SELECT token_hash, tenant_id, email_lower, created_date_time, expires_date_time FROM redemption_sessions WHERE token_hash = $1";

pub(crate) fn session_from_row(row: &impl RowAccess) -> StoreResult<RedemptionSession> {
    Ok(RedemptionSession {
        token_hash: row.text("token_hash")?,
        tenant_id: object_id(row, "tenant_id")?,
        email_lower: row.text("email_lower")?,
        created_date_time: row.time("created_date_time")?,
        expires_date_time: row.time("expires_date_time")?,
    })
}

/// The guarded consumption of a ticket (DECISIONS 11): of two concurrent redemptions exactly one
/// changes the row.
pub(crate) const INVITATION_REDEEM: &str = "UPDATE invitations SET state = 'redeemed' \
     WHERE tenant_id = $1 AND id = $2 AND state = 'pending' AND (expires_date_time IS NULL OR expires_date_time > $3)";
