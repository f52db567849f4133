package config

import (
	"net/url"
	"strings"
	"time"
)

// Cluster makes this process one node of several that share protector bans, session limits,
// quotas and session control through a database. Absent (nil after loading): a single node,
// all of that in the process and its state_dir.
type Cluster struct {
	// Store is the shared database; only postgres.
	Store string `yaml:"store"`
	// DSN is the PostgreSQL connection string (a URL or key=value pairs), usually {env: NAME}
	// or {file: path}: it holds the database password.
	DSN Secret `yaml:"dsn"`
	// NodeID names this node in the store. Default: the host name and the port of the first
	// site's first listener ("gw1:2022"). Two live nodes must never share one.
	NodeID string `yaml:"node_id"`
	// Heartbeat is how often the node tells the store it is alive (default 5s).
	Heartbeat Duration `yaml:"heartbeat"`
	// NodeTTL is how long after its last heartbeat a node counts as gone and its sessions
	// stop counting (default 20s; at least twice the heartbeat).
	NodeTTL Duration `yaml:"node_ttl"`
	// OnStoreDown says what the node does while the store cannot be reached: local (serve on
	// the cached bans and local counts, reconcile when it returns; the default) or refuse
	// (refuse new logins; sessions already in progress go on).
	OnStoreDown string `yaml:"on_store_down"`
}

// Values of cluster.on_store_down.
const (
	StoreDownLocal  = "local"
	StoreDownRefuse = "refuse"
)

// checkCluster validates the cluster section and applies its defaults.
func (c *checker) checkCluster(key string, cl *Cluster) {
	if cl.Store == "" {
		c.errorf(key+".store", "the store is required: postgres")
	} else {
		c.oneOf(key+".store", cl.Store, "postgres")
	}
	if !cl.DSN.IsSet() {
		c.errorf(key+".dsn", "the database connection string is required ({env: NAME}, {file: path} or a value)")
	} else if err := resolveSecret(&cl.DSN, c.dir); err != nil {
		c.errorf(key+".dsn", "%v", err)
	} else {
		if why := dsnProblem(cl.DSN.Value()); why != "" {
			c.errorf(key+".dsn", "%s", why)
		}
		if cl.DSN.Inline() && dsnHasPassword(cl.DSN.Value()) {
			c.warnf(key+".dsn", "database password written in the config file; use {env: NAME} or {file: path}")
		}
	}
	if cl.NodeID != "" && (len(cl.NodeID) > 128 || strings.ContainsAny(cl.NodeID, "\x00\r\n\t ")) {
		c.errorf(key+".node_id", "invalid node id %q: up to 128 characters, no spaces or control characters", truncate(cl.NodeID))
	}
	c.defaultDuration(key+".heartbeat", &cl.Heartbeat, 5*time.Second)
	c.positive(key+".heartbeat", cl.Heartbeat)
	c.defaultDuration(key+".node_ttl", &cl.NodeTTL, 20*time.Second)
	c.positive(key+".node_ttl", cl.NodeTTL)
	if cl.Heartbeat.Duration > 0 && cl.NodeTTL.Duration > 0 && cl.NodeTTL.Duration < 2*cl.Heartbeat.Duration {
		// One late heartbeat must not make a live node's sessions disappear.
		c.errorf(key+".node_ttl", "must be at least twice cluster.heartbeat (%s), got %s", cl.Heartbeat.Duration, cl.NodeTTL.Duration)
	}
	defaultString(&cl.OnStoreDown, StoreDownLocal)
	c.oneOf(key+".on_store_down", cl.OnStoreDown, StoreDownLocal, StoreDownRefuse)
}

// dsnProblem returns why a connection string cannot be used, "" when it looks usable (the
// driver parses it fully when connecting). It never quotes the string: it may hold a password.
func dsnProblem(dsn string) string {
	dsn = strings.TrimSpace(dsn)
	switch {
	case dsn == "":
		return "the database connection string is empty"
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			return "the database connection string is not a valid URL"
		}
	case strings.Contains(dsn, "://"):
		return "the database connection string must be a postgres:// URL or key=value pairs"
	case !strings.Contains(dsn, "="):
		return "the database connection string must be a postgres:// URL or key=value pairs"
	}
	return ""
}

// dsnHasPassword reports whether a connection string carries a password.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return strings.Contains(dsn, "password=")
}
