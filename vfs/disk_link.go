package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Symbolic links on a Disk are kept to one invariant, so that a link never resolves outside
// the root on the host either, where backup tools, scanners and indexers follow links without
// any jail:
//
//   - wharf stores a link's target relative and clean ("../../x/y": climbs first, then names
//     only), computed from the directory where the link really is (its parent resolved through
//     links) to where the target really is;
//   - a link may be placed in a directory only if it climbs no more levels than that
//     directory lies below the root.
//
// Following such a link then climbs through real directories inside the root and descends by
// names; a name that is itself a link obeys the same rule, so no chain of links leaves the
// root. Every operation that places a link checks the rule where the link lands: creating one,
// renaming one, renaming a directory to a shallower place (every link below it moves up with
// it), and hard-linking (refused for links). These operations are serialised per Disk (and the
// Disks its OpenDir returns), so no link can slip into a directory between its check and its
// move.

// LinkResolver is a backend that can tell where a name really is, its symbolic links
// resolved. A backend without links need not implement it: its names are where they are.
type LinkResolver interface {
	// RealPath returns where name really is, as clean absolute paths inside the backend:
	// entry with the directories above name resolved through links (name itself not
	// followed), target with name followed too. Components that do not exist are kept as
	// they are. A link leading out of the backend gives an error matching fs.ErrPermission;
	// when only name itself leads out, entry is still returned with the error.
	RealPath(name string) (entry, target string, err error)
}

// maxLinkHops bounds the links followed in one resolution, like the kernel's MAXSYMLINKS.
const maxLinkHops = 40

// MaxLinkCheckEntries bounds the entries a rename reads to check the links below a directory
// it moves closer to the root (Disk.maxCheck); past it the rename is refused rather than hold
// the Disk's link lock longer.
const MaxLinkCheckEntries = 100_000

var (
	errLinkLoop        error = syscall.ELOOP
	errHardlinkToLink        = linkError("a hard link to a symbolic link is not allowed")
	errLinkWouldEscape       = linkError("a symbolic link would point outside the root after this move")
)

// linkError is a refusal by the link rules. It matches fs.ErrPermission.
type linkError string

func (e linkError) Error() string        { return string(e) }
func (e linkError) Is(target error) bool { return target == fs.ErrPermission }

// LstatIfPossible implements afero.Lstater.
func (d *Disk) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	c, rel, err := d.names("lstat", name)
	if err != nil {
		return nil, true, err
	}
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return nil, true, d.err("lstat", c, err)
	}
	return rootInfo(c, fi), true, nil
}

// RealPath implements LinkResolver, in one walk.
func (d *Disk) RealPath(name string) (entry, target string, err error) {
	const op = "realpath"
	c, _, err := d.names(op, name)
	if err != nil {
		return "", "", err
	}
	if c == "/" {
		return c, c, nil
	}
	w := walker{d: d}
	defer w.close()
	if err := w.follow(path.Dir(c)); err != nil {
		return "", "", d.err(op, c, err)
	}
	entry = path.Join(w.path(), path.Base(c))
	if err := w.follow(path.Base(c)); err != nil {
		return entry, "", d.err(op, c, err)
	}
	return entry, w.path(), nil
}

// resolve returns where the clean name c really is, every link on the way followed.
func (d *Disk) resolve(c string) (string, error) {
	w := walker{d: d}
	defer w.close()
	if err := w.follow(c); err != nil {
		return "", err
	}
	return w.path(), nil
}

// walker is a position in a Disk while resolving a name: the real directories entered, each
// with a descriptor opened when a step is taken from it (so each step is one lstat, and one
// open to step further, whatever the depth), then the names that do not exist (taken
// lexically).
type walker struct {
	d       *Disk
	names   []string
	dirs    []*os.Root // dirs[i] is names[:i+1], nil until needed; shorter than names past a missing component
	missing bool
	hops    int // links followed
}

// follow walks the slash-separated rest from the current position, following symbolic links
// the way os.Root does (physically: ".." after a link climbs from where the link led).
func (w *walker) follow(rest string) error {
	parts := strings.Split(rest, "/")
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if !w.up() {
				return errEscapes
			}
			continue
		}
		text, err := w.step(p)
		if err != nil {
			return err
		}
		if text == "" {
			continue
		}
		if w.hops++; w.hops > maxLinkHops {
			return errLinkLoop
		}
		if filepath.IsAbs(text) {
			// os.Root refuses absolute links, wherever they point.
			return errEscapes
		}
		parts = append(strings.Split(text, "/"), parts...)
	}
	return nil
}

