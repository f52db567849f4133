package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/ops/admin"
)

// needLoopbackAlias skips when 127.0.0.2 and up cannot be source addresses (not Linux).
func needLoopbackAlias(t *testing.T) {
	t.Helper()
	if _, err := net.Dial("tcp", "127.0.0.2:1"); err != nil && strings.Contains(err.Error(), "assign") {
		t.Skip("127.0.0.2 is not usable as a source address here")
	}
}

// auditHas waits until an audit line of the JSON audit file has every field of want.
func auditHas(t *testing.T, file string, want map[string]any) map[string]any {
	t.Helper()
	var found map[string]any
	coretest.Eventually(t, 10*time.Second, fmt.Sprintf("an audit line with %v", want), func() bool {
		data, _ := os.ReadFile(file)
		for _, line := range bytes.Split(data, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			ok := true
			for k, v := range want {
				if m[k] != v {
					ok = false
					break
				}
			}
			if ok {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// TestBansCommand is issue #23 item 7: `wharf bans` lists, adds and lifts bans of a running
// server through the admin API, and each ban and lift is an audit line with who, why and
// until when.
func TestBansCommand(t *testing.T) {
	needLoopbackAlias(t)
	dir := t.TempDir()
	cfgPath := opsConfig{top: "log: {format: json, flush_interval: 0s}\naudit: {file: ./audit.log}\n"}.write(t, dir)
	srv := startOps(t, cfgPath)
	auditFile := filepath.Join(dir, "audit.log")
	const client = "127.0.0.2"
	if !greets(t, client, srv.addrs["SFTP"]) {
		t.Fatal("refused before any ban")
	}
	code, out, errOut := runCmd(t, "", "bans", "add", client, "--for", "1h", "--reason", "seen scanning", "-c", cfgPath)
	if code != 0 || !strings.Contains(out, client) {
		t.Fatalf("bans add: exit %d\n%s%s", code, out, errOut)
	}
	for _, proto := range []string{"SFTP", "FTP"} {
		if greets(t, client, srv.addrs[proto]) {
			t.Errorf("%s: the banned address still connects", proto)
		}
	}
	code, out, _ = runCmd(t, "", "bans", "-c", cfgPath, "-json")
	var list []admin.BanInfo
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Addr != client ||
		time.Until(list[0].Until) < 59*time.Minute || list[0].Site != "test" {
		t.Fatalf("bans list: exit %d %s", code, out)
	}
	if code, out, _ := runCmd(t, "", "bans", "-c", cfgPath); code != 0 || !strings.Contains(out, "ADDRESS") || !strings.Contains(out, client) {
		t.Errorf("bans table: %d\n%s", code, out)
	}
	ban := auditHas(t, auditFile, map[string]any{"event": "ban", "ip": client})
	if ban["by"] != "admin@127.0.0.1" || ban["reason"] != "seen scanning" || ban["site"] != "test" {
		t.Errorf("ban audit line %v", ban)
	}
	if until, err := time.Parse(time.RFC3339, fmt.Sprint(ban["until"])); err != nil || time.Until(until) < 59*time.Minute {
		t.Errorf("ban audit line until %v: %v", ban["until"], err)
	}
	auditHas(t, auditFile, map[string]any{"event": "connection_refused", "ip": client, "refused_by": "protector"})

	// Lift it (flags after the address), then ban and lift everything.
	code, out, errOut = runCmd(t, "", "bans", "remove", client, "--reason", "false alarm", "-c", cfgPath)
	if code != 0 || !strings.Contains(out, "lifted 1") {
		t.Fatalf("bans remove: exit %d\n%s%s", code, out, errOut)
	}
	if !greets(t, client, srv.addrs["SFTP"]) {
		t.Error("refused after the ban was lifted")
	}
	auditHas(t, auditFile, map[string]any{"event": "unban", "ip": client, "by": "admin@127.0.0.1", "reason": "false alarm"})
	if code, out, _ := runCmd(t, "", "bans", "remove", client, "-c", cfgPath); code != 0 || !strings.Contains(out, "was not banned") {
		t.Errorf("lifting a ban that is not there: %d %s", code, out)
	}
	for _, a := range []string{"127.0.0.3", "127.0.0.4"} {
		if code, _, errOut := runCmd(t, "", "bans", "add", a, "--for", "10m", "-c", cfgPath); code != 0 {
			t.Fatalf("bans add %s: %s", a, errOut)
		}
	}
	if code, out, _ := runCmd(t, "", "bans", "remove", "all", "-c", cfgPath); code != 0 || !strings.Contains(out, "lifted 2") {
		t.Errorf("bans remove all: %d %s", code, out)
	}
	if code, out, _ := runCmd(t, "", "bans", "-c", cfgPath); code != 0 || !strings.Contains(out, "no bans") {
		t.Errorf("after remove all: %d %s", code, out)
	}
	// Bad input: a clear refusal, nothing changed.
	if code, _, errOut := runCmd(t, "", "bans", "add", "10.0.0.0/8", "--for", "1h", "-c", cfgPath); code != 1 || !strings.Contains(errOut, "single addresses") {
		t.Errorf("an IPv4 network: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "bans", "add", "127.0.0.9", "-c", cfgPath); code != 2 || !strings.Contains(errOut, "--for") {
		t.Errorf("no --for: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "bans", "add", "127.0.0.9", "--for", "1h", "--site", "nope", "-c", cfgPath); code != 1 || !strings.Contains(errOut, `no site "nope"`) {
		t.Errorf("unknown site: %d %s", code, errOut)
	}
}

// TestAuditSaysWhatRefused is issue #23 item 8: every refused operation, login and
// connection names what refused it (refused_by), and the protector's own bans are audit
// lines with who and why.
func TestAuditSaysWhatRefused(t *testing.T) {
	needLoopbackAlias(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "if string.find(string.lower(CtxRelPath()), '%.exe$') then Session.BlockOperation() end\n"
	if err := os.WriteFile(filepath.Join(dir, "scripts", "deny-executables.lua"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `log: {format: json, flush_interval: 0s}
state_dir: ./state
audit: {file: ./audit.log}
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
      - { protocol: ftp, address: "127.0.0.1:0" }
    protector: {threshold: 3}
    vfs:
      - { name: home, type: disk, root: "./data/{user}" }
      - { name: ro, type: disk, root: "./data/ro" }
    scripts_dir: ./scripts
    event_handlers:
      - { event: BeforeFileUpload, script: deny-executables.lua }
    users:
      - id: alice
        password: "plain:pw"
        max_sessions: 1
        quota: { bytes: 1000 }
        home: { vfs: home, permissions: [all] }
        folders:
          /ro: { vfs: ro, permissions: [list, download] }
`
	cfgPath := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serveInProcess(t, "-c", cfgPath)
	auditFile := filepath.Join(dir, "audit.log")
	c := sftpClient(t, s.addrs["SFTP"], "alice", "pw")

	put := func(p string, n int) error {
		f, err := c.Create(p)
		if err != nil {
			return err
		}
		_, werr := f.Write(bytes.Repeat([]byte("x"), n))
		if err := f.Close(); werr == nil {
			werr = err
		}
		return werr
	}
	if err := put("/setup.EXE", 10); err == nil {
		t.Error("the script let an executable in")
	}
	auditHas(t, auditFile, map[string]any{"event": "operation", "path": "/setup.EXE", "refused_by": "script:deny-executables.lua"})
	if err := put("/ro/x.txt", 10); err == nil {
		t.Error("an upload into a read-only folder")
	}
	auditHas(t, auditFile, map[string]any{"event": "operation", "path": "/ro/x.txt", "refused_by": "permission"})
	if err := put("/big.bin", 2000); err == nil {
		t.Error("an upload beyond the quota")
	}
	auditHas(t, auditFile, map[string]any{"event": "operation", "path": "/big.bin", "refused_by": "quota"})
	// A second session of a user with max_sessions: 1.
	if c2, err := dialSSH(t, s.addrs["SFTP"], "alice", "pw"); err == nil {
		c2.Close()
		t.Error("a second session was let in")
	}
	auditHas(t, auditFile, map[string]any{"event": "login", "user": "alice", "refused_by": "limit"})

	// An attacker from 127.0.0.3 guesses passwords over FTP until the protector bans it.
	const attacker = "127.0.0.3"
	for range 3 {
		fc, err := ftp.Dial(s.addrs["FTP"], ftp.DialWithTimeout(10*time.Second),
			ftp.DialWithDialFunc(func(network, address string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attacker)}, Timeout: 10 * time.Second}
				return d.Dial(network, address)
			}))
		if err != nil {
			break
		}
		if err := fc.Login("alice", "wrong"); err == nil {
			t.Fatal("a wrong password logged in")
		}
		_ = fc.Quit()
	}
	auditHas(t, auditFile, map[string]any{"event": "login", "ip": attacker, "refused_by": "credentials"})
	ban := auditHas(t, auditFile, map[string]any{"event": "ban", "ip": attacker, "by": "protector"})
	if r := fmt.Sprint(ban["reason"]); !strings.Contains(r, "3 strikes") || !strings.Contains(r, "failed login") {
		t.Errorf("the ban's reason %q", r)
	}
	if greets(t, attacker, s.addrs["SFTP"]) {
		t.Fatal("the banned attacker connects")
	}
	auditHas(t, auditFile, map[string]any{"event": "connection_refused", "ip": attacker, "refused_by": "protector"})
}
