// Package cluster is the PostgreSQL store that makes several wharf nodes one gateway: ban and
// strike rows announced with LISTEN/NOTIFY, live session rows owned by nodes that heartbeat,
// transactional quota usage, and the node registry behind `wharf cluster status`. It
// implements core.Cluster; cmd/wharf wires it to the sites.
package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/wharf-project/wharf/core"
)

// Options configure a node's Store.
type Options struct {
	DSN        string
	NodeID     string
	Heartbeat  time.Duration // default 5s
	NodeTTL    time.Duration // default 20s
	Version    string        // wharf's version, shown by Status
	ConfigHash string        // the node's configuration hash, shown by Status
	Logger     *slog.Logger

	// Handlers of what nodes announce (each may be nil). They run on the store's listening
	// goroutine, one at a time, in the order announced; they must not block for long.
	OnBan    func(site string, b core.ClusterBan)             // a ban stored (by any node)
	OnLift   func(site string, keys []netip.Prefix, all bool) // bans lifted
	OnKick   func(sessionID string)                           // kick a session if it is here
	OnReload func()                                           // reload the configuration
	// OnReconnect runs when the store answers again after it could not be reached (and
	// after the first connection, if the store was down at Open): the node pushes what it
	// did meanwhile (bans) and reloads the cluster's state.
	OnReconnect func(ctx context.Context)
	// LocalSessions returns this node's live logged-in sessions: after an outage their rows
	// are written again, and rows of this node that are not in it are deleted.
	LocalSessions func() []core.ClusterSession
}

// Store is a node's connection to the cluster store.
type Store struct{}

// ErrUnavailable wraps the errors of calls made while the store cannot be reached.
var ErrUnavailable = errors.New("the cluster store is unreachable")

// Open connects to the store, applies the schema migrations (under a lock, so nodes that
// start together do not race), registers the node and starts its heartbeat and the listener
// of announcements. A store that cannot be reached is not an error: the Store starts
// unavailable and keeps trying; a connection string that cannot be parsed, or a schema newer
// than this binary knows, is.
func Open(ctx context.Context, opts Options) (*Store, error) { return nil, errors.ErrUnsupported }

// Close stops the heartbeat, removes the node's session rows and marks the node gone.
func (s *Store) Close(ctx context.Context) error { return nil }

// Health reports whether the store answers, since when it does not, and the last error.
func (s *Store) Health() (up bool, downSince time.Time, lastErr string) {
	return false, time.Time{}, ""
}

// SetConfigHash publishes a new configuration hash (after a reload), at the next heartbeat.
func (s *Store) SetConfigHash(h string) {}

// Sessions lists the live sessions of every live node.
func (s *Store) Sessions(ctx context.Context) ([]core.ClusterSession, error) { return nil, nil }

// Kick asks the node that serves a session to end it. found is false when no live node has
// a session with that id.
func (s *Store) Kick(ctx context.Context, id string) (node string, found bool, err error) {
	return "", false, nil
}

// ReloadAll asks every live node (this one included) to reload its configuration and returns
// the nodes asked.
func (s *Store) ReloadAll(ctx context.Context) ([]string, error) { return nil, nil }

// NodeStatus is a node as `wharf cluster status` shows it.
type NodeStatus struct {
	ID            string
	Version       string
	ConfigHash    string
	Started       time.Time
	LastHeartbeat time.Time
	Alive         bool // heartbeat within node_ttl
	Sessions      int  // live logged-in sessions
}

// Status is the cluster as the store sees it.
type Status struct {
	SchemaVersion int
	Nodes         []NodeStatus
	Bans          int // bans in force, all sites
	// ConfigDiffers lists the live nodes whose configuration hash is not the most common one.
	ConfigDiffers []string
}

// Inspect reads the cluster's status from the store without joining it (wharf cluster
// status). nodeTTL decides which nodes are alive.
func Inspect(ctx context.Context, dsn string, nodeTTL time.Duration) (Status, error) {
	return Status{}, errors.ErrUnsupported
}

// Migrate applies the schema migrations that the store lacks (wharf cluster migrate) and
// returns the versions applied and the schema version after.
func Migrate(ctx context.Context, dsn string, log *slog.Logger) (applied []int, version int, err error) {
	return nil, 0, errors.ErrUnsupported
}
