package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
)

func TestJSONFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "logs", "audit.log")
	// Lines are buffered for up to an hour: Reopen and Close must write them, and those from
	// before the reopen must go to the old file.
	l, err := New(slog.Default(), p, "json", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	facts := []core.Fact{
		{Kind: core.FactLogin, Site: "s", User: "alice", Protocol: "SFTP", IP: "192.0.2.1", Method: "password"},
		{Kind: core.FactOperation, Site: "s", User: "alice", Protocol: "SFTP", IP: "192.0.2.1", Op: core.OpUpload,
			Path: "/a.txt", Bytes: 10, Duration: 1500 * time.Millisecond},
		{Kind: core.FactOperation, Site: "s", User: "alice", Protocol: "FTP", IP: "192.0.2.1", Op: core.OpRename,
			Path: "/a.txt", Target: "/b.txt", Err: fmt.Errorf("rename: %w", core.ErrDenied)},
		{Kind: core.FactSessionEnd, Site: "s", User: "alice", Protocol: "SFTP", IP: "192.0.2.1", Duration: time.Minute},
		{Kind: core.FactStrike, Site: "s", IP: "192.0.2.1"},  // not audited
		{Kind: core.FactConnect, Site: "s", IP: "192.0.2.1"}, // not audited
	}
	for i := range facts {
		l.Observe(&facts[i])
	}
	if st, err := os.Stat(p); err != nil || st.Size() != 0 {
		t.Fatalf("audit file before a flush: %v, %v (want empty: lines are buffered)", st, err)
	}
	// logrotate: the file is moved away and the log reopened.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Observe(&core.Fact{Kind: core.FactSessionEnd, Site: "s", User: "bob"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	lines := readJSON(t, p+".1")
	want := []map[string]any{
		{"msg": Message, "event": "login", "site": "s", "user": "alice", "protocol": "SFTP", "ip": "192.0.2.1", "method": "password", "result": "ok"},
		{"event": "operation", "operation": "upload", "path": "/a.txt", "bytes": 10.0, "duration_ms": 1500.0, "result": "ok"},
		{"event": "operation", "operation": "rename", "target": "/b.txt", "result": "permission_denied"},
		{"event": "session_end", "duration_ms": 60000.0, "result": "ok"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
	}
	if _, ok := lines[2]["error"]; !ok {
		t.Error("failed operation has no error field")
	}
	if after := readJSON(t, p); len(after) != 1 || after[0]["user"] != "bob" {
		t.Errorf("after reopen: %v", after)
	}
}

func readJSON(t *testing.T, p string) []map[string]any {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestIntoServerLog(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(slog.New(slog.NewTextHandler(&buf, nil)), "", "text", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(&core.Fact{Kind: core.FactOperation, Site: "s", User: "alice", Protocol: "FTP", Op: core.OpDownload, Path: "/x y", Bytes: 3})
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, want := range []string{"msg=audit", "event=operation", "operation=download", `path="/x y"`, "bytes=3", "result=ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("line lacks %q: %s", want, got)
		}
	}
}

// TestRefusalsAndBans: refused operations, logins and connections say what refused them, and
// bans and lifted bans are lines with who, why and until (issue #23 items 7 and 8).
func TestRefusalsAndBans(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(slog.Default(), p, "json", 0)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	quota := &core.OpError{Op: "write", Path: "/big", Kind: core.ErrQuota}
	script := &core.OpError{Op: "open", Path: "/a.exe", Kind: core.ErrDenied, Err: &core.Refusal{By: "script:deny.lua", Why: "blocked"}}
	facts := []core.Fact{
		{Kind: core.FactOperation, Site: "s", User: "alice", Op: core.OpUpload, Path: "/big", Err: quota},
		{Kind: core.FactOperation, Site: "s", User: "alice", Op: core.OpUpload, Path: "/a.exe", Err: script},
		{Kind: core.FactOperation, Site: "s", User: "alice", Op: core.OpDownload, Path: "/gone", Err: &core.OpError{Op: "open", Path: "/gone", Kind: core.ErrNotFound}},
		{Kind: core.FactLogin, Site: "s", User: "bob", Method: "password", Reason: "invalid credentials", Err: &core.OpError{Op: "auth", Kind: core.ErrAuth}},
		{Kind: core.FactConnect, Site: "s", IP: "192.0.2.9", Protocol: "FTP", Reason: "address is banned", Err: core.ErrRefused, By: core.ByProtector},
		{Kind: core.FactBan, Site: "s", IP: "2001:db8::/64", By: "protector", Reason: "10 strikes", Until: until, Duration: time.Hour},
		{Kind: core.FactUnban, Site: "s", IP: "2001:db8::/64", By: "admin@127.0.0.1", Reason: "false alarm"},
	}
	for i := range facts {
		l.Observe(&facts[i])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readJSON(t, p)
	want := []map[string]any{
		{"event": "operation", "path": "/big", "refused_by": "quota", "result": "quota_exceeded"},
		{"event": "operation", "path": "/a.exe", "refused_by": "script:deny.lua", "result": "permission_denied"},
		{"event": "operation", "path": "/gone", "refused_by": nil, "result": "no_such_file_or_directory"},
		{"event": "login", "user": "bob", "refused_by": "credentials", "reason": "invalid credentials"},
		{"event": "connection_refused", "ip": "192.0.2.9", "refused_by": "protector", "error": "address is banned"},
		{"event": "ban", "ip": "2001:db8::/64", "by": "protector", "reason": "10 strikes", "until": "2030-01-02T03:04:05Z", "duration_ms": 3600000.0},
		{"event": "unban", "ip": "2001:db8::/64", "by": "admin@127.0.0.1", "reason": "false alarm"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
}

// An operation of an event script says so: actor=script, before the operation.
func TestScriptActor(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(slog.New(slog.NewTextHandler(&buf, nil)), "", "text", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(&core.Fact{Kind: core.FactOperation, Site: "s", User: "alice", Op: core.OpRename, Path: "/a", Target: "/b",
		Actor: core.ScriptActor})
	l.Observe(&core.Fact{Kind: core.FactOperation, Site: "s", User: "alice", Op: core.OpRemove, Path: "/c"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "actor=script operation=rename path=/a target=/b") ||
		strings.Contains(lines[1], "actor=") {
		t.Errorf("lines:\n%s", buf.String())
	}
}
