-- Pruning spent grants deletes by expiry in bounded batches; without this index every batch
-- would scan the whole table.
CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_date_time);
