package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wharf-project/wharf/core"
)

// The node's life in the store: joining, the heartbeat, the janitor and the listener.

// errMigration marks a migration the store refused (not one it could not be reached for).
var errMigration = errors.New("schema migration failed")

// minBackoff is the first wait before trying to reach a store that is down again.
const minBackoff = 100 * time.Millisecond

// join connects the listener's connection, applies the migrations the first time, listens
// to the announcement channels and registers the node with the sessions local returns (nil:
// none) as its own (all its other rows are deleted: they belong to a previous process or to
// before an outage). local is read once connected, right before the rows are written: a
// connection that took long (a store that hung) must not write the sessions of when it began.
func (s *Store) join(ctx context.Context, local func() []core.ClusterSession) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close(context.Background())
		}
	}()
	s.mu.Lock()
	migrated := s.migrated
	s.mu.Unlock()
	if !migrated {
		if _, _, err := migrate(ctx, conn, s.log); err != nil {
			if errors.Is(err, errSchemaNewer) || unreachable(err) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errMigration, err)
		}
		s.mu.Lock()
		s.migrated = true
		s.mu.Unlock()
	}
	if _, err := conn.Exec(ctx, "LISTEN wharf_bans; LISTEN wharf_kick; LISTEN wharf_reload"); err != nil {
		return nil, err
	}
	var sessions []core.ClusterSession
	if local != nil {
		sessions = local()
	}
	if err := s.register(ctx, conn, sessions); err != nil {
		return nil, err
	}
	ok = true
	return conn, nil
}

type batcher interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

// register writes the node's row (a fresh start time for a new instance) and makes its
// session rows exactly local, in one round trip (one implicit transaction). It warns when
// another live process held the node id.
func (s *Store) register(ctx context.Context, q batcher, local []core.ClusterSession) error {
	var tookOver bool
	b := &pgx.Batch{}
	// A new process of the node holds no quota: the holds of the one before it go.
	b.Queue("DELETE FROM quota_holds WHERE node = $1 AND NOT EXISTS (SELECT 1 FROM nodes WHERE id = $1 AND instance = $2)",
		s.opts.NodeID, s.instance)
	b.Queue(`WITH prev AS (SELECT instance, last_seen > now() - $5::interval AS alive FROM nodes WHERE id = $1)
		INSERT INTO nodes (id, instance, version, config_hash, started, last_seen)
		VALUES ($1, $2, $3, $4, now(), now())
		ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, version = EXCLUDED.version,
			config_hash = EXCLUDED.config_hash, last_seen = now(),
			started = CASE WHEN nodes.instance = EXCLUDED.instance THEN nodes.started ELSE now() END
		RETURNING COALESCE((SELECT alive AND instance <> $2 FROM prev), false)`,
		s.opts.NodeID, s.instance, s.opts.Version, *s.hash.Load(), s.opts.NodeTTL,
	).QueryRow(func(row pgx.Row) error { return row.Scan(&tookOver) })
	ids := make([]string, 0, len(local))
	var sites, users, protos, ips []string
	var starts []time.Time
	for _, c := range local {
		if c.Start.IsZero() {
			c.Start = time.Now()
		}
		ids, sites, users = append(ids, c.ID), append(sites, c.Site), append(users, c.User)
		protos, ips, starts = append(protos, c.Protocol), append(ips, c.RemoteIP), append(starts, c.Start)
	}
	b.Queue("DELETE FROM sessions WHERE node = $1 AND NOT (id = ANY($2::text[]))", s.opts.NodeID, ids)
	if len(local) > 0 {
		b.Queue(`INSERT INTO sessions (id, site, user_name, node, protocol, remote_ip, started)
			SELECT i, si, u, $1, p, r, st FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS t(i, si, u, p, r, st)
			ON CONFLICT (id, site) DO UPDATE SET user_name = EXCLUDED.user_name, node = EXCLUDED.node,
				protocol = EXCLUDED.protocol, remote_ip = EXCLUDED.remote_ip, started = EXCLUDED.started`,
			s.opts.NodeID, ids, sites, users, protos, ips, starts)
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("register the node: %w", err)
	}
	if tookOver {
		s.log.Warn("cluster: another live process was registered with this node id; taking over (two live nodes must never share one)",
			"node", s.opts.NodeID)
	}
	return nil
}

