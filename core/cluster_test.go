package core_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// A cluster of two nodes in one process: two Sites of the same name, each with its own view
// of one coretest.ClusterStore, over one disk folder (the shared storage), with the store's
// announcements delivered to both as cmd wires them.
type testCluster struct {
	store  *coretest.ClusterStore
	nodes  [2]*core.Site
	events [2]*coretest.Dispatcher
	root   string
	muted  [2]atomic.Bool // a node that does not hear announcements (its LISTEN connection is gone)
}

func newTestCluster(t *testing.T, refuse bool, users []config.User, mutate ...func(*config.Site)) *testCluster {
	t.Helper()
	tc := &testCluster{store: coretest.NewClusterStore(), root: t.TempDir()}
	yes := true
	for i := range tc.nodes {
		tc.events[i] = &coretest.Dispatcher{}
		tc.events[i].On(core.OnBlocklistAdd, func(*core.Event) {})
		c := &config.Site{
			Name:   "t",
			Limits: config.Limits{MaxConnections: 50, MaxConnectionsPerIP: 50, MaxSessionsPerUser: 10},
			Protector: config.Protector{Enabled: &yes, Threshold: 10, BanFor: config.Duration{Duration: time.Minute},
				Safe: []config.Prefix{mustPrefix(t, "127.0.0.1/32")}},
			VFS:   []config.VFS{{Name: "disk", Type: "disk", Root: filepath.Join(tc.root, "{user}"), AtomicUploads: &yes}},
			Users: users,
		}
		for _, m := range mutate {
			m(c)
		}
		s, err := core.NewSite(c, core.Options{Events: tc.events[i], Cluster: tc.store.Node(fmt.Sprintf("node%d", i)),
			RefuseWhenStoreDown: refuse})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
		tc.nodes[i] = s
		deliver := coretest.Deliver(s)
		tc.store.Listen(func(a coretest.ClusterAnnouncement) {
			if !tc.muted[i].Load() {
				deliver(a)
			}
		})
	}
	return tc
}

func diskUser(id string, mut ...func(*config.User)) config.User {
	return user(id, append([]func(*config.User){onDisk}, mut...)...)
}

// tryConnect connects from ip, failing the test only for an unexpected kind of error.
func tryConnect(s *core.Site, ip string) (*core.Session, error) {
	return s.Connect(context.Background(), core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}, Protocol: core.ProtoSFTP})
}

func loginFrom(t *testing.T, s *core.Site, ip, id, pw string) (*core.Session, error) {
	t.Helper()
	sess, err := tryConnect(s, ip)
	if err != nil {
		return nil, err
	}
	if err := sess.AuthPassword(context.Background(), id, pw); err != nil {
		sess.Close()
		return nil, err
	}
	t.Cleanup(sess.Close)
	return sess, nil
}

func blocklistAdds(d *coretest.Dispatcher) int {
	n := 0
	for _, e := range d.Fired() {
		if e == core.OnBlocklistAdd {
			n++
		}
	}
	return n
}

// Failed logins spread over two nodes reach the threshold together: the address is banned
// on both, one OnBlocklistAdd fires (on the node that banned), and a lift or an operator's
// ban on either node holds on both.
func TestClusterBansSpreadOverNodes(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("u")})
	const attacker = "203.0.113.7"
	ip := netip.MustParseAddr(attacker)
	for i := range 10 {
		if _, err := loginFrom(t, tc.nodes[i%2], attacker, "u", "wrong"); !errors.Is(err, core.ErrAuth) {
			t.Fatalf("attempt %d: %v, want an authentication failure", i, err)
		}
	}
	for i, n := range tc.nodes {
		if !n.Banned(ip) {
			t.Fatalf("node %d does not ban %s after 10 failed logins spread over two nodes", i, attacker)
		}
		if _, err := tryConnect(n, attacker); !errors.Is(err, core.ErrRefused) {
			t.Fatalf("node %d: connect from a banned address: %v", i, err)
		}
	}
	if got := blocklistAdds(tc.events[0]) + blocklistAdds(tc.events[1]); got != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times over the two nodes, want once (announcements fire nothing)", got)
	}
	if recs := tc.store.BanRecords("t"); len(recs) != 1 {
		t.Fatalf("store holds %v, want one ban", recs)
	}
	// An operator lifts it on node 1: both let the address in again.
	lifted, err := tc.nodes[1].RemoveBans(context.Background(), attacker, "test", "")
	if err != nil || len(lifted) != 1 {
		t.Fatalf("RemoveBans: %v, %v", lifted, err)
	}
	for i, n := range tc.nodes {
		if n.Banned(ip) {
			t.Fatalf("node %d still bans %s after a lift on node 1", i, attacker)
		}
	}
	// An operator's ban on node 0 holds on node 1, for exactly its duration.
	info, err := tc.nodes[0].AddBan(context.Background(), "198.51.100.9", time.Hour, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	if !tc.nodes[1].Banned(netip.MustParseAddr("198.51.100.9")) {
		t.Fatal("an operator's ban on node 0 is not enforced on node 1")
	}
	if bans := tc.nodes[1].Bans(); len(bans) != 1 || !bans[0].Until.Equal(info.Until) {
		t.Fatalf("node 1 lists %+v, want the ban until %v", bans, info.Until)
	}
	// A repeat offender is banned twice as long, counting offences on every node.
	if _, err := tc.nodes[1].RemoveBans(context.Background(), "all", "test", ""); err != nil {
		t.Fatal(err)
	}
	tc.nodes[0].Ban(context.Background(), ip, time.Minute, nil)
	tc.nodes[1].Ban(context.Background(), ip, time.Minute, nil)
	for i, n := range tc.nodes {
		bans := n.Bans()
		if len(bans) != 1 || bans[0].Offences != 2 || bans[0].Until.Sub(bans[0].LastOffence) != 2*time.Minute {
			t.Fatalf("node %d after a ban on each node: %+v, want the second offence for 2m", i, bans)
		}
	}
}

