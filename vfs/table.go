package vfs

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/spf13/afero"
)

// A Mount attaches a backend at a virtual path.
type Mount struct {
	Path string   // virtual mount point, clean; "/" for the home mount
	Name string   // the vfs definition's name (config vfs[].name)
	FS   afero.Fs // names given to FS are clean absolute slash paths inside the mount ("/" = the mount's root)
}

// Table is a per-user mount table. It is immutable after NewTable, so one
// table can serve all of a user's concurrent operations without locking.
type Table struct {
	mounts  []*Mount
	byPoint map[string]*Mount
}

// Resolved is a virtual path mapped onto the mount that covers it.
type Resolved struct {
	Virtual string // the cleaned virtual path
	Mount   *Mount
	Path    string // path inside the mount, clean absolute slash path ("/" = mount root)
}

// NewTable builds a mount table. Mount points must be clean (as returned by
// Clean) and distinct, and every mount needs a backend.
func NewTable(mounts ...*Mount) (*Table, error) {
	t := &Table{
		mounts:  make([]*Mount, 0, len(mounts)),
		byPoint: make(map[string]*Mount, len(mounts)),
	}
	for i, m := range mounts {
		if m == nil {
			return nil, fmt.Errorf("vfs: mount #%d is nil", i)
		}
		if c, err := Clean(m.Path); err != nil || c != m.Path {
			return nil, fmt.Errorf("vfs: mount point %q of %q is not a clean absolute path", m.Path, m.Name)
		}
		if m.FS == nil {
			return nil, fmt.Errorf("vfs: mount %q at %q has no backend", m.Name, m.Path)
		}
		if prev, dup := t.byPoint[m.Path]; dup {
			return nil, fmt.Errorf("vfs: mount point %q is used by both %q and %q", m.Path, prev.Name, m.Name)
		}
		t.byPoint[m.Path] = m
		t.mounts = append(t.mounts, m)
	}
	return t, nil
}

// Mounts returns the mounts in the order they were given to NewTable. The
// slice is a copy; the mounts are shared.
func (t *Table) Mounts() []*Mount {
	return slices.Clone(t.mounts)
}

// Resolve cleans virtual and finds the mount covering it; the longest mount
// point wins. A path no mount covers (possible only without a home mount)
// gives an error that matches fs.ErrNotExist.
func (t *Table) Resolve(virtual string) (Resolved, error) {
	v, err := Clean(virtual)
	if err != nil {
		return Resolved{}, &fs.PathError{Op: "resolve", Path: printable(virtual), Err: err}
	}
	// Walking up the ancestors of v costs one map lookup per path element,
	// independent of the number of mounts, and allocates nothing.
	for p := v; ; p = parent(p) {
		if m, ok := t.byPoint[p]; ok {
			return Resolved{Virtual: v, Mount: m, Path: inside(v, p)}, nil
		}
		if p == "/" {
			return Resolved{}, &fs.PathError{Op: "resolve", Path: v, Err: fs.ErrNotExist}
		}
	}
}

// Children returns the sorted names of the entries of virtual directory dir
// that exist because a mount point lies below it. The caller merges them with
// whatever the backend covering dir (if any) lists.
func (t *Table) Children(dir string) []string {
	d, err := Clean(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, m := range t.mounts {
		if m.Path == d || !within(m.Path, d) {
			continue
		}
		rest := strings.TrimPrefix(m.Path[len(d):], "/")
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		names = append(names, rest)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// IsSynthetic reports whether virtual is a strict ancestor of some mount point
// without being a mount point itself: a directory that must be shown so the
// mounts below it are reachable. Such a directory may also be covered by a
// shallower mount (for "/" and "/a/b", "/a" lies in the home mount); callers
// should prefer what that backend reports and fall back to a synthetic
// directory when it has nothing there.
func (t *Table) IsSynthetic(virtual string) bool {
	v, err := Clean(virtual)
	if err != nil {
		return false
	}
	if _, ok := t.byPoint[v]; ok {
		return false
	}
	for _, m := range t.mounts {
		if m.Path != v && within(m.Path, v) {
			return true
		}
	}
	return false
}

// IsMountPoint reports whether virtual is exactly a mount point.
func (t *Table) IsMountPoint(virtual string) bool {
	v, err := Clean(virtual)
	if err != nil {
		return false
	}
	_, ok := t.byPoint[v]
	return ok
}

// parent returns the parent of a clean absolute path other than "/".
func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// inside maps the clean virtual path v onto the mount at point, which covers v.
func inside(v, point string) string {
	if point == "/" {
		return v
	}
	if len(v) == len(point) {
		return "/"
	}
	return v[len(point):]
}

// printable keeps NUL bytes of a rejected client path out of error text, where
// they could truncate or corrupt a protocol reply.
func printable(p string) string {
	return strings.ReplaceAll(p, "\x00", `\x00`)
}
