package core

import (
	"context"
	"io/fs"
	"sync"

	"github.com/spf13/afero"
	"golang.org/x/time/rate"

	"github.com/wharf-project/wharf/vfs"
)

// usage is a user's quota consumption, shared by all the user's sessions on every protocol.
type usage struct {
	mu               sync.Mutex
	bytes, files     int64
	maxBytes, maxFil int64
}

// reserve adds to the usage unless that would pass a limit.
func (u *usage) reserve(bytes, files int64) bool {
	if u == nil {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if bytes > 0 && u.maxBytes > 0 && u.bytes+bytes > u.maxBytes {
		return false
	}
	if files > 0 && u.maxFil > 0 && u.files+files > u.maxFil {
		return false
	}
	u.bytes += bytes
	u.files += files
	return true
}

// release gives usage back (deleted files, discarded uploads).
func (u *usage) release(bytes, files int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	u.bytes = max(0, u.bytes-bytes)
	u.files = max(0, u.files-files)
	u.mu.Unlock()
}

// restore adds bytes back without a limit check (a replaced file that stays after all).
func (u *usage) restore(bytes int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	u.bytes += bytes
	u.mu.Unlock()
}

func (u *usage) snapshot() (bytes, files, maxBytes, maxFiles int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bytes, u.files, u.maxBytes, u.maxFil
}

// quotaUsage returns the user's shared usage record, scanning the home mount when no other
// session of the user keeps it current (files may have changed outside wharf meanwhile).
// Users without a quota are not tracked.
func (s *Site) quotaUsage(u *User, t *vfs.Table) (*usage, error) {
	if u.QuotaBytes <= 0 && u.QuotaFiles <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	rec, ok := s.usage[u.ID]
	live := s.perUser[u.ID]
	s.mu.Unlock()
	if !ok || live <= 1 {
		b, f, err := scanUsage(t)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if rec, ok = s.usage[u.ID]; !ok {
			rec = &usage{}
			s.usage[u.ID] = rec
		}
		s.mu.Unlock()
		rec.mu.Lock()
		rec.bytes, rec.files = b, f
		rec.mu.Unlock()
	}
	rec.mu.Lock()
	rec.maxBytes, rec.maxFil = u.QuotaBytes, u.QuotaFiles
	rec.mu.Unlock()
	return rec, nil
}

// scanUsage counts the bytes and files of the home mount.
func scanUsage(t *vfs.Table) (bytes, files int64, err error) {
	r, err := t.Resolve("/")
	if err != nil || r.Mount == nil || r.Mount.Path != "/" {
		return 0, 0, nil // no home mount: nothing counts
	}
	err = afero.Walk(r.Mount.FS, "/", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return nil // unreadable entries do not count
		}
		if fi.Mode().IsRegular() && !vfs.IsTempName(fi.Name()) {
			bytes += fi.Size()
			files++
		}
		return nil
	})
	return bytes, files, err
}

func (s *Site) unregisterUser(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.countedUser != "" {
		if s.perUser[sess.countedUser]--; s.perUser[sess.countedUser] <= 0 {
			delete(s.perUser, sess.countedUser)
		}
		sess.countedUser = ""
	}
}

// bandwidth holds a user's limiters, shared by the user's concurrent transfers.
type bandwidth struct {
	up, down *rate.Limiter
}

func newLimiter(kibps int64) *rate.Limiter {
	if kibps <= 0 {
		return nil
	}
	bps := kibps * 1024
	// A tenth of a second of burst keeps the rate smooth without starving 32 KiB SFTP packets.
	burst := max(bps/10, 32*1024)
	return rate.NewLimiter(rate.Limit(bps), int(burst))
}

func (s *Site) bandwidthFor(u *User) *bandwidth {
	if u.UploadKiBps <= 0 && u.DownKiBps <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.limits[u.ID]
	if !ok || !sameRate(b.up, u.UploadKiBps) || !sameRate(b.down, u.DownKiBps) {
		b = &bandwidth{up: newLimiter(u.UploadKiBps), down: newLimiter(u.DownKiBps)}
		s.limits[u.ID] = b
	}
	return b
}

func sameRate(l *rate.Limiter, kibps int64) bool {
	if l == nil {
		return kibps <= 0
	}
	return int64(l.Limit()) == kibps*1024
}

// throttle waits until n bytes may pass the limiter.
func throttle(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return nil
	}
	for n > 0 {
		c := min(n, l.Burst())
		if err := l.WaitN(ctx, c); err != nil {
			return err
		}
		n -= c
	}
	return nil
}