// cur is the directory the next step is taken from.
func (w *walker) cur() (*os.Root, error) {
	last := len(w.dirs) - 1
	if last < 0 {
		return w.d.root, nil
	}
	if w.dirs[last] == nil {
		parent := w.d.root
		if last > 0 {
			parent = w.dirs[last-1]
		}
		r, err := parent.OpenRoot(w.names[last])
		if err != nil {
			return nil, err
		}
		w.dirs[last] = r
	}
	return w.dirs[last], nil
}

// step moves to the entry n of the current directory. For a symbolic link it stays where it
// is and returns the link's target.
func (w *walker) step(n string) (string, error) {
	if w.missing {
		w.names = append(w.names, n)
		return "", nil
	}
	dir, err := w.cur()
	if err != nil {
		return "", err
	}
	fi, err := dir.Lstat(n)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		w.missing = true
		w.names = append(w.names, n)
		return "", nil
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return dir.Readlink(n)
	case !fi.IsDir():
		// A file: anything below it is missing.
		w.missing = true
		w.names = append(w.names, n)
		return "", nil
	}
	w.names = append(w.names, n)
	w.dirs = append(w.dirs, nil)
	return "", nil
}

// up moves to the parent; false at the root.
func (w *walker) up() bool {
	if len(w.names) == 0 {
		return false
	}
	if len(w.dirs) == len(w.names) {
		if r := w.dirs[len(w.dirs)-1]; r != nil {
			_ = r.Close()
		}
		w.dirs = w.dirs[:len(w.dirs)-1]
	}
	w.names = w.names[:len(w.names)-1]
	w.missing = len(w.dirs) < len(w.names)
	return true
}

func (w *walker) path() string { return "/" + strings.Join(w.names, "/") }

func (w *walker) close() {
	for _, r := range w.dirs {
		if r != nil {
			_ = r.Close()
		}
	}
}

// realEntry returns where the clean name c really is: its parent resolved, its last element
// as it is (a link there is the entry itself, not followed).
func (d *Disk) realEntry(c string) (string, error) {
	if c == "/" {
		return c, nil
	}
	dir, err := d.resolve(path.Dir(c))
	if err != nil {
		return "", err
	}
	return path.Join(dir, path.Base(c)), nil
}

// depth is the number of directories between the root and the clean absolute path p.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// linkFits reports whether a link with target text may live in a directory depth levels below
// the root: see the invariant at the top of this file. An absolute target does not depend on
// where the link is (and os.Root never follows it), so moving one changes nothing.
func linkFits(text string, depth int) bool {
	if filepath.IsAbs(text) {
		return true
	}
	if text == "" || path.Clean(text) != text {
		// "a/../../x" climbs after a name, by an amount that depends on what "a" is.
		return false
	}
	climbs := 0
	for text == ".." || strings.HasPrefix(text, "../") {
		climbs++
		text = strings.TrimPrefix(strings.TrimPrefix(text, ".."), "/")
	}
	return climbs <= depth
}

// SymlinkIfPossible implements afero.Linker. The target oldname is a path inside this
// backend, absolute (from the backend root) or relative to the link's directory; a target
// that would leave the root is refused. The link is stored relative, from where the link
// really is to where the target really is, so it resolves inside the root on the host too,
// and stays so through renames (see the top of this file).
func (d *Disk) SymlinkIfPossible(oldname, newname string) error {
	const op = "symlink"
	link, _, err := d.names(op, newname)
	if err != nil {
		return err
	}
	if link == "/" {
		return &fs.PathError{Op: op, Path: link, Err: fs.ErrExist}
	}
	target, err := linkTarget(path.Dir(link), oldname)
	if err != nil {
		return &fs.PathError{Op: op, Path: link, Err: err}
	}
	d.links.Lock()
	defer d.links.Unlock()
	at, err := d.realEntry(link)
	if err != nil {
		return d.err(op, link, err)
	}
	to, err := d.realEntry(target)
	if err != nil {
		return d.err(op, link, err)
	}
	if _, err := d.resolve(to); err != nil {
		// The target is a link that leads out (someone put it there on the host); a
		// link to it would lead out as well.
		return d.err(op, link, err)
	}
	stored, err := filepath.Rel(relName(path.Dir(at)), relName(to))
	if err != nil || !linkFits(stored, depth(path.Dir(at))) {
		// Unreachable for two clean names inside the root; kept so a future change
		// cannot silently store a bad link.
		return &fs.PathError{Op: op, Path: link, Err: fs.ErrInvalid}
	}
	return d.err(op, link, d.root.Symlink(stored, relName(at)))
}

