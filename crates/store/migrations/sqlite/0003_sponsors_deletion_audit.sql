-- Sponsors, user deletion and the audit log API.

-- A guest's sponsors: users (and, once groups exist, groups) responsible for it (contract §1.2, §2).
-- A sponsor's own deletion removes its rows in the same transaction (see the store's delete_user).
CREATE TABLE user_sponsors (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sponsor_id TEXT NOT NULL,
    sponsor_type TEXT NOT NULL,
    created_date_time TEXT NOT NULL,
    CONSTRAINT user_sponsors_unique PRIMARY KEY (user_id, sponsor_id)
);
CREATE INDEX user_sponsors_sponsor ON user_sponsors (tenant_id, sponsor_id);

-- Deleting a guest revokes its invitations instead of erasing them, so they no longer follow
-- the user row. SQLite can't drop a foreign key: the table is rebuilt without it.
CREATE TABLE invitations_kept (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    ticket_hash TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    reset_redemption BOOLEAN NOT NULL,
    send_invitation_message BOOLEAN NOT NULL,
    created_date_time TEXT NOT NULL,
    expires_date_time TEXT
);
INSERT INTO invitations_kept (id, tenant_id, user_id, email, redirect_url, ticket_hash, state, reset_redemption,
    send_invitation_message, created_date_time, expires_date_time)
SELECT id, tenant_id, user_id, email, redirect_url, ticket_hash, state, reset_redemption,
    send_invitation_message, created_date_time, expires_date_time FROM invitations;
DROP TABLE invitations;
ALTER TABLE invitations_kept RENAME TO invitations;
CREATE INDEX invitations_user ON invitations (tenant_id, user_id, state);

-- Filterable parts of an audit entry: who initiated it and which objects it targets
-- (`initiatedBy/app/appId`, `initiatedBy/user/id`, `targetResources/any(t:t/id eq ...)`), lower-cased.
ALTER TABLE audit_records ADD COLUMN initiated_by_app_id TEXT;
ALTER TABLE audit_records ADD COLUMN initiated_by_user_id TEXT;
UPDATE audit_records SET
    initiated_by_app_id = lower(json_extract(initiated_by, '$.app.app_id')),
    initiated_by_user_id = lower(json_extract(initiated_by, '$.user.id'));
CREATE INDEX audit_records_app ON audit_records (tenant_id, initiated_by_app_id, activity_date_time);
CREATE INDEX audit_records_user ON audit_records (tenant_id, initiated_by_user_id, activity_date_time);
CREATE INDEX audit_records_activity ON audit_records (tenant_id, lower(activity_display_name), activity_date_time);

CREATE TABLE audit_target_resources (
    tenant_id TEXT NOT NULL,
    audit_id TEXT NOT NULL REFERENCES audit_records (id) ON DELETE CASCADE,
    target_id_lower TEXT NOT NULL
);
CREATE INDEX audit_target_resources_target ON audit_target_resources (tenant_id, target_id_lower);
CREATE INDEX audit_target_resources_audit ON audit_target_resources (audit_id);
INSERT INTO audit_target_resources (tenant_id, audit_id, target_id_lower)
SELECT a.tenant_id, a.id, lower(json_extract(t.value, '$.id'))
FROM audit_records a, json_each(a.target_resources) t
WHERE json_extract(t.value, '$.id') IS NOT NULL;
