package vfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/spf13/afero"
)

// TempPrefix starts the base name of every upload in progress. Listings can
// hide such names and cleanup jobs can find them.
const TempPrefix = ".wharf-upload-"

// nameMax is the longest base name most Linux file systems accept.
const nameMax = 255

// errFinished reports a second Publish or Discard.
var errFinished = errors.New("upload already published or discarded")

// IsTempName reports whether base is the base name of an upload in progress.
func IsTempName(base string) bool {
	return strings.HasPrefix(base, TempPrefix)
}

// AtomicFile is an upload that becomes visible under its final name only when
// it is complete: data goes to a hidden temporary file in the same directory
// (so the final rename stays within one file system), and Publish renames it
// over the final name. Readers therefore see either the old file or the
// complete new one, never a partial upload.
type AtomicFile struct {
	afero.File // the temporary file

	name string // final name, clean
	tmp  string // temporary name, clean

	// The renames and removals go to dir under dirName and dirTmp: the backend itself with
	// the full names, or the upload's directory with base names (see AtomicTarget).
	dir      atomicDir
	dirClose func() error // releases dir when it was opened for the upload
	dirName  string
	dirTmp   string

	// up is the upload of a backend whose uploads are atomic by nature (UploadCreator):
	// then there is no temporary file, and Publish and Discard go to the backend.
	up PendingUpload

	mu       sync.Mutex
	closed   bool
	finished bool
	unlinked bool // the temporary file's name is gone (Unlink)
}

// CreateAtomic starts an atomic upload of name in fsys. The temporary file is
// created exclusively with mode perm; its name carries random hex so that
// concurrent uploads of one name cannot collide.
func CreateAtomic(fsys afero.Fs, name string, perm os.FileMode) (*AtomicFile, error) {
	return PrepareAtomic(fsys, name).Create(perm)
}

// AtomicTarget is the place of an atomic upload before it starts: the final name, with its
// directory opened once where the backend allows it, so that the caller can look the name up
// (Stat) and then start the upload (Create) without resolving the directory's path again.
// Call Create, or Close to give the directory back.
type AtomicTarget struct {
	fsys afero.Fs
	name string // clean final name
	err  error  // name was invalid: Create reports it

	dir      atomicDir
	dirClose func() error
	dirName  string // the final name in dir
	entries  entryDir
}

