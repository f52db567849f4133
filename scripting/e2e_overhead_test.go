package scripting_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/protocols/sftp"
	"github.com/wharf-project/wharf/scripting"
)

// The cost of typical upload handlers over a real SFTP connection: a BeforeFileUpload gate
// (an extension check) and an AfterFileUpload log line.

var overheadHandlers = map[string]string{
	"before.lua": denyExe,
	"after.lua":  "Log('uploaded ' .. CtxRelPath() .. ' by ' .. Session.GetUserID())\n",
}

// overheadClient serves a site on a disk VFS with an in-process SFTP server, with the two
// handlers or none, and returns an SFTP client logged in as alice. Both variants run a
// scripting engine and log through a text handler (output discarded), as a server does.
func overheadClient(tb testing.TB, scripted bool) *pkgsftp.Client {
	tb.Helper()
	fatal := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	dir, root := tb.TempDir(), tb.TempDir()
	var handlers []config.EventHandler
	if scripted {
		handlers = []config.EventHandler{{Event: "BeforeFileUpload", Script: "before.lua"}, {Event: "AfterFileUpload", Script: "after.lua"}}
		for name, src := range overheadHandlers {
			fatal(os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600))
		}
	}
	yes := true
	key := filepath.Join(dir, "host_ed25519")
	writeKey(tb, key)
	cfg := &config.Site{Name: "bench", ScriptsDir: dir, EventHandlers: handlers,
		SSH:   config.SSH{HostKeys: []string{key}},
		VFS:   []config.VFS{{Name: "disk", Type: "disk", Root: root, AtomicUploads: &yes}},
		Users: []config.User{{ID: "alice", Password: "plain:pw", Home: config.Mount{VFS: "disk", Permissions: []string{"all"}}}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := scripting.New(cfg, scripting.Options{Logger: log})
	fatal(err)
	tb.Cleanup(func() { _ = eng.Close() })
	site, err := core.NewSite(cfg, core.Options{Logger: log, Events: eng})
	fatal(err)
	tb.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	srv, err := sftp.New(site, sftp.Options{})
	fatal(err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	fatal(err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	sc, err := ssh.Dial("tcp", l.Addr().String(), &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}) // a test server's fresh key
	fatal(err)
	c, err := pkgsftp.NewClient(sc)
	fatal(err)
	tb.Cleanup(func() { _ = c.Close(); _ = sc.Close() })
	return c
}

// upload1K uploads one file of 1 KiB and returns the time taken.
func upload1K(tb testing.TB, c *pkgsftp.Client, name string) time.Duration {
	tb.Helper()
	var data [1024]byte
	start := time.Now()
	f, err := c.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(data[:]); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestE2EUploadHandlerOverhead uploads 1,000 small files over one SFTP connection to a server
// without handlers and to one with a Before and an After upload handler, and compares the
// wall time. The contract: under 5% added. The two servers' uploads are interleaved one by
// one (in alternating order), so both see the same machine load; each round's total is the
// sum of its 1,000 uploads, and the figure compares the medians of the rounds' totals. It
// runs only with WHARF_BENCH=1 (about 15 s).
func TestE2EUploadHandlerOverhead(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure the upload handlers' overhead")
	}
	const files, rounds = 1000, 5
	plain, scripted := overheadClient(t, false), overheadClient(t, true)
	for i := range 100 { // warm up both servers (Lua state pool, file cache)
		upload1K(t, plain, fmt.Sprintf("/f%04d.txt", i))
		upload1K(t, scripted, fmt.Sprintf("/f%04d.txt", i))
	}
	var without, with, each0, each1 []time.Duration
	for range rounds {
		var sum0, sum1 time.Duration
		for i := range files {
			name := fmt.Sprintf("/f%04d.txt", i)
			var d0, d1 time.Duration
			if i%2 == 0 {
				d0, d1 = upload1K(t, plain, name), upload1K(t, scripted, name)
			} else {
				d1, d0 = upload1K(t, scripted, name), upload1K(t, plain, name)
			}
			sum0, sum1 = sum0+d0, sum1+d1
			each0, each1 = append(each0, d0), append(each1, d1)
		}
		without, with = append(without, sum0), append(with, sum1)
	}
	m0, m1 := median(without), median(with)
	overhead := float64(m1-m0) / float64(m0) * 100
	t.Logf("%d uploads of 1 KiB over one SFTP connection: without handlers %v, with a Before and an After handler %v "+
		"(medians of %d rounds): %+.2f%% wall time", files, m0, m1, rounds, overhead)
	t.Logf("rounds without: %v", without)
	t.Logf("rounds with:    %v", with)
	e0, e1 := median(each0), median(each1)
	t.Logf("median single upload: %v without, %v with (%+.2f%%)", e0, e1, float64(e1-e0)/float64(e0)*100)
	// A measurement, not a pass/fail gate: on a shared 2-core machine the figure swings
	// by several points between runs. The target (under 5%) is tracked in docs/performance.md.
	if overhead >= 5 {
		t.Logf("above the 5%% target: %.2f%%", overhead)
	}
}

// BenchmarkE2ESFTPUpload is one 1 KiB SFTP upload without handlers and with the two.
func BenchmarkE2ESFTPUpload(b *testing.B) {
	for _, scripted := range []bool{false, true} {
		b.Run(fmt.Sprintf("handlers=%v", scripted), func(b *testing.B) {
			c := overheadClient(b, scripted)
			i := 0
			for b.Loop() {
				upload1K(b, c, fmt.Sprintf("/f%04d.txt", i%1000))
				i++
			}
		})
	}
}
