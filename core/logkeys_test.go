package core_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// duplicateKeys returns the keys that occur more than once at the top level of one JSON
// object (encoding/json keeps the last one silently).
func duplicateKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %q", line)
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

// TestLogRecordsHaveUniqueKeys runs refused, failed and successful logins, operations and
// script events with a JSON log, and checks that no record carries a key twice (a refused
// login once logged `"user":"","user":"alice"`).
func TestLogRecordsHaveUniqueKeys(t *testing.T) {
	buf := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := &coretest.Dispatcher{}
	d.On(core.OnAuthSuccess, func(*core.Event) {})
	yes := true
	c := &config.Site{Name: "keys", VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{user("alice", func(u *config.User) { u.MaxSessions = 1 })},
		Protector: config.Protector{Enabled: &yes, Threshold: 100, Window: config.Duration{Duration: 60e9},
			BanFor: config.Duration{Duration: 60e9}}}
	site, err := core.NewSite(c, core.Options{Logger: log, Events: d})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := connect(t, site, "203.0.113.9", core.ProtoSFTP)
	if err := a.AuthPassword(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, a, "/f.txt", "x"); err != nil {
		t.Fatal(err)
	}
	b := connect(t, site, "203.0.113.9", core.ProtoFTP)
	_ = b.AuthPassword(ctx, "alice", "nope")                                       // wrong password
	if err := b.AuthPassword(ctx, "alice", "pw"); !errors.Is(err, core.ErrLimit) { // session limit
		t.Fatalf("second session of a user limited to one: %v", err)
	}
	b.Close()
	a.Close()

	lines := 0
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		lines++
		dups, err := duplicateKeys(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		if len(dups) > 0 {
			t.Errorf("keys %v twice in %s", dups, sc.Text())
		}
	}
	if lines < 5 {
		t.Fatalf("only %d log lines:\n%s", lines, buf.String())
	}
	if !strings.Contains(buf.String(), `"msg":"login refused"`) {
		t.Fatalf("no refused login logged:\n%s", buf.String())
	}
}
