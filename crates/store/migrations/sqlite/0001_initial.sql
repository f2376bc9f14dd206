-- guestlist schema for SQLite. Ids are lower-case hyphenated GUID text; timestamps are
-- RFC 3339 text with exactly six fractional digits and 'Z', so text order is time order.
-- Constraint names match the PostgreSQL schema; SQLite reports the columns instead.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    initial_domain TEXT NOT NULL,
    upn_on_reset TEXT NOT NULL,
    invitation_lifetime_days INTEGER,
    created_date_time TEXT NOT NULL
);
CREATE UNIQUE INDEX tenants_initial_domain_unique ON tenants (lower(initial_domain));

CREATE TABLE applications (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    app_id TEXT NOT NULL,
    service_principal_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    app_roles TEXT NOT NULL,
    created_date_time TEXT NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_date_time TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_principal_name TEXT NOT NULL,
    upn_lower TEXT NOT NULL,
    display_name TEXT NOT NULL,
    given_name TEXT,
    surname TEXT,
    mail TEXT,
    mail_lower TEXT,
    other_mails TEXT NOT NULL,
    proxy_addresses TEXT NOT NULL,
    user_type TEXT NOT NULL,
    creation_type TEXT,
    external_user_state TEXT,
    external_user_state_change_date_time TEXT,
    identities TEXT NOT NULL,
    account_enabled BOOLEAN NOT NULL,
    created_date_time TEXT NOT NULL,
    company_name TEXT,
    job_title TEXT,
    department TEXT,
    mobile_phone TEXT,
    office_location TEXT,
    preferred_language TEXT,
    business_phones TEXT NOT NULL,
    usage_location TEXT,
    invited_email TEXT,
    invited_email_lower TEXT,
    version INTEGER NOT NULL,
    CONSTRAINT users_upn_unique UNIQUE (tenant_id, upn_lower)
);
CREATE INDEX users_mail ON users (tenant_id, mail_lower);
CREATE INDEX users_user_type ON users (tenant_id, lower(user_type));
CREATE INDEX users_external_user_state ON users (tenant_id, lower(external_user_state));
CREATE INDEX users_creation_type ON users (tenant_id, lower(creation_type));
CREATE INDEX users_invited_email ON users (tenant_id, invited_email_lower);
CREATE INDEX users_display_name ON users (tenant_id, display_name, id);
CREATE INDEX users_created ON users (tenant_id, created_date_time, id);

CREATE TABLE user_other_mails (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address_lower TEXT NOT NULL
);
CREATE INDEX user_other_mails_address ON user_other_mails (tenant_id, address_lower);
CREATE INDEX user_other_mails_user ON user_other_mails (user_id);

CREATE TABLE user_proxy_addresses (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address_full_lower TEXT NOT NULL,
    address_lower TEXT NOT NULL,
    CONSTRAINT user_proxy_addresses_unique UNIQUE (tenant_id, address_lower)
);
CREATE INDEX user_proxy_addresses_full ON user_proxy_addresses (tenant_id, address_full_lower);
CREATE INDEX user_proxy_addresses_user ON user_proxy_addresses (user_id);

CREATE TABLE user_identities (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sign_in_type TEXT NOT NULL,
    issuer_lower TEXT NOT NULL,
    issuer_assigned_id_lower TEXT
);
CREATE INDEX user_identities_assigned_id ON user_identities (tenant_id, issuer_assigned_id_lower);
CREATE INDEX user_identities_user ON user_identities (user_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    ticket_hash TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    reset_redemption BOOLEAN NOT NULL,
    send_invitation_message BOOLEAN NOT NULL,
    created_date_time TEXT NOT NULL,
    expires_date_time TEXT
);
CREATE INDEX invitations_user ON invitations (tenant_id, user_id, state);

CREATE TABLE audit_records (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    activity_date_time TEXT NOT NULL,
    activity_display_name TEXT NOT NULL,
    category TEXT NOT NULL,
    logged_by_service TEXT NOT NULL,
    operation_type TEXT NOT NULL,
    result TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    initiated_by TEXT NOT NULL,
    target_resources TEXT NOT NULL
);
CREATE INDEX audit_records_newest ON audit_records (tenant_id, activity_date_time, id);
