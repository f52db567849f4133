package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core/config"
)

// clusterConfig is a node's config with a cluster: section; extra is appended under it.
func clusterConfig(dsn, extra string) string {
	return `state_dir: ./state
sites:
  - name: main
    listeners:
      - { protocol: sftp, address: "127.0.0.1:2022" }
    scripts_dir: ./scripts
    vfs:
      - { name: home, type: disk, root: "./data/{user}" }
    users:
      - { id: alice, password: "plain:pw", home: { vfs: home, permissions: [all] } }
cluster:
  store: postgres
  dsn: ` + dsn + `
` + extra
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadHash(t *testing.T, p string) string {
	t.Helper()
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := configHash(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestConfigHash: nodes that read the same file and scripts get the same hash whatever
// their node_id and whatever their database password (a secret's value is not part of
// it); a different user, setting or script gives another.
func TestConfigHash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "wharf.yaml")
	base := clusterConfig("{env: WHARF_TEST_DSN}", "")
	writeFile(t, filepath.Join(dir, "scripts", "log.lua"), "-- v1\n")
	t.Setenv("WHARF_TEST_DSN", "postgres://wharf:one@db1/wharf")

	writeFile(t, p, base+"  node_id: gw1\n")
	h1 := loadHash(t, p)
	if len(h1) != 64 {
		t.Fatalf("hash %q", h1)
	}
	writeFile(t, p, base+"  node_id: gw2\n")
	t.Setenv("WHARF_TEST_DSN", "postgres://wharf:two@db2/wharf")
	if h := loadHash(t, p); h != h1 {
		t.Errorf("node_id and the DSN's value change the hash: %s, %s", h, h1)
	}
	if h := loadHash(t, p); h != h1 {
		t.Errorf("the same file gives two hashes")
	}
	writeFile(t, p, base+"  node_id: gw1\n  on_store_down: refuse\n")
	if h := loadHash(t, p); h == h1 {
		t.Error("on_store_down does not change the hash")
	}
	writeFile(t, p, strings.Replace(base, "plain:pw", "plain:other", 1))
	if h := loadHash(t, p); h == h1 {
		t.Error("a user's password does not change the hash")
	}
	writeFile(t, p, base)
	writeFile(t, filepath.Join(dir, "scripts", "log.lua"), "-- v2\n")
	if h := loadHash(t, p); h == h1 {
		t.Error("a script's content does not change the hash")
	}
	writeFile(t, filepath.Join(dir, "scripts", "log.lua"), "-- v1\n")
	if h := loadHash(t, p); h != h1 {
		t.Error("the hash does not come back with the script")
	}
	writeFile(t, filepath.Join(dir, "scripts", "sub", "new.lua"), "-- new\n")
	if h := loadHash(t, p); h == h1 {
		t.Error("a new script does not change the hash")
	}
}

// TestDefaultNodeID: without cluster.node_id a node is named by its host and the port of
// the first site's first listener.
func TestDefaultNodeID(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	cfg := &config.Config{Sites: []config.Site{{Listeners: []config.Listener{{Protocol: "sftp", Address: "0.0.0.0:2022"}, {Protocol: "ftp", Address: ":2121"}}}}}
	id, err := defaultNodeID(cfg)
	if err != nil || id != host+":2022" {
		t.Fatalf("node id %q, %v", id, err)
	}
}

// TestConfigPrintHidesDSN: `wharf config print` shows the loaded config with the database
// connection string as its reference, never its value (it holds the password), and an
// inline one as (hidden).
func TestConfigPrintHidesDSN(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "wharf.yaml")
	base := clusterConfig(`"postgres://wharf:Inline-Pw-123@db.example:5432/wharf"`, "  node_id: gw1\n")
	writeFile(t, p, base)
	code, out, errOut := runCmd(t, "", "config", "print", "-c", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, "Inline-Pw-123") || strings.Contains(out, "db.example") {
		t.Fatalf("config print shows the DSN:\n%s", out)
	}
	if !strings.Contains(out, "dsn: (hidden)") || !strings.Contains(out, "node_id: gw1") || !strings.Contains(out, "heartbeat: 5s") {
		t.Errorf("config print:\n%s", out)
	}

	t.Setenv("WHARF_TEST_DSN", "postgres://wharf:Env-Pw-456@db.example/wharf")
	writeFile(t, p, strings.Replace(base, `"postgres://wharf:Inline-Pw-123@db.example:5432/wharf"`, "{env: WHARF_TEST_DSN}", 1))
	code, out, errOut = runCmd(t, "", "config", "print", "-c", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "Env-Pw-456") || !strings.Contains(out, "env: WHARF_TEST_DSN") {
		t.Fatalf("config print with {env:}:\n%s", out)
	}
}

// TestClusterCommandsNeedAStore: `wharf cluster status` exits 1 with a clear message when
// the store cannot be reached, and both commands refuse a config without cluster:.
func TestClusterCommandsNeedAStore(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "wharf.yaml")
	// Port 1 on loopback: nothing listens there, the connection is refused at once.
	writeFile(t, p, clusterConfig(`"host=127.0.0.1 port=1 user=wharf dbname=wharf connect_timeout=2"`, ""))
	code, out, errOut := runCmd(t, "", "cluster", "status", "-c", p)
	if code != 1 || !strings.Contains(errOut, "the cluster store cannot be read") {
		t.Fatalf("status of an unreachable store: exit %d\n%s%s", code, out, errOut)
	}
	single := writeConfig(t)
	for _, sub := range []string{"status", "migrate"} {
		code, _, errOut := runCmd(t, "", "cluster", sub, "-config", single)
		if code != 1 || !strings.Contains(errOut, "has no cluster: section") {
			t.Errorf("cluster %s without cluster: exit %d %s", sub, code, errOut)
		}
	}
	if code, _, _ := runCmd(t, "", "cluster", "frobnicate", "-c", p); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}
