-- When a node last replaced a user's quota usage with a count of the storage (SetUsage): a
-- login with no other live session of the user counts the storage again only when that count
-- is old, instead of at every such login. NULL: never counted.
ALTER TABLE quota_usage ADD COLUMN counted_at timestamptz;
