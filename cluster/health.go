package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// call runs one store operation with its own timeout on top of ctx. While the store is
// known to be down it fails at once with ErrUnavailable (the listener finds out when it
// answers again); an error that says the store cannot be reached marks it down.
func (s *Store) call(ctx context.Context, what string, f func(ctx context.Context) error) error {
	if !s.isUp() {
		_, _, last := s.Health()
		return fmt.Errorf("cluster store: %s: %w (%s)", what, ErrUnavailable, last)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := f(cctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// The caller gave up (a client went away): that says nothing about the store.
		return fmt.Errorf("cluster store: %s: %w", what, ctx.Err())
	}
	if unreachable(err) {
		s.setDown(err)
		return fmt.Errorf("cluster store: %s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("cluster store: %s: %w", what, err)
}

// unreachable tells an error that says the store cannot be reached (no connection, a broken
// one, no answer in time, the server shutting down or full) from one the server answered.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources (too many connections)
			"57": // operator intervention: shutdown, cannot connect now, query cancelled
			return true
		}
		var ce *pgconn.ConnectError
		return errors.As(err, &ce) // authentication and the like: not reachable for us
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.As(err, &ce) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) || isClosedConn(err)
}

// isClosedConn matches pgx's errors for a connection it closed after a failure.
func isClosedConn(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "conn closed" || e.Error() == "closed pool" {
			return true
		}
	}
	return false
}

func (s *Store) isUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// setDown records that the store cannot be reached; the first time it logs it and wakes the
// listener, which tries to reach the store again.
func (s *Store) setDown(err error) {
	s.mu.Lock()
	was := s.up
	s.lastErr = err.Error()
	if was {
		s.up, s.downSince = false, time.Now()
		if s.waitCancel != nil {
			s.waitCancel()
		}
	}
	s.mu.Unlock()
	if was {
		s.log.Warn("cluster store unreachable: serving on local state until it answers", "node", s.opts.NodeID, "error", err.Error())
	}
}

// setUp records that the store answers (again), logging it when it was down.
func (s *Store) setUp(logIt bool) {
	s.mu.Lock()
	was, since := s.up, s.downSince
	s.up, s.lastErr = true, ""
	s.mu.Unlock()
	if !was && logIt {
		s.log.Info("cluster store reachable again", "node", s.opts.NodeID, "down_for", time.Since(since).Round(time.Millisecond))
	}
}
