package core

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/core/config"
)

// The bans survive restarts in two files in the state folder:
//
//   - bans-<site>.json, the snapshot: a JSON object mapping each banned address (or IPv6
//     prefix) to its record, oldest ban first;
//   - bans-<site>.journal, one JSON line per ban since the snapshot was written.
//
// A ban appends one line to the journal (its write reaches the kernel at once, an fsync
// follows within journalSyncDelay), so banning costs the same with 10 or 100,000 bans in the
// table. When the journal holds as many lines as the last snapshot had bans (and at least
// journalMinLines), the table is written as a new snapshot, under a unique temporary name in
// the same folder, fsync'd, renamed over the old one, and the journal starts over: each ban
// pays for a bounded share of snapshot writing. At start the snapshot is read, then the
// journal, and a file that cannot be read whole (a crash in the middle of a line, a truncated
// copy, garbage) is moved aside under a unique name and logged; the server starts with
// every ban that could be read.

const (
	// journalMinLines is the smallest journal that is compacted into a snapshot.
	journalMinLines = 1024
	// journalSyncDelay is how long a journal line may wait for its fsync: bans come in bursts,
	// and one fsync for a burst costs what one ban does. Only a machine crash in that window
	// loses the lines; a crash of the process does not.
	journalSyncDelay = time.Second
)

// storedBan is one ban as persisted: the banned address or prefix and its record.
type storedBan struct {
	key netip.Prefix
	rec banRecord
	// removed marks a journal line that lifts the key's ban (rec.LastOffen is when): like a
	// ban's line, the latest line of a key wins.
	removed bool
}

// journalLine is one line of the journal.
type journalLine struct {
	Addr string `json:"addr"`
	banRecord
	Removed bool `json:"removed,omitempty"`
}

// banStore writes the bans of one site. Its mutex orders the journal: whoever changes the
// ban table holds it across the change and the append, so lines are in the table's order.
type banStore struct {
	mu       sync.Mutex
	file     string // the snapshot
	journal  string
	log      *slog.Logger
	f        *os.File // the journal, open for appending; nil until needed
	lines    int      // lines in the journal
	snapSize int      // bans in the last snapshot
	dirty    bool     // lines not fsync'd yet
	failing  bool     // the last write failed (logged once until one succeeds)
}

func newBanStore(file string, log *slog.Logger) *banStore {
	return &banStore{file: file, journal: strings.TrimSuffix(file, ".json") + ".journal", log: log}
}

// load reads the snapshot and the journal. A damaged file is moved aside and logged, and
// what could be read of it is returned; rewrite reports that the caller should write a new
// snapshot (a journal or damage was found). Only a file that exists but cannot be read at all
// (permissions, an I/O error) is an error.
func (s *banStore) load() (bans []storedBan, rewrite bool, err error) {
	snap, err := readOptional(s.file)
	if err != nil {
		return nil, false, fmt.Errorf("protector state: %w", err)
	}
	if snap != nil {
		b, perr := parseSnapshot(snap)
		bans = b
		s.snapSize = len(b)
		if perr != nil {
			s.moveAside(s.file, perr, len(b))
			rewrite = true
		}
	}
	jr, err := readOptional(s.journal)
	if err != nil {
		return nil, false, fmt.Errorf("protector state: %w", err)
	}
	if jr != nil {
		b, perr := parseJournal(jr)
		bans = append(bans, b...)
		if perr != nil {
			s.moveAside(s.journal, perr, len(b))
		}
		rewrite = true
	}
	return bans, rewrite, nil
}

// readOptional reads a file; nil without error when it does not exist.
func readOptional(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{} // exists but empty: damaged, not absent
	}
	return data, nil
}

// moveAside renames a damaged state file to a unique name next to it, so that the next start
// is clean and the file is kept for a look.
func (s *banStore) moveAside(name string, why error, recovered int) {
	attrs := []any{"file", name, "err", why.Error(), "bans_recovered", recovered}
	// CreateTemp reserves a unique name; the rename then replaces the empty placeholder.
	ph, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".damaged-"+time.Now().UTC().Format("20060102T150405Z")+"-*")
	if err == nil {
		_ = ph.Close()
		if err = os.Rename(name, ph.Name()); err == nil {
			attrs = append(attrs, "moved_to", ph.Name())
		} else {
			_ = os.Remove(ph.Name())
		}
	}
	if err != nil {
		attrs = append(attrs, "move_err", err.Error())
	}
	s.log.Error("protector state file damaged; starting with the bans that could be read", attrs...)
}

// parseSnapshot reads a snapshot: a JSON object of address → record. It returns every entry
// before the first error, and the entries after a bad address.
func parseSnapshot(data []byte) ([]storedBan, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []storedBan
	var bad error
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out, fmt.Errorf("after %d bans: %w", len(out), err)
		}
		k, _ := tok.(string)
		var rec banRecord
		if err := dec.Decode(&rec); err != nil {
			return out, fmt.Errorf("ban of %q: %w", truncateKey(k), err)
		}
		key, err := parseBanKey(k)
		if err != nil {
			bad = errors.Join(bad, err)
			continue
		}
		out = append(out, storedBan{key: key, rec: rec})
	}
	if _, err := dec.Token(); err != nil {
		return out, fmt.Errorf("after %d bans: %w", len(out), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return out, errors.New("data after the JSON object")
	}
	return out, bad
}