// ReadlinkIfPossible implements afero.LinkReader. The target comes back as an absolute path
// inside the backend. A link on disk that points out of the root (someone with host access
// put it there) is reported as a permission error rather than disclosing where it points.
func (d *Disk) ReadlinkIfPossible(name string) (string, error) {
	const op = "readlink"
	c, rel, err := d.names(op, name)
	if err != nil {
		return "", err
	}
	t, err := d.root.Readlink(rel)
	if err != nil {
		return "", d.err(op, c, err)
	}
	if filepath.IsAbs(t) {
		return "", &fs.PathError{Op: op, Path: c, Err: errEscapes}
	}
	// The target is relative to where the link really is, which differs from its name when
	// a directory above it is a link.
	at, err := d.realEntry(c)
	if err != nil {
		return "", d.err(op, c, err)
	}
	v, err := linkTarget(path.Dir(at), t)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: c, Err: err}
	}
	return v, nil
}

// Link implements HardLinker; both names are inside the root. A hard link to a symbolic link
// would be a second copy of the link elsewhere, so it is refused.
func (d *Disk) Link(oldname, newname string) error {
	const op = "link"
	o, _, err := d.names(op, oldname)
	if err != nil {
		return err
	}
	n, _, err := d.names(op, newname)
	if err != nil {
		return err
	}
	if o == "/" || n == "/" {
		return &fs.PathError{Op: op, Path: o, Err: fs.ErrPermission}
	}
	d.links.Lock()
	defer d.links.Unlock()
	from, err := d.realEntry(o)
	if err != nil {
		return d.err(op, o, err)
	}
	to, err := d.realEntry(n)
	if err != nil {
		return d.err(op, o, err)
	}
	if fi, err := d.root.Lstat(relName(from)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return &fs.PathError{Op: op, Path: o, Err: errHardlinkToLink}
	}
	return d.err(op, o, d.root.Link(relName(from), relName(to)))
}

// checkMove enforces the link invariant for a rename of the real entry from to the real
// entry to. The caller holds d.links.
func (d *Disk) checkMove(from, to string) error {
	fi, err := d.root.Lstat(relName(from))
	if err != nil {
		return nil // the rename reports it
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		text, err := d.root.Readlink(relName(from))
		if err != nil {
			return err
		}
		if !linkFits(text, depth(path.Dir(to))) {
			return errLinkWouldEscape
		}
	case fi.IsDir():
		if up := depth(from) - depth(to); up > 0 {
			return d.checkTree(from, up)
		}
	}
	return nil
}

// checkTree checks every link below the real directory dir for a move that takes it up
// levels closer to the root. It reads directories without following
// links, breadth first, at most d.maxCheck entries.
func (d *Disk) checkTree(dir string, up int) error {
	queue, seen := []string{dir}, 0
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		f, err := d.root.Open(relName(cur))
		if err != nil {
			return err
		}
		for {
			des, err := f.ReadDir(1024)
			for _, de := range des {
				if seen++; seen > d.maxCheck {
					_ = f.Close()
					return linkError(fmt.Sprintf("the folder has more than %d entries to check for symbolic links before it can move closer to the root; move its contents in parts", d.maxCheck))
				}
				p := path.Join(cur, de.Name())
				switch {
				case de.Type()&fs.ModeSymlink != 0:
					text, rerr := d.root.Readlink(relName(p))
					if rerr != nil {
						_ = f.Close()
						return rerr
					}
					if !linkFits(text, depth(cur)-up) {
						_ = f.Close()
						return errLinkWouldEscape
					}
				case de.IsDir():
					queue = append(queue, p)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				_ = f.Close()
				return err
			}
		}
		_ = f.Close()
	}
	return nil
}

// linkTarget resolves a symbolic link target t, found in (or meant for) the
// clean directory dir, to a clean absolute path inside the backend. Unlike
// Clean it does not clamp ".." at the root: a target that climbs out is an
// escape attempt and is refused.
func linkTarget(dir, t string) (string, error) {
	if t == "" || strings.IndexByte(t, 0) >= 0 {
		return "", ErrInvalidPath
	}
	var j string
	if t[0] == '/' {
		j = path.Clean(strings.TrimLeft(t, "/"))
	} else {
		j = path.Clean(relName(dir) + "/" + t)
	}
	if j == ".." || strings.HasPrefix(j, "../") {
		return "", errEscapes
	}
	if j == "." {
		return "/", nil
	}
	return "/" + j, nil
}
