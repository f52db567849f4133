package core

import (
	"context"
	"time"

	"github.com/spf13/afero"
)

// UsageOf returns what a session's user is charged (bytes, files); 0, 0 without a quota.
func UsageOf(s *Session) (bytes, files int64) {
	q := s.quotaRecord()
	if q == nil {
		return 0, 0
	}
	bytes, files, _, _ = q.snapshot()
	return bytes, files
}

// HomeFS returns the backend of a session's home mount.
func HomeFS(s *Session) afero.Fs {
	s.mu.Lock()
	table := s.table
	s.mu.Unlock()
	r, err := table.Resolve("/")
	if err != nil || r.Mount == nil {
		return nil
	}
	return r.Mount.FS
}

// HiddenCount returns how many hidden entries a session keeps.
func HiddenCount(s *Session) int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.hidden) }

// QuestionCount returns how many interactive questions a session holds.
func QuestionCount(s *Session) int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.questions) }

// S3Clients returns how many S3 clients a site made.
func S3Clients(s *Site) int { s.s3mu.Lock(); defer s.s3mu.Unlock(); return len(s.s3Clients) }

// ClusterUsageOf returns what a session's user is charged after reading the cluster store's
// figure (StatFS does the same); 0, 0 without a quota.
func ClusterUsageOf(s *Session) (bytes, files int64) {
	s.quotaRecord().refresh(context.Background())
	return UsageOf(s)
}

// AllowanceOf returns the unused quota allowance a session's node holds for its user in the
// cluster store.
func AllowanceOf(s *Session) (bytes, files int64) {
	q := s.quotaRecord()
	if q == nil || q.cl == nil {
		return 0, 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cl.allowB, q.cl.allowF
}

// AgeUsageReads makes the store figures that a site's nodes read at logins d older (tests of
// the recount interval).
func AgeUsageReads(s *Site, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.usage {
		if u.cl != nil {
			u.mu.Lock()
			u.cl.readAt = u.cl.readAt.Add(-d)
			u.mu.Unlock()
		}
	}
}

// Cancelled reports whether an upload was cancelled (its name removed, renamed or replaced
// while it was open).
func Cancelled(h *WriteHandle) bool { return h.superseded() }
