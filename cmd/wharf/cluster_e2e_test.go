package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/haproxytest"
	"github.com/wharf-project/wharf/internal/pgtest"
)

// The cluster's end-to-end tests: three `wharf serve` processes (this test binary run as
// wharf) on one PostgreSQL (internal/pgtest) and one shared folder, behind HAProxy sending
// PROXY v2 (internal/haproxytest), driven by real clients through HAProxy.

func TestMain(m *testing.M) { pgtest.Main(m) }

// e2eNode is one wharf node, a child process.
type e2eNode struct {
	name, cfg    string
	sftp, ftp    string // bound addresses (they take the PROXY header: reach them through HAProxy)
	admin        string
	cmd          *exec.Cmd
	exited       chan struct{}
	stdout, logs *syncBuffer
}

// e2eCluster is three nodes, their store and HAProxy in front.
type e2eCluster struct {
	dir    string
	dsn    string
	nodes  []*e2eNode
	proxy  *haproxytest.Proxy // SFTP, round robin (every node in turn)
	shared string             // the users' files, shared by the nodes
}

// nodeConfig is a node's wharf.yaml; site is appended under the site (limits, users…).
func nodeConfig(name, dsn, shared string, passive int, site, cluster string) string {
	return fmt.Sprintf(`state_dir: ./state-%[1]s
log: { flush_interval: 0s }
sites:
  - name: main
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0", proxy_protocol: true }
      - { protocol: ftp, address: "127.0.0.1:0", proxy_protocol: true }
    ftp: { passive_ports: %[4]d-%[5]d }
    protector: { safe: [], threshold: 4, window: 1m, ban_for: 10m }
    vfs:
      - { name: home, type: disk, root: "%[3]s/{user}" }
    users:
      - { id: alice, password: "plain:pw", home: { vfs: home, permissions: [all] } }
      - { id: bob, password: "plain:pw", max_sessions: 2, home: { vfs: home, permissions: [all] } }
%[6]s
metrics: { address: "127.0.0.1:0" }
cluster:
  store: postgres
  dsn: {env: WHARF_TEST_CLUSTER_DSN}
  node_id: %[1]s
  heartbeat: 200ms
  node_ttl: 1s
%[7]s`, name, dsn, shared, passive, passive+9, site, cluster)
}

// startCluster starts three nodes and HAProxy. site and cluster add keys to every node's
// site and cluster sections.
func startCluster(t *testing.T, dsn, site, cluster string) *e2eCluster {
	t.Helper()
	coretest.NeedBinary(t, "haproxy")
	c := &e2eCluster{dir: t.TempDir(), dsn: dsn}
	c.shared = filepath.Join(c.dir, "shared")
	base := 40000 + int(time.Now().UnixNano()%2000)*10
	for i, name := range []string{"a", "b", "c"} {
		p := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(p, []byte(nodeConfig(name, dsn, c.shared, base+i*10, site, cluster)), 0o600); err != nil {
			t.Fatal(err)
		}
		n := &e2eNode{name: name, cfg: p}
		c.start(t, n)
		c.nodes = append(c.nodes, n)
	}
	var be []haproxytest.Backend
	for _, n := range c.nodes {
		be = append(be, haproxytest.Backend{Name: n.name, Addr: n.sftp, HealthAddr: n.admin})
	}
	c.proxy = haproxytest.Start(t, haproxytest.Options{Backends: be})
	return c
}

