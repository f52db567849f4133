-- The nodes of the cluster: one row per node_id, kept alive by its heartbeat (last_seen is the
-- database's clock). instance tells two processes that claim the same node_id apart.
CREATE TABLE nodes (
	id          text PRIMARY KEY,
	instance    text NOT NULL,
	version     text NOT NULL DEFAULT '',
	config_hash text NOT NULL DEFAULT '',
	started     timestamptz NOT NULL,
	last_seen   timestamptz NOT NULL
);

-- Logged-in sessions, written at login and deleted at logout; a session counts while its
-- node is alive. Looked up by id alone to kick it (the primary key's prefix).
CREATE TABLE sessions (
	id        text NOT NULL,
	site      text NOT NULL,
	user_name text NOT NULL,
	node      text NOT NULL,
	protocol  text NOT NULL DEFAULT '',
	remote_ip text NOT NULL DEFAULT '',
	started   timestamptz NOT NULL,
	PRIMARY KEY (id, site)
);
CREATE INDEX sessions_site_user ON sessions (site, user_name);
CREATE INDEX sessions_node ON sessions (node);

-- Protector bans; key is the text of the banned prefix (1.2.3.4/32, 2001:db8::/64). NULL
-- times are the zero time (a row locked before its first ban is stored).
CREATE TABLE bans (
	site         text NOT NULL,
	key          text NOT NULL,
	until        timestamptz,
	offences     integer NOT NULL DEFAULT 0,
	last_offence timestamptz,
	PRIMARY KEY (site, key)
);

-- Protector strikes: counted within a window, cleared by a ban of their key.
CREATE TABLE strikes (
	site text NOT NULL,
	key  text NOT NULL,
	at   timestamptz NOT NULL
);
CREATE INDEX strikes_site_key_at ON strikes (site, key, at);
CREATE INDEX strikes_at ON strikes (at);

-- Quota usage per user, including the allowances that nodes hold.
CREATE TABLE quota_usage (
	site      text NOT NULL,
	user_name text NOT NULL,
	bytes     bigint NOT NULL DEFAULT 0,
	files     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (site, user_name)
);
