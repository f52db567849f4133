package s3fs

import (
	"maps"
	"path"
	"strings"
	"sync"
	"time"
)

// The metadata cache answers Stat and opens for reading from what a HEAD or a listing told
// shortly before: a directory download (SFTP get -r, lftp mirror) lists, then stats and opens
// every file, which without it costs a HEAD and a LIST more per file than its GET. Changes made
// through this FS drop what they touch; changes made by others (another node, a direct write
// to the bucket) show after at most metaTTL. Reads stay safe meanwhile: every GET carries the
// ETag the handle was opened with, and a handle opened from the cache whose first GET finds the
// object changed or gone looks it up again once (see readFile.refresh).
const (
	metaTTL = 5 * time.Second
	metaMax = 10_000 // entries, and names of the directory listings kept
)

// mtimeTTL is how long a listing may take an object's modification time from a HEAD made
// before, instead of a HEAD of its own, while the listing shows the object as it was then
// (same ETag, size and store time). S3 keeps the time wharf and rclone set in the object's
// metadata (x-amz-meta-mtime), which listings do not return: without this every listing of
// a directory costs one HEAD per file. Content changes show at once (the ETag or size
// changes); only a change of the metadata alone by another writer, on a store that keeps
// the store time of a metadata-only copy (versitygw does; AWS S3 does not), shows late, by
// mtimeTTL at most. rclone's directory cache keeps whole listings for as long by default.
const mtimeTTL = 5 * time.Minute

// writtenTTL is how long an object written through this FS is known to exist for a chmod,
// which S3 ignores and which needs no more than that: lftp's mirror -R sends SITE CHMOD for
// every file after the last upload, minutes after the first for a large tree, and a HEAD
// each doubled the requests of a small-file upload. A change through this FS (remove,
// rename, overwrite) drops it at once; only a removal by another writer shows late, as a
// chmod that succeeds on a name just gone.
const writtenTTL = mtimeTTL

type metaCache struct {
	mu      sync.Mutex
	gen     uint64               // counts invalidations: a lookup that spans one is not kept
	entries map[string]metaEntry // by clean name
	listed  map[string]dirListing
	names   int                   // names held by listed
	mtimes  map[string]mtimeEntry // by clean name
}

// mtimeEntry is what a listing showed of an object, and what a HEAD then found.
type mtimeEntry struct {
	etag   string
	size   int64
	stored time.Time // the listing's LastModified
	fi     *info     // the HEAD's description
	at     time.Time
}

type metaEntry struct {
	fi *info
	at time.Time
	// partial entries know the size, ETag and metadata of an object written through this FS
	// but not its store time: only Chtimes, which needs no more, uses them.
	partial bool
}

// dirListing is the set of names a complete listing of a directory found.
type dirListing struct {
	at    time.Time
	names map[string]struct{}
}

func (m *metaCache) generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// get returns a copy of the fresh entry of c; partial says whether partial ones do.
func (m *metaCache) get(c string, partial bool) *info {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[c]
	if !ok || time.Since(e.at) >= metaTTL || (e.partial && !partial) {
		return nil
	}
	fi := *e.fi
	return &fi
}

// written reports whether c is an object written through this FS within writtenTTL that no
// change through this FS has touched since.
func (m *metaCache) written(c string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[c]
	return ok && e.partial && time.Since(e.at) < writtenTTL
}

// missing reports whether a fresh complete listing of c's directory did not find c.
func (m *metaCache) missing(c string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.listed[path.Dir(c)]
	if !ok || time.Since(l.at) >= metaTTL {
		return false
	}
	_, found := l.names[path.Base(c)]
	return !found
}

// put keeps fi for c unless something was invalidated since gen (the lookup may have seen the
// store before that change).
func (m *metaCache) put(gen uint64, c string, fi *info, partial bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	if m.entries == nil || len(m.entries) >= metaMax {
		m.entries = map[string]metaEntry{} // a bound, not an LRU: the next lookups ask again
	}
	cp := *fi
	m.entries[c] = metaEntry{fi: &cp, at: time.Now(), partial: partial}
}

