//! The mail outbox and the unsubscribe list: SQL text and row mapping for both engines.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::mail::{DeliveryState, MailKind, MailRecord, OutgoingMail};
use guestlist_domain::ticket::InvitationRecord;

use crate::schema::{self, fold, insert_statement, object_id, stored_time, RowAccess, SqlValue, Statement};
use crate::{Engine, StoreResult};

const MAIL_COLUMNS: [&str; 22] = [
    "id",
    "tenant_id",
    "kind",
    "invitation_id",
    "user_id",
    "sender_name",
    "sender_address",
    "recipient",
    "cc",
    "reply_to",
    "subject",
    "text_body",
    "html_body",
    "language",
    "state",
    "attempts",
    "next_attempt_date_time",
    "last_error",
    "sent_date_time",
    "claimed_by",
    "claimed_until",
    "created_date_time",
];
static MAIL_INSERT: LazyLock<String> = LazyLock::new(|| insert_statement("mail_outbox", &MAIL_COLUMNS));
static MAIL_SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {} FROM mail_outbox", MAIL_COLUMNS.join(", ")));
pub(crate) static MAIL_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND id = $2", *MAIL_SELECT));
pub(crate) static MAILS_FOR_INVITATION: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE tenant_id = $1 AND invitation_id = $2 ORDER BY created_date_time, id", *MAIL_SELECT));

/// A new invitation revokes the user's earlier links (DECISIONS 2), so their unsent mail goes
/// too: it would only carry a dead link. The bodies (with the link) are dropped.
const SUPERSEDE_PENDING_INVITATION_MAIL: &str = "UPDATE mail_outbox SET state = 'superseded', text_body = '', html_body = '', \
     claimed_by = NULL, claimed_until = NULL WHERE tenant_id = $1 AND user_id = $2 AND kind = 'invitation' AND state = 'pending'";

/// Claims up to `$4` due messages for worker `$1` until `$2`: pending, due by `$3`, and not held by
/// a live lease. One statement, so two workers can't both claim a message; PostgreSQL skips rows
/// another claimer has locked instead of waiting (SQLite has a single writer anyway). The outer
/// conditions are checked again on the row PostgreSQL locks.
pub(crate) fn claim_sql(engine: Engine) -> &'static str {
    static SQLITE: LazyLock<String> = LazyLock::new(|| claim(""));
    static POSTGRES: LazyLock<String> = LazyLock::new(|| claim(" FOR UPDATE SKIP LOCKED"));
    fn claim(lock: &str) -> String {
        let due = "state = 'pending' AND next_attempt_date_time <= $3 AND (claimed_until IS NULL OR claimed_until < $3)";
        format!(
            "UPDATE mail_outbox SET claimed_by = $1, claimed_until = $2 WHERE {due} AND id IN \
             (SELECT id FROM mail_outbox WHERE {due} ORDER BY next_attempt_date_time, id LIMIT $4{lock}) RETURNING {}",
            MAIL_COLUMNS.join(", ")
        )
    }
    match engine {
        Engine::Sqlite => SQLITE.as_str(),
        Engine::Postgres => POSTGRES.as_str(),
    }
}

/// Only the worker holding the lease records the outcome; the bodies go once the mail is sent.
pub(crate) const MARK_SENT: &str = "UPDATE mail_outbox SET state = 'sent', sent_date_time = $3, attempts = attempts + 1, \
     last_error = NULL, claimed_by = NULL, claimed_until = NULL, text_body = '', html_body = '' \
     WHERE id = $1 AND claimed_by = $2 AND state = 'pending'";
pub(crate) const MARK_RETRY: &str = "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_date_time = $3, last_error = $4, \
     claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2 AND state = 'pending'";
pub(crate) const MARK_FAILED: &str = "UPDATE mail_outbox SET state = 'failed', attempts = attempts + 1, last_error = $3, \
     claimed_by = NULL, claimed_until = NULL, text_body = '', html_body = '' \
     WHERE id = $1 AND claimed_by = $2 AND state = 'pending'";

pub(crate) const IS_UNSUBSCRIBED: &str = "SELECT 1 AS present FROM mail_unsubscribes WHERE tenant_id = $1 AND address_lower = $2";
pub(crate) const UNSUBSCRIBE: &str = "INSERT INTO mail_unsubscribes (tenant_id, address_lower, created_date_time) VALUES ($1, $2, $3) \
     ON CONFLICT (tenant_id, address_lower) DO NOTHING";
