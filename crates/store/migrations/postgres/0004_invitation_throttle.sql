-- Opt-in throttling of /invitations (DECISIONS 17): the tenant's limit, and request counts per
-- fixed window, shared by every replica on this database.
ALTER TABLE tenants ADD COLUMN invitation_throttle_requests BIGINT;
ALTER TABLE tenants ADD COLUMN invitation_throttle_window_seconds BIGINT;

CREATE TABLE throttle_windows (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    request_count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, window_start)
);
