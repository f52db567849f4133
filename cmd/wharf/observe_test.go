package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/wharf-project/wharf/core/coretest"
)

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// keyTypes adds the type of every key of a JSON log line (nested keys as a.b) to types.
func keyTypes(prefix string, m map[string]any, types map[string]map[string]string) {
	for k, v := range m {
		key := prefix + k
		if types[key] == nil {
			types[key] = map[string]string{}
		}
		typ := jsonType(v)
		if _, ok := types[key][typ]; !ok {
			b, _ := json.Marshal(m)
			types[key][typ] = string(b)
		}
		if sub, ok := v.(map[string]any); ok {
			keyTypes(key+".", sub, types)
		}
	}
}

// TestJSONLogKeysHaveOneType is issue #23 item 9: in the JSON log each key has one type
// (`address` was an object on the library's lines and a string on wharf's). The server runs
// at debug level while SFTP, FTP, FTPES and implicit FTPS clients log in, fail, transfer
// and are kicked, a reload and admin calls run, and an address is banned.
func TestJSONLogKeysHaveOneType(t *testing.T) {
	dir := t.TempDir()
	cfgPath := opsConfig{
		top: "log: {format: json, level: debug, flush_interval: 0s}\n",
		site: `    protector: {threshold: 2, safe: []}
`,
	}.write(t, dir)
	data, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(data), `      - { protocol: ftp, address: "127.0.0.1:0" }`,
		`      - { protocol: ftp, address: "127.0.0.1:0" }
      - { protocol: ftps, address: "127.0.0.1:0" }`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startOps(t, cfgPath)
	ftpsAddr := childListenLine.FindAllStringSubmatch(srv.stdout.String(), -1)
	var implicit string
	for _, m := range ftpsAddr {
		if m[1] == "FTPS" {
			implicit = m[2]
		}
	}
	c := sftpClient(t, srv.addrs["SFTP"], "alice", alicePassword)
	if f, err := c.Create("/a.txt"); err == nil {
		fmt.Fprint(f, "hello")
		f.Close()
	}
	if _, err := c.Open("/missing"); err == nil {
		t.Fatal("opened a missing file")
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: true}
	if fc, err := ftpLogin(t, srv.addrs["FTP"], "alice", alicePassword, ftp.DialWithExplicitTLS(tlsCfg)); err == nil {
		_, _ = fc.List("/")
		_ = fc.Quit()
	} else {
		t.Fatal(err)
	}
	if fc, err := ftpLogin(t, implicit, "alice", alicePassword, ftp.DialWithTLS(tlsCfg)); err == nil {
		if r, err := fc.Retr("/a.txt"); err == nil {
			r.Close()
		}
		_ = fc.Quit()
	} else {
		t.Fatal(err)
	}
	if _, err := ftpLogin(t, srv.addrs["FTP"], "alice", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if code, _, errOut := runCmd(t, "", "reload", "-c", cfgPath); code != 0 {
		t.Fatalf("reload: %s", errOut)
	}
	if code, _, errOut := runCmd(t, "", "bans", "add", "2001:db8::1", "--for", "1m", "-c", cfgPath); code != 0 {
		t.Fatalf("bans add: %s", errOut)
	}
	runCmd(t, "", "bans", "remove", "all", "-c", cfgPath)
	c.Close()
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	types := map[string]map[string]string{}
	lines := jsonLines(t, srv.stderr.String())
	if len(lines) < 20 {
		t.Fatalf("only %d JSON lines:\n%s", len(lines), srv.stderr.String())
	}
	for _, l := range lines {
		keyTypes("", l, types)
	}
	var keys []string
	for k := range types {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(types[k]) > 1 {
			var ex []string
			for typ, line := range types[k] {
				ex = append(ex, typ+": "+line)
			}
			slices.Sort(ex)
			t.Errorf("key %q has %d types:\n  %s", k, len(types[k]), strings.Join(ex, "\n  "))
		}
	}
	t.Logf("%d lines, %d keys", len(lines), len(keys))
}

// TestGaugesReportZero is issue #23 item 9: the live gauges are 0 when nothing is live,
// instead of disappearing with the last session.
func TestGaugesReportZero(t *testing.T) {
	dir := t.TempDir()
	srv := startOps(t, opsConfig{}.write(t, dir))
	has := func(name string, labels map[string]string, want float64) bool {
		for _, s := range scrape(t, srv.metrics) {
			if s.name != name {
				continue
			}
			match := true
			for k, v := range labels {
				match = match && s.labels[k] == v
			}
			if match {
				return s.value == want
			}
		}
		return false
	}
	for _, p := range []string{"SFTP", "SCP", "FTP", "FTPES"} {
		if !has("wharf_sessions_active", map[string]string{"site": "test", "protocol": p}, 0) {
			t.Errorf("no wharf_sessions_active{protocol=%q} 0 before any session", p)
		}
	}
	if !has("wharf_transfers_active", map[string]string{"site": "test"}, 0) || !has("wharf_protector_bans_active", map[string]string{"site": "test"}, 0) {
		t.Error("transfers or bans gauge missing at 0")
	}
	c, err := dialSSH(t, srv.addrs["SFTP"], "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "one SFTP session", func() bool {
		return has("wharf_sessions_active", map[string]string{"protocol": "SFTP"}, 1)
	})
	c.Close()
	coretest.Eventually(t, 10*time.Second, "the SFTP gauge back to 0, not gone", func() bool {
		return has("wharf_sessions_active", map[string]string{"protocol": "SFTP"}, 0) &&
			has("wharf_sessions_authenticated", map[string]string{"site": "test"}, 0)
	})
	if code, _, _ := runCmd(t, "", "bans", "add", "192.0.2.1", "--for", "1h", "-c", filepath.Join(dir, "wharf.yaml")); code != 0 {
		t.Fatal("bans add")
	}
	if !has("wharf_protector_bans_active", map[string]string{"site": "test"}, 1) {
		t.Error("wharf_protector_bans_active is not 1 after a ban")
	}
}