const UNSUBSCRIBE_TOKEN_INSERT: &str =
    "INSERT INTO mail_unsubscribe_tokens (token_hash, tenant_id, address, created_date_time) VALUES ($1, $2, $3, $4)";
pub(crate) const UNSUBSCRIBE_TOKEN: &str = "SELECT tenant_id, address FROM mail_unsubscribe_tokens WHERE token_hash = $1";

/// A pending invitation with its newest mail, per tenant, oldest invitation first.
pub(crate) static PENDING_INVITATIONS: LazyLock<String> = LazyLock::new(|| {
    let mail_columns: Vec<String> = MAIL_COLUMNS.iter().map(|c| format!("m.{c} AS mail_{c}")).collect();
    format!(
        "SELECT i.id, i.tenant_id, i.user_id, i.email, i.redirect_url, i.ticket_hash, i.state, i.reset_redemption, \
         i.send_invitation_message, i.created_date_time, i.expires_date_time, {} \
         FROM invitations i LEFT JOIN mail_outbox m ON m.id = (SELECT n.id FROM mail_outbox n WHERE n.tenant_id = i.tenant_id \
         AND n.invitation_id = i.id ORDER BY n.created_date_time DESC, n.id DESC LIMIT 1) \
         WHERE i.tenant_id = $1 AND i.state = 'pending' AND (i.created_date_time > $2 OR (i.created_date_time = $2 AND i.id > $3)) \
         ORDER BY i.created_date_time, i.id LIMIT $4",
        mail_columns.join(", ")
    )
});
pub(crate) static INVITATION_BY_ID: LazyLock<String> = LazyLock::new(|| {
    "SELECT id, tenant_id, user_id, email, redirect_url, ticket_hash, state, reset_redemption, send_invitation_message, \
     created_date_time, expires_date_time FROM invitations WHERE tenant_id = $1 AND id = $2"
        .to_string()
});

/// A message to put in the outbox, and the unsubscribe link its body names.
#[derive(Debug, Clone, PartialEq)]
pub struct MailWrite {
    pub mail: OutgoingMail,
    /// `Pending` to send it, `NotConfigured` to only record it.
    pub state: DeliveryState,
    /// The hash of the "Block future invitations" token in the body, which names the recipient.
    pub unsubscribe_token_hash: Option<String>,
}

/// The outcome of a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum MailFailure {
    RetryAt { next_attempt: DateTime<Utc>, error: String },
    GiveUp { error: String },
}

/// A pending invitation and the delivery of its newest mail, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingInvitation {
    pub invitation: InvitationRecord,
    pub mail: Option<MailRecord>,
}

/// Where a page of pending invitations starts: after this (created, id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvitationCursor {
    pub created_date_time: DateTime<Utc>,
    pub id: ObjectId,
}

pub(crate) fn mail_statements(write: &MailWrite) -> Vec<Statement> {
    let mail = &write.mail;
    let mut statements = Vec::new();
    if let (MailKind::Invitation, Some(user)) = (mail.kind, mail.user_id) {
        statements.push(Statement { sql: SUPERSEDE_PENDING_INVITATION_MAIL, values: vec![mail.tenant_id.into(), user.into()] });
    }
    let created = stored_time(mail.created_date_time);
    let values = vec![
        mail.id.into(),
        mail.tenant_id.into(),
        mail.kind.as_str().into(),
        mail.invitation_id.map(|id| id.to_string()).into(),
        mail.user_id.map(|id| id.to_string()).into(),
        mail.sender_name.as_str().into(),
        mail.sender_address.as_str().into(),
        mail.recipient.as_str().into(),
        mail.cc.clone().into(),
        mail.reply_to.clone().into(),
        mail.subject.as_str().into(),
        mail.text_body.as_str().into(),
        mail.html_body.as_str().into(),
        mail.language.as_str().into(),
        write.state.as_str().into(),
        0i64.into(),
        created.into(),
        SqlValue::Text(None),
        SqlValue::Time(None),
        SqlValue::Text(None),
        SqlValue::Time(None),
        created.into(),
    ];
    statements.push(Statement { sql: MAIL_INSERT.as_str(), values });
    if let Some(hash) = &write.unsubscribe_token_hash {
        statements.push(Statement {
            sql: UNSUBSCRIBE_TOKEN_INSERT,
            values: vec![hash.as_str().into(), mail.tenant_id.into(), mail.recipient.as_str().into(), created.into()],
        });
    }
    statements
}

