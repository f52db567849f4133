// Package cluster is the PostgreSQL store that makes several wharf nodes one gateway: ban and
// strike rows announced with LISTEN/NOTIFY, live session rows owned by nodes that heartbeat,
// transactional quota usage, and the node registry behind `wharf cluster status`. It
// implements core.Cluster; cmd/wharf wires it to the sites.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// Store is a node's connection to the cluster store. It implements core.Cluster.
type Store struct {
	opts     Options
	log      *slog.Logger
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // the listener's and the migrations' own connections
	instance string          // this process, against another one with the same node id
	hash     atomic.Pointer[string]

	mu         sync.Mutex
	up         bool
	downSince  time.Time
	lastErr    string
	migrated   bool               // the schema is known to be current
	waitCancel context.CancelFunc // interrupts the listener's wait (the store seems down)

	ends endBatch // EndSessionLater

	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once
}

var _ core.Cluster = (*Store)(nil)

// ErrUnavailable wraps the errors of calls made while the store cannot be reached.
var ErrUnavailable = errors.New("the cluster store is unreachable")

// callTimeout bounds every call to the store on top of the caller's context, so a
// black-holed database never holds a login for long.
const callTimeout = 2 * time.Second

// maxBackoff is the longest wait between two attempts to reach a store that is down.
const maxBackoff = 5 * time.Second

// poolSize is the most connections a node holds (plus its listener's): logins and quota
// calls take one for a millisecond or so; 100 nodes need max_connections ≥ 900.
const poolSize = 8

// janitorEvery is how many heartbeats apart a node offers to run the janitor.
const janitorEvery = 6

// Open connects to the store, applies the schema migrations (under a lock, so nodes that
// start together do not race), registers the node and starts its heartbeat and the listener
// of announcements. A store that cannot be reached is not an error: the Store starts
// unavailable and keeps trying; a connection string that cannot be parsed, or a schema newer
// than this binary knows, is.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.NodeID == "" {
		return nil, errors.New("cluster store: the node id is empty")
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 5 * time.Second
	}
	if opts.NodeTTL <= 0 {
		opts.NodeTTL = 20 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg, err := parseDSN(opts.DSN)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = poolSize
	cfg.ConnConfig.RuntimeParams["application_name"] = "wharf " + opts.NodeID
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster store: %w", err)
	}
	s := &Store{opts: opts, log: opts.Logger, pool: pool, connCfg: cfg.ConnConfig.Copy(),
		instance: newInstance(), downSince: time.Now()}
	s.hash.Store(&opts.ConfigHash)
	run, stop := context.WithCancel(context.Background())
	s.stop = stop

	// The first attempt is made here, so that a node that can reach the store starts with
	// the schema in place, its row written and its listener on.
	jctx, cancel := context.WithTimeout(ctx, 3*callTimeout)
	conn, err := s.join(jctx, nil)
	cancel()
	switch {
	case err == nil:
		s.setUp(false)
	case errors.Is(err, errSchemaNewer) || errors.Is(err, errMigration):
		stop()
		pool.Close()
		return nil, fmt.Errorf("cluster store: %w", err)
	default:
		s.setDown(err)
		s.log.Warn("cluster store unreachable at start: serving on local state until it answers", "node", opts.NodeID, "error", err.Error())
	}
	s.ends.wake = make(chan struct{}, 1)
	s.wg.Add(3)
	go s.listen(run, conn)
	go s.heartbeat(run)
	go s.flushEnds(run)
	return s, nil
}

// parseDSN parses a connection string. Its error never quotes it: it may hold a password.
func parseDSN(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("cluster store: the connection string cannot be parsed (a postgres:// URL or key=value pairs)")
	}
	cfg.ConnConfig.ConnectTimeout = callTimeout
	return cfg, nil
}

func newInstance() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Close stops the heartbeat, removes the node's session rows and marks the node gone.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.stop()
		s.wg.Wait()
		if s.isUp() {
			err = s.call(ctx, "leave the cluster", func(ctx context.Context) error {
				b := &pgx.Batch{}
				b.Queue("DELETE FROM sessions WHERE node = $1", s.opts.NodeID)
				b.Queue("DELETE FROM nodes WHERE id = $1 AND instance = $2", s.opts.NodeID, s.instance)
				return s.pool.SendBatch(ctx, b).Close()
			})
		}
		s.pool.Close()
	})
	return err
}

// Health reports whether the store answers, since when it does not, and the last error.
func (s *Store) Health() (up bool, downSince time.Time, lastErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return true, time.Time{}, ""
	}
	return false, s.downSince, s.lastErr
}

// SetConfigHash publishes a new configuration hash (after a reload), at the next heartbeat.
func (s *Store) SetConfigHash(h string) { s.hash.Store(&h) }

// NodeID names this node.
func (s *Store) NodeID() string { return s.opts.NodeID }