// atomicDir is where an atomic upload creates, renames and removes its temporary file: the
// backend itself with full names, or the upload's directory (DirOpener, or a Disk's upload
// directory) with "/" and a base name.
type atomicDir interface {
	OpenFile(name string, flag int, perm os.FileMode) (afero.File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
}

// entryDir is a Disk's upload directory (disk_upload_linux.go): it also looks entries up.
type entryDir interface {
	atomicDir
	lstat(base string) (fs.FileInfo, error)
	Close() error
}

// PrepareAtomic prepares an atomic upload of name in fsys (see AtomicTarget). It does not fail:
// an invalid name, or a directory that cannot be opened, fails Stat or Create as it would
// without preparing.
func PrepareAtomic(fsys afero.Fs, name string) *AtomicTarget {
	c, err := Clean(name)
	if err != nil {
		return &AtomicTarget{fsys: fsys, name: name, err: &fs.PathError{Op: "create", Path: printable(name), Err: err}}
	}
	if c == "/" {
		return &AtomicTarget{fsys: fsys, name: c, err: &fs.PathError{Op: "create", Path: c, Err: fs.ErrInvalid}}
	}
	t := &AtomicTarget{fsys: fsys, name: c, dir: fsys, dirName: c}
	if _, ok := fsys.(UploadCreator); ok {
		return t
	}
	dir, base := path.Split(c)
	if d, ok := fsys.(*Disk); ok {
		if ed, err := d.openUploadDir(path.Clean(dir)); err == nil {
			t.dir, t.dirClose, t.dirName, t.entries = ed, ed.Close, "/"+base, ed
			return t
		}
		// Otherwise os.Root below, which reports why the directory cannot be used.
	}
	if do, ok := fsys.(DirOpener); ok && dir != "/" {
		if sub, err := do.OpenDir(dir); err == nil {
			t.dir, t.dirClose, t.dirName = sub, sub.Close, "/"+base
		}
		// Otherwise the full names below fail with the error to report.
	}
	return t
}

// Stat describes the final name as fsys.Stat does (symbolic links followed).
func (t *AtomicTarget) Stat() (fs.FileInfo, error) {
	if t.entries != nil {
		fi, err := t.entries.lstat(t.dirName[1:])
		switch {
		case err == nil && fi.Mode()&fs.ModeSymlink == 0:
			return fi, nil
		case errors.Is(err, fs.ErrNotExist):
			return nil, &fs.PathError{Op: "stat", Path: t.name, Err: fs.ErrNotExist}
		}
		// A symbolic link is followed, within the root, by the backend.
	}
	return t.fsys.Stat(t.name)
}

// Close gives the directory back without starting the upload.
func (t *AtomicTarget) Close() error {
	if t.dirClose == nil {
		return nil
	}
	err := t.dirClose()
	t.dirClose = nil
	return err
}

// Create starts the upload: the temporary file is created exclusively with mode perm in the
// final name's directory; its name carries random hex so that concurrent uploads of one name
// cannot collide. The target belongs to the upload from then on (also when Create fails).
func (t *AtomicTarget) Create(perm os.FileMode) (*AtomicFile, error) {
	if t.err != nil {
		_ = t.Close()
		return nil, t.err
	}
	c := t.name
	if uc, ok := t.fsys.(UploadCreator); ok {
		up, err := uc.CreateUpload(c, perm)
		if err != nil {
			return nil, err
		}
		return &AtomicFile{File: up, name: c, tmp: up.TempName(), up: up}, nil
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("vfs: random upload name: %w", err)
	}
	dir, base := path.Split(c)
	tmpBase := TempPrefix + hex.EncodeToString(rnd[:]) + "-"
	tmpBase += truncName(base, nameMax-len(tmpBase))
	a := &AtomicFile{name: c, tmp: dir + tmpBase, dir: t.dir, dirClose: t.dirClose, dirName: t.dirName, dirTmp: dir + tmpBase}
	t.dirClose = nil
	if a.dirName != a.name {
		a.dirTmp = "/" + tmpBase
	}
	f, err := a.dir.OpenFile(a.dirTmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		_ = a.releaseDir()
		return nil, a.fullNames(err)
	}
	a.File = f
	return a, nil
}

// DirOpener is a backend that can open one of its directories as a backend of its own. An
// atomic upload opens its directory once and creates, renames or removes its temporary file
// there by base name, instead of resolving the directory's path for every step (os.Root
// opens each directory on the way, for every call).
type DirOpener interface {
	OpenDir(name string) (DirFs, error)
}

// DirFs is a directory opened by a DirOpener.
type DirFs interface {
	afero.Fs
	Close() error
}

// releaseDir closes the upload's directory if it was opened for it.
func (a *AtomicFile) releaseDir() error {
	if a.dirClose == nil {
		return nil
	}
	err := a.dirClose()
	a.dirClose = nil
	return err
}

// fullNames makes an error from the upload's directory name the full paths.
func (a *AtomicFile) fullNames(err error) error {
	if a.dirName == a.name {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch pe.Path {
		case a.dirTmp:
			pe.Path = a.tmp
		case a.dirName:
			pe.Path = a.name
		}
	}
	return err
}

// truncName shortens s to at most n bytes without splitting a UTF-8
// sequence, so a long final name still leaves room for the prefix.
func truncName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// TempName returns the temporary file's name inside the backend.
func (a *AtomicFile) TempName() string { return a.tmp }

// Close closes the temporary file without publishing it, for callers that
// decide later (for example after an upload hook ran).
func (a *AtomicFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closeLocked()
}

func (a *AtomicFile) closeLocked() error {
	if a.closed {
		return &fs.PathError{Op: "close", Path: a.tmp, Err: fs.ErrClosed}
	}
	a.closed = true
	return a.File.Close()
}

// Publish closes the temporary file if it is still open and renames it over
// the final name, replacing an existing file. If either step fails the
// temporary file is removed and the final name is left as it was. Only the
// first Publish or Discard does anything; later calls return an error.
func (a *AtomicFile) Publish() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.finished {
		return &fs.PathError{Op: "publish", Path: a.name, Err: errFinished}
	}
	a.finished = true
	if a.up != nil {
		return a.publishUpload()
	}
	if a.unlinked {
		defer a.releaseDir()
		if !a.closed {
			_ = a.closeLocked()
		}
		return &fs.PathError{Op: "publish", Path: a.name, Err: errUnlinked}
	}
	defer a.releaseDir()
	if !a.closed {
		// A failed close can mean lost data, so it must not be published.
		if err := a.closeLocked(); err != nil {
			_ = a.dir.Remove(a.dirTmp)
			return fmt.Errorf("vfs: publishing %s: %w", a.name, err)
		}
	}
	if err := a.dir.Rename(a.dirTmp, a.dirName); err != nil {
		_ = a.dir.Remove(a.dirTmp)
		return fmt.Errorf("vfs: publishing %s: %w", a.name, a.fullNames(err))
	}
	return nil
}

