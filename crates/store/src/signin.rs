//! SQL and row mapping for member sign-in (issue 5): password hashes and OAuth grants.

use guestlist_domain::signin::{GrantKind, GrantState, OAuthGrant};

use crate::schema::{corrupt, insert_statement, object_id, stored_time, RowAccess, SqlValue};
use crate::StoreResult;

pub(crate) const PASSWORD_UPSERT: &str = "INSERT INTO user_passwords (user_id, tenant_id, password_hash, force_change_next_sign_in, \
     updated_date_time) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
     force_change_next_sign_in = excluded.force_change_next_sign_in, updated_date_time = excluded.updated_date_time";
pub(crate) const PASSWORD: &str =
    "SELECT password_hash, force_change_next_sign_in FROM user_passwords WHERE tenant_id = $1 AND user_id = $2";
/// Compare-and-set on the hash, so of two changes from the same password one wins.
pub(crate) const PASSWORD_CHANGE: &str = "UPDATE user_passwords SET password_hash = $4, force_change_next_sign_in = $5, \
     updated_date_time = $6 WHERE tenant_id = $1 AND user_id = $2 AND password_hash = $3";

/// Takes one attempt slot of a window only while fewer than $3 are taken, and returns the count
/// with it; no row when the limit is reached (the conflict's WHERE is false). One statement, so
/// of N concurrent attempts exactly the first $3 get a slot on either engine.
pub(crate) const ATTEMPT_RESERVE: &str = "INSERT INTO sign_in_attempts (scope, window_start, attempts) VALUES ($1, $2, 1) \
     ON CONFLICT (scope, window_start) DO UPDATE SET attempts = sign_in_attempts.attempts + 1 \
     WHERE sign_in_attempts.attempts < $3 RETURNING attempts";
/// Gives a slot back (the attempt succeeded, or never ran).
pub(crate) const ATTEMPT_RELEASE: &str =
    "UPDATE sign_in_attempts SET attempts = attempts - 1 WHERE scope = $1 AND window_start = $2 AND attempts > 0";
pub(crate) const ATTEMPT_COUNT: &str = "SELECT attempts FROM sign_in_attempts WHERE scope = $1 AND window_start = $2";
/// Windows that ended long ago, in one bounded batch (any scope: addresses that never return too).
pub(crate) const ATTEMPT_PRUNE: &str = "DELETE FROM sign_in_attempts WHERE (scope, window_start) IN \
     (SELECT scope, window_start FROM sign_in_attempts WHERE window_start < $1 ORDER BY window_start LIMIT $2)";

const GRANT_COLUMNS: [&str; 14] = [
    "token_hash",
    "tenant_id",
    "kind",
    "state",
    "client_id",
    "user_id",
    "family_id",
    "scope",
    "redirect_uri",
    "code_challenge",
    "nonce",
    "user_code",
    "created_date_time",
    "expires_date_time",
];

pub(crate) const GRANT_BY_HASH: &str = "SELECT token_hash, tenant_id, kind, state, client_id, user_id, family_id, scope, redirect_uri, \
     code_challenge, nonce, user_code, created_date_time, expires_date_time FROM oauth_grants WHERE token_hash = $1";
pub(crate) const GRANT_BY_USER_CODE: &str = "SELECT token_hash, tenant_id, kind, state, client_id, user_id, family_id, scope, \
     redirect_uri, code_challenge, nonce, user_code, created_date_time, expires_date_time FROM oauth_grants WHERE user_code = $1";
/// Compare-and-set of a grant's state, only while it is unexpired; `user_id` stays unless given.
pub(crate) const GRANT_TRANSITION: &str = "UPDATE oauth_grants SET state = $3, user_id = COALESCE($4, user_id) \
     WHERE token_hash = $1 AND state = $2 AND expires_date_time > $5";
pub(crate) const GRANT_REVOKE_FAMILY: &str =
    "UPDATE oauth_grants SET state = 'revoked' WHERE tenant_id = $1 AND family_id = $2 AND state IN ('active', 'approved', 'pending')";
/// A device poll counts only when the previous one is at least an interval old.
pub(crate) const DEVICE_POLL: &str = "UPDATE oauth_grants SET last_polled_date_time = $2 \
     WHERE token_hash = $1 AND (last_polled_date_time IS NULL OR last_polled_date_time <= $3)";

/// One bounded batch of grants expired before $1. On PostgreSQL a row another replica deletes
/// meanwhile is skipped, not an error.
pub(crate) const GRANT_PRUNE: &str = "DELETE FROM oauth_grants WHERE token_hash IN \
     (SELECT token_hash FROM oauth_grants WHERE expires_date_time < $1 ORDER BY expires_date_time LIMIT $2)";

pub(crate) fn grant_insert() -> String {
    insert_statement("oauth_grants", &GRANT_COLUMNS)
}

pub(crate) fn grant_values(grant: &OAuthGrant) -> Vec<SqlValue> {
    vec![
        grant.token_hash.as_str().into(),
        grant.tenant_id.into(),
        grant.kind.as_str().into(),
        grant.state.as_str().into(),
        grant.client_id.into(),
        grant.user_id.map(|id| id.to_string()).into(),
        grant.family_id.into(),
        grant.scope.as_str().into(),
        grant.redirect_uri.clone().into(),
        grant.code_challenge.clone().into(),
        grant.nonce.clone().into(),
        grant.user_code.clone().into(),
        stored_time(grant.created_date_time).into(),
        stored_time(grant.expires_date_time).into(),
    ]
}

pub(crate) fn grant_from_row(row: &impl RowAccess) -> StoreResult<OAuthGrant> {
    let kind = row.text("kind")?;
    let state = row.text("state")?;
    let user_id =
        row.opt_text("user_id")?.map(|id| guestlist_domain::ObjectId::parse(&id).map_err(|e| corrupt("user_id", e))).transpose()?;
    Ok(OAuthGrant {
        token_hash: row.text("token_hash")?,
        tenant_id: object_id(row, "tenant_id")?,
        kind: GrantKind::parse(&kind).ok_or_else(|| corrupt("kind", format!("unknown value {kind:?}")))?,
        state: GrantState::parse(&state).ok_or_else(|| corrupt("state", format!("unknown value {state:?}")))?,
        client_id: object_id(row, "client_id")?,
        user_id,
        family_id: object_id(row, "family_id")?,
        scope: row.text("scope")?,
        redirect_uri: row.opt_text("redirect_uri")?,
        code_challenge: row.opt_text("code_challenge")?,
        nonce: row.opt_text("nonce")?,
        user_code: row.opt_text("user_code")?,
        created_date_time: row.time("created_date_time")?,
        expires_date_time: row.time("expires_date_time")?,
    })
}