// max_sessions holds across the nodes; a session's end frees its slot on every node, and a
// dead node's sessions do not count.
func TestClusterSessionLimit(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("u", func(u *config.User) { u.MaxSessions = 2 })})
	a := login(t, tc.nodes[0], "u")
	login(t, tc.nodes[1], "u")
	for i, n := range tc.nodes {
		if _, err := loginFrom(t, n, "127.0.0.1", "u", "pw"); !errors.Is(err, core.ErrLimit) {
			t.Fatalf("third session on node %d: %v, want the session limit", i, err)
		}
	}
	a.Close()
	if got := len(tc.store.LiveSessions("t", "u")); got != 1 {
		t.Fatalf("store holds %d live sessions after one of two closed", got)
	}
	login(t, tc.nodes[1], "u")
	if _, err := loginFrom(t, tc.nodes[0], "127.0.0.1", "u", "pw"); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("third session: %v, want the session limit", err)
	}
	tc.store.KillNode("node1")
	login(t, tc.nodes[0], "u")
	if n := tc.nodes[0].CountByUser("u"); n != 1 {
		t.Fatalf("node 0 counts %d sessions of u, want 1 (local stats)", n)
	}
	if got := tc.nodes[0].ClusterSessions(); len(got) != 1 || got[0].User != "u" || got[0].Site != "t" {
		t.Fatalf("ClusterSessions: %+v", got)
	}
}

// Uploads on two nodes cannot together pass the quota, and freeing room on one node makes
// room on the other.
func TestClusterQuotaAcrossNodes(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: 100 << 10} })})
	ctx := context.Background()
	a, b := login(t, tc.nodes[0], "q"), login(t, tc.nodes[1], "q")
	data := strings.Repeat("x", 60<<10)
	if err := upload(ctx, a, "/one", data); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, b, "/two", data); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("second 60 KiB upload on the other node under a 100 KiB quota: %v, want quota exceeded", err)
	}
	if bytes, _ := core.ClusterUsageOf(b); bytes != 60<<10 {
		t.Fatalf("node 1 reports %d bytes used, want 60 KiB", bytes)
	}
	if err := a.Remove(ctx, "/one"); err != nil {
		t.Fatal(err)
	}
	if bytes, _ := core.ClusterUsageOf(b); bytes != 0 {
		t.Fatalf("node 1 reports %d bytes used after node 0 removed the only file", bytes)
	}
	if err := upload(ctx, b, "/two", data); err != nil {
		t.Fatalf("upload on node 1 after node 0 freed the room: %v", err)
	}
	a.Close()
	b.Close()
	if got, _ := tc.store.Usage("t", "q"); got != 60<<10 {
		t.Fatalf("store counts %d bytes once both sessions ended, the storage holds 60 KiB", got)
	}
}

// The quota property test with the cluster on one node: after every step the charge agrees
// with a scan of the storage (allowances in chunks, given back and taken again included).
func TestClusterQuotaMatchesDisk(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) {
				u.Quota = config.Quota{Bytes: 48 << 10, Files: 8}
			})})
			st := newPropState(t, seed, login(t, tc.nodes[0], "q"), login(t, tc.nodes[0], "q"),
				filepath.Join(tc.root, "q"))
			runPropSteps(t, st, 300)
		})
	}
}

