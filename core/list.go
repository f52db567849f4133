package core

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// ListBatch is the number of entries Lister.Next reads when asked for max <= 0, and the
// batch List reads with.
const ListBatch = 256

// Lister pages through a directory listing without reading the directory whole: it holds
// the open directory and at most one batch of entries, so a directory of any size costs the
// server the same memory. Entries come in this order: the directories that exist because
// mounts lie below this one (sorted by name), then the backend's entries in the backend's
// own order, unsorted (clients sort). The filters of List apply to every batch: no temporary
// upload names, nothing a script hid, and no backend entry that a mount point shadows.
//
// A Lister is safe for use from more than one goroutine, one call at a time. Close it when
// done: it releases the directory and records the operation.
type Lister struct {
	s      *Session
	dir    string     // virtual path of the directory
	arg    string     // the path as the client gave it, for the operation's record
	f      afero.File // nil once the backend is exhausted, or when there is none
	mounts []fs.FileInfo
	shadow []string               // sorted names of mount children: backend entries by these names are skipped
	hidden func(fs.FileInfo) bool // what scripts hid, as of the OnDirList gate
	start  time.Time

	mu     sync.Mutex
	err    error // sticky: io.EOF at the end, or the error that ended the listing
	closed bool
}

// OpenList opens a directory for listing: it checks the list permission, fires the
// OnDirList gate once (scripts hide entries with RemoveFromListDir there) and opens the
// backend directory. Read the entries with Next; Close the Lister when done.
func (s *Session) OpenList(ctx context.Context, dir string) (_ *Lister, err error) {
	start := s.site.now()
	defer s.observeOpen(OpList, dir, start, &err)
	const op = "list"
	if err := s.begin(ctx, op, dir, "LIST "+dir); err != nil {
		return nil, err
	}
	t, err := s.resolve(op, dir, true)
	if err != nil {
		return nil, s.fail(err)
	}
	if !t.allows(PermList) {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	if s.gate(ctx, OnDirList, t.virtual, "") {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, s.scriptRefusal(OnDirList)))
	}
	l := &Lister{s: s, dir: t.virtual, arg: dir, start: start, hidden: s.hiddenInListing(t)}
	if t.mount != nil {
		l.f, err = openDir(t.mount.FS, t.path)
		if err != nil && !(t.synthetic && errors.Is(err, fs.ErrNotExist)) {
			return nil, s.fail(backendErr(op, t.virtual, err))
		}
	}
	// Mount children are few (one per mount below this directory, from the configuration),
	// so they are looked up now, whatever the directory's size.
	s.mu.Lock()
	table := s.table
	s.mu.Unlock()
	l.shadow = table.Children(t.virtual)
	for _, name := range l.shadow {
		child, err := s.resolve(op, path.Join(t.virtual, name), true)
		if err != nil {
			continue // hidden by a script, or a temporary name
		}
		fi, err := s.stat(child, false)
		if err != nil {
			fi = dirInfo{name: name, mod: s.start}
		}
		l.mounts = append(l.mounts, fi)
	}
	s.setPaths(t, nil) // resolving the children moved the operation's paths
	return l, nil
}

// openDir opens a backend directory for reading.
func openDir(fsys afero.Fs, p string) (afero.File, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.IsDir() {
		err = &fs.PathError{Op: "readdir", Path: p, Err: syscall.ENOTDIR}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// Next returns up to limit entries (ListBatch when limit <= 0). At the end of the directory it
// returns no entries and io.EOF; it never returns no entries and a nil error. An error
// reading the backend ends the listing: the entries read before it come first, the error
// with the next call.
func (l *Lister) Next(limit int) ([]fs.FileInfo, error) {
	const op = "list"
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, opErr(op, l.dir, ErrClosed, fs.ErrClosed)
	case l.err != nil:
		return nil, l.err
	case l.s.Closed():
		return nil, opErr(op, l.dir, ErrClosed, nil)
	}
	if limit <= 0 {
		limit = ListBatch
	}
	n := min(limit, len(l.mounts))
	// A huge limit must not allocate up front: the backend is read ListBatch at a time.
	out := make([]fs.FileInfo, n, max(n, min(limit, ListBatch)))
	copy(out, l.mounts)
	l.mounts = l.mounts[n:]
	for len(out) < limit && l.f != nil {
		fis, err := l.f.Readdir(min(limit-len(out), ListBatch))
		for _, fi := range fis {
			if l.keep(fi) {
				out = append(out, fi)
			}
		}
		if err != nil || len(fis) == 0 {
			_ = l.f.Close()
			l.f = nil
			if err != nil && !errors.Is(err, io.EOF) {
				l.err = l.s.fail(backendErr(op, l.dir, err))
			}
		}
	}
	if len(out) > 0 {
		l.s.Touch()
		return out, nil
	}
	if l.err == nil {
		l.err = io.EOF
	}
	return nil, l.err
}

// keep applies List's filters to a backend entry (as Readdir returns it, unfollowed).
func (l *Lister) keep(fi fs.FileInfo) bool {
	name := fi.Name()
	if vfs.IsTempName(name) {
		return false
	}
	if _, shadowed := slices.BinarySearch(l.shadow, name); shadowed {
		return false // listed as the mount point, first
	}
	return !l.hidden(fi)
}

// Close releases the directory and records the listing (with the error that ended it, if
// one did). It is safe to call more than once.
func (l *Lister) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	var result error
	if l.err != nil && !errors.Is(l.err, io.EOF) {
		result = l.err
	}
	l.s.observeOp(OpList, l.arg, "", l.start, 0, &result)
	if err != nil {
		return backendErr("list", l.dir, err)
	}
	return nil
}
