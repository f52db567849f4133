package cluster

import (
	"context"
	"sync"
	"time"
)

// endFlushEvery is how long the ends of sessions wait to be deleted together (EndSessionLater):
// one statement for every session that ended in that time, instead of one round trip each.
const endFlushEvery = 20 * time.Millisecond

// maxEndBatch is the most ends one statement deletes; more are flushed at once.
const maxEndBatch = 1000

// endBatch holds the ends of sessions waiting for their statement.
type endBatch struct {
	mu      sync.Mutex
	sites   []string
	ids     []string
	wake    chan struct{} // a first end arrived, or the batch is full
	flushes int           // statements sent (tests)
}

// EndSessionLater removes a session's record within endFlushEvery, together with the other
// sessions that ended meanwhile. For sessions whose user has no session limit: their record
// serves the cluster's listing and the quota's "first session" rule, for which a few
// milliseconds do not matter, and a login then costs one round trip, not two. It never
// blocks; while the store cannot be reached the ends are dropped (the node rewrites its
// records when the store answers again).
func (s *Store) EndSessionLater(site, id string) {
	b := &s.ends
	b.mu.Lock()
	b.sites = append(b.sites, site)
	b.ids = append(b.ids, id)
	n := len(b.ids)
	b.mu.Unlock()
	if n == 1 || n >= maxEndBatch {
		select {
		case b.wake <- struct{}{}:
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

// deleteEnds sends one statement per maxEndBatch waiting ends.
func (s *Store) deleteEnds(ctx context.Context) {
	b := &s.ends
	for {
		b.mu.Lock()
		n := min(len(b.ids), maxEndBatch)
		sites, ids := b.sites[:n:n], b.ids[:n:n]
		b.sites, b.ids = b.sites[n:], b.ids[n:]
		if len(b.ids) == 0 {
			b.sites, b.ids = nil, nil
		}
		b.mu.Unlock()
		if n == 0 {
			return
		}
		err := s.call(ctx, "end sessions", func(ctx context.Context) error {
			_, err := s.pool.Exec(ctx, `DELETE FROM sessions s USING unnest($1::text[], $2::text[]) AS e(site, id)
				WHERE s.site = e.site AND s.id = e.id`, sites, ids)
			return err
		})
		b.mu.Lock()
		b.flushes++
		b.mu.Unlock()
		if err != nil {
			// Down: the node's records are rewritten from its live sessions when the store
			// answers again, which drops these.
			s.log.Debug("cluster store: ends of sessions not written", "sessions", n, "error", err.Error())
		}
	}
}