// Concurrent uploads, removals and truncations through sessions on both nodes never put more
// than the quota in the storage, and once the uploads are closed the cluster's usage equals
// the storage.
func TestClusterQuotaConcurrentNodes(t *testing.T) {
	const quota = 256 << 10
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: quota, Files: 40} })})
	ctx := context.Background()
	var sess [4]*core.Session
	for i := range sess {
		sess[i] = login(t, tc.nodes[i%2], "q")
	}
	home := core.HomeFS(sess[0])
	var refused atomic.Int64
	// Phase 1: uploads of new names only. Files only appear, whole (atomic uploads), so a
	// scan made while they run never counts more than the storage held when it ended: the
	// watcher's figure can be trusted.
	var maxSeen atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if b, _, err := core.ScanUsage(home); err == nil && b > maxSeen.Load() {
				maxSeen.Store(b)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	workers(4, func(w int) {
		for i := range 20 {
			err := upload(ctx, sess[w], fmt.Sprintf("/new%d-%d", w, i), strings.Repeat("n", 1024*(1+(i*7+w*3)%40)))
			if errors.Is(err, core.ErrQuota) {
				refused.Add(1)
			} else if err != nil {
				t.Errorf("worker %d upload: %v", w, err)
			}
		}
	})
	close(stop)
	<-watched
	if refused.Load() == 0 {
		t.Fatal("no upload reached the quota: the test proves nothing")
	}
	if m := maxSeen.Load(); m > quota {
		t.Fatalf("the storage held %d bytes at one point, over the %d-byte quota", m, quota)
	}
	// Phase 2: removals, truncations and uploads over existing names, each worker on its own
	// names, all at once; the storage is checked when they are done.
	refused.Store(0)
	workers(4, func(w int) {
		s := sess[w]
		for i := range 60 {
			name := fmt.Sprintf("/w%d-%d", w, i%12)
			switch i % 6 {
			case 4:
				_ = s.Remove(ctx, fmt.Sprintf("/new%d-%d", w, i/6))
				_ = s.Remove(ctx, fmt.Sprintf("/w%d-%d", w, (i+5)%12))
			case 5:
				size := int64(i * 100)
				_ = s.SetStat(ctx, name, core.Attrs{Size: &size})
			default:
				err := upload(ctx, s, name, strings.Repeat("y", 1024*(1+(i*7+w*3)%40)))
				if errors.Is(err, core.ErrQuota) {
					refused.Add(1)
				} else if err != nil {
					t.Errorf("worker %d upload %s: %v", w, name, err)
				}
			}
		}
	})
	if refused.Load() == 0 {
		t.Fatal("no upload of phase 2 reached the quota: the test proves nothing")
	}
	sb, sf, err := core.ScanUsage(home)
	if err != nil {
		t.Fatal(err)
	}
	if sb > quota {
		t.Fatalf("the storage holds %d bytes, over the %d-byte quota", sb, quota)
	}
	// The store counts the storage and the allowances the two nodes hold.
	ab0, af0 := core.AllowanceOf(sess[0])
	ab1, af1 := core.AllowanceOf(sess[1])
	if b, f := tc.store.Usage("t", "q"); b-ab0-ab1 != sb || f-af0-af1 != sf {
		t.Fatalf("store counts %d bytes in %d files with allowances %d+%d bytes, %d+%d files; the storage holds %d in %d",
			b, f, ab0, ab1, af0, af1, sb, sf)
	}
	// A node reports the cluster's figure less its own allowance.
	for i, s := range sess {
		ob, of := ab1, af1
		if i%2 == 1 {
			ob, of = ab0, af0
		}
		if b, f := core.ClusterUsageOf(s); b != sb+ob || f != sf+of {
			t.Fatalf("session %d reports %d bytes in %d files, the storage holds %d in %d and the other node's allowance is %d, %d",
				i, b, f, sb, sf, ob, of)
		}
	}
	for _, s := range sess {
		s.Close()
	}
	if b, f := tc.store.Usage("t", "q"); b != sb || f != sf {
		t.Fatalf("store counts %d bytes in %d files after the sessions ended, the storage holds %d in %d", b, f, sb, sf)
	}
}

