package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/internal/pgtest"
)

// Five nodes starting together on an empty database: the migration runs once, all join.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.NewDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range 5 {
		wg.Go(func() {
			s, err := Open(ctx(t), Options{DSN: dsn, NodeID: fmt.Sprintf("n%d", i), Heartbeat: testHeartbeat, NodeTTL: testTTL})
			errs[i] = err
			if err == nil {
				t.Cleanup(func() { _ = s.Close(context.Background()) })
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if n := sqlValue[int](t, dsn, "SELECT count(*) FROM wharf_schema"); n != latestSchema(t) {
		t.Fatalf("%d schema versions recorded, want %d", n, latestSchema(t))
	}
	if n := sqlValue[int](t, dsn, "SELECT count(*) FROM nodes"); n != 5 {
		t.Fatalf("%d nodes registered, want 5", n)
	}
	applied, v, err := Migrate(ctx(t), dsn, nil)
	if err != nil || len(applied) != 0 || v != latestSchema(t) {
		t.Fatalf("Migrate on a current schema: applied %v, version %d, %v", applied, v, err)
	}
}

// A schema made by a newer wharf is refused, by Open and by Migrate, with a clear error.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.NewDB(t)
	applied, v, err := Migrate(ctx(t), dsn, nil)
	if err != nil || len(applied) != latestSchema(t) || applied[0] != 1 || v != latestSchema(t) {
		t.Fatalf("Migrate on an empty database: applied %v, version %d, %v", applied, v, err)
	}
	sqlExec(t, dsn, "INSERT INTO wharf_schema (version, name) VALUES (99, 'future')")
	_, err = Open(ctx(t), Options{DSN: dsn, NodeID: "n1"})
	if err == nil || !strings.Contains(err.Error(), "newer than this wharf knows") || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
	if _, _, err := Migrate(ctx(t), dsn, nil); !errors.Is(err, errSchemaNewer) {
		t.Fatalf("Migrate on a newer schema: %v", err)
	}
}

func TestMigrationFilesWellFormed(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil || len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations: %v, %v", ms, err)
	}
}

// A connection string that cannot be parsed is an error that does not quote it.
func TestUnparseableDSN(t *testing.T) {
	for _, dsn := range []string{"postgres://wharf:s3cretpw@[::1:5432/x", "host=h password=s3cretpw port=notaport"} {
		_, err := Open(ctx(t), Options{DSN: dsn, NodeID: "n1"})
		if err == nil {
			t.Fatalf("%d: opened an unparseable connection string", len(dsn))
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Fatalf("the error quotes the password: %v", err)
		}
	}
}

