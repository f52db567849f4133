package scripting_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/protocols/sftp"
	"github.com/wharf-project/wharf/scripting"
)

// The cost of typical upload handlers over a real SFTP connection: a BeforeFileUpload gate
// (an extension check) and an AfterFileUpload log line.

var overheadHandlers = map[string]string{
	"before.lua": denyExe,
	"after.lua":  "Log('uploaded ' .. CtxRelPath() .. ' by ' .. Session.GetUserID())\n",
}

// overheadServer serves a site on a disk VFS with an in-process SFTP server, with the two
// handlers or none, and returns its address. User alice logs in with password "pw" or with
// the key authorized (an authorized_keys line; may be empty). Both variants run a scripting
// engine and log through a text handler (output discarded), as a server does.
func overheadServer(tb testing.TB, scripted bool, authorized string) string {
	tb.Helper()
	fatal := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	dir, root := tb.TempDir(), memTempDir(tb)
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
	alice := config.User{ID: "alice", Password: "plain:pw", Home: config.Mount{VFS: "disk", Permissions: []string{"all"}}}
	if authorized != "" {
		alice.PublicKeys = []string{authorized}
	}
	cfg := &config.Site{Name: "bench", ScriptsDir: dir, EventHandlers: handlers,
		SSH:   config.SSH{HostKeys: []string{key}},
		VFS:   []config.VFS{{Name: "disk", Type: "disk", Root: root, AtomicUploads: &yes}},
		Users: []config.User{alice}}
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
	return l.Addr().String()
}

// memTempDir is a temporary folder on tmpfs (/dev/shm) when there is one, else on the
// test's temporary disk. On a disk the two servers' rounds differed by up to 2× whatever
// their handlers (journal and writeback of 1,000 files a round): the disk, not the handlers,
// set the figure.
func memTempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "wharf-overhead-")
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// overheadClient starts an overheadServer and returns an SFTP client logged in as alice.
func overheadClient(tb testing.TB, scripted bool) *pkgsftp.Client {
	tb.Helper()
	addr := overheadServer(tb, scripted, "")
	sc, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}) // a test server's fresh key
	if err != nil {
		tb.Fatal(err)
	}
	c, err := pkgsftp.NewClient(sc)
	if err != nil {
		tb.Fatal(err)
	}
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

// TestE2EUploadHandlerOverhead compares the wall time of 1,000 small uploads over one SFTP
// connection to a server without handlers and to one with a Before and an After upload
// handler. The contract: under 5% added. Each round times 1,000 uploads back to back on each
// server, in alternating order (A B, B A, …) so that both see the same machine load; the
// figure compares the medians of the rounds.
//
// A second figure interleaves the two servers upload by upload. That is steadier against
// load changes, but each upload then runs with the other server's data in the CPU caches:
// it measures the handlers' cost with cold caches, which a client's run of uploads to one
// server does not see. Both are logged. It runs only with WHARF_BENCH=1 (about 20 s).
func TestE2EUploadHandlerOverhead(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure the upload handlers' overhead")
	}
	const files, rounds = 1000, 9
	plain, scripted := overheadClient(t, false), overheadClient(t, true)
	clients := [2]*pkgsftp.Client{plain, scripted}
	for i := range 200 { // warm up both servers (Lua state pool, file cache)
		upload1K(t, plain, fmt.Sprintf("/f%04d.txt", i))
		upload1K(t, scripted, fmt.Sprintf("/f%04d.txt", i))
	}
	run := func(c *pkgsftp.Client) time.Duration {
		start := time.Now()
		for i := range files {
			upload1K(t, c, fmt.Sprintf("/f%04d.txt", i))
		}
		return time.Since(start)
	}
	alternate(t, fmt.Sprintf("%d uploads of 1 KiB over one SFTP connection, back to back", files), rounds,
		func() time.Duration { return run(plain) }, func() time.Duration { return run(scripted) })

	var each [2][]time.Duration
	for i := range 3 * files {
		name := fmt.Sprintf("/f%04d.txt", i%files)
		first := i % 2
		each[first] = append(each[first], upload1K(t, clients[first], name))
		each[1-first] = append(each[1-first], upload1K(t, clients[1-first], name))
	}
	e0, e1 := median(each[0]), median(each[1])
	t.Logf("interleaved upload by upload (cold caches), median single upload: %v without, %v with (%+.2f%%)",
		e0, e1, float64(e1-e0)/float64(e0)*100)
}

// TestE2EUploadHandlerOverheadOpenSSH is TestE2EUploadHandlerOverhead with OpenSSH's sftp as
// the client, as users run it: one `put -r` of 1,000 files of 1 KiB per round, to a server
// without handlers and to one with the two, alternating (A B, B A, …). The client runs in
// processes of its own, so the servers' runtime is not shared with it.
func TestE2EUploadHandlerOverheadOpenSSH(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure the upload handlers' overhead")
	}
	const files, rounds = 1000, 15
	sftpBin := coretest.NeedBinary(t, "sftp")
	work := t.TempDir()
	keyFile, authorized := newClientKey(t, filepath.Join(work, "id_ed25519"))
	src := filepath.Join(work, "up")
	must(t, os.MkdirAll(src, 0o755))
	var data [1024]byte
	for i := range files {
		must(t, os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d.txt", i)), data[:], 0o644))
	}
	batch := filepath.Join(work, "batch")
	must(t, os.WriteFile(batch, []byte("put -r "+src+" up\n"), 0o644))
	addrs := [2]string{overheadServer(t, false, authorized), overheadServer(t, true, authorized)}
	run := func(addr string) time.Duration {
		_, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, sftpBin, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
			"-o", "IdentitiesOnly=yes", "-i", keyFile, "-P", port, "-b", batch, "alice@127.0.0.1")
		cmd.Env = []string{"HOME=" + work, "PATH=" + os.Getenv("PATH"), "LANG=C"}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sftp: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	run(addrs[0]) // warm up both servers and create the remote folder
	run(addrs[1])
	alternate(t, fmt.Sprintf("OpenSSH sftp, put -r of %d files of 1 KiB", files), rounds,
		func() time.Duration { return run(addrs[0]) }, func() time.Duration { return run(addrs[1]) })
}

// alternate times rounds of without and with (the server without handlers and the one with
// the two), in alternating order (A B, B A, …) so that both see the same machine load, logs
// the medians and every round. It is a measurement, not a pass/fail gate: on a shared 2-core
// machine the figure swings by a few points between runs. The target (under 5%) is tracked
// in docs/performance.md.
func alternate(t *testing.T, what string, rounds int, without, with func() time.Duration) {
	t.Helper()
	fns := [2]func() time.Duration{without, with}
	var runs [2][]time.Duration
	for r := range rounds {
		first := r % 2
		runs[first] = append(runs[first], fns[first]())
		runs[1-first] = append(runs[1-first], fns[1-first]())
	}
	m0, m1 := median(runs[0]), median(runs[1])
	overhead := float64(m1-m0) / float64(m0) * 100
	t.Logf("%s: without handlers %v, with a Before and an After handler %v (medians of %d rounds): %+.2f%% wall time",
		what, m0, m1, rounds, overhead)
	t.Logf("rounds without: %v", runs[0])
	t.Logf("rounds with:    %v", runs[1])
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