// With on_store_down: local, a node serves on its own state while the store is down — logins
// (with the local session limit), bans, uploads — and SyncCluster pushes what it did.
func TestClusterStoreDownLocal(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) {
		u.Quota = config.Quota{Bytes: 100 << 10}
		u.MaxSessions = 2
	})})
	ctx := context.Background()
	before := login(t, tc.nodes[0], "q")
	tc.store.SetDown(true)

	during := login(t, tc.nodes[0], "q")
	if _, err := loginFrom(t, tc.nodes[0], "127.0.0.1", "q", "pw"); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("third session while the store is down: %v, want the local session limit", err)
	}
	if err := upload(ctx, during, "/offline", strings.Repeat("z", 30<<10)); err != nil {
		t.Fatalf("upload while the store is down: %v", err)
	}
	if err := upload(ctx, before, "/big", strings.Repeat("z", 80<<10)); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("upload past the quota while the store is down: %v, want quota exceeded (local count)", err)
	}
	const attacker = "203.0.113.50"
	for range 10 {
		if _, err := loginFrom(t, tc.nodes[0], attacker, "q", "wrong"); !errors.Is(err, core.ErrAuth) {
			t.Fatalf("failed login while the store is down: %v", err)
		}
	}
	ip := netip.MustParseAddr(attacker)
	if !tc.nodes[0].Banned(ip) {
		t.Fatal("node 0 does not ban locally while the store is down")
	}
	if tc.nodes[1].Banned(ip) {
		t.Fatal("node 1 bans an address it could not have heard of")
	}

	tc.store.SetDown(false)
	if err := tc.nodes[0].SyncCluster(ctx); err != nil {
		t.Fatal(err)
	}
	if !tc.nodes[1].Banned(ip) {
		t.Fatal("node 1 does not ban the address node 0 banned while the store was down, after SyncCluster")
	}
	if b, _ := tc.store.Usage("t", "q"); b < 30<<10 {
		t.Fatalf("store counts %d bytes after SyncCluster, the offline upload put 30 KiB", b)
	}
	// The session that logged in while the store was down gets its record by the store's
	// resync, and loses it when it ends.
	tc.store.Resync("node0", tc.nodes[0].ClusterSessions())
	if got := len(tc.store.LiveSessions("t", "q")); got != 2 {
		t.Fatalf("store holds %d live sessions after the resync, want 2", got)
	}
	if _, err := loginFrom(t, tc.nodes[1], "127.0.0.1", "q", "pw"); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("third session on the other node after the resync: %v, want the session limit", err)
	}
	during.Close()
	before.Close()
	if got := len(tc.store.LiveSessions("t", "q")); got != 0 {
		t.Fatalf("store holds %d live sessions after both ended", got)
	}
	// Both sessions ended: the node gave its allowance back, and the store counts the storage.
	sb, sf, err := core.ScanUsage(afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(tc.root, "q")))
	if err != nil {
		t.Fatal(err)
	}
	if b, f := tc.store.Usage("t", "q"); b != sb || f != sf || sb != 30<<10 {
		t.Fatalf("store counts %d bytes in %d files, the storage holds %d in %d (want 30 KiB)", b, f, sb, sf)
	}
}

// SyncCluster after an outage: bans lifted elsewhere meanwhile go, bans made elsewhere come.
func TestClusterSyncMergesBans(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("u")})
	ctx := context.Background()
	if _, err := tc.nodes[1].AddBan(ctx, "192.0.2.1", time.Hour, "test", ""); err != nil {
		t.Fatal(err)
	}
	if !tc.nodes[0].Banned(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("announcement not applied")
	}
	tc.muted[0].Store(true) // node 0 hears nothing
	if _, err := tc.nodes[1].RemoveBans(ctx, "192.0.2.1", "test", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.nodes[1].AddBan(ctx, "192.0.2.2", time.Hour, "test", ""); err != nil {
		t.Fatal(err)
	}
	tc.muted[0].Store(false)
	if err := tc.nodes[0].SyncCluster(ctx); err != nil {
		t.Fatal(err)
	}
	if tc.nodes[0].Banned(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("node 0 still bans an address lifted while it heard nothing")
	}
	if !tc.nodes[0].Banned(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("node 0 does not ban an address banned while it heard nothing")
	}
}