// 40 logins at once for one user with max_sessions 2, spread over two nodes: exactly 2 get in.
// The nodes' ttl is long enough that neither is taken for dead while 40 claims queue on the
// user's lock on a loaded machine (a node judged dead has its sessions counted by no other
// node, which is right for a dead node and not what this test is about).
func TestClaimSessionLimitAcrossNodes(t *testing.T) {
	dsn := pgtest.NewDB(t)
	slow := func(o *Options) { o.Heartbeat, o.NodeTTL = time.Second, 10*time.Second }
	a, b := openNode(t, dsn, "a", slow), openNode(t, dsn, "b", slow)
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.ClaimSession(ctx(t), session(fmt.Sprintf("s%d", i), "site", "alice"), 2)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, core.ErrLimit):
				limited.Add(1)
			default:
				t.Errorf("claim %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 2 || limited.Load() != 38 {
		t.Fatalf("%d claims accepted and %d refused, want 2 and 38", ok.Load(), limited.Load())
	}
	// Another user and another site are not affected; others counts the user's other sessions.
	if cl, err := a.ClaimSession(ctx(t), session("x1", "site", "bob"), 2); err != nil || cl.Others != 0 {
		t.Fatalf("bob: %d, %v", cl.Others, err)
	}
	if cl, err := b.ClaimSession(ctx(t), session("x2", "other", "alice"), 2); err != nil || cl.Others != 0 {
		t.Fatalf("alice on another site: %d, %v", cl.Others, err)
	}
	if cl, err := b.ClaimSession(ctx(t), session("x3", "site", "alice"), 0); err != nil || cl.Others != 2 {
		t.Fatalf("no limit: %d others, %v", cl.Others, err)
	}
	// Ending a session frees its slot.
	all, err := a.Sessions(ctx(t))
	if err != nil || len(all) != 5 {
		t.Fatalf("sessions: %v, %v", all, err)
	}
	for _, s := range all {
		if s.Site == "site" && s.User == "alice" {
			if err := a.EndSession(ctx(t), s.Site, s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cl, err := a.ClaimSession(ctx(t), session("y1", "site", "alice"), 1); err != nil || cl.Others != 0 {
		t.Fatalf("after the logouts: %d, %v", cl.Others, err)
	}
}

// A node that stops heartbeating without closing loses its sessions after node_ttl, and
// the janitor of a live node deletes its rows.
func TestCrashedNodeSessionsExpire(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	for _, id := range []string{"s1", "s2"} {
		if _, err := a.ClaimSession(ctx(t), session(id, "site", "alice"), 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.ClaimSession(ctx(t), session("s3", "site", "alice"), 2); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("third session while a is alive: %v", err)
	}
	a.crash()
	crashed := time.Now()
	eventually(t, 10*time.Second, "the crashed node's sessions to stop counting", func() bool {
		_, err := b.ClaimSession(ctx(t), session("s3", "site", "alice"), 2)
		return err == nil
	})
	t.Logf("slot freed %v after the crash (node_ttl %v)", time.Since(crashed).Round(time.Millisecond), testTTL)
	list, err := b.Sessions(ctx(t))
	if err != nil || len(list) != 1 || list[0].ID != "s3" || list[0].Node != "b" {
		t.Fatalf("sessions after the crash: %+v, %v", list, err)
	}
	eventually(t, 10*time.Second, "the janitor to delete the dead node's rows", func() bool {
		return sqlValue[int](t, dsn, "SELECT count(*) FROM sessions WHERE node = 'a'") == 0
	})
}

// Two nodes, 50 goroutines each reserving and giving back: usage never passes the limit and
// ends as the sum of what was accepted.
func TestAddUsageNeverPassesLimit(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	const maxBytes, maxFiles = 10_000, 40
	var sumBytes, sumFiles, accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for range 5 {
				nb, nf := r.Int64N(1500)+1, int64(1)
				ok, ub, uf, err := s.AddUsage(ctx(t), "site", "alice", nb, nf, maxBytes, maxFiles, false)
				if err != nil {
					t.Errorf("add: %v", err)
					return
				}
				if ub > maxBytes || uf > maxFiles {
					t.Errorf("usage %d bytes %d files passed the limit", ub, uf)
				}
				if !ok {
					refused.Add(1)
					continue
				}
				accepted.Add(1)
				sumBytes.Add(nb)
				sumFiles.Add(nf)
				if r.IntN(3) == 0 { // give part of it back, as a closed handle does
					back := nb / 2
					if _, _, _, err := s.AddUsage(ctx(t), "site", "alice", -back, 0, maxBytes, maxFiles, false); err != nil {
						t.Errorf("give back: %v", err)
						return
					}
					sumBytes.Add(-back)
				}
			}
		})
	}
	wg.Wait()
	ub := sqlValue[int64](t, dsn, "SELECT bytes FROM quota_usage WHERE site = 'site' AND user_name = 'alice'")
	uf := sqlValue[int64](t, dsn, "SELECT files FROM quota_usage WHERE site = 'site' AND user_name = 'alice'")
	if ub != sumBytes.Load() || uf != sumFiles.Load() {
		t.Fatalf("usage %d bytes %d files, accepted %d bytes %d files", ub, uf, sumBytes.Load(), sumFiles.Load())
	}
	if ub > maxBytes || uf > maxFiles || refused.Load() == 0 {
		t.Fatalf("usage %d/%d, %d refused: the test did not reach the limit", ub, uf, refused.Load())
	}
	t.Logf("%d reservations accepted, %d refused, usage %d bytes %d files", accepted.Load(), refused.Load(), ub, uf)

	// Usage never goes below zero; a refused first reservation creates nothing.
	if ok, ub, uf, err := a.AddUsage(ctx(t), "site", "alice", -1<<40, -1000, maxBytes, maxFiles, false); !ok || ub != 0 || uf != 0 || err != nil {
		t.Fatalf("give back more than used: %v %d %d %v", ok, ub, uf, err)
	}
	if ok, ub, uf, err := a.AddUsage(ctx(t), "site", "bob", 20_000, 1, maxBytes, 0, false); ok || ub != 0 || uf != 0 || err != nil {
		t.Fatalf("first reservation past the limit: %v %d %d %v", ok, ub, uf, err)
	}
	// No limit (0) never refuses; SetUsage replaces.
	if ok, ub, _, err := a.AddUsage(ctx(t), "site", "bob", 1<<40, 0, 0, 0, false); !ok || ub != 1<<40 || err != nil {
		t.Fatalf("without a limit: %v %d %v", ok, ub, err)
	}
	st, err := b.ReadUsage(ctx(t), "site", "bob")
	if err != nil || st.Bytes != 1<<40 || st.Version == 0 || st.Held {
		t.Fatalf("ReadUsage: %+v %v", st, err)
	}
	if replaced, err := b.SetUsage(ctx(t), "site", "bob", 5, 2, st.Version); !replaced || err != nil {
		t.Fatalf("SetUsage of the version read, nothing held: %v %v", replaced, err)
	}
	if ok, ub, uf, err := a.AddUsage(ctx(t), "site", "bob", 0, 0, 0, 0, false); !ok || ub != 5 || uf != 2 || err != nil {
		t.Fatalf("after SetUsage: %v %d %d %v", ok, ub, uf, err)
	}
}

