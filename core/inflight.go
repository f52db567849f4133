package core

import (
	"errors"
	"strings"
	"sync"

	"github.com/spf13/afero"
)

// An atomic upload is invisible until it is published, so the name it will take can change
// under it: the client (or another session, of any user who shares the mount) removes or
// renames that name, or another upload of it finishes first. inflight keeps the open atomic
// uploads of a site by backend and name so that those operations can find them, and gives
// the uploads of one name one order: the one opened last wins.
//
// The rules (issue #19, item 24), as unlinking a file that is being written works on POSIX:
//   - removing or renaming a name, or renaming a file onto it, cancels the uploads in flight
//     to that name (and to names under a renamed directory): they never publish;
//   - publishing an upload cancels the uploads of the same name opened before it, so a stale
//     upload closed late cannot replace a newer file;
//   - a path SetStat applies to the visible file when there is one, else to the newest
//     upload in flight to that name.
type inflight struct {
	mu     sync.Mutex
	seq    uint64
	byName map[uploadKey][]*WriteHandle // in opening order
}

// uploadKey names a file in a backend. Backends are shared by every session that mounts the
// same definition and root, so two sessions' uploads of one file have the same key.
type uploadKey struct {
	fs   afero.Fs
	path string
}

// errSuperseded is why a cancelled upload was not published.
var errSuperseded = errors.New("upload cancelled: its file was removed, renamed or replaced while it was open")

// add registers an upload and gives it credit (see WriteHandle.credit) unless another upload
// of the same name holds a credit already.
func (r *inflight) add(h *WriteHandle, credit int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName == nil {
		r.byName = map[uploadKey][]*WriteHandle{}
	}
	r.seq++
	h.seq = r.seq
	for _, o := range r.byName[h.key] {
		if o.credit > 0 {
			credit = 0
		}
	}
	h.credit = credit
	r.byName[h.key] = append(r.byName[h.key], h)
}

// forget unregisters an upload that was closed.
func (r *inflight) forget(h *WriteHandle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(h)
}

func (r *inflight) forgetLocked(h *WriteHandle) {
	list := r.byName[h.key]
	for i, o := range list {
		if o == h {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.byName, h.key)
	} else {
		r.byName[h.key] = list
	}
}

// newest returns the most recently opened upload of a name that can still publish, or nil.
func (r *inflight) newest(k uploadKey) *WriteHandle {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byName[k]
	for i := len(list) - 1; i >= 0; i-- {
		if !list[i].superseded() {
			return list[i]
		}
	}
	return nil
}

// cancel cancels the uploads of a name and, with tree, of every name below it (a directory
// was renamed). It returns how many it cancelled.
func (r *inflight) cancel(k uploadKey, tree bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for key, list := range r.byName {
		if key.fs != k.fs || (key.path != k.path && !(tree && strings.HasPrefix(key.path, dirPrefix(k.path)))) {
			continue
		}
		for _, h := range list {
			if h.supersede() {
				n++
			}
		}
	}
	return n
}

// publish runs do, the publication of h, unless h was cancelled, and then cancels the
// uploads of the same name opened before h. The registry stays locked meanwhile, so that of
// two uploads of one name publishing at once the older one cannot land last.
func (r *inflight) publish(h *WriteHandle, do func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.superseded() {
		return errSuperseded
	}
	if err := do(); err != nil {
		return err
	}
	for _, o := range r.byName[h.key] {
		if o.seq < h.seq {
			o.supersede()
		}
	}
	r.forgetLocked(h)
	return nil
}

func dirPrefix(p string) string {
	if p == "/" {
		return "/"
	}
	return p + "/"
}
