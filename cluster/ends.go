package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharf-project/wharf/core"
)

// endFlushEvery is how long the ends of sessions wait to be deleted together (EndSessionLater):
// one statement for every session that ended in that time, instead of one round trip each.
const endFlushEvery = 20 * time.Millisecond

// maxEndBatch is the most ends one statement deletes; more are flushed at once.
const maxEndBatch = 1000

// endBatch holds the records and ends of sessions waiting for their statement.
type endBatch struct {
	mu      sync.Mutex
	sites   []string // ends
	ids     []string
	starts  []core.ClusterSession // records (RecordSession)
	wake    chan struct{}         // a first change arrived, or the batch is full
	flushes int                   // round trips sent (tests)
}

// EndSessionLater removes a session's record within endFlushEvery, together with the other
// sessions that ended meanwhile. For sessions whose user has no session limit: their record
// serves the cluster's listing and the quota's "first session" rule, for which a few
// milliseconds do not matter, and the end then costs no round trip of its own. It never
// blocks; while the store cannot be reached the ends are dropped (the node rewrites its
// records when the store answers again).
func (s *Store) EndSessionLater(site, id string) {
	b := &s.ends
	b.mu.Lock()
	for i, st := range b.starts {
		if st.ID == id && st.Site == site {
			// Recorded and ended within one batch: nothing to write.
			b.starts = append(b.starts[:i], b.starts[i+1:]...)
			b.mu.Unlock()
			return
		}
	}
	b.sites = append(b.sites, site)
	b.ids = append(b.ids, id)
	n := len(b.ids) + len(b.starts)
	b.mu.Unlock()
	s.wakeEnds(n)
}

// RecordSession records a logged-in session of a user without a session limit or quota
// within endFlushEvery, together with the others that logged in meanwhile: no login waits
// for its record, which serves the cluster's listing and kick (a session is listed a few
// milliseconds after its login). A session that ends before its record was written writes
// nothing. It never blocks; while the store cannot be reached the records are dropped (the
// node rewrites its records when the store answers again).
func (s *Store) RecordSession(cs core.ClusterSession) error {
	if !s.isUp() {
		_, _, last := s.Health()
		return fmt.Errorf("cluster store: record a session: %w (%s)", ErrUnavailable, last)
	}
	if cs.Start.IsZero() {
		cs.Start = time.Now()
	}
	b := &s.ends
	b.mu.Lock()
	b.starts = append(b.starts, cs)
	n := len(b.ids) + len(b.starts)
	b.mu.Unlock()
	s.wakeEnds(n)
	return nil
}

// wakeEnds starts a batch at its first change, and flushes it at once when it is full.
func (s *Store) wakeEnds(n int) {
	if n == 1 || n >= maxEndBatch {
		select {
		case s.ends.wake <- struct{}{}:
		default:
		}
	}
}

// flushEnds deletes the waiting ends every endFlushEvery while there are some, until ctx ends.
func (s *Store) flushEnds(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ends.wake:
		}
		t := time.NewTimer(endFlushEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.ends.wake: // full: at once
			t.Stop()
		}
		s.deleteEnds(ctx)
	}
}

// deleteEnds writes the waiting records and ends, up to maxEndBatch of each per round trip:
// the records first, so that a session recorded in one batch and ended in the next is
// deleted after it was written.
func (s *Store) deleteEnds(ctx context.Context) {
	b := &s.ends
	for {
		b.mu.Lock()
		n := min(len(b.ids), maxEndBatch)
		sites, ids := b.sites[:n:n], b.ids[:n:n]
		b.sites, b.ids = b.sites[n:], b.ids[n:]
		m := min(len(b.starts), maxEndBatch)
		starts := b.starts[:m:m]
		b.starts = b.starts[m:]
		if len(b.ids) == 0 {
			b.sites, b.ids = nil, nil
		}
		if len(b.starts) == 0 {
			b.starts = nil
		}
		b.mu.Unlock()
		if n == 0 && m == 0 {
			return
		}
		err := s.call(ctx, "write session records", func(ctx context.Context) error {
			batch := &pgx.Batch{}
			if m > 0 {
				var sid, ssite, suser, sproto, sip []string
				var sstart []time.Time
				for _, st := range starts {
					sid, ssite, suser = append(sid, st.ID), append(ssite, st.Site), append(suser, st.User)
					sproto, sip, sstart = append(sproto, st.Protocol), append(sip, st.RemoteIP), append(sstart, st.Start)
				}
				batch.Queue(`INSERT INTO sessions (id, site, user_name, node, protocol, remote_ip, started)
					SELECT r.id, r.site, r.user_name, $7, r.protocol, r.remote_ip, r.started
					FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
						AS r(id, site, user_name, protocol, remote_ip, started)
					ON CONFLICT (id, site) DO NOTHING`, sid, ssite, suser, sproto, sip, sstart, s.opts.NodeID)
			}
			if n > 0 {
				batch.Queue(`DELETE FROM sessions s USING unnest($1::text[], $2::text[]) AS e(site, id)
					WHERE s.site = e.site AND s.id = e.id`, sites, ids)
			}
			return s.pool.SendBatch(ctx, batch).Close()
		})
		b.mu.Lock()
		b.flushes++
		b.mu.Unlock()
		if err != nil {
			// Down: the node's records are rewritten from its live sessions when the store
			// answers again, which writes and drops these.
			s.log.Debug("cluster store: session records not written", "records", m, "ends", n, "error", err.Error())
		}
	}
}
