-- Member sign-in (issue 5): argon2 password hashes of member users, and the OAuth grants of
-- delegated sign-in (authorization codes, refresh tokens, device codes), stored only as SHA-256
-- hashes so that any replica can redeem what another issued.
CREATE TABLE user_passwords (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    -- Stored as Graph's passwordProfile has it; sign-in does not ask for a new password yet.
    force_change_next_sign_in BOOLEAN NOT NULL,
    updated_date_time TIMESTAMPTZ NOT NULL
);

CREATE TABLE oauth_grants (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    redirect_uri TEXT,
    code_challenge TEXT,
    nonce TEXT,
    user_code TEXT,
    created_date_time TIMESTAMPTZ NOT NULL,
    expires_date_time TIMESTAMPTZ NOT NULL,
    last_polled_date_time TIMESTAMPTZ
);
-- Reuse of a spent refresh token revokes its family.
CREATE INDEX oauth_grants_family ON oauth_grants (tenant_id, family_id);
-- The device login page finds the device code by the code the user types.
CREATE UNIQUE INDEX oauth_grants_user_code ON oauth_grants (user_code);