// Sessions lists the live sessions of every live node.
func (s *Store) Sessions(ctx context.Context) ([]core.ClusterSession, error) {
	var out []core.ClusterSession
	err := s.call(ctx, "list sessions", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT s.id, s.site, s.user_name, s.node, s.protocol, s.remote_ip, s.started
			FROM sessions s JOIN nodes n ON n.id = s.node
			WHERE n.last_seen > now() - $1::interval ORDER BY s.started, s.id`, s.opts.NodeTTL)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.ClusterSession, error) {
			var c core.ClusterSession
			err := r.Scan(&c.ID, &c.Site, &c.User, &c.Node, &c.Protocol, &c.RemoteIP, &c.Start)
			return c, err
		})
		return err
	})
	return out, err
}

// Kick asks the node that serves a session to end it. found is false when no live node has
// a session with that id.
func (s *Store) Kick(ctx context.Context, id string) (node string, found bool, err error) {
	err = s.call(ctx, "kick a session", func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `SELECT s.node, pg_notify('wharf_kick', json_build_object('node', s.node, 'id', s.id)::text)
			FROM sessions s JOIN nodes n ON n.id = s.node
			WHERE s.id = $1 AND n.last_seen > now() - $2::interval LIMIT 1`, id, s.opts.NodeTTL).Scan(&node, nil)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	return node, found, err
}

// ReloadAll asks every live node (this one included) to reload its configuration and returns
// the nodes asked.
func (s *Store) ReloadAll(ctx context.Context) ([]string, error) {
	var nodes []string
	err := s.call(ctx, "reload every node", func(ctx context.Context) error {
		b := &pgx.Batch{}
		b.Queue("SELECT id FROM nodes WHERE last_seen > now() - $1::interval ORDER BY id", s.opts.NodeTTL).Query(func(rows pgx.Rows) error {
			var err error
			nodes, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		b.Queue("SELECT pg_notify('wharf_reload', '')")
		return s.pool.SendBatch(ctx, b).Close()
	})
	return nodes, err
}

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
	var st Status
	conn, err := connectOnce(ctx, dsn)
	if err != nil {
		return st, err
	}
	defer conn.Close(context.Background())
	if st.SchemaVersion, err = schemaVersion(ctx, conn); err != nil {
		return st, fmt.Errorf("cluster store: read the schema version: %w", err)
	}
	if st.SchemaVersion == 0 {
		return st, nil // nothing there yet: no node has joined
	}
	rows, err := conn.Query(ctx, `SELECT n.id, n.version, n.config_hash, n.started, n.last_seen,
			n.last_seen > now() - $1::interval AS alive,
			(SELECT count(*) FROM sessions s WHERE s.node = n.id)
		FROM nodes n ORDER BY n.id`, nodeTTL)
	if err != nil {
		return st, fmt.Errorf("cluster store: read the nodes: %w", err)
	}
	st.Nodes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeStatus, error) {
		var n NodeStatus
		err := r.Scan(&n.ID, &n.Version, &n.ConfigHash, &n.Started, &n.LastHeartbeat, &n.Alive, &n.Sessions)
		if !n.Alive {
			n.Sessions = 0 // the rows of a dead node no longer count; the janitor deletes them
		}
		return n, err
	})
	if err != nil {
		return st, fmt.Errorf("cluster store: read the nodes: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM bans WHERE until > now()").Scan(&st.Bans); err != nil {
		return st, fmt.Errorf("cluster store: count the bans: %w", err)
	}
	st.ConfigDiffers = configDiffers(st.Nodes)
	return st, nil
}

// configDiffers lists the live nodes whose hash is not the most common one among live
// nodes. When no hash is more common than every other, every live node is listed: there is
// no majority to call right.
func configDiffers(nodes []NodeStatus) []string {
	count := map[string]int{}
	for _, n := range nodes {
		if n.Alive {
			count[n.ConfigHash]++
		}
	}
	best, bestN, tie := "", 0, false
	for h, c := range count {
		if c > bestN {
			best, bestN, tie = h, c, false
		} else if c == bestN {
			tie = true
		}
	}
	var out []string
	for _, n := range nodes {
		if n.Alive && (tie || n.ConfigHash != best) {
			out = append(out, n.ID)
		}
	}
	return out
}

// Migrate applies the schema migrations that the store lacks (wharf cluster migrate) and
// returns the versions applied and the schema version after.
func Migrate(ctx context.Context, dsn string, log *slog.Logger) (applied []int, version int, err error) {
	if log == nil {
		log = slog.Default()
	}
	conn, err := connectOnce(ctx, dsn)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close(context.Background())
	applied, version, err = migrate(ctx, conn, log)
	if err != nil {
		return applied, version, fmt.Errorf("cluster store: %w", err)
	}
	return applied, version, nil
}

// connectOnce opens one connection for a command (status, migrate).
func connectOnce(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "wharf cluster"
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("cluster store: %w: %w", ErrUnavailable, err)
	}
	return conn, nil
}
