package core_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
)

// TestAdminBansAreJournaled is issue #23 item 7: an operator adds and lifts bans at run time;
// each change is a journal line like a ban, survives a restart, and is a fact (who, why,
// until) for the audit log.
func TestAdminBansAreJournaled(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ctx := context.Background()
	facts := &factLog{}
	site := protectorSite(t, dir, &now, nil, facts)

	b, err := site.AddBan(ctx, "203.0.113.5", time.Hour, "admin@127.0.0.1", "brute force from the night shift")
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr != "203.0.113.5" || !b.Until.Equal(now.Add(time.Hour)) || b.Site != "p" {
		t.Fatalf("ban %+v", b)
	}
	// An IPv6 address is banned by its /64, as the protector counts it.
	if b, err := site.AddBan(ctx, "2001:db8:7:7::99", 2*time.Hour, "admin@127.0.0.1", ""); err != nil || b.Addr != "2001:db8:7:7::/64" {
		t.Fatalf("IPv6 ban %+v, %v", b, err)
	}
	for _, bad := range []string{"203.0.113.0/24", "2001:db8::/48", "nonsense", "127.0.0.1"} {
		if _, err := site.AddBan(ctx, bad, time.Hour, "admin", ""); err == nil {
			t.Errorf("AddBan(%q) accepted", bad)
		}
	}
	if _, err := site.AddBan(ctx, "198.51.100.1", 0, "admin", ""); err == nil {
		t.Error("a ban without a duration was accepted")
	}
	if !site.Banned(netip.MustParseAddr("203.0.113.5")) || !site.Banned(netip.MustParseAddr("2001:db8:7:7::1")) {
		t.Fatal("the bans are not in force")
	}
	if got := site.Bans(); len(got) != 2 {
		t.Fatalf("Bans() = %+v", got)
	}
	bans := facts.kinds(core.FactBan)
	if len(bans) != 2 || bans[0].By != "admin@127.0.0.1" || bans[0].Reason != "brute force from the night shift" ||
		!bans[0].Until.Equal(now.Add(time.Hour)) || bans[0].IP != "203.0.113.5" || bans[1].IP != "2001:db8:7:7::/64" {
		t.Fatalf("ban facts %+v", bans)
	}

	lifted, err := site.RemoveBans(ctx, "203.0.113.5", "admin@127.0.0.1", "false alarm")
	if err != nil || len(lifted) != 1 || lifted[0].Addr != "203.0.113.5" {
		t.Fatalf("RemoveBans: %+v, %v", lifted, err)
	}
	if site.Banned(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("the lifted ban is still in force")
	}
	if un := facts.kinds(core.FactUnban); len(un) != 1 || un[0].IP != "203.0.113.5" || un[0].By != "admin@127.0.0.1" || un[0].Reason != "false alarm" {
		t.Fatalf("unban facts %+v", un)
	}
	journal, err := os.ReadFile(filepath.Join(dir, "bans-p.journal"))
	if err != nil || !strings.Contains(string(journal), `"removed":true`) {
		t.Fatalf("the removal is not journaled: %q %v", journal, err)
	}

	// A restart (the journal read on top of the snapshot) keeps the lift and the other ban.
	if err := site.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	site = protectorSite(t, dir, &now, nil, facts)
	if site.Banned(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("the lifted ban came back after a restart")
	}
	if !site.Banned(netip.MustParseAddr("2001:db8:7:7::1")) {
		t.Fatal("the IPv6 ban was lost in the restart")
	}
	// A journal line after the restart, then "all", then another restart without a
	// clean shutdown (the journal is read, not a compacted snapshot).
	if _, err := site.AddBan(ctx, "198.51.100.7", time.Minute, "admin", ""); err != nil {
		t.Fatal(err)
	}
	if lifted, err := site.RemoveBans(ctx, "all", "admin", "amnesty"); err != nil || len(lifted) != 2 {
		t.Fatalf("remove all: %+v, %v", lifted, err)
	}
	site2 := protectorSite(t, dir, &now, nil, nil)
	if got := site2.Bans(); len(got) != 0 {
		t.Fatalf("bans after lifting all and a restart: %+v", got)
	}
	_ = site.Shutdown(ctx)
	_ = site2.Shutdown(ctx)
}

// TestProtectorBanSaysWhoAndWhy: an automatic ban names the protector and the strikes.
func TestProtectorBanSaysWhoAndWhy(t *testing.T) {
	now := time.Now()
	facts := &factLog{}
	site := protectorSite(t, "", &now, nil, facts)
	for range 3 {
		site.Strike(context.Background(), netip.MustParseAddr("192.0.2.4"), "failed login", nil)
	}
	bans := facts.kinds(core.FactBan)
	if len(bans) != 1 || bans[0].By != "protector" || !strings.Contains(bans[0].Reason, "3 strikes") ||
		!strings.Contains(bans[0].Reason, "failed login") || !bans[0].Until.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("ban facts %+v", bans)
	}
}