func (s *Store) localSessions() []core.ClusterSession {
	if s.opts.LocalSessions == nil {
		return nil
	}
	return s.opts.LocalSessions()
}

// heartbeat tells the store once per interval that the node is alive (one UPDATE), and
// every janitorEvery beats offers to clean up.
func (s *Store) heartbeat(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Heartbeat)
	defer t.Stop()
	// The heartbeat has a connection of its own: a burst of logins that holds every pooled
	// connection (each waiting for a user's lock) must not delay it past node_ttl, which
	// would make this node's sessions stop counting for everyone else.
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for beat := 1; ; beat++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.isUp() {
			continue // the listener brings the store back
		}
		var rows int64
		err := s.call(ctx, "heartbeat", func(ctx context.Context) error {
			// A connection that died in an outage fails once; a fresh one answers if the
			// store does (so a heartbeat after the store came back does not report it down).
			for attempt := 0; ; attempt++ {
				fresh := conn == nil
				if fresh {
					c, err := pgx.ConnectConfig(ctx, s.connCfg)
					if err != nil {
						return err
					}
					conn = c
				}
				tag, err := conn.Exec(ctx, "UPDATE nodes SET last_seen = now(), config_hash = $3 WHERE id = $1 AND instance = $2",
					s.opts.NodeID, s.instance, *s.hash.Load())
				if err == nil {
					rows = tag.RowsAffected()
					return nil
				}
				_ = conn.Close(context.Background())
				conn = nil
				if fresh || attempt > 0 || ctx.Err() != nil {
					return err
				}
			}
		})
		if err != nil {
			continue // logged once by the change of health, if it is the store
		}
		if rows == 0 {
			s.log.Warn("cluster: this node's row was taken by another process with the same node id, or removed; registering again",
				"node", s.opts.NodeID)
			_ = s.call(ctx, "register the node", func(ctx context.Context) error {
				return s.register(ctx, s.pool, s.localSessions())
			})
		}
		if beat%janitorEvery == 0 {
			s.janitor(ctx)
		}
	}
}