// With on_store_down: refuse, new logins are refused with the clear message (no strike),
// while an upload in flight completes.
func TestClusterStoreDownRefuse(t *testing.T) {
	tc := newTestCluster(t, true, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: 1 << 20} })})
	ctx := context.Background()
	s := login(t, tc.nodes[0], "q")
	h, err := s.OpenWrite(ctx, "/inflight", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write([]byte(strings.Repeat("a", 10<<10))); err != nil {
		t.Fatal(err)
	}
	tc.store.SetDown(true)
	const client = "203.0.113.60"
	for i := range 12 {
		_, err := loginFrom(t, tc.nodes[i%2], client, "q", "pw")
		if !errors.Is(err, core.ErrLimit) || !core.IsStoreDown(err) || core.ErrStoreDown.Error() !=
			"the cluster store cannot be reached; new logins are refused (cluster.on_store_down: refuse)" {
			t.Fatalf("login while the store is down: %v, want the refusal", err)
		}
	}
	if tc.nodes[0].Banned(netip.MustParseAddr(client)) || tc.nodes[1].Banned(netip.MustParseAddr(client)) {
		t.Fatal("refused logins were struck as abuse")
	}
	if _, err := h.Write([]byte(strings.Repeat("b", 100<<10))); err != nil {
		t.Fatalf("upload in flight while the store is down: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("closing the upload in flight: %v", err)
	}
	if fi, err := s.Stat(ctx, "/inflight"); err != nil || fi.Size() != 110<<10 {
		t.Fatalf("the upload in flight: %v, %v", fi, err)
	}
	tc.store.SetDown(false)
	if _, err := loginFrom(t, tc.nodes[1], client, "q", "pw"); err != nil {
		t.Fatalf("login once the store answers again: %v", err)
	}
}

// newPropState starts the quota property game (quota_property_test.go) on two sessions
// whose home is the host folder home.
func newPropState(t *testing.T, seed uint64, a, b *core.Session, home string) *propState {
	t.Helper()
	st := &propState{t: t, rng: rand.New(rand.NewPCG(seed, 19)), sess: [2]*core.Session{a, b},
		hostFn: func() int64 { return tempBytes(t, home) }}
	for _, d := range []string{"/d", "/e"} {
		if err := a.Mkdir(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// runPropSteps plays steps random operations, checking the charge after each, then closes
// the open uploads and checks again.
func runPropSteps(t *testing.T, st *propState, steps int) {
	t.Helper()
	ctx := context.Background()
	var log []string
	for step := range steps {
		what := st.step(ctx)
		log = append(log, what)
		if msg := st.check(); msg != "" {
			t.Fatalf("step %d (%s): %s\nsteps:\n%s\n%s", step, what, msg, strings.Join(log, "\n"), dumpState(st))
		}
	}
	for _, h := range st.open {
		_ = h.Close()
	}
	st.open = nil
	if msg := st.check(); msg != "" {
		t.Fatalf("after closing everything: %s\nsteps:\n%s", msg, strings.Join(log, "\n"))
	}
}

// workers runs f(0) … f(n-1) at once and waits for them.
func workers(n int, f func(w int)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	wg.Wait()
}

// A node hears its own bans again: the equal record changes nothing (no second journal line,
// no event). A ban from a node with another ipv6_prefix is kept under this node's prefix.
func TestClusterApplyOwnBanAndIPv6(t *testing.T) {
	store := coretest.NewClusterStore()
	dir := t.TempDir()
	yes := true
	d := &coretest.Dispatcher{}
	d.On(core.OnBlocklistAdd, func(*core.Event) {})
	c := &config.Site{Name: "t", Protector: config.Protector{Enabled: &yes, Threshold: 10, IPv6Prefix: 64},
		VFS: []config.VFS{{Name: "mem", Type: "memory"}}}
	s, err := core.NewSite(c, core.Options{Events: d, StateDir: dir, Cluster: store.Node("n")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	store.Listen(coretest.Deliver(s))
	if _, err := s.AddBan(context.Background(), "192.0.2.7", time.Hour, "test", ""); err != nil {
		t.Fatal(err)
	}
	journal, err := os.ReadFile(filepath.Join(dir, "bans-t.journal"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(journal), "\n"); n != 1 {
		t.Fatalf("journal after one ban heard back from the store:\n%s\nwant one line", journal)
	}
	if n := blocklistAdds(d); n != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times, want once", n)
	}
	now := time.Now()
	s.ApplyClusterBan(core.ClusterBan{Key: netip.MustParsePrefix("2001:db8:1:2::5/128"),
		BanRecord: core.BanRecord{Until: now.Add(time.Hour), Offences: 1, LastOffence: now}})
	if !s.Banned(netip.MustParseAddr("2001:db8:1:2::99")) {
		t.Fatal("an address's ban from another node does not cover this node's /64 of it")
	}
	s.ApplyClusterBan(core.ClusterBan{Key: netip.MustParsePrefix("2001:db8:9::/48"),
		BanRecord: core.BanRecord{Until: now.Add(time.Hour), Offences: 1, LastOffence: now}})
	if s.Banned(netip.MustParseAddr("2001:db8:9::1")) {
		t.Fatal("a /48 ban was applied to a table of /64 keys")
	}
	s.ApplyClusterLift([]netip.Prefix{netip.MustParsePrefix("2001:db8:1:2::5/128")}, false)
	if s.Banned(netip.MustParseAddr("2001:db8:1:2::99")) {
		t.Fatal("a lift from another node is not applied")
	}
	if n := blocklistAdds(d); n != 1 {
		t.Fatalf("announcements fired OnBlocklistAdd (%d in all)", n)
	}
}

// Writes are served from the node's allowance: an upload of 1 MiB in 32 KiB writes costs one
// reservation and one give-back, not a round trip per write.
func TestClusterQuotaRoundTrips(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: 1 << 30} })})
	s := login(t, tc.nodes[0], "q")
	before := tc.store.Calls("AddUsage")
	h, err := s.OpenWrite(context.Background(), "/big", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	for range 32 {
		if _, err := h.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n := tc.store.Calls("AddUsage") - before; n != 1 {
		t.Fatalf("a 1 MiB upload made %d AddUsage calls, want 1 (a chunk)", n)
	}
	// Files uploaded one after the other are served from what the chunk left.
	for i := range 10 {
		if err := upload(context.Background(), s, fmt.Sprintf("/small%d", i), strings.Repeat("s", 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if n := tc.store.Calls("AddUsage") - before; n != 1 {
		t.Fatalf("ten more small uploads right after made %d AddUsage calls in all, want still 1", n)
	}
	// A second after the last upload closed, what is left goes back to the store.
	coretest.Eventually(t, 10*time.Second, "the allowance to go back", func() bool {
		b, _ := tc.store.Usage("t", "q")
		return b == 1<<20+10*4096
	})
	if n := tc.store.Calls("AddUsage") - before; n != 2 {
		t.Fatalf("%d AddUsage calls in all, want 2 (a chunk, then the rest given back)", n)
	}
	if b, f := core.AllowanceOf(s); b != 0 || f != 0 {
		t.Fatalf("node still holds %d bytes and %d files of allowance", b, f)
	}
}

// A login counts the storage when the stored count is old and no node holds part of the
// usage; if another node logs the user in and reserves quota between the read and the
// replacement, the count must not overwrite that reservation: the store's figure stands, and
// the quota still holds.
func TestClusterFreshCountKeepsAReservationMadeMeanwhile(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: 100 << 10} })})
	ctx := context.Background()
	var b *core.Session
	var started atomic.Bool
	tc.store.BeforeSetUsage(func() {
		if !started.CompareAndSwap(false, true) {
			return // node 1's own count, made while node 0's waits
		}
		// Node 1 logs q in and starts a 60 KiB upload, which reserves its room.
		b = login(t, tc.nodes[1], "q")
		if err := upload(ctx, b, "/two", strings.Repeat("x", 60<<10)); err != nil {
			t.Errorf("upload on node 1: %v", err)
		}
	})
	a := login(t, tc.nodes[0], "q")
	if b == nil {
		t.Fatal("the interleaved login did not run")
	}
	if got, _ := tc.store.Usage("t", "q"); got != 60<<10 {
		t.Fatalf("store counts %d bytes after node 0's fresh count, want node 1's 60 KiB kept", got)
	}
	if err := upload(ctx, a, "/one", strings.Repeat("y", 60<<10)); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("second 60 KiB upload under a 100 KiB quota: %v, want quota exceeded", err)
	}
}

