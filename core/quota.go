package core

import (
	"context"
	"io/fs"
	"sync"
	"time"

	"github.com/spf13/afero"
	"golang.org/x/time/rate"

	"github.com/wharf-project/wharf/vfs"
)

// usage is a user's quota consumption, shared by all the user's sessions on every protocol:
// the bytes and number of the files of the home mount, each file counted once however many
// names it has (hard links), temporary files of uploads in flight counted by their upload
// (see WriteHandle).
type usage struct {
	mu               sync.Mutex // guards the counters
	bytes, files     int64
	maxBytes, maxFil int64

	// ns serialises the user's changes to the home mount that change what counts (remove,
	// rename over a file, truncate, publish, writes to a file in place) with the stat that
	// measures the change, so that concurrent sessions cannot count one change twice or not
	// at all. It is taken before mu, and never while a script runs.
	ns   sync.Mutex
	open map[*WriteHandle]struct{} // non-atomic uploads in the home mount; guarded by ns

	// cl links the usage to the cluster's (see cluster_quota.go); nil for a single node, whose
	// counters are the usage itself. Guarded by mu.
	cl *usageLink
}

// lockNS takes the namespace lock and returns its release; without a quota both do nothing.
func (u *usage) lockNS() (unlock func()) {
	if u == nil {
		return func() {}
	}
	u.ns.Lock()
	return u.ns.Unlock
}

// track and untrack keep the non-atomic uploads in the home mount, to find them when their
// file loses its last name; the caller holds ns.
func (u *usage) track(h *WriteHandle) {
	if u.open == nil {
		u.open = map[*WriteHandle]struct{}{}
	}
	u.open[h] = struct{}{}
}

func (u *usage) untrack(h *WriteHandle) { delete(u.open, h) }

// forget settles a name that was removed or replaced: victim, what the name held before,
// stops counting if the name was its last and it is not the file moved there (moved, for a
// rename). Nil records and infos do nothing. The caller holds ns.
func (u *usage) forget(victim, moved fs.FileInfo) {
	if u == nil || victim == nil || !victim.Mode().IsRegular() || vfs.LinkCount(victim) > 1 ||
		(moved != nil && vfs.SameFile(victim, moved)) {
		return
	}
	u.release(victim.Size(), 1)
	u.unlinked(victim)
}

// unlinked tells the open uploads of a file that it lost its last name: it no longer counts,
// and what they would write to it could not be counted. The caller holds ns.
func (u *usage) unlinked(fi fs.FileInfo) {
	for h := range u.open {
		if vfs.SameFile(h.info, fi) {
			h.orphan = true
		}
	}
}

// reserve adds to the usage unless that would pass a limit.
func (u *usage) reserve(bytes, files int64) bool {
	if u == nil {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cl != nil {
		return u.reserveClusterLocked(bytes, files)
	}
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
	if u.cl != nil {
		u.releaseClusterLocked(bytes, files)
		u.mu.Unlock()
		return
	}
	u.bytes = max(0, u.bytes-bytes)
	u.files = max(0, u.files-files)
	u.mu.Unlock()
}

func (u *usage) snapshot() (bytes, files, maxBytes, maxFiles int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cl != nil {
		// The cluster's figure counts this node's unused allowance, which is not used.
		return max(0, u.bytes-u.cl.allowB), max(0, u.files-u.cl.allowF), u.maxBytes, u.maxFil
	}
	return u.bytes, u.files, u.maxBytes, u.maxFil
}

// quotaUsage returns the user's shared usage record, scanning the home mount when no other
// session of the user keeps it current (files may have changed outside wharf meanwhile).
// Users without a quota are not tracked.
func (s *Site) quotaUsage(ctx context.Context, u *User, t *vfs.Table) (*usage, error) {
	if u.QuotaBytes <= 0 && u.QuotaFiles <= 0 {
		return nil, nil
	}
	if s.cl != nil {
		return s.clusterUsage(ctx, u, func() (int64, int64, error) { return scanUsage(t) })
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

// scanUsage counts the bytes and files of the home mount, as the usage counts them: each
// regular file once however many names it has, uploads in progress not at all.
func scanUsage(t *vfs.Table) (bytes, files int64, err error) {
	r, err := t.Resolve("/")
	if err != nil || r.Mount == nil || r.Mount.Path != "/" {
		return 0, 0, nil // no home mount: nothing counts
	}
	return ScanUsage(r.Mount.FS)
}

// usageScanTimeout bounds the scan of a backend that counts its own usage (a listing of an
// object store's prefix).
const usageScanTimeout = 10 * time.Minute

// ScanUsage counts the bytes and files of a backend as quotas count them (tests compare the
// live count with it).
func ScanUsage(fsys afero.Fs) (bytes, files int64, err error) {
	if uc, ok := fsys.(vfs.UsageCounter); ok {
		// An object store lists every key under its prefix in pages of 1,000, instead of
		// a request per directory and per entry.
		ctx, cancel := context.WithTimeout(context.Background(), usageScanTimeout)
		defer cancel()
		return uc.Usage(ctx)
	}
	seen := map[any]bool{}
	err = afero.Walk(fsys, "/", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return nil // unreadable entries do not count
		}
		if !fi.Mode().IsRegular() || vfs.IsTempName(fi.Name()) {
			return nil
		}
		if k, ok := vfs.FileKey(fi); ok && vfs.LinkCount(fi) > 1 {
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		bytes += fi.Size()
		files++
		return nil
	})
	return bytes, files, err
}

// unregisterUser stops counting a session whose login failed after its slot was claimed.
func (s *Site) unregisterUser(sess *Session) {
	s.mu.Lock()
	clusterUser, lastLocal := s.uncountUserLocked(sess)
	s.mu.Unlock()
	s.endClusterSession(sess, clusterUser, lastLocal)
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