pub(crate) fn unsubscribe_values(tenant: TenantId, address: &str, at: DateTime<Utc>) -> Vec<SqlValue> {
    vec![tenant.into(), fold(address).into(), stored_time(at).into()]
}

pub(crate) fn failure_values(id: ObjectId, worker: &str, failure: &MailFailure) -> (&'static str, Vec<SqlValue>) {
    match failure {
        MailFailure::RetryAt { next_attempt, error } => {
            (MARK_RETRY, vec![id.into(), worker.into(), stored_time(*next_attempt).into(), error.as_str().into()])
        }
        MailFailure::GiveUp { error } => (MARK_FAILED, vec![id.into(), worker.into(), error.as_str().into()]),
    }
}

fn opt_id(row: &impl RowAccess, column: &str) -> StoreResult<Option<ObjectId>> {
    row.opt_text(column)?.map(|text| ObjectId::parse(&text).map_err(|e| schema::corrupt(column, e))).transpose()
}

/// Reads a mail row whose columns carry `prefix` (`""`, or `"mail_"` in a join).
pub(crate) fn mail_from_prefixed_row(row: &impl RowAccess, prefix: &str) -> StoreResult<MailRecord> {
    let c = |name: &str| format!("{prefix}{name}");
    let kind = row.text(&c("kind"))?;
    let state = row.text(&c("state"))?;
    let attempts = row.int(&c("attempts"))?;
    Ok(MailRecord {
        mail: OutgoingMail {
            id: object_id(row, &c("id"))?,
            tenant_id: object_id(row, &c("tenant_id"))?,
            kind: MailKind::parse(&kind).ok_or_else(|| schema::corrupt("kind", format!("unknown value {kind:?}")))?,
            invitation_id: opt_id(row, &c("invitation_id"))?,
            user_id: opt_id(row, &c("user_id"))?,
            sender_name: row.text(&c("sender_name"))?,
            sender_address: row.text(&c("sender_address"))?,
            recipient: row.text(&c("recipient"))?,
            cc: row.opt_text(&c("cc"))?,
            reply_to: row.opt_text(&c("reply_to"))?,
            subject: row.text(&c("subject"))?,
            text_body: row.text(&c("text_body"))?,
            html_body: row.text(&c("html_body"))?,
            language: row.text(&c("language"))?,
            created_date_time: row.time(&c("created_date_time"))?,
        },
        state: DeliveryState::parse(&state).ok_or_else(|| schema::corrupt("state", format!("unknown value {state:?}")))?,
        attempts: u32::try_from(attempts).map_err(|e| schema::corrupt("attempts", e))?,
        next_attempt_date_time: row.time(&c("next_attempt_date_time"))?,
        last_error: row.opt_text(&c("last_error"))?,
        sent_date_time: row.opt_time(&c("sent_date_time"))?,
        claimed_by: row.opt_text(&c("claimed_by"))?,
        claimed_until: row.opt_time(&c("claimed_until"))?,
    })
}

pub(crate) fn mail_from_row(row: &impl RowAccess) -> StoreResult<MailRecord> {
    mail_from_prefixed_row(row, "")
}

pub(crate) fn pending_invitation_from_row(row: &impl RowAccess) -> StoreResult<PendingInvitation> {
    let invitation = schema::invitation_from_row(row)?;
    let mail = if row.opt_text("mail_id")?.is_some() { Some(mail_from_prefixed_row(row, "mail_")?) } else { None };
    Ok(PendingInvitation { invitation, mail })
}

pub(crate) fn pending_values(tenant: TenantId, after: Option<InvitationCursor>, limit: u32) -> Vec<SqlValue> {
    // Before any invitation: the epoch and the nil id.
    let (time, id) = match after {
        Some(cursor) => (stored_time(cursor.created_date_time), cursor.id.to_string()),
        None => (DateTime::<Utc>::UNIX_EPOCH, "00000000-0000-0000-0000-000000000000".to_string()),
    };
    vec![tenant.into(), time.into(), id.into(), i64::from(limit).into()]
}

pub(crate) fn unsubscribe_link_from_row(row: &impl RowAccess) -> StoreResult<(TenantId, String)> {
    Ok((object_id(row, "tenant_id")?, row.text("address")?))
}
