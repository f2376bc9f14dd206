-- The lookups a guest admin makes (contract §6.4) are equalities followed by the page order
-- (`ORDER BY id`): with `id` last in the index, one index range serves both, instead of a scan
-- of the tenant in id order testing every row.
DROP INDEX users_mail;
DROP INDEX users_user_type;
DROP INDEX users_external_user_state;
DROP INDEX users_creation_type;
DROP INDEX users_invited_email;
CREATE INDEX users_mail ON users (tenant_id, mail_lower, id);
CREATE INDEX users_user_type ON users (tenant_id, lower(user_type), id);
CREATE INDEX users_external_user_state ON users (tenant_id, lower(external_user_state), id);
CREATE INDEX users_creation_type ON users (tenant_id, lower(creation_type), id);
CREATE INDEX users_invited_email ON users (tenant_id, invited_email_lower, id);
CREATE INDEX users_upn ON users (tenant_id, upn_lower, id);
CREATE INDEX user_identities_issuer ON user_identities (tenant_id, issuer_lower, issuer_assigned_id_lower);
