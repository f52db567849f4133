package ftp

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestSpaceAndTimes: ALLO and AVBL follow the user's quota, MFMT sets the mtime.
func TestSpaceAndTimes(t *testing.T) {
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserBob, coretest.Password)
	r.cmd(200, "ALLO 1000")
	if code, msg := r.send("ALLO %d", 2*coretest.QuotaBytes); code != 550 || !strings.Contains(msg, "quota exceeded") {
		t.Fatalf("ALLO over the quota: %d %q", code, msg)
	}
	avail, err := strconv.ParseInt(strings.TrimSpace(r.cmd(213, "AVBL")), 10, 64)
	if err != nil || avail <= 0 || avail > coretest.QuotaBytes {
		t.Fatalf("AVBL = %d (%v), want within the %d-byte quota", avail, err, coretest.QuotaBytes)
	}
	if _, _, final, msg := r.transfer([]byte("t"), "STOR t.txt"); final != 226 {
		t.Fatalf("STOR: %d %q", final, msg)
	}
	r.cmd(213, "MFMT 20200102030405 t.txt")
	fi, err := os.Stat(filepath.Join(root, "home", coretest.UserBob, "t.txt"))
	must(t, err)
	if want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC); !fi.ModTime().Equal(want) {
		t.Fatalf("mtime after MFMT = %v, want %v", fi.ModTime(), want)
	}
	if msg := r.cmd(213, "MDTM t.txt"); !strings.Contains(msg, "20200102030405") {
		t.Fatalf("MDTM = %q", msg)
	}
}

// TestPassiveSettings: passive_ports bounds the data ports and public_host is what PASV
// announces.
func TestPassiveSettings(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	free := l.Addr().(*net.TCPAddr).Port
	must(t, l.Close())
	site, _ := newSite(t, nil, func(c *config.Site) {
		c.FTP.PassivePorts = config.PortRange{Start: free, End: free}
		c.FTP.PublicHost = "127.0.0.1"
	})
	ts := serve(t, site, modePlain)
	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	msg := r.cmd(227, "PASV")
	want := fmt.Sprintf("(127,0,0,1,%d,%d)", free/256, free%256)
	if !strings.Contains(msg, want) {
		t.Fatalf("PASV = %q, want %s", msg, want)
	}
	dc, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)), 5*time.Second)
	must(t, err)
	r.cmd(150, "NLST /")
	data, err := io.ReadAll(dc)
	must(t, err)
	_ = dc.Close()
	r.expect(226)
	if !strings.Contains(string(data), "shared") {
		t.Fatalf("NLST over the configured port: %q", data)
	}
	// The port is free again for the next transfer.
	if _, data, final, m := r.transfer(nil, "NLST /"); final != 226 || !strings.Contains(string(data), "shared") {
		t.Fatalf("NLST over EPSV: %d %q %q", final, m, data)
	}
}

// TestActiveMode: PORT/EPRT work only when ftp.active_mode is on (curl -P).
func TestActiveMode(t *testing.T) {
	curl := coretest.NeedBinary(t, "curl")
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("active_mode=", on), func(t *testing.T) {
			site, root := newSite(t, nil, func(c *config.Site) { c.FTP.ActiveMode = on })
			ts := serve(t, site, modePlain)
			must(t, os.WriteFile(filepath.Join(root, "home", coretest.UserAlice, "a.txt"), []byte("active"), 0o644))
			out, err := run(t, time.Minute, nil, curl, "-sS", "--fail", "--max-time", "20", "-P", "127.0.0.1",
				"-u", coretest.UserAlice+":"+coretest.Password, fmt.Sprintf("ftp://127.0.0.1:%s/a.txt", port(ts)))
			if on && (err != nil || out != "active") {
				t.Fatalf("active download: %v %q", err, out)
			}
			if !on && err == nil {
				t.Fatalf("active download succeeded with active_mode off: %q", out)
			}
		})
	}
}

// Passive ports come from the configured range; a small range is tried whole, a large one
// up to maxPassiveAttempts ports per PASV.
func TestPassivePorts(t *testing.T) {
	for _, tc := range []struct{ start, end, attempts int }{
		{40000, 40000, 1}, {40000, 40009, 10}, {40000, 40199, maxPassiveAttempts}, {1024, 65535, maxPassiveAttempts},
	} {
		r := passivePorts{Start: tc.start, End: tc.end}
		if got := r.NumberAttempts(); got != tc.attempts {
			t.Errorf("%d-%d: %d attempts, want %d", tc.start, tc.end, got, tc.attempts)
		}
		seen := map[int]bool{}
		for range 2000 {
			exposed, listened, ok := r.FetchNext()
			if !ok || exposed != listened || listened < tc.start || listened > tc.end {
				t.Fatalf("%d-%d: FetchNext gave %d, %d, %v", tc.start, tc.end, exposed, listened, ok)
			}
			seen[listened] = true
		}
		if n := tc.end - tc.start + 1; n <= 10 && len(seen) != n {
			t.Errorf("%d-%d: 2000 draws gave %d distinct ports of %d", tc.start, tc.end, len(seen), n)
		}
	}
}
