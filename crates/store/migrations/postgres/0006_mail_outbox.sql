-- Outgoing mail as a transactional outbox (issue 4): a message is inserted in the transaction of
-- the change that causes it and sent later by a worker. A worker claims a message with a lease
-- (claimed_by, claimed_until) so replicas on one database never send it twice.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    invitation_id TEXT,
    user_id TEXT,
    sender_name TEXT NOT NULL,
    sender_address TEXT NOT NULL,
    recipient TEXT NOT NULL,
    cc TEXT,
    reply_to TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    language TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_date_time TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    sent_date_time TIMESTAMPTZ,
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    created_date_time TIMESTAMPTZ NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_date_time);
CREATE INDEX mail_outbox_invitation ON mail_outbox (tenant_id, invitation_id);
CREATE INDEX mail_outbox_user ON mail_outbox (tenant_id, user_id, state);

-- "Block future invitations" (contract §4.1): addresses that asked a tenant for no more invitation mail.
CREATE TABLE mail_unsubscribes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    address_lower TEXT NOT NULL,
    created_date_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, address_lower)
);

-- The links that lead there; only the token's hash is stored.
CREATE TABLE mail_unsubscribe_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    created_date_time TIMESTAMPTZ NOT NULL
);
