package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/pgtest"
)

// The cluster's failure scenarios of issue #22, end to end: a node killed during uploads, and
// the store (PostgreSQL) stopped and started during a run.

// nodeTTL is nodeConfig's cluster.node_ttl.
const nodeTTL = time.Second

// TestClusterNodeKilledDuringUploads: dave (max_sessions: 1), alice and bob upload through
// HAProxy, one session on each node in turn. Halfway through, dave's node is killed (SIGKILL).
// The uploads on the other nodes complete; the ones on the killed node fail, and nothing of
// them is visible under its final name; their clients retry through HAProxy, which sends them
// to the live nodes. Dave's dead session stops counting for max_sessions once its node's
// heartbeat is node_ttl old, so his retry is served, and `wharf cluster status` shows the
// node dead.
func TestClusterNodeKilledDuringUploads(t *testing.T) {
	const size = 512 << 10
	c := startCluster(t, pgtest.NewDB(t),
		`      - { id: dave, password: "plain:pw", max_sessions: 1, home: { vfs: home, permissions: [all] } }`, "")
	users := []string{"dave", "alice", "bob"}
	type upload struct {
		s    *sftpConn
		data []byte
		f    interface {
			Write([]byte) (int, error)
			Close() error
		}
		node string
	}
	ups := map[string]*upload{}
	for _, u := range users {
		s, err := c.sftpLogin(u, "pw")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		defer s.Close()
		up := &upload{s: s, data: randomBytes(t, size)}
		f, err := s.Create("/" + u + ".bin")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if _, err := f.Write(up.data[:size/2]); err != nil {
			t.Fatalf("%s: first half: %v", u, err)
		}
		up.f = f
		ups[u] = up
	}
	coretest.Eventually(t, 5*time.Second, "every session listed with its node", func() bool {
		for _, u := range users {
			nodes := c.nodes[0].sessionNodes(t, u)
			if len(nodes) != 1 {
				return false
			}
			ups[u].node = nodes[0]
		}
		return true
	})
	// Dave's limit holds across nodes: a second session is refused whichever node gets it.
	if s, err := c.sftpLogin("dave", "pw"); err == nil {
		s.Close()
		t.Fatal("a second session of dave (max_sessions: 1) was served")
	}

	var victim *e2eNode
	var live []*e2eNode
	for _, n := range c.nodes {
		if n.name == ups["dave"].node {
			victim = n
		} else {
			live = append(live, n)
		}
	}
	if victim == nil {
		t.Fatalf("dave's session is on node %q, not one of the cluster's", ups["dave"].node)
	}
	killed := time.Now()
	if err := victim.cmd.Process.Kill(); err != nil { // SIGKILL: no goodbye to the store
		t.Fatal(err)
	}
	<-victim.exited

	// Nothing of dave's interrupted upload under its final name, though its first half is on
	// the storage (the temporary file the dead node left).
	daveDir := filepath.Join(c.shared, "dave")
	if _, err := os.Stat(filepath.Join(daveDir, "dave.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dave.bin after its node was killed mid-upload: %v, want no such file", err)
	}
	if _, _, temps := diskUsage(t, daveDir); len(temps) != 1 {
		t.Fatalf("temporaries of dave's interrupted upload: %v, want one", temps)
	}

	// The uploads go on: those on live nodes complete, those on the killed node fail.
	var retry []string
	for _, u := range users {
		up := ups[u]
		_, werr := up.f.Write(up.data[size/2:])
		err := errors.Join(werr, up.f.Close())
		switch {
		case up.node == victim.name && err == nil:
			t.Fatalf("%s's upload on the killed node %s completed", u, victim.name)
		case up.node == victim.name:
			retry = append(retry, u)
			if _, err := os.Stat(filepath.Join(c.shared, u, u+".bin")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s.bin after its upload failed: %v, want no such file", u, err)
			}
		case err != nil:
			t.Fatalf("%s's upload on live node %s: %v", u, up.node, err)
		}
		up.s.Close()
	}

	// The clients of the killed node retry through HAProxy until they are served.
	var daveServed time.Duration
	for _, u := range retry {
		var last error
		ok := pollUntil(nodeTTL+15*time.Second, func() bool {
			s, err := c.sftpLogin(u, "pw")
			if err != nil {
				last = err
				return false
			}
			defer s.Close()
			if u == "dave" && daveServed == 0 {
				daveServed = time.Since(killed)
			}
			last = sftpUpload(s, "/"+u+".bin", ups[u].data)
			return last == nil
		})
		if !ok {
			t.Fatalf("%s's retry through HAProxy: %v", u, last)
		}
	}
	t.Logf("dave served again %v after his node was killed (node_ttl %v)", daveServed.Round(time.Millisecond), nodeTTL)
	for _, u := range users {
		sameFile(t, filepath.Join(c.shared, u, u+".bin"), ups[u].data)
	}

	// The balancer sends new clients to the live nodes only.
	for i := range 4 {
		s, err := c.sftpLogin("alice", "pw")
		if err != nil {
			t.Fatalf("login %d through HAProxy after the kill: %v", i, err)
		}
		s.Close()
	}
	// The cluster sees the node dead, and lists none of its sessions.
	coretest.Eventually(t, 5*time.Second, "node "+victim.name+" shown dead", func() bool {
		st, err := c.clusterStatus(t, live[0])
		if err != nil {
			return false
		}
		alive := map[string]bool{}
		for _, n := range st.Nodes {
			alive[n.ID] = n.Alive
		}
		return len(alive) == 3 && !alive[victim.name] && alive[live[0].name] && alive[live[1].name]
	})
	for _, u := range users {
		if nodes := live[1].sessionNodes(t, u); slices.Contains(nodes, victim.name) {
			t.Fatalf("%s's session on the dead node %s is still listed: %v", u, victim.name, nodes)
		}
	}
	if !strings.Contains(victim.logs.String(), "joined the cluster") {
		t.Fatalf("node %s never joined the cluster:\n%s", victim.name, victim.logs.String())
	}
}

