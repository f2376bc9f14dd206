-- Attempts that cost an Argon2 hash (sign-in), counted per account and per client address in
-- fixed windows. A slot is taken before the hash, in the statement that checks the limit, so
-- concurrent guesses each count. Not tied to a tenant: an address is limited across tenants and
-- for unknown domains, and a scope names its tenant when it has one.
CREATE TABLE sign_in_attempts (
    scope TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    PRIMARY KEY (scope, window_start)
);
CREATE INDEX sign_in_attempts_window ON sign_in_attempts (window_start);

-- Sign-in failures were counted in throttle_windows before; those windows have no further use.
DELETE FROM throttle_windows WHERE scope LIKE 'sign-in-failures:%';