// Two nodes can each see the strike threshold reached (strikes that raced with the other's
// ban, or a node that has not heard the ban yet): the ban in force stands as it is, with one
// offence, one OnBlocklistAdd, and its own length.
func TestClusterRacingThresholdsBanOnce(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("u")})
	ip := netip.MustParseAddr("203.0.113.8")
	ctx := context.Background()
	tc.muted[1].Store(true) // node 1 does not hear node 0's ban
	for range 10 {
		tc.nodes[0].Strike(ctx, ip, "test", nil)
	}
	if !tc.nodes[0].Banned(ip) || tc.nodes[1].Banned(ip) {
		t.Fatalf("after node 0's threshold: banned on node 0 %v, on node 1 %v; want node 0 only", tc.nodes[0].Banned(ip), tc.nodes[1].Banned(ip))
	}
	first := tc.store.BanRecords("t")[netip.PrefixFrom(ip, 32)]
	for range 10 {
		tc.nodes[1].Strike(ctx, ip, "test", nil)
	}
	recs := tc.store.BanRecords("t")
	if got := recs[netip.PrefixFrom(ip, 32)]; got.Offences != 1 || !got.Until.Equal(first.Until) {
		t.Fatalf("store after node 1's threshold: %+v, want the first ban unchanged (%+v)", got, first)
	}
	if got := blocklistAdds(tc.events[0]) + blocklistAdds(tc.events[1]); got != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times, want once", got)
	}
	if !tc.nodes[1].Banned(ip) {
		t.Fatal("node 1 does not enforce the ban its threshold found in the store")
	}
}

