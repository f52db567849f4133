-- A count of a user's storage (SetUsage) replaces the stored usage only when the usage did
-- not change since it was read: version changes with every change of the figure.
ALTER TABLE quota_usage ADD COLUMN version bigint NOT NULL DEFAULT 0;
UPDATE quota_usage SET version = 1;

-- The nodes that hold part of a user's usage (an allowance not used yet, uploads in
-- progress): a count of the storage misses it, so none replaces the figure while a live node
-- holds any. Rows of a node that restarted go when it registers; those of a node gone for a
-- day go with its nodes row (the janitor).
CREATE TABLE quota_holds (
	site      text NOT NULL,
	user_name text NOT NULL,
	node      text NOT NULL,
	PRIMARY KEY (site, user_name, node)
);
CREATE INDEX quota_holds_node ON quota_holds (node);

-- The claim of a session of a user with a session limit, in one statement and so one round
-- trip: the user's lock (held until the implicit transaction commits, after the insert is
-- visible), then the count, which in a VOLATILE function takes a snapshot of its own after the
-- lock is granted and so sees every session the lock's previous holders inserted, then the
-- conditional insert.
CREATE FUNCTION wharf_claim_session(p_lock bigint, p_id text, p_site text, p_user text, p_node text,
	p_protocol text, p_remote_ip text, p_started timestamptz, p_ttl interval, p_max int,
	OUT others int, OUT claimed boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(p_lock);
	SELECT count(*) INTO others FROM sessions s JOIN nodes n ON n.id = s.node
	WHERE s.site = p_site AND s.user_name = p_user AND s.id <> p_id
		AND (s.node = p_node OR n.last_seen > now() - p_ttl);
	claimed := p_max <= 0 OR others < p_max;
	IF claimed THEN
		INSERT INTO sessions (id, site, user_name, node, protocol, remote_ip, started)
		VALUES (p_id, p_site, p_user, p_node, p_protocol, p_remote_ip, p_started)
		ON CONFLICT (id, site) DO UPDATE SET user_name = EXCLUDED.user_name, node = EXCLUDED.node,
			protocol = EXCLUDED.protocol, remote_ip = EXCLUDED.remote_ip, started = EXCLUDED.started;
	END IF;
END
$$;