// janitor deletes what no longer counts, on at most one node at a time: sessions of nodes
// dead past the ttl, strikes older than a day, bans expired more than 7 days ago (their
// offences no longer count), nodes dead for a day and their quota holds.
func (s *Store) janitor(ctx context.Context) {
	var removed [5]int64
	err := s.call(ctx, "clean up", func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var mine bool
			if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", janitorLock).Scan(&mine); err != nil || !mine {
				return err
			}
			b := &pgx.Batch{}
			for i, q := range []string{
				"DELETE FROM sessions WHERE node NOT IN (SELECT id FROM nodes WHERE last_seen > now() - $1::interval)",
				"DELETE FROM strikes WHERE at < now() - interval '24 hours'",
				`DELETE FROM bans WHERE (until IS NULL AND last_offence IS NULL)
					OR GREATEST(until, last_offence) < now() - interval '7 days'`,
				"DELETE FROM nodes WHERE last_seen < now() - interval '24 hours'",
				"DELETE FROM quota_holds WHERE node NOT IN (SELECT id FROM nodes)",
			} {
				var args []any
				if i == 0 {
					args = []any{s.opts.NodeTTL}
				}
				b.Queue(q, args...).Exec(func(tag pgconn.CommandTag) error {
					removed[i] = tag.RowsAffected()
					return nil
				})
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
	if err == nil && removed != [5]int64{} {
		s.log.Debug("cluster store cleaned up", "sessions", removed[0], "strikes", removed[1], "bans", removed[2],
			"nodes", removed[3], "quota holds", removed[4])
	}
}

// listen owns the listener's connection: it hands announcements to the handlers, checks
// the connection every heartbeat or when a call found the store down, and while the store
// is down reconnects with backoff. When the store answers again it rewrites the node's
// session rows from LocalSessions and runs OnReconnect.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer s.wg.Done()
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	backoff := minBackoff
	for ctx.Err() == nil {
		if conn == nil {
			jctx, cancel := context.WithTimeout(ctx, 3*callTimeout)
			c, err := s.join(jctx, s.localSessions)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !unreachable(err) {
					s.log.Error("cluster store: cannot join", "node", s.opts.NodeID, "error", err.Error())
				}
				s.setDown(err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			conn, backoff = c, minBackoff
			s.pool.Reset() // its idle connections died with the outage
			s.setUp(true)
			s.reconnected(ctx)
			continue
		}
		n, err := s.wait(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.dispatch(n)
			continue
		}
		if !pgconn.Timeout(err) {
			s.setDown(err) // the connection broke
			_ = conn.Close(context.Background())
			conn = nil
			continue
		}
		// Every heartbeat, and when a call found the store down: does it answer?
		wasUp := s.isUp()
		pctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = conn.Exec(pctx, "SELECT 1")
		if err == nil && !wasUp {
			// The store answers after a failure: the node's rows may be stale.
			err = s.pool.Ping(pctx)
			if err == nil {
				err = s.register(pctx, conn, s.localSessions())
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.setDown(err)
			_ = conn.Close(context.Background())
			conn = nil
			continue
		}
		if !wasUp {
			s.pool.Reset()
			s.setUp(true)
			s.reconnected(ctx)
		}
	}
}

// wait waits for an announcement for up to a heartbeat; a call that finds the store down
// cuts it short.
func (s *Store) wait(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, s.opts.Heartbeat)
	defer cancel()
	s.mu.Lock()
	if !s.up {
		cancel()
	}
	s.waitCancel = cancel
	s.mu.Unlock()
	n, err := conn.WaitForNotification(wctx)
	s.mu.Lock()
	s.waitCancel = nil
	s.mu.Unlock()
	return n, err
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (s *Store) reconnected(ctx context.Context) {
	if s.opts.OnReconnect != nil {
		s.safely("OnReconnect", func() { s.opts.OnReconnect(ctx) })
	}
}

// safely runs a handler; a panic in it is logged and does not stop the listener.
func (s *Store) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("cluster: handler panicked", "handler", what, "panic", fmt.Sprint(r))
		}
	}()
	f()
}

// dispatch hands one announcement to its handler.
func (s *Store) dispatch(n *pgconn.Notification) {
	switch n.Channel {
	case "wharf_bans":
		var note banNote
		if err := json.Unmarshal([]byte(n.Payload), &note); err != nil {
			s.log.Warn("cluster: unreadable ban announcement", "error", err.Error())
			return
		}
		if note.All || len(note.Lift) > 0 {
			keys := make([]netip.Prefix, 0, len(note.Lift))
			for _, k := range note.Lift {
				if p, err := netip.ParsePrefix(k); err == nil {
					keys = append(keys, p)
				}
			}
			if s.opts.OnLift != nil {
				s.safely("OnLift", func() { s.opts.OnLift(note.Site, keys, note.All) })
			}
		}
		for _, b := range note.Bans {
			p, err := netip.ParsePrefix(b.Key)
			if err != nil || s.opts.OnBan == nil {
				continue
			}
			s.safely("OnBan", func() {
				s.opts.OnBan(note.Site, core.ClusterBan{Key: p, BanRecord: core.BanRecord{
					Until: b.Until, Offences: b.Offences, LastOffence: b.LastOffence}})
			})
		}
	case "wharf_kick":
		var k struct{ Node, ID string }
		if err := json.Unmarshal([]byte(n.Payload), &k); err != nil {
			s.log.Warn("cluster: unreadable kick announcement", "error", err.Error())
			return
		}
		if k.Node == s.opts.NodeID && s.opts.OnKick != nil {
			s.safely("OnKick", func() { s.opts.OnKick(k.ID) })
		}
	case "wharf_reload":
		if s.opts.OnReload != nil {
			s.safely("OnReload", s.opts.OnReload)
		}
	}
}