// TestClusterStoreDown: PostgreSQL (a server of the test's own) is stopped during a run and
// started again, with each cluster.on_store_down.
func TestClusterStoreDown(t *testing.T) {
	pg := pgtest.New(t)
	restart := func(t *testing.T) {
		t.Helper()
		if !pg.Running() { // a failed subtest may have left it stopped
			if err := pg.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("local", func(t *testing.T) { restart(t); testStoreDownLocal(t, pg) })
	t.Run("refuse", func(t *testing.T) { restart(t); testStoreDownRefuse(t, pg) })
}

// waitStore waits until every node reports the store up (healthz "ok", the gauge 1) or down
// (healthz degraded, the gauge 0).
func (c *e2eCluster) waitStore(t *testing.T, up bool, mode string) {
	t.Helper()
	for _, n := range c.nodes {
		var h, g string
		ok := pollUntil(10*time.Second, func() bool {
			h, g = n.health(), n.storeUp()
			if up {
				return h == "ok" && g == "1"
			}
			return strings.HasPrefix(h, "degraded: cluster store unreachable since") &&
				strings.Contains(h, "on_store_down: "+mode) && g == "0"
		})
		if !ok {
			t.Fatalf("node %s with the store up=%v: /healthz %q, wharf_cluster_store_up %q", n.name, up, h, g)
		}
	}
}

// testStoreDownLocal: with on_store_down: local, an upload in flight completes while the
// store is down (its quota reservations fall back to the node's count), new logins are
// served, and a ban made on one node meanwhile is enforced by that node only; once the store
// is back, the ban is pushed and every node enforces it, the sessions made meanwhile are
// listed cluster-wide, and the store's quota usage matches the storage.
func testStoreDownLocal(t *testing.T, pg *pgtest.Server) {
	const size = 2 << 20 // four reservations of 512 KiB (quota/16): most of them while down
	c := startCluster(t, pg.NewDB(t),
		`      - { id: erin, password: "plain:pw", quota: { bytes: 8388608 }, home: { vfs: home, permissions: [all] } }`,
		"  on_store_down: local")
	c.waitStore(t, true, "")
	erin, err := c.sftpLogin("erin", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer erin.Close()
	data := randomBytes(t, size)
	f, err := erin.Create("/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:size/4]); err != nil {
		t.Fatal(err)
	}

	pg.Stop()
	c.waitStore(t, false, "local")

	// The transfer in flight completes.
	if _, err := f.Write(data[size/4:]); err != nil {
		t.Fatalf("upload in flight while the store is down: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("upload in flight while the store is down, close: %v", err)
	}
	sameFile(t, filepath.Join(c.shared, "erin", "big.bin"), data)
	// New logins are served, on every node (round robin).
	for i := range 3 {
		s, err := c.sftpLogin("alice", "pw")
		if err != nil {
			t.Fatalf("login %d while the store is down (local): %v", i, err)
		}
		defer s.Close()
		if err := sftpUpload(s, "/during.txt", []byte("written while the store was down\n")); err != nil {
			t.Fatalf("upload while the store is down: %v", err)
		}
	}
	// Failed logins from 192.0.2.7 on node a (threshold 4) make a ban there.
	const attacker = "192.0.2.7"
	a, b := c.nodes[0], c.nodes[1]
	for i := range 4 {
		if s, err := sftpLoginFrom(a, attacker, "alice", "wrong"); err == nil {
			s.Close()
			t.Fatalf("failed login %d was served", i)
		}
	}
	coretest.Eventually(t, 5*time.Second, "node a to refuse "+attacker, func() bool {
		s, err := sftpLoginFrom(a, attacker, "alice", "pw")
		if err == nil {
			s.Close()
		}
		return err != nil
	})
	// The other nodes have not heard of it: the store is down.
	s, err := sftpLoginFrom(b, attacker, "alice", "pw")
	if err != nil {
		t.Fatalf("node b refused %s while the store was down: %v", attacker, err)
	}
	s.Close()

	downFor := time.Now()
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitStore(t, true, "")
	t.Logf("nodes healthy %v after PostgreSQL started again", time.Since(downFor).Round(time.Millisecond))

	// Reconciled: node a pushed its ban, which every node now enforces before any byte.
	for _, n := range c.nodes[1:] {
		coretest.Eventually(t, 5*time.Second, "node "+n.name+" to refuse "+attacker, func() bool {
			s, err := sftpLoginFrom(n, attacker, "alice", "pw")
			if err == nil {
				s.Close()
			}
			return err != nil
		})
	}
	// The sessions logged in meanwhile are in the store again, on their nodes.
	coretest.Eventually(t, 5*time.Second, "the sessions made while the store was down, listed cluster-wide", func() bool {
		nodes := c.nodes[2].sessionNodes(t, "alice")
		slices.Sort(nodes)
		return slices.Equal(nodes, []string{"a", "b", "c"}) && len(c.nodes[2].sessionNodes(t, "erin")) == 1
	})
	// Erin's usage, counted locally meanwhile, is in the store once she has logged out.
	erin.Close()
	want, files, _ := diskUsage(t, filepath.Join(c.shared, "erin"))
	var sb, sf int64
	if !pollUntil(5*time.Second, func() bool {
		sb, sf = storedUsage(t, c.dsn, "erin")
		return sb == want && sf == files
	}) {
		t.Fatalf("the store counts %d bytes in %d files for erin, the storage holds %d bytes in %d files", sb, sf, want, files)
	}
}

// testStoreDownRefuse: with on_store_down: refuse, new logins over SFTP and FTP are refused
// with the message that says why while the store is down, on every node, while a session in
// progress keeps working (its upload in flight completes, it lists and downloads); once the
// store is back, logins are served again.
func testStoreDownRefuse(t *testing.T, pg *pgtest.Server) {
	const size = 1 << 20
	c := startCluster(t, pg.NewDB(t), "", "  on_store_down: refuse")
	ftpProxy := c.startFTPProxy(t)
	c.waitStore(t, true, "")
	alice, err := c.sftpLogin("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	data := randomBytes(t, size)
	f, err := alice.Create("/inflight.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:size/2]); err != nil {
		t.Fatal(err)
	}

	pg.Stop()
	c.waitStore(t, false, "refuse")
	for _, n := range c.nodes {
		if h := n.health(); !strings.HasSuffix(h, "new logins refused") {
			t.Fatalf("node %s: /healthz %q does not say that new logins are refused", n.name, h)
		}
	}
	const why = "the cluster store cannot be reached"
	for i := range 3 { // round robin: every node
		s, banner, err := c.sftpLoginBanner("alice", "pw")
		if err == nil {
			s.Close()
			t.Fatalf("SFTP login %d was served while the store is down (refuse)", i)
		}
		if !strings.Contains(banner, why) {
			t.Fatalf("SFTP login %d refused with %v, banner %q: want the banner to say %q", i, err, banner, why)
		}
		fc, err := ftpLoginVia(ftpProxy.Addr, "alice", "pw")
		if err == nil {
			_ = fc.Quit()
			t.Fatalf("FTP login %d was served while the store is down (refuse)", i)
		}
		if !strings.Contains(err.Error(), "530") || !strings.Contains(err.Error(), why) {
			t.Fatalf("FTP login %d: %v, want a 530 that says %q", i, err, why)
		}
	}
	// The session in progress goes on: its upload completes, it lists and downloads.
	if _, err := f.Write(data[size/2:]); err != nil {
		t.Fatalf("upload in flight while the store is down: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("upload in flight while the store is down, close: %v", err)
	}
	entries, err := alice.ReadDir("/")
	if err != nil || !slices.ContainsFunc(entries, func(e fs.FileInfo) bool { return e.Name() == "inflight.bin" && e.Size() == size }) {
		t.Fatalf("listing in the session in progress: %v %v", entries, err)
	}
	rf, err := alice.Open("/inflight.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rf)
	_ = rf.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download in the session in progress: %d bytes, %v", len(got), err)
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitStore(t, true, "")
	for i := range 3 {
		s, err := c.sftpLogin("alice", "pw")
		if err != nil {
			t.Fatalf("SFTP login %d once the store is back: %v", i, err)
		}
		s.Close()
		fc, err := ftpLoginVia(ftpProxy.Addr, "alice", "pw")
		if err != nil {
			t.Fatalf("FTP login %d once the store is back: %v", i, err)
		}
		_ = fc.Quit()
	}
}
