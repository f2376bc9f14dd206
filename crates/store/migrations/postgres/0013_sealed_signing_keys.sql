-- Signing keys are stored sealed (AES-256-GCM) under a key-encryption key kept outside the
-- database; the column names the key that sealed a row. NULL marks a plain PEM written before
-- this migration: the server seals such rows in place when it starts.
ALTER TABLE signing_keys RENAME COLUMN private_key_pem TO private_key;
ALTER TABLE signing_keys ADD COLUMN key_encryption_key_id TEXT;