// A login reads the store's figure of a user's usage at most once a minute per node, and
// counts the storage only when the stored count is older than a minute: a user who logs in
// again and again (a client that connects per file) costs the store nothing at login. A file
// changed outside wharf is counted at the next login after the minute.
func TestClusterLoginRecountsAtMostOnceAMinute(t *testing.T) {
	for _, limit := range []int{10, 0} {
		t.Run(fmt.Sprintf("max_sessions_per_user=%d", limit), func(t *testing.T) { testLoginRecounts(t, limit) })
	}
}

func testLoginRecounts(t *testing.T, limit int) {
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: 1 << 20} })},
		func(c *config.Site) { c.Limits.MaxSessionsPerUser = limit })
	ctx := context.Background()
	s := login(t, tc.nodes[0], "q")
	if err := upload(ctx, s, "/a", strings.Repeat("a", 1000)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	counts, reads := tc.store.Calls("SetUsage"), tc.store.Calls("ReadUsage")
	if counts != 1 || reads != 1 {
		t.Fatalf("first login made %d reads and %d counts of the storage, want 1 and 1", reads, counts)
	}
	coretest.Eventually(t, 10*time.Second, "node 0 to give its allowance back", func() bool { return !tc.store.Held("t", "q") })
	adds := tc.store.Calls("AddUsage")
	for i := range 6 {
		s := login(t, tc.nodes[i%2], "q")
		if bytes, files := core.UsageOf(s); bytes != 1000 || files != 1 {
			t.Fatalf("login %d sees %d bytes in %d files, want 1000 in 1", i, bytes, files)
		}
		s.Close()
	}
	if got := tc.store.Calls("SetUsage") - counts; got != 0 {
		t.Fatalf("six logins within the minute counted the storage %d times, want none", got)
	}
	if got := tc.store.Calls("AddUsage") - adds; got != 0 {
		t.Fatalf("six logins within the minute made %d AddUsage calls, want none", got)
	}
	if got := tc.store.Calls("ReadUsage") - reads; got != 1 {
		t.Fatalf("six logins within the minute read the store's figure %d times, want once (node 1's first)", got)
	}
	// A file added outside wharf shows once the count is a minute old.
	if err := os.WriteFile(filepath.Join(tc.root, "q", "outside"), make([]byte, 500), 0o644); err != nil {
		t.Fatal(err)
	}
	tc.store.AgeUsageCounts(2 * time.Minute)
	core.AgeUsageReads(tc.nodes[1], 2*time.Minute)
	s = login(t, tc.nodes[1], "q")
	if bytes, files := core.UsageOf(s); bytes != 1500 || files != 2 {
		t.Fatalf("login after the minute sees %d bytes in %d files, want 1500 in 2", bytes, files)
	}
	if got := tc.store.Calls("SetUsage") - counts; got != 1 {
		t.Fatalf("the login after the minute counted the storage %d times, want once", got)
	}
	// A node that holds part of the usage (an upload in progress) keeps any count from
	// replacing the figure.
	h, err := s.OpenWrite(ctx, "/open", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	tc.store.AgeUsageCounts(2 * time.Minute)
	core.AgeUsageReads(tc.nodes[0], 2*time.Minute)
	other := login(t, tc.nodes[0], "q")
	if got := tc.store.Calls("SetUsage") - counts; got != 1 {
		t.Fatalf("a login while node 1 uploads counted the storage (%d counts in all), want no count", got)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	other.Close()
	s.Close()
	coretest.Eventually(t, 10*time.Second, "the figure to settle", func() bool {
		b, f := tc.store.Usage("t", "q")
		return b == 1600 && f == 3 && !tc.store.Held("t", "q")
	})
	// Only a session limit makes a login wait for a claim; a quota alone does not.
	if claims := tc.store.Calls("ClaimSession"); (limit == 0) != (claims == 0) {
		t.Fatalf("%d logins waited for a claim with max_sessions_per_user %d", claims, limit)
	}
}

// The end of a session whose user has no session limit goes with the store's next batch of
// ends (no login waits for its slot); with a limit it is written before Close returns, so the
// slot is free at once for a login on another node.
func TestClusterSessionEndsBatchedWithoutALimit(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("free"), diskUser("capped", func(u *config.User) { u.MaxSessions = 1 })},
		func(c *config.Site) { c.Limits.MaxSessionsPerUser = 0 })
	s := login(t, tc.nodes[0], "free")
	if claims, records := tc.store.Calls("ClaimSession"), tc.store.Calls("RecordSession"); claims != 0 || records != 1 {
		t.Fatalf("login without a limit or quota: %d claims, %d records; want one record and no claim", claims, records)
	}
	if got := tc.store.LiveSessions("t", "free"); len(got) != 1 || got[0].Node != "node0" {
		t.Fatalf("store lists %+v for free, want its session on node0", got)
	}
	s.Close()
	if later, now := tc.store.Calls("EndSessionLater"), tc.store.Calls("EndSession"); later != 1 || now != 0 {
		t.Fatalf("end without a limit: %d batched, %d at once; want 1 batched", later, now)
	}
	if got := len(tc.store.LiveSessions("t", "free")); got != 0 {
		t.Fatalf("store still holds %d sessions of free", got)
	}
	c := login(t, tc.nodes[0], "capped")
	c.Close()
	if later, now := tc.store.Calls("EndSessionLater"), tc.store.Calls("EndSession"); later != 1 || now != 1 {
		t.Fatalf("end with a limit: %d batched, %d at once; want the second at once", later, now)
	}
	// The slot is free at once on the other node.
	login(t, tc.nodes[1], "capped")
}

