package core_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

type factLog struct {
	mu    sync.Mutex
	facts []core.Fact
}

func (l *factLog) Observe(f *core.Fact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.facts = append(l.facts, *f)
}

func (l *factLog) kinds(k core.FactKind) []core.Fact {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []core.Fact
	for _, f := range l.facts {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

func protectorSite(t *testing.T, stateDir string, now *time.Time, d core.Dispatcher, obs core.Observer) *core.Site {
	t.Helper()
	yes := true
	c := &config.Site{Name: "p", VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{user("u")},
		Protector: config.Protector{Enabled: &yes, Threshold: 3, Window: config.Duration{Duration: time.Minute},
			BanFor: config.Duration{Duration: 10 * time.Minute}, Safe: []config.Prefix{mustPrefix(t, "127.0.0.1")}}}
	if d == nil {
		d = core.NopDispatcher{}
	}
	s, err := core.NewSite(c, core.Options{Events: d, Observer: obs, StateDir: stateDir, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProtectorBansAfterThreshold(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	d := &coretest.Dispatcher{}
	d.On(core.OnProtectorStrike, func(*core.Event) {})
	d.On(core.OnBlocklistAdd, func(*core.Event) {})
	obs := &factLog{}
	site := protectorSite(t, dir, &now, d, obs)
	ctx := context.Background()
	attacker := &net.TCPAddr{IP: net.ParseIP("203.0.113.5"), Port: 1}
	try := func(pw string) error {
		s, err := site.Connect(ctx, core.ConnInfo{Remote: attacker, Protocol: core.ProtoSFTP})
		if err != nil {
			return err
		}
		defer s.Close()
		return s.AuthPassword(ctx, "u", pw)
	}
	// A connection that ends without trying to log in is a strike, and so is a failed login.
	s, err := site.Connect(ctx, core.ConnInfo{Remote: attacker, Protocol: core.ProtoSFTP})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := try("bad"); !errors.Is(err, core.ErrAuth) {
		t.Fatal(err)
	}
	if site.Banned(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("banned after two strikes (threshold 3)")
	}
	_ = try("bad")
	if !site.Banned(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("not banned after the threshold")
	}
	if err := try("pw"); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("banned address connected: %v", err)
	}
	var strikes, adds int
	for _, e := range d.Fired() {
		switch e {
		case core.OnProtectorStrike:
			strikes++
		case core.OnBlocklistAdd:
			adds++
		}
	}
	if strikes != 3 || adds != 1 {
		t.Fatalf("OnProtectorStrike %d, OnBlocklistAdd %d; want 3 and 1", strikes, adds)
	}
	if bans := obs.kinds(core.FactBan); len(bans) != 1 || bans[0].Duration != 10*time.Minute {
		t.Fatalf("ban facts %+v", bans)
	}

	// Bans survive a restart.
	restarted := protectorSite(t, dir, &now, nil, nil)
	if !restarted.Banned(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("ban lost across a restart")
	}
	// Lifted after ban_for; a repeat offender is banned twice as long.
	now = now.Add(11 * time.Minute)
	if restarted.Banned(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("ban not lifted after ban_for")
	}
	obs2 := &factLog{}
	again := protectorSite(t, dir, &now, nil, obs2)
	for range 3 {
		again.Strike(ctx, netip.MustParseAddr("203.0.113.5"), "test", nil)
	}
	if bans := obs2.kinds(core.FactBan); len(bans) != 1 || bans[0].Duration != 20*time.Minute {
		t.Fatalf("repeat offender ban %+v, want 20m", bans)
	}
}

func TestProtectorSafeListAndDisabled(t *testing.T) {
	now := time.Now()
	site := protectorSite(t, "", &now, nil, nil)
	ctx := context.Background()
	for range 20 {
		site.Strike(ctx, netip.MustParseAddr("127.0.0.1"), "test", nil)
	}
	if site.Banned(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("safe-listed address banned")
	}
	no := false
	c := &config.Site{Name: "off", VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Protector: config.Protector{Enabled: &no, Threshold: 1}}
	off, err := core.NewSite(c, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		off.Strike(ctx, netip.MustParseAddr("198.51.100.1"), "test", nil)
	}
	if off.Banned(netip.MustParseAddr("198.51.100.1")) {
		t.Fatal("disabled protector banned an address")
	}
}

func TestObserverFacts(t *testing.T) {
	obs := &factLog{}
	yes := true
	c := &config.Site{Name: "o", VFS: []config.VFS{{Name: "mem", Type: "memory"}}, Users: []config.User{user("u")},
		Protector: config.Protector{Enabled: &yes, Safe: []config.Prefix{mustPrefix(t, "127.0.0.1")}}}
	site, err := core.NewSite(c, core.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := connect(t, site, "127.0.0.1", core.ProtoFTP)
	_ = s.AuthPassword(ctx, "u", "nope")
	if err := s.AuthPassword(ctx, "u", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, s, "/f.txt", "12345"); err != nil {
		t.Fatal(err)
	}
	r, err := s.OpenRead(ctx, "/f.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, _ := r.Read(buf)
	_ = r.Close()
	_, _ = s.OpenRead(ctx, "/missing", 0)
	_ = s.Mkdir(ctx, "/d")
	s.Close()

	logins := obs.kinds(core.FactLogin)
	if len(logins) != 2 || logins[0].Err == nil || logins[1].Err != nil || logins[1].User != "u" || logins[1].Method != "password" {
		t.Fatalf("login facts %+v", logins)
	}
	var ops []string
	for _, f := range obs.kinds(core.FactOperation) {
		ops = append(ops, f.Op+":"+f.Result())
		if f.Op == core.OpDownload && f.Result() == "ok" && f.Bytes != int64(n) {
			t.Fatalf("download bytes %d, want %d", f.Bytes, n)
		}
		if f.Protocol != core.ProtoFTP || f.User != "u" || f.Site != "o" {
			t.Fatalf("fact fields %+v", f)
		}
	}
	want := []string{"upload:ok", "download:ok", "download:no_such_file_or_directory", "mkdir:ok"}
	if !slices.Equal(ops, want) {
		t.Fatalf("operation facts %v, want %v", ops, want)
	}
	if ends := obs.kinds(core.FactSessionEnd); len(ends) != 1 {
		t.Fatalf("session end facts %d", len(ends))
	}
	if conns := obs.kinds(core.FactConnect); len(conns) != 1 || conns[0].Err != nil {
		t.Fatalf("connect facts %+v", conns)
	}
}

// TestProtectorCountsEachConnectionOnce: a login refused by the session limit is no strike,
// an adapter's strike replaces the "closed without authenticating" one, and Terminate(true)
// bans at once.
func TestProtectorCountsEachConnectionOnce(t *testing.T) {
	yes := true
	obs := &factLog{}
	c := &config.Site{Name: "once", VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{user("u", func(u *config.User) { u.MaxSessions = 1 })},
		Protector: config.Protector{Enabled: &yes, Threshold: 3, Window: config.Duration{Duration: time.Minute},
			BanFor: config.Duration{Duration: time.Minute}}}
	site, err := core.NewSite(c, core.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ip = "203.0.113.7"
	a := connect(t, site, ip, core.ProtoSFTP)
	if err := a.AuthPassword(ctx, "u", "pw"); err != nil {
		t.Fatal(err)
	}
	b := connect(t, site, ip, core.ProtoFTP)
	if err := b.AuthPassword(ctx, "u", "pw"); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("second session of a user limited to one: %v", err)
	}
	b.Close()
	if n := len(obs.kinds(core.FactStrike)); n != 0 {
		t.Fatalf("a session-limit refusal counted %d strikes", n)
	}
	s := connect(t, site, ip, core.ProtoFTP)
	s.Strike("unknown command")
	if !s.Accounted() {
		t.Fatal("a struck session is not accounted")
	}
	s.Close()
	if n := len(obs.kinds(core.FactStrike)); n != 1 {
		t.Fatalf("a struck connection that closed counted %d strikes, want 1", n)
	}
	if site.Banned(netip.MustParseAddr(ip)) {
		t.Fatal("banned below the threshold")
	}
	connect(t, site, ip, core.ProtoSFTP).Terminate(true)
	if !site.Banned(netip.MustParseAddr(ip)) {
		t.Fatal("Terminate(true) did not ban")
	}
	if n := len(obs.kinds(core.FactBan)); n != 1 {
		t.Fatalf("%d bans, want 1", n)
	}
}
