-- Groups and memberships. A membership names its member in exactly one of member_user_id and
-- member_group_id (member_id repeats it, for ordering and uniqueness); the composite foreign
-- keys keep every membership inside one tenant and vanish with either end.

ALTER TABLE users ADD CONSTRAINT users_tenant_id_unique UNIQUE (tenant_id, id);

CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    display_name TEXT NOT NULL,
    description TEXT,
    mail_nickname TEXT NOT NULL,
    mail TEXT,
    mail_lower TEXT,
    mail_enabled BOOLEAN NOT NULL,
    security_enabled BOOLEAN NOT NULL,
    group_types TEXT NOT NULL,
    visibility TEXT,
    created_date_time TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    CONSTRAINT groups_tenant_id_unique UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX groups_mail_unique ON groups (tenant_id, mail_lower) WHERE mail_lower IS NOT NULL;
CREATE INDEX groups_display_name ON groups (tenant_id, display_name);
CREATE INDEX groups_mail_nickname ON groups (tenant_id, mail_nickname);

CREATE TABLE group_types (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    group_type_lower TEXT NOT NULL,
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_types_type ON group_types (tenant_id, group_type_lower);
CREATE INDEX group_types_group ON group_types (group_id);

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_user_id TEXT,
    member_group_id TEXT,
    CONSTRAINT group_members_unique PRIMARY KEY (group_id, member_id),
    CONSTRAINT group_members_one_member CHECK (
        (member_user_id IS NULL) <> (member_group_id IS NULL) AND member_id = COALESCE(member_user_id, member_group_id)
    ),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, member_user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, member_group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);
CREATE INDEX group_members_member_user ON group_members (member_user_id);
CREATE INDEX group_members_member_group ON group_members (member_group_id);