// start runs (or runs again) a node and waits until it serves.
func (c *e2eCluster) start(t *testing.T, n *e2eNode) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWharfChild$")
	cmd.Env = append(os.Environ(), childArgsEnv+"=serve\x1f-c\x1f"+n.cfg, "WHARF_TEST_CLUSTER_DSN="+c.dsn)
	n.stdout, n.logs = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = n.stdout, n.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(n.exited)
	exited := n.exited
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("node %s stdout:\n%s\nnode %s log:\n%s", n.name, n.stdout.String(), n.name, n.logs.String())
		}
	})
	coretest.Eventually(t, 30*time.Second, "node "+n.name+" to serve", func() bool {
		select {
		case <-exited:
			t.Fatalf("node %s exited:\n%s", n.name, n.logs.String())
		default:
		}
		return strings.Contains(n.stdout.String(), "is running")
	})
	for _, m := range childListenLine.FindAllStringSubmatch(n.stdout.String(), -1) {
		switch m[1] {
		case "SFTP":
			n.sftp = m[2]
		case "FTP":
			n.ftp = m[2]
		}
	}
	if m := metricsLine.FindStringSubmatch(n.stdout.String()); m != nil {
		n.admin = m[1]
	}
	if n.sftp == "" || n.admin == "" {
		t.Fatalf("node %s: addresses not printed:\n%s", n.name, n.stdout.String())
	}
}

// wharf runs a CLI command against a node (its config file) and returns exit code and output.
func (n *e2eNode) wharf(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCmd(t, "", append(args, "-c", n.cfg)...)
}

// sftpConn is an SFTP session and its SSH connection.
type sftpConn struct {
	*sftp.Client
	conn *ssh.Client
}

func (s *sftpConn) Close() { _ = s.Client.Close(); _ = s.conn.Close() }

// sftpLogin logs in through HAProxy; it returns the error instead of failing.
func (c *e2eCluster) sftpLogin(user, pass string) (*sftpConn, error) {
	conn, err := ssh.Dial("tcp", c.proxy.Addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pass)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	cl, err := sftp.NewClient(conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &sftpConn{Client: cl, conn: conn}, nil
}

// TestClusterBanEnforcedByEveryNode: failed logins spread over the three nodes (HAProxy
// round robin) add up to one ban, which every node then enforces before any byte: a
// connection through HAProxy is refused whichever node it reaches, and every node lists
// the ban.
func TestClusterBanEnforcedByEveryNode(t *testing.T) {
	c := startCluster(t, pgtest.NewDB(t), "", "")
	// threshold 4: four failed logins, which round robin spreads over a, b, c, a.
	for i := range 4 {
		if s, err := c.sftpLogin("alice", "wrong"); err == nil {
			s.Close()
			t.Fatalf("login %d with a wrong password succeeded", i)
		}
	}
	for _, n := range c.nodes {
		coretest.Eventually(t, 5*time.Second, "node "+n.name+" to list the ban", func() bool {
			_, out, _ := n.wharf(t, "bans")
			return strings.Contains(out, "127.0.0.1")
		})
	}
	// Every node refuses, even with the right password (3 connections: a, b and c in turn).
	for i := range 3 {
		if s, err := c.sftpLogin("alice", "pw"); err == nil {
			s.Close()
			t.Fatalf("connection %d after the ban was served", i)
		}
	}
	// Lifted on one node, lifted on every node.
	if code, out, errOut := c.nodes[1].wharf(t, "bans", "remove", "127.0.0.1"); code != 0 {
		t.Fatalf("bans remove: %d %s %s", code, out, errOut)
	}
	coretest.Eventually(t, 5*time.Second, "every node to serve again", func() bool {
		for range 3 {
			s, err := c.sftpLogin("alice", "pw")
			if err != nil {
				return false
			}
			s.Close()
		}
		return true
	})
}

// TestClusterSessionsAndKick: `wharf sessions` on node A lists a session served by node C
// with its node, and `wharf sessions kick ID` on node A ends it on node C.
func TestClusterSessionsAndKick(t *testing.T) {
	c := startCluster(t, pgtest.NewDB(t), "", "")
	var conns []*sftpConn
	for range 3 { // one session on each node
		s, err := c.sftpLogin("alice", "pw")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, s)
		defer s.Close()
	}
	a, nc := c.nodes[0], c.nodes[2]
	var id string
	coretest.Eventually(t, 5*time.Second, "node a to list node c's session", func() bool {
		code, out, _ := a.wharf(t, "sessions")
		if code != 0 {
			return false
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 2 && f[0] == "c" {
				id = f[1]
			}
		}
		return id != "" && strings.Count(out, "alice") == 3
	})
	code, out, errOut := a.wharf(t, "sessions", "kick", id)
	if code != 0 || !strings.Contains(out, "node c") {
		t.Fatalf("kick from a: %d %s %s", code, out, errOut)
	}
	coretest.Eventually(t, 5*time.Second, "the session to end on node c", func() bool {
		_, out, _ := nc.wharf(t, "sessions")
		return !strings.Contains(out, id)
	})
	// The other two sessions go on; the kicked one is gone.
	alive := 0
	for _, s := range conns {
		if _, err := s.Getwd(); err == nil {
			alive++
		}
	}
	if alive != 2 {
		t.Fatalf("%d sessions alive after the kick, want 2", alive)
	}
	if code, _, errOut := a.wharf(t, "sessions", "kick", "01NOSUCHSESSION0000000000"); code != 1 || !strings.Contains(errOut, "no live session") {
		t.Fatalf("kick of a session no node has: %d %s", code, errOut)
	}
}

