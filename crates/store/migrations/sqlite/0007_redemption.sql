-- Redemption with email one-time passcode (issue 4, DECISIONS 10): the codes mailed to guests,
-- only as hashes, and the sessions a verified code starts. Both live in the database so any
-- replica can continue a guest's redemption.
CREATE TABLE one_time_passcodes (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    invitation_id TEXT NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    email_lower TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL,
    created_date_time TEXT NOT NULL,
    expires_date_time TEXT NOT NULL
);
-- The hourly limit counts codes per address; a guest's page reads the invitation's newest code.
CREATE INDEX one_time_passcodes_address ON one_time_passcodes (tenant_id, email_lower, created_date_time);
CREATE INDEX one_time_passcodes_invitation ON one_time_passcodes (tenant_id, invitation_id, created_date_time);

CREATE TABLE redemption_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email_lower TEXT NOT NULL,
    created_date_time TEXT NOT NULL,
    expires_date_time TEXT NOT NULL
);
CREATE INDEX redemption_sessions_address ON redemption_sessions (tenant_id, email_lower, expires_date_time);