// remember keeps fi, which a HEAD found for the object that a listing showed as listed,
// unless something was invalidated since gen.
func (m *metaCache) remember(gen uint64, c string, listed, fi *info) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	if m.mtimes == nil || len(m.mtimes) >= metaMax {
		m.mtimes = map[string]mtimeEntry{}
	}
	cp := *fi
	m.mtimes[c] = mtimeEntry{etag: listed.etag, size: listed.size, stored: listed.mod, fi: &cp, at: time.Now()}
}

// recall returns a copy of what a HEAD found for c within mtimeTTL, if a listing shows the
// object as it showed it then.
func (m *metaCache) recall(c string, listed *info) *info {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.mtimes[c]
	if !ok || time.Since(e.at) >= mtimeTTL || e.etag != listed.etag || e.size != listed.size || !e.stored.Equal(listed.mod) {
		return nil
	}
	fi := *e.fi
	return &fi
}

// putListing keeps the names of a complete listing of dir started at gen.
func (m *metaCache) putListing(gen uint64, dir string, at time.Time, names map[string]struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen || len(names) > metaMax {
		return
	}
	if m.listed == nil || m.names+len(names) > metaMax {
		m.listed, m.names = map[string]dirListing{}, 0
	}
	if old, ok := m.listed[dir]; ok {
		m.names -= len(old.names)
	}
	m.listed[dir] = dirListing{at: at, names: names}
	m.names += len(names)
}

// forget drops what is known of the file c alone: a change of its content or metadata that
// leaves the names around it as they were (Chtimes, a stale entry).
func (m *metaCache) forget(c string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(c)
}

func (m *metaCache) forgetLocked(c string) {
	m.gen++
	delete(m.entries, c)
	delete(m.mtimes, c)
}

// created drops what is known of the file c, just written, and of its directories, whose
// listings now hold it: they keep their names, with c's added.
func (m *metaCache) created(c string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(c)
	for x := c; x != "/" && x != "."; {
		d := path.Dir(x)
		delete(m.entries, d)
		if l, ok := m.listed[d]; ok {
			if _, ok := l.names[path.Base(x)]; !ok {
				l.names[path.Base(x)] = struct{}{}
				m.names++
			}
		}
		x = d
	}
}

// invalidate drops what is known of c, of everything below it, and of its directories (whose
// listing and existence it may change).
func (m *metaCache) invalidate(c string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invalidateLocked(c)
}

// madeDir is invalidate for a directory this FS just made, whose lookup, started at gen,
// found no key below it (at): unless something changed through this FS since, the directory
// is known empty, so that the uploads that follow (SFTP put -r, lftp mirror -R into a new
// folder) learn that their names are new without a HEAD and a LIST each.
func (m *metaCache) madeDir(gen uint64, c string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	unchanged := m.gen == gen
	m.invalidateLocked(c)
	if !unchanged {
		return
	}
	if m.listed == nil || m.names >= metaMax {
		m.listed, m.names = map[string]dirListing{}, 0
	}
	m.listed[c] = dirListing{at: at, names: map[string]struct{}{}}
}

func (m *metaCache) invalidateLocked(c string) {
	m.gen++
	below := strings.TrimSuffix(c, "/") + "/"
	under := func(k string) bool { return k == c || strings.HasPrefix(k, below) }
	deleteKeys(m.entries, under)
	deleteKeys(m.mtimes, under)
	for k, l := range m.listed {
		if k == c || strings.HasPrefix(k, below) {
			m.names -= len(l.names)
			delete(m.listed, k)
		}
	}
	for d := c; d != "/" && d != "."; {
		d = path.Dir(d)
		delete(m.entries, d)
		if l, ok := m.listed[d]; ok {
			m.names -= len(l.names)
			delete(m.listed, d)
		}
	}
}

// deleteKeys deletes the entries of m whose key matches.
func deleteKeys[V any](m map[string]V, match func(string) bool) {
	maps.DeleteFunc(m, func(k string, _ V) bool { return match(k) })
}
