package core

import (
	"io/fs"
	"path"

	"github.com/wharf-project/wharf/vfs"
)

// Entries hidden by RemoveFromListDir are matched on the virtual path the script saw and on
// where things really are: a symbolic link to the directory (/via -> .) or to the file itself
// is another virtual path to the same entry, and must not show it. A hidden directory hides
// everything below it.

// hiddenEntry is one RemoveFromListDir call: pattern in the virtual directory dir, which
// really is real in mount (mount nil when that could not be told).
type hiddenEntry struct {
	dir, pattern string
	mount        *vfs.Mount
	real         string
}

// hiddenEntryFor records where the virtual directory dir really is.
func (s *Session) hiddenEntryFor(dir, pattern string) hiddenEntry {
	h := hiddenEntry{dir: dir, pattern: pattern}
	s.mu.Lock()
	table := s.table
	s.mu.Unlock()
	if table == nil {
		return h
	}
	if r, err := table.Resolve(dir); err == nil {
		if _, real := realPaths(r.Mount, r.Path); real != "" {
			h.mount, h.real = r.Mount, real
		}
	}
	return h
}

// realPaths is where p of mount m really is: entry with the directories above p resolved
// through links, target with p followed too; "" for what cannot be told. A backend that
// cannot resolve links has none: p is where it is.
func realPaths(m *vfs.Mount, p string) (entry, target string) {
	lr, ok := m.FS.(vfs.LinkResolver)
	if !ok {
		return p, p
	}
	entry, target, err := lr.RealPath(p)
	if err != nil {
		target = ""
	}
	return entry, target
}

// hiddenEntries returns the session's hidden entries; the slice is only ever appended to.
func (s *Session) hiddenEntries() []hiddenEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hidden
}

// hides reports whether a script hid t: by its virtual path, by where it really is, or (for a
// link) by where the link leads.
func (s *Session) hides(t target) bool {
	hs := s.hiddenEntries()
	if len(hs) == 0 {
		return false
	}
	if matchHidden(hs, nil, t.virtual) {
		return true
	}
	if t.mount == nil {
		return false
	}
	entry, target := realPaths(t.mount, t.path)
	return matchHidden(hs, t.mount, entry) || matchHidden(hs, t.mount, target)
}

// hiddenInListing returns the test a listing of the directory dir applies to each of its
// entries, which Readdir returns unfollowed: whether a script hid it (see hides). It resolves
// dir once, and each entry only if it is a link.
func (s *Session) hiddenInListing(dir target) func(fi fs.FileInfo) bool {
	hs := s.hiddenEntries()
	if len(hs) == 0 {
		return func(fs.FileInfo) bool { return false }
	}
	var real string
	if dir.mount != nil {
		_, real = realPaths(dir.mount, dir.path)
	}
	return func(fi fs.FileInfo) bool {
		name := fi.Name()
		if matchHidden(hs, nil, path.Join(dir.virtual, name)) {
			return true
		}
		if real == "" {
			return false
		}
		if matchHidden(hs, dir.mount, path.Join(real, name)) {
			return true
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false
		}
		_, target := realPaths(dir.mount, path.Join(dir.path, name))
		return matchHidden(hs, dir.mount, target)
	}
}

// matchHidden reports whether p or one of its ancestors is hidden by an entry: p is a virtual
// path when mount is nil, else a real path in mount.
func matchHidden(hs []hiddenEntry, mount *vfs.Mount, p string) bool {
	if p == "" {
		return false
	}
	for ; p != "/"; p = path.Dir(p) {
		dir, name := path.Dir(p), path.Base(p)
		for _, h := range hs {
			if mount == nil && h.dir != dir || mount != nil && (h.mount != mount || h.real != dir) {
				continue
			}
			if ok, _ := path.Match(h.pattern, name); ok {
				return true
			}
		}
	}
	return false
}