// TestClusterMaxSessions: bob's max_sessions: 2 holds across nodes: two sessions on two
// nodes, and a third login on the third node is refused; when one ends, a new one is
// served.
func TestClusterMaxSessions(t *testing.T) {
	c := startCluster(t, pgtest.NewDB(t), "", "")
	s1, err := c.sftpLogin("bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := c.sftpLogin("bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s3, err := c.sftpLogin("bob", "pw"); err == nil {
		s3.Close()
		t.Fatal("a third session of bob was served on the third node")
	}
	s1.Close()
	coretest.Eventually(t, 5*time.Second, "a slot to free up", func() bool {
		s, err := c.sftpLogin("bob", "pw")
		if err != nil {
			return false
		}
		s.Close()
		return true
	})
}

// TestClusterStatusAndReload: `wharf cluster status` lists the three live nodes with one
// config hash, flags a node whose config differs, and `wharf reload --cluster` reaches every
// node.
func TestClusterStatusAndReload(t *testing.T) {
	c := startCluster(t, pgtest.NewDB(t), "", "")
	t.Setenv("WHARF_TEST_CLUSTER_DSN", c.dsn)
	code, out, errOut := c.nodes[0].wharf(t, "cluster", "status")
	if code != 0 {
		t.Fatalf("status: %d %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "3 of 3 node(s) alive") {
		t.Fatalf("status:\n%s", out)
	}
	// Every node's file differs here (state_dir and passive ports: one host), so the
	// hashes differ; what is checked is that a changed file shows after a cluster reload.
	hashOf := func(out, node string) string {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == node {
				return f[2]
			}
		}
		return ""
	}
	before := hashOf(out, "c")
	if before == "" {
		t.Fatalf("no hash for c:\n%s", out)
	}
	raw, _ := os.ReadFile(c.nodes[2].cfg)
	if err := os.WriteFile(c.nodes[2].cfg, []byte(strings.Replace(string(raw), "max_sessions: 2", "max_sessions: 3", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = c.nodes[0].wharf(t, "reload", "--cluster")
	if code != 0 || !strings.Contains(out, "3 node(s)") {
		t.Fatalf("reload --cluster: %d %s %s", code, out, errOut)
	}
	for _, n := range c.nodes {
		coretest.Eventually(t, 5*time.Second, "node "+n.name+" to reload", func() bool {
			return strings.Contains(n.logs.String(), "configuration reloaded")
		})
	}
	coretest.Eventually(t, 5*time.Second, "c's new hash in the status", func() bool {
		_, out, _ := c.nodes[0].wharf(t, "cluster", "status")
		h := hashOf(out, "c")
		return h != "" && h != before
	})
}
