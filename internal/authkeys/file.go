package authkeys

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// MaxFileSize bounds a keys file. A few thousand keys fit in well under it; the bound keeps a
// file replaced by something else (a log, a disk image) from being read into memory whole.
const MaxFileSize = 4 << 20

// ReadFile reads and parses an authorized_keys file. A file that cannot be read is one
// error; otherwise there is one *LineError per bad line.
func ReadFile(name string) ([]Key, []error) {
	data, err := readLimited(name)
	if err != nil {
		return nil, []error{err}
	}
	return Parse(data)
}

// ReadCAFile reads and parses a TrustedUserCAKeys file, like ReadFile.
func ReadCAFile(name string) ([]Key, []error) {
	data, err := readLimited(name)
	if err != nil {
		return nil, []error{err}
	}
	pubs, errs := ParseCAKeys(data)
	keys := make([]Key, len(pubs))
	for i, p := range pubs {
		keys[i] = Key{Key: p}
	}
	return keys, errs
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileSize)
	}
	return data, nil
}

// File is an authorized_keys file read again whenever it changes, as sshd reads it at each
// login: an administrator who adds or removes a key need not reload the server.
type File struct {
	name string

	mu    sync.Mutex
	read  bool // read at least once
	stamp stamp
	keys  []Key
	err   error
}

// stamp identifies one version of a file.
type stamp struct {
	fi   os.FileInfo // nil: the file could not be found
	size int64
	mod  time.Time
}

func (s stamp) same(fi os.FileInfo) bool {
	if s.fi == nil || fi == nil {
		return s.fi == nil && fi == nil
	}
	return os.SameFile(s.fi, fi) && s.size == fi.Size() && s.mod.Equal(fi.ModTime())
}

// NewFile reads name now and returns it with its keys. An error (unreadable file, bad lines)
// is returned too, so a caller loading a configuration can refuse it; the File then holds no
// keys until the file is fixed.
func NewFile(name string) (*File, error) {
	f := &File{name: name}
	_, _, err := f.Keys()
	return f, err
}

// Name returns the file's path.
func (f *File) Name() string { return f.name }

// Keys returns the file's keys, reading it again if it changed since the last call. A file
// that is missing, unreadable or has a bad line yields no keys at all and the error: a key
// the administrator meant to remove must not stay usable because a later line has a typo.
// fresh reports whether this call read the file, so a caller can log a problem once.
func (f *File) Keys() (keys []Key, fresh bool, err error) {
	fi, statErr := os.Stat(f.name)
	if statErr != nil {
		fi = nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.read && f.stamp.same(fi) {
		return f.keys, false, f.err
	}
	f.read = true
	f.stamp = stamp{fi: fi}
	if fi != nil {
		f.stamp.size, f.stamp.mod = fi.Size(), fi.ModTime()
	}
	keys, errs := ReadFile(f.name)
	f.keys, f.err = keys, Join(f.name, errs)
	if f.err != nil {
		f.keys = nil
	}
	return f.keys, true, f.err
}

// Join makes one error of a file's problems: a read error as it is, line problems after the
// file's name ("/etc/keys: line 3: …; line 7: …"). It returns nil for none.
func Join(name string, errs []error) error {
	var lines []string
	for _, e := range errs {
		var le *LineError
		if !errors.As(e, &le) {
			return e
		}
		lines = append(lines, le.Error())
	}
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", name, strings.Join(lines, "; "))
}