// Concurrent logins of one user on one node and a session on the other node: with
// max_sessions 3 and one session on node 1, 20 logins at once on node 0 let exactly 2 in.
func TestClusterConcurrentClaimsOnOneNode(t *testing.T) {
	tc := newTestCluster(t, false, []config.User{diskUser("capped", func(u *config.User) { u.MaxSessions = 3 })})
	login(t, tc.nodes[1], "capped")
	var ok, refused atomic.Int32
	workers(20, func(int) {
		_, err := loginFrom(t, tc.nodes[0], "127.0.0.1", "capped", "pw")
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, core.ErrLimit):
			refused.Add(1)
		default:
			t.Errorf("login: %v", err)
		}
	})
	if ok.Load() != 2 || refused.Load() != 18 {
		t.Fatalf("%d logins taken, %d refused; want 2 and 18", ok.Load(), refused.Load())
	}
}

// An upload that uses exactly what the node reserved leaves no allowance, but the node's hold
// in the store stays until the give-back a second after the upload closed clears it; if the
// store is down then, SyncCluster clears it once the store is back, so that a count of the
// storage can replace the figure again.
func TestClusterHoldClearedAfterOutage(t *testing.T) {
	// Chunks of 1 KiB and 1 file (a sixteenth of the quota): a 1 KiB upload uses its
	// reservation exactly.
	tc := newTestCluster(t, false, []config.User{diskUser("q", func(u *config.User) { u.Quota = config.Quota{Bytes: 16 << 10, Files: 16} })})
	ctx := context.Background()
	s := login(t, tc.nodes[0], "q")
	if err := upload(ctx, s, "/one", strings.Repeat("b", 1<<10)); err != nil {
		t.Fatal(err)
	}
	if b, f := core.AllowanceOf(s); b != 0 || f != 0 || !tc.store.Held("t", "q") {
		t.Fatalf("after the upload: allowance %d bytes %d files, held %v; want none and held", b, f, tc.store.Held("t", "q"))
	}
	tc.store.SetDown(true)
	time.Sleep(1500 * time.Millisecond) // the give-back's second passes while the store is down
	tc.store.SetDown(false)
	if !tc.store.Held("t", "q") {
		t.Fatal("the hold went while the store was down")
	}
	if err := tc.nodes[0].SyncCluster(ctx); err != nil {
		t.Fatal(err)
	}
	if tc.store.Held("t", "q") {
		t.Fatal("node 0 still holds part of q's usage in the store after SyncCluster, holding nothing")
	}
}

// With on_store_down: refuse, a login that writes its record later is refused too while the
// store cannot be reached, and served again once it can.
func TestClusterRecordedLoginRefusedWhileStoreDown(t *testing.T) {
	tc := newTestCluster(t, true, []config.User{diskUser("free")}, func(c *config.Site) { c.Limits.MaxSessionsPerUser = 0 })
	tc.store.SetDown(true)
	if _, err := loginFrom(t, tc.nodes[0], "127.0.0.1", "free", "pw"); !core.IsStoreDown(err) {
		t.Fatalf("login while the store is down: %v, want the store-down refusal", err)
	}
	tc.store.SetDown(false)
	login(t, tc.nodes[0], "free")
}