// Strikes from two nodes count together within the window; a ban on node a reaches node b's
// OnBan (and a's own), clears the key's strikes and is in Bans.
func TestStrikesAndBanPropagation(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	key := netip.MustParsePrefix("198.51.100.7/32")
	now := time.Now()
	if n, err := a.Strike(ctx(t), "site", key, now.Add(-time.Hour), time.Minute); err != nil || n != 1 {
		t.Fatalf("old strike: %d, %v", n, err)
	}
	for i, s := range []*node{a, b, a} {
		n, err := s.Strike(ctx(t), "site", key, now.Add(time.Duration(i)*time.Second), time.Minute)
		if err != nil || n != i+1 {
			t.Fatalf("strike %d: count %d, %v", i+1, n, err)
		}
	}
	if n, _ := b.Strike(ctx(t), "other", key, now, time.Minute); n != 1 {
		t.Fatalf("another site's strikes counted: %d", n)
	}
	until := now.Add(time.Hour).Truncate(time.Microsecond)
	sent := time.Now()
	var seen core.BanRecord
	rec, err := a.UpdateBan(ctx(t), "site", key, func(cur core.BanRecord) core.BanRecord {
		seen = cur
		return core.BanRecord{Until: until, Offences: cur.Offences + 1, LastOffence: now}
	})
	if err != nil || rec.Offences != 1 || seen != (core.BanRecord{}) {
		t.Fatalf("first ban: %+v (saw %+v), %v", rec, seen, err)
	}
	eventually(t, 5*time.Second, "the ban to reach node b", b.heard(func(n *node) bool { return len(n.bans) == 1 }))
	b.mu.Lock()
	got := b.bans[0]
	b.mu.Unlock()
	t.Logf("ban propagation a → b: %v", got.at.Sub(sent).Round(time.Microsecond))
	if got.site != "site" || got.ban.Key != key || !got.ban.Until.Equal(until) || got.ban.Offences != 1 {
		t.Fatalf("b heard %+v", got)
	}
	eventually(t, 5*time.Second, "the ban to reach node a itself", a.heard(func(n *node) bool { return len(n.bans) == 1 }))
	if n := sqlValue[int](t, dsn, "SELECT count(*) FROM strikes WHERE site = 'site'"); n != 0 {
		t.Fatalf("%d strikes left after the ban", n)
	}
	// The next change sees the stored record.
	rec, err = b.UpdateBan(ctx(t), "site", key, func(cur core.BanRecord) core.BanRecord {
		seen = cur
		cur.Offences++
		return cur
	})
	if err != nil || !seen.Until.Equal(until) || seen.Offences != 1 || rec.Offences != 2 {
		t.Fatalf("second ban: saw %+v, stored %+v, %v", seen, rec, err)
	}
	bans, err := b.Bans(ctx(t), "site")
	if err != nil || len(bans) != 1 || bans[0].Key != key || bans[0].Offences != 2 || !bans[0].LastOffence.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("bans: %+v, %v", bans, err)
	}
	if bans, _ := b.Bans(ctx(t), "other"); len(bans) != 0 {
		t.Fatalf("another site's bans: %+v", bans)
	}
}

