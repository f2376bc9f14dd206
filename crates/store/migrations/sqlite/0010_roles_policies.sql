-- Directory roles and external collaboration settings (issue 5 items 2 and 3).

-- A user holds a built-in role tenant-wide (unifiedRoleAssignment); deleting the user drops it.
CREATE TABLE role_assignments (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    principal_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_template_id TEXT NOT NULL,
    created_date_time TEXT NOT NULL,
    CONSTRAINT role_assignments_unique UNIQUE (tenant_id, principal_id, role_template_id)
);
CREATE INDEX role_assignments_role ON role_assignments (tenant_id, role_template_id, principal_id);

-- One row per tenant and policy type: authorizationPolicy and B2BManagementPolicy, as JSON text.
CREATE TABLE tenant_policies (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    policy_type TEXT NOT NULL,
    definition TEXT NOT NULL,
    updated_date_time TEXT NOT NULL,
    CONSTRAINT tenant_policies_unique PRIMARY KEY (tenant_id, policy_type)
);