// errUnlinked is why an upload whose temporary name was removed cannot be published.
var errUnlinked = errors.New("the upload was cancelled")

// Unlink removes the temporary file's name while the file stays open, as unlinking a file
// that is being written does on POSIX: its folder no longer holds it (a client that removed
// the final name can remove the folder), and the data goes with the last close. The upload
// can then only be discarded. An object store's upload has no name in a folder: nothing to
// do until Discard.
func (a *AtomicFile) Unlink() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.finished || a.unlinked || a.up != nil {
		return nil
	}
	if err := a.dir.Remove(a.dirTmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// The name stays: Discard tries again.
		return fmt.Errorf("vfs: unlinking the upload of %s: %w", a.name, a.fullNames(err))
	}
	a.unlinked = true
	return nil
}

// Discard closes the temporary file if it is still open and removes it,
// leaving the final name untouched.
func (a *AtomicFile) Discard() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.finished {
		return &fs.PathError{Op: "discard", Path: a.name, Err: errFinished}
	}
	a.finished = true
	if a.up != nil {
		a.closed = true
		if err := a.up.Discard(); err != nil {
			return fmt.Errorf("vfs: discarding upload of %s: %w", a.name, err)
		}
		return nil
	}
	defer a.releaseDir()
	var cerr error
	if !a.closed {
		cerr = a.closeLocked()
	}
	if a.unlinked {
		if cerr != nil {
			return fmt.Errorf("vfs: discarding upload of %s: %w", a.name, cerr)
		}
		return nil
	}
	if err := a.dir.Remove(a.dirTmp); err != nil {
		return fmt.Errorf("vfs: discarding upload of %s: %w", a.name, a.fullNames(err))
	}
	if cerr != nil {
		return fmt.Errorf("vfs: discarding upload of %s: %w", a.name, cerr)
	}
	return nil
}

// publishUpload publishes the upload of an UploadCreator; a failed close discards it.
func (a *AtomicFile) publishUpload() error {
	if !a.closed {
		if err := a.closeLocked(); err != nil {
			_ = a.up.Discard()
			return fmt.Errorf("vfs: publishing %s: %w", a.name, err)
		}
	}
	if err := a.up.Publish(); err != nil {
		return fmt.Errorf("vfs: publishing %s: %w", a.name, err)
	}
	return nil
}