// Concurrent UpdateBan calls on one key from two nodes are serialised by the row lock:
// every change sees the one before.
func TestUpdateBanSerialised(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	key := netip.MustParsePrefix("2001:db8:1::/64")
	var wg sync.WaitGroup
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if _, err := s.UpdateBan(ctx(t), "site", key, func(cur core.BanRecord) core.BanRecord {
				cur.Offences++
				return cur
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	bans, err := a.Bans(ctx(t), "site")
	if err != nil || len(bans) != 1 || bans[0].Offences != 20 {
		t.Fatalf("bans: %+v, %v", bans, err)
	}
}

// Lifting keys and lifting all are stored and announced to every node.
func TestLiftBans(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	keys := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32"), netip.MustParsePrefix("192.0.2.3/32")}
	for _, k := range keys {
		if _, err := a.UpdateBan(ctx(t), "site", k, func(core.BanRecord) core.BanRecord {
			return core.BanRecord{Until: time.Now().Add(time.Hour), Offences: 1, LastOffence: time.Now()}
		}); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := a.LiftBans(ctx(t), "site", keys[:1], false)
	if err != nil || len(removed) != 1 || removed[0].Key != keys[0] || removed[0].Offences != 1 {
		t.Fatalf("lift one: %+v, %v", removed, err)
	}
	eventually(t, 5*time.Second, "the lift to reach b", b.heard(func(n *node) bool { return len(n.lifts) == 1 }))
	b.mu.Lock()
	if l := b.lifts[0]; l.site != "site" || l.all || !slices.Equal(l.keys, keys[:1]) {
		t.Fatalf("b heard %+v", l)
	}
	b.mu.Unlock()
	removed, err = b.LiftBans(ctx(t), "site", nil, true)
	if err != nil || len(removed) != 2 {
		t.Fatalf("lift all: %+v, %v", removed, err)
	}
	eventually(t, 5*time.Second, "the lift-all to reach a", a.heard(func(n *node) bool {
		return len(n.lifts) == 2 && n.lifts[1].all && n.lifts[1].site == "site"
	}))
	if bans, err := a.Bans(ctx(t), "site"); err != nil || len(bans) != 0 {
		t.Fatalf("bans after lift all: %+v, %v", bans, err)
	}
}

// PutBans: a record replaces the stored one only when its last offence is later; only
// stored records are announced; many records are announced in several payloads.
func TestPutBansMerge(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	t0 := time.Now().Truncate(time.Microsecond)
	k1, k2 := netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("203.0.113.2/32")
	if _, err := a.UpdateBan(ctx(t), "site", k1, func(core.BanRecord) core.BanRecord {
		return core.BanRecord{Until: t0.Add(time.Hour), Offences: 3, LastOffence: t0}
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the ban to reach b", b.heard(func(n *node) bool { return len(n.bans) == 1 }))
	err := b.PutBans(ctx(t), "site", []core.ClusterBan{
		{Key: k1, BanRecord: core.BanRecord{Until: t0.Add(time.Minute), Offences: 1, LastOffence: t0.Add(-time.Minute)}}, // older: kept out
		{Key: k2, BanRecord: core.BanRecord{Until: t0.Add(time.Minute), Offences: 1, LastOffence: t0.Add(-time.Minute)}},
		{Key: k2, BanRecord: core.BanRecord{Until: t0.Add(2 * time.Minute), Offences: 2, LastOffence: t0}}, // the later of two
	})
	if err != nil {
		t.Fatal(err)
	}
	bans, err := a.Bans(ctx(t), "site")
	if err != nil || len(bans) != 2 || bans[0].Offences != 3 || bans[1].Offences != 2 || !bans[1].Until.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("bans after merge: %+v, %v", bans, err)
	}
	eventually(t, 5*time.Second, "the merged ban to reach a", a.heard(func(n *node) bool { return len(n.bans) == 2 }))
	if err := a.PutBans(ctx(t), "site", []core.ClusterBan{{Key: k1, BanRecord: core.BanRecord{Until: t0.Add(3 * time.Hour), Offences: 4, LastOffence: t0.Add(time.Second)}}}); err != nil {
		t.Fatal(err)
	}
	if bans, _ := a.Bans(ctx(t), "site"); bans[0].Offences != 4 {
		t.Fatalf("a later record did not replace: %+v", bans)
	}
	// 500 records: announced in payloads under PostgreSQL's limit, every one heard.
	many := make([]core.ClusterBan, 500)
	for i := range many {
		many[i] = core.ClusterBan{Key: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32),
			BanRecord: core.BanRecord{Until: t0.Add(time.Hour), Offences: 1, LastOffence: t0}}
	}
	if err := a.PutBans(ctx(t), "big", many); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "500 bans to reach b", b.heard(func(n *node) bool { return len(n.bans) == 2+1+500 }))
}

// Kick reaches the node that serves the session, and only it.
func TestKickRoutedToOwner(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	if _, err := b.ClaimSession(ctx(t), session("sess-b", "site", "alice"), 0); err != nil {
		t.Fatal(err)
	}
	nodeID, found, err := a.Kick(ctx(t), "sess-b")
	if err != nil || !found || nodeID != "b" {
		t.Fatalf("kick: %q %v %v", nodeID, found, err)
	}
	eventually(t, 5*time.Second, "b to be asked to kick", b.heard(func(n *node) bool { return slices.Equal(n.kicks, []string{"sess-b"}) }))
	if _, found, err := a.Kick(ctx(t), "nope"); found || err != nil {
		t.Fatalf("kick of an unknown session: %v %v", found, err)
	}
	// a heard the announcement too (b's second kick comes after it) and did not act on it.
	if _, _, err := b.Kick(ctx(t), "sess-b"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the second kick", b.heard(func(n *node) bool { return len(n.kicks) == 2 }))
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.kicks) != 0 {
		t.Fatalf("a kicked %v", a.kicks)
	}
}

// ReloadAll reaches every live node, the caller's included.
func TestReloadAll(t *testing.T) {
	dsn := pgtest.NewDB(t)
	nodes := []*node{openNode(t, dsn, "a"), openNode(t, dsn, "b"), openNode(t, dsn, "c")}
	asked, err := nodes[1].ReloadAll(ctx(t))
	if err != nil || !slices.Equal(asked, []string{"a", "b", "c"}) {
		t.Fatalf("reload: %v, %v", asked, err)
	}
	for _, n := range nodes {
		eventually(t, 5*time.Second, "node "+n.NodeID()+" to reload", n.heard(func(n *node) bool { return n.reloads == 1 }))
	}
}

// Inspect: nodes with their version, hash, liveness and live sessions; the node whose
// configuration differs from the most common one; bans in force.
func TestInspect(t *testing.T) {
	dsn := pgtest.NewDB(t)
	st, err := Inspect(ctx(t), dsn, testTTL)
	if err != nil || st.SchemaVersion != 0 || len(st.Nodes) != 0 {
		t.Fatalf("empty database: %+v, %v", st, err)
	}
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	c := openNode(t, dsn, "c", func(o *Options) { o.ConfigHash = "h2" })
	d := openNode(t, dsn, "d")
	for i, n := range []*node{a, a, b, d} {
		if _, err := n.ClaimSession(ctx(t), session(fmt.Sprint("s", i), "site", "u"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.UpdateBan(ctx(t), "site", netip.MustParsePrefix("192.0.2.9/32"), func(core.BanRecord) core.BanRecord {
		return core.BanRecord{Until: time.Now().Add(time.Hour), Offences: 1, LastOffence: time.Now()}
	}); err != nil {
		t.Fatal(err)
	}
	d.crash()
	eventually(t, 10*time.Second, "d to count as dead", func() bool {
		st, err = Inspect(ctx(t), dsn, testTTL)
		return err == nil && len(st.Nodes) == 4 && !st.Nodes[3].Alive
	})
	want := map[string]struct {
		alive    bool
		sessions int
	}{"a": {true, 2}, "b": {true, 1}, "c": {true, 0}, "d": {false, 0}}
	for _, n := range st.Nodes {
		w := want[n.ID]
		if n.Alive != w.alive || n.Sessions != w.sessions || n.Version != "test" || n.Started.IsZero() || n.LastHeartbeat.IsZero() {
			t.Errorf("node %+v, want %+v", n, w)
		}
	}
	if st.SchemaVersion != latestSchema(t) || st.Bans != 1 || !slices.Equal(st.ConfigDiffers, []string{"c"}) {
		t.Fatalf("status: version %d, %d bans, differs %v", st.SchemaVersion, st.Bans, st.ConfigDiffers)
	}
	// A reload's new hash goes out with the next heartbeat.
	c.SetConfigHash("h1")
	eventually(t, 5*time.Second, "c's new hash", func() bool {
		st, err := Inspect(ctx(t), dsn, testTTL)
		return err == nil && len(st.ConfigDiffers) == 0
	})
	if got := configDiffers([]NodeStatus{{ID: "x", Alive: true, ConfigHash: "1"}, {ID: "y", Alive: true, ConfigHash: "2"}}); len(got) != 2 {
		t.Fatalf("a tie flags every node: %v", got)
	}
}

// A node that starts again with its id deletes the rows of its previous process, warns when
// that one still looked alive, and Close removes the node and its sessions.
func TestRestartAndClose(t *testing.T) {
	dsn := pgtest.NewDB(t)
	old := openNode(t, dsn, "a")
	if _, err := old.ClaimSession(ctx(t), session("s1", "site", "alice"), 0); err != nil {
		t.Fatal(err)
	}
	old.crash() // killed: its row still looks alive for node_ttl
	fresh := openNode(t, dsn, "a")
	if !strings.Contains(fresh.log.String(), "another live process was registered with this node id") {
		t.Fatalf("no take-over warning: %s", fresh.log.String())
	}
	if n := sqlValue[int](t, dsn, "SELECT count(*) FROM sessions"); n != 0 {
		t.Fatalf("%d session rows of the previous process left", n)
	}
	if _, err := fresh.ClaimSession(ctx(t), session("s2", "site", "alice"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := sqlValue[int](t, dsn, "SELECT count(*) FROM sessions") + sqlValue[int](t, dsn, "SELECT count(*) FROM nodes"); n != 0 {
		t.Fatalf("%d rows left after Close", n)
	}
	// A restart after a clean stop does not warn.
	again := openNode(t, dsn, "a")
	if strings.Contains(again.log.String(), "another live process") {
		t.Fatalf("warned after a clean stop: %s", again.log.String())
	}
}

// The janitor deletes strikes older than a day, bans expired more than 7 days ago, nodes
// dead for a day and sessions of dead nodes; it keeps everything else.
func TestJanitor(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a := openNode(t, dsn, "a", func(o *Options) { o.Heartbeat = time.Hour; o.NodeTTL = 2 * time.Hour })
	sqlExec(t, dsn, `INSERT INTO strikes (site, key, at) VALUES ('s', 'old', now() - interval '25 hours'), ('s', 'new', now() - interval '1 hour');
		INSERT INTO bans (site, key, until, offences, last_offence) VALUES
			('s', '192.0.2.1/32', now() - interval '8 days', 3, now() - interval '9 days'),
			('s', '192.0.2.2/32', now() - interval '6 days', 3, now() - interval '6 days'),
			('s', '192.0.2.3/32', now() + interval '1 hour', 1, now());
		INSERT INTO nodes (id, instance, started, last_seen) VALUES
			('gone', 'x', now() - interval '3 days', now() - interval '25 hours'),
			('dead', 'y', now() - interval '3 days', now() - interval '3 hours');
		INSERT INTO sessions (id, site, user_name, node, started) VALUES
			('s1', 's', 'u', 'dead', now()), ('s2', 's', 'u', 'gone', now()), ('s3', 's', 'u', 'a', now())`)
	a.janitor(ctx(t))
	for q, want := range map[string]string{
		"SELECT string_agg(key, ',' ORDER BY key) FROM strikes": "new",
		"SELECT string_agg(key, ',' ORDER BY key) FROM bans":    "192.0.2.2/32,192.0.2.3/32",
		"SELECT string_agg(id, ',' ORDER BY id) FROM nodes":     "a,dead",
		"SELECT string_agg(id, ',' ORDER BY id) FROM sessions":  "s3",
	} {
		if got := sqlValue[string](t, dsn, q); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
}

// SetUsage replaces the usage only if it did not change since it was read and no live node
// holds part of it: a reservation made on another node in between, or an allowance a node
// holds (which a count of the storage misses), must not be overwritten by the count. A dead
// node's hold does not count.
func TestSetUsageKeepsOtherNodesReservations(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a, b := openNode(t, dsn, "a"), openNode(t, dsn, "b")
	// No usage stored yet: version 0, and the first count inserts it.
	st, err := a.ReadUsage(ctx(t), "site", "carol")
	if err != nil || st != (core.StoredUsage{}) {
		t.Fatalf("ReadUsage with nothing stored: %+v %v", st, err)
	}
	// Node b reserves before node a's count lands: the count is refused.
	if ok, _, _, err := b.AddUsage(ctx(t), "site", "carol", 1000, 1, 10_000, 0, true); !ok || err != nil {
		t.Fatalf("reservation: %v %v", ok, err)
	}
	if replaced, err := a.SetUsage(ctx(t), "site", "carol", 300, 3, st.Version); replaced || err != nil {
		t.Fatalf("SetUsage after a reservation: replaced=%v err=%v, want the usage kept", replaced, err)
	}
	// Read again: node b holds its allowance, so no count replaces the figure either.
	st, err = a.ReadUsage(ctx(t), "site", "carol")
	if err != nil || st.Bytes != 1000 || st.Files != 1 || !st.Held || st.Version == 0 {
		t.Fatalf("ReadUsage while b holds: %+v %v", st, err)
	}
	if replaced, err := a.SetUsage(ctx(t), "site", "carol", 300, 3, st.Version); replaced || err != nil {
		t.Fatalf("SetUsage while b holds: replaced=%v err=%v, want the usage kept", replaced, err)
	}
	// A figure read (an addition of nothing) changes no version.
	if _, ub, uf, err := a.AddUsage(ctx(t), "site", "carol", 0, 0, 0, 0, false); ub != 1000 || uf != 1 || err != nil {
		t.Fatalf("usage after the refused SetUsage: %d %d %v, want 1000 1", ub, uf, err)
	}
	// Node b gives back what it did not use and holds nothing: the count replaces.
	if _, _, _, err := b.AddUsage(ctx(t), "site", "carol", -700, 0, 0, 0, false); err != nil {
		t.Fatal(err)
	}
	st, err = a.ReadUsage(ctx(t), "site", "carol")
	if err != nil || st.Held || st.Bytes != 300 {
		t.Fatalf("ReadUsage after b's give-back: %+v %v", st, err)
	}
	if replaced, err := a.SetUsage(ctx(t), "site", "carol", 310, 3, st.Version); !replaced || err != nil {
		t.Fatalf("SetUsage with nothing held: replaced=%v err=%v", replaced, err)
	}
	if st, _ := a.ReadUsage(ctx(t), "site", "carol"); st.Bytes != 310 || st.Files != 3 || time.Since(st.CountedAt) > time.Minute {
		t.Fatalf("usage after SetUsage: %+v, want 310 3, counted now", st)
	}
	// A hold of a node that stopped heartbeating does not block a count.
	if ok, _, _, err := b.AddUsage(ctx(t), "site", "carol", 100, 0, 10_000, 0, true); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// Stopped first: a live b's next heartbeat would bring it back between the read and
	// the count (a failure seen once in CI).
	b.crash()
	sqlExec(t, dsn, "UPDATE nodes SET last_seen = now() - interval '1 hour' WHERE id = 'b'")
	st, err = a.ReadUsage(ctx(t), "site", "carol")
	if err != nil || st.Held {
		t.Fatalf("ReadUsage with a dead node's hold: %+v %v, want not held", st, err)
	}
	if replaced, err := a.SetUsage(ctx(t), "site", "carol", 310, 3, st.Version); !replaced || err != nil {
		t.Fatalf("SetUsage with a dead node's hold: replaced=%v err=%v", replaced, err)
	}
}

// A store at an older schema version, with data, is brought to the latest one by the next
// Migrate (or Open), which applies only the migrations it lacks and keeps the rows.
func TestMigrateFromOlderSchema(t *testing.T) {
	if latestSchema(t) < 2 {
		t.Skip("one schema version only")
	}
	dsn := pgtest.NewDB(t)
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Version 1 as a node of the first release left it, with a user's usage.
	for _, q := range []string{
		"CREATE TABLE wharf_schema (version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())",
		ms[0].sql,
		"INSERT INTO wharf_schema (version, name) VALUES (1, 'init')",
		"INSERT INTO quota_usage (site, user_name, bytes, files) VALUES ('site', 'alice', 1234, 5)",
	} {
		if _, err := conn.Exec(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	applied, v, err := Migrate(ctx(t), dsn, nil)
	if err != nil || v != latestSchema(t) || len(applied) != latestSchema(t)-1 || applied[0] != 2 {
		t.Fatalf("Migrate from version 1: applied %v, version %d, %v", applied, v, err)
	}
	a := openNode(t, dsn, "a")
	st, err := a.ReadUsage(ctx(t), "site", "alice")
	if err != nil || st.Bytes != 1234 || st.Files != 5 || !st.CountedAt.IsZero() || st.Version == 0 || st.Held {
		t.Fatalf("usage after the migration: %+v, %v; want the old row, never counted", st, err)
	}
	if replaced, err := a.SetUsage(ctx(t), "site", "alice", 10, 1, st.Version); !replaced || err != nil {
		t.Fatalf("SetUsage: %v %v", replaced, err)
	}
	st, err = a.ReadUsage(ctx(t), "site", "alice")
	if err != nil || st.Bytes != 10 || time.Since(st.CountedAt) > time.Minute {
		t.Fatalf("usage after a count: %+v, %v; want the count, just made", st, err)
	}
}

// The ends of sessions without a session limit are deleted together: 300 ends issued at once
// take a few statements, not 300, and every record is gone shortly after.
func TestEndSessionLaterBatches(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a := openNode(t, dsn, "a")
	const n = 300
	for i := range n {
		if _, err := a.ClaimSession(ctx(t), session(fmt.Sprint("e", i), "site", fmt.Sprint("u", i%7)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		a.EndSessionLater("site", fmt.Sprint("e", i))
	}
	eventually(t, 10*time.Second, "the records to go", func() bool { return len(sessionIDs(t, dsn, "a")) == 0 })
	a.ends.mu.Lock()
	flushes := a.ends.flushes
	a.ends.mu.Unlock()
	if flushes < 1 || flushes > 30 {
		t.Fatalf("%d ends took %d statements, want a few", n, flushes)
	}
}

// Sessions recorded later are written in batches; one that ends before its batch went writes
// nothing; while the store is down, RecordSession refuses at once.
func TestRecordSessionBatches(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a := openNode(t, dsn, "a")
	const n = 300
	for i := range n {
		if err := a.RecordSession(session(fmt.Sprint("r", i), "site", "u")); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			a.EndSessionLater("site", fmt.Sprint("r", i))
		}
	}
	eventually(t, 10*time.Second, "the records", func() bool { return len(sessionIDs(t, dsn, "a")) == n/2 })
	for _, id := range sessionIDs(t, dsn, "a") {
		var i int
		if _, err := fmt.Sscanf(id, "r%d", &i); err != nil || i%2 == 1 {
			t.Fatalf("record %s written, want only the sessions that did not end", id)
		}
	}
	live, err := a.Sessions(ctx(t))
	if err != nil || len(live) != n/2 || live[0].Node != "a" {
		t.Fatalf("Sessions: %d, %v", len(live), err)
	}
}