// parseJournal reads the journal's lines; a bad line (a partial last line after a crash) is
// skipped and reported.
func parseJournal(data []byte) ([]storedBan, error) {
	var out []storedBan
	var bad error
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l journalLine
		if err := json.Unmarshal(line, &l); err != nil {
			bad = errors.Join(bad, fmt.Errorf("line %d: %w", n+1, err))
			continue
		}
		key, err := parseBanKey(l.Addr)
		if err != nil {
			bad = errors.Join(bad, fmt.Errorf("line %d: %w", n+1, err))
			continue
		}
		out = append(out, storedBan{key: key, rec: l.banRecord, removed: l.Removed})
	}
	return out, bad
}

// parseBanKey parses a stored address ("203.0.113.5", "2001:db8::1") or IPv6 prefix
// ("2001:db8::/64").
func parseBanKey(k string) (netip.Prefix, error) {
	p, err := config.ParsePrefix(k)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q", truncateKey(k))
	}
	if p.Addr().Is4() && p.Bits() != 32 {
		return netip.Prefix{}, fmt.Errorf("bad address %q: IPv4 bans are single addresses", truncateKey(k))
	}
	return p, nil
}

// formatBanKey is parseBanKey's inverse.
func formatBanKey(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func truncateKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "…"
	}
	return k
}

// appendLocked appends a ban (or a lifted ban) to the journal and returns how many lines the journal holds
// and the size of the last snapshot (compact when the first reaches the second). s.mu is held.
func (s *banStore) appendLocked(b storedBan) (lines, snapSize int) {
	line, err := json.Marshal(journalLine{Addr: formatBanKey(b.key), banRecord: b.rec, Removed: b.removed})
	if err != nil { // cannot happen: plain strings, numbers and times
		s.writeFailed(err)
		return s.lines, s.snapSize
	}
	if s.f == nil {
		if err := os.MkdirAll(filepath.Dir(s.journal), 0o700); err != nil {
			s.writeFailed(err)
			return s.lines, s.snapSize
		}
		f, err := os.OpenFile(s.journal, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			s.writeFailed(err)
			return s.lines, s.snapSize
		}
		s.f = f
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		s.writeFailed(err)
		_ = s.f.Close()
		s.f = nil
		return s.lines, s.snapSize
	}
	s.lines++
	s.wrote()
	if !s.dirty {
		s.dirty = true
		time.AfterFunc(journalSyncDelay, s.sync)
	}
	return s.lines, s.snapSize
}

// sync fsyncs the journal's pending lines.
func (s *banStore) sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncLocked()
}

func (s *banStore) syncLocked() {
	if !s.dirty || s.f == nil {
		return
	}
	s.dirty = false
	if err := s.f.Sync(); err != nil {
		s.writeFailed(err)
	}
}

// compactLocked writes bans as the new snapshot and starts a new journal. s.mu is held. On
// failure the journal is kept, so nothing is lost.
func (s *banStore) compactLocked(bans []storedBan) {
	if err := s.writeSnapshot(bans); err != nil {
		s.writeFailed(err)
		return
	}
	s.wrote()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	// If this removal is lost in a crash, the journal is read again on top of the snapshot,
	// which changes nothing: a ban's latest record wins.
	if err := os.Remove(s.journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.writeFailed(err)
		return
	}
	s.lines, s.snapSize, s.dirty = 0, len(bans), false
}

// writeSnapshot writes bans to a unique temporary file in the state folder, fsyncs it,
// renames it over the snapshot and fsyncs the folder.
func (s *banStore) writeSnapshot(bans []storedBan) (err error) {
	dir := filepath.Dir(s.file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(s.file)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriter(tmp)
	_, _ = w.WriteString("{\n")
	for i, b := range bans {
		k, _ := json.Marshal(formatBanKey(b.key))
		rec, err := json.Marshal(b.rec)
		if err != nil {
			return err
		}
		_, _ = w.WriteString("  ")
		_, _ = w.Write(k)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(rec)
		if i < len(bans)-1 {
			_ = w.WriteByte(',')
		}
		_ = w.WriteByte('\n')
	}
	_, _ = w.WriteString("}\n")
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.file); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// close fsyncs and closes the journal (at shutdown). A later ban opens it again.
func (s *banStore) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncLocked()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

func (s *banStore) writeFailed(err error) {
	if !s.failing {
		s.log.Error("cannot write the protector's bans; they are kept in memory", "file", s.file, "err", err.Error())
	}
	s.failing = true
}

func (s *banStore) wrote() {
	if s.failing {
		s.log.Info("protector bans written again", "file", s.file)
	}
	s.failing = false
}
