package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// writeSiteConfig writes a config with one site "test" (SFTP and FTP on free ports, JSON
// log, user alice with password pw) plus extra YAML under the site, and returns its path.
func writeSiteConfig(t *testing.T, dir, site string) string {
	t.Helper()
	cfg := `log: {format: json, flush_interval: 0s}
state_dir: ./state
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
      - { protocol: ftp, address: "127.0.0.1:0" }
    vfs:
      - { name: home, type: disk, root: "./data/{user}" }
    users:
      - id: alice
        password: "plain:pw"
        home: { vfs: home, permissions: [all] }
` + site
	p := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jsonLines returns the JSON log lines of out, failing on a line that carries a key twice.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		_, _ = dec.Token()
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			k, _ := tok.(string)
			if seen[k] {
				t.Errorf("key %q twice in log line %s", k, line)
			}
			seen[k] = true
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestServeStartsOnDamagedBansFile is issue #19 item 7 through `wharf serve`: a truncated
// bans file once stopped the server; now it is moved aside and the server serves.
func TestServeStartsOnDamagedBansFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeSiteConfig(t, dir, "")
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	damaged := fmt.Sprintf(`{"198.51.100.7": {"until": %q, "offences": 1, "last_offence": %q}, "198.51.100.8": {"until": "20`,
		until, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(state, "bans-test.json"), []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serveInProcess(t, "-c", cfgPath)
	c := sftpClient(t, s.addrs["SFTP"], "alice", "pw")
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(filepath.Join(state, "bans-test.json.damaged-*"))
	if len(aside) != 1 {
		t.Fatalf("damaged bans file not moved aside: %v", aside)
	}
	snapshot, err := os.ReadFile(filepath.Join(state, "bans-test.json"))
	if err != nil || !strings.Contains(string(snapshot), "198.51.100.7") || strings.Contains(string(snapshot), "198.51.100.8") {
		t.Fatalf("rewritten bans file %q (%v), want the ban that could be read", snapshot, err)
	}
	found := false
	for _, l := range jsonLines(t, s.stderr.String()) {
		if strings.Contains(fmt.Sprint(l["msg"]), "protector state file damaged") && l["bans_recovered"] == float64(1) {
			found = true
		}
	}
	if !found {
		t.Fatalf("the damaged file is not logged:\n%s", s.stderr.String())
	}
}

// dialFrom connects to addr from the loopback address src (Linux routes all of 127/8 to
// the loopback interface) and closes at once: a TCP health check.
func dialFrom(t *testing.T, src, addr string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	_ = c.Close()
}

// greets reports whether a connection from src gets the server's greeting (SSH
// identification or FTP 220) rather than a refusal.
func greets(t *testing.T, src, addr string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "SSH-2.0-") || strings.HasPrefix(line, "220")
}

// TestHealthCheckSourcesAreNoStrike is issue #19 item 19: a load balancer's TCP health
// check (connect, close) from protector.health_check_sources is no strike; the same from
// another address is (a port scanner) and gets it banned.
func TestHealthCheckSourcesAreNoStrike(t *testing.T) {
	if _, err := net.Dial("tcp", "127.0.0.2:1"); err != nil && strings.Contains(err.Error(), "assign") {
		t.Skip("127.0.0.2 is not usable as a source address here")
	}
	const balancer, scanner = "127.0.0.2", "127.0.0.3"
	dir := t.TempDir()
	cfgPath := writeSiteConfig(t, dir, `    protector:
      threshold: 5
      safe: []
      health_check_sources: [`+balancer+`/32]
`)
	s := serveInProcess(t, "-c", cfgPath)
	closedFrom := func(ip string) int {
		n := 0
		for _, l := range jsonLines(t, s.stderr.String()) {
			if (l["msg"] == "session closed" || l["msg"] == "connection refused") && l["ip"] == ip {
				n++
			}
		}
		return n
	}
	const checks = 20
	for _, proto := range []string{"SFTP", "FTP"} {
		for range checks {
			dialFrom(t, balancer, s.addrs[proto])
		}
	}
	coretest.Eventually(t, 10*time.Second, "the health checks to be closed or refused", func() bool {
		return closedFrom(balancer) == 2*checks
	})
	for _, l := range jsonLines(t, s.stderr.String()) {
		if l["msg"] == "protector strike" && l["ip"] == balancer {
			t.Fatalf("a health check was struck: %v", l)
		}
	}
	for _, proto := range []string{"SFTP", "FTP"} {
		if !greets(t, balancer, s.addrs[proto]) {
			t.Fatalf("%s: the health-check source was refused after %d checks", proto, checks)
		}
	}
	// The same from elsewhere is a scanner: banned after the threshold.
	for range 5 {
		dialFrom(t, scanner, s.addrs["SFTP"])
	}
	coretest.Eventually(t, 10*time.Second, "the scanner to be banned", func() bool {
		return !greets(t, scanner, s.addrs["FTP"])
	})
	if !greets(t, balancer, s.addrs["FTP"]) {
		t.Fatal("the health-check source was refused")
	}
}
