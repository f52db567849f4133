package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wharf-project/wharf/internal/pgtest"
)

// The database cost of one login of a user with a session limit: ClaimSession (the lock, the
// count and the conditional insert in one function call: one round trip) and EndSession (one
// delete) — two round trips. The user has one other
// session, as with max_sessions counting a second login.
func BenchmarkLogin(b *testing.B) {
	dsn := pgtest.NewDB(b)
	s := openNode(b, dsn, "a")
	if _, err := s.ClaimSession(ctx(b), session("other", "site", "alice"), 0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("s", i)
		if _, err := s.ClaimSession(ctx(b), session(id, "site", "alice"), 10); err != nil {
			b.Fatal(err)
		}
		if err := s.EndSession(ctx(b), "site", id); err != nil {
			b.Fatal(err)
		}
	}
}

// The database cost of one upload served from a quota allowance: reserve a chunk (one
// conditional statement) and give the unused part back when the handle closes (one more)
// — two round trips; a small file fits in one chunk.
func BenchmarkUpload(b *testing.B) {
	dsn := pgtest.NewDB(b)
	s := openNode(b, dsn, "a")
	const chunk, used = 64 << 20, 4096
	b.ResetTimer()
	for range b.N {
		ok, _, _, err := s.AddUsage(ctx(b), "site", "alice", chunk, 1, 1<<40, 1<<30, true)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if _, _, _, err := s.AddUsage(ctx(b), "site", "alice", used-chunk, 0, 1<<40, 1<<30, false); err != nil {
			b.Fatal(err)
		}
	}
}

// Parallel logins of many users from one node (the pool's 8 connections).
func BenchmarkLoginParallel(b *testing.B) {
	dsn := pgtest.NewDB(b)
	s := openNode(b, dsn, "a")
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := fmt.Sprint(n.Add(1))
			if _, err := s.ClaimSession(ctx(b), session("s"+i, "site", "u"+i), 2); err != nil {
				b.Error(err)
				return
			}
			if err := s.EndSession(ctx(b), "site", "s"+i); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
