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

// overheadServer serves a site on a disk VFS with an in-process SFTP server and returns its
// address. Its users differ only in their handlers: "hank" has the two (user-level
// event_handlers), "alice" and "carl" none. Each logs in with password "pw" or with the key
// authorized (an authorized_keys line; may be empty). The server runs a scripting engine and
// logs through a text handler (output discarded), as a server does. Comparing users of one
// server rather than two servers takes out what differs between two processes' runs.
func overheadServer(tb testing.TB, authorized string) string {
	tb.Helper()
	fatal := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	dir, root := tb.TempDir(), memTempDir(tb)
	for name, src := range overheadHandlers {
		fatal(os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600))
	}
	yes := true
	key := filepath.Join(dir, "host_ed25519")
	writeKey(tb, key)
	var users []config.User
	for _, id := range []string{"alice", "carl", "hank"} {
		u := config.User{ID: id, Password: "plain:pw", Home: config.Mount{VFS: "disk", Permissions: []string{"all"}}}
		if authorized != "" {
			u.PublicKeys = []string{authorized}
		}
		if id == "hank" {
			u.EventHandlers = []config.EventHandler{{Event: "BeforeFileUpload", Script: "before.lua"}, {Event: "AfterFileUpload", Script: "after.lua"}}
		}
		users = append(users, u)
	}
	cfg := &config.Site{Name: "bench", ScriptsDir: dir,
		SSH:   config.SSH{HostKeys: []string{key}},
		VFS:   []config.VFS{{Name: "disk", Type: "disk", Root: root + "/{user}", AtomicUploads: &yes}},
		Users: users}
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

// overheadClient returns an SFTP client of the overheadServer at addr, logged in as user.
func overheadClient(tb testing.TB, addr, user string) *pkgsftp.Client {
	tb.Helper()
	sc, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password("pw")},
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
// connection as a user without handlers and as one with a Before and an After upload
// handler, on the same server. The contract: under 5% added. Each round times 1,000 uploads
// back to back as each user, in rotating order so that all see the same machine load; the
// figure compares the medians of the rounds. A third user without handlers is the control:
// its difference from the first is the method's noise.
//
// A second figure interleaves the two users upload by upload. That is steadier against load
// changes, but each upload then runs with the other session's data in the CPU caches: it
// measures the handlers' cost with cold caches, which a client's run of uploads does not
// see. Both are logged. It runs only with WHARF_BENCH=1 (about 30 s).
func TestE2EUploadHandlerOverhead(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure the upload handlers' overhead")
	}
	const files, rounds = 1000, 9
	addr := overheadServer(t, "")
	var clients [3]*pkgsftp.Client
	for i, user := range overheadUsers {
		clients[i] = overheadClient(t, addr, user)
	}
	for i := range 200 { // warm up (Lua state pool, file cache)
		for _, c := range clients {
			upload1K(t, c, fmt.Sprintf("/f%04d.txt", i))
		}
	}
	var runs [3]func() time.Duration
	for i, c := range clients {
		runs[i] = func() time.Duration {
			start := time.Now()
			for i := range files {
				upload1K(t, c, fmt.Sprintf("/f%04d.txt", i))
			}
			return time.Since(start)
		}
	}
	rotate(t, fmt.Sprintf("%d uploads of 1 KiB over one SFTP connection, back to back", files), rounds, runs)

	var each [2][]time.Duration
	for i := range 3 * files {
		name := fmt.Sprintf("/f%04d.txt", i%files)
		first := i % 2
		each[first] = append(each[first], upload1K(t, clients[2*first], name))
		each[1-first] = append(each[1-first], upload1K(t, clients[2*(1-first)], name))
	}
	e0, e1 := median(each[0]), median(each[1])
	t.Logf("interleaved upload by upload (cold caches), median single upload: %v without, %v with (%+.2f%%)",
		e0, e1, float64(e1-e0)/float64(e0)*100)
}

// overheadUsers are overheadServer's users in the order rotate reports them: without
// handlers, the control (also without), with the two handlers.
var overheadUsers = [3]string{"alice", "carl", "hank"}

// TestE2EUploadHandlerOverheadOpenSSH is TestE2EUploadHandlerOverhead with OpenSSH's sftp as
// the client, as users run it: one `put -r` of 1,000 files of 1 KiB per round as each user.
// The client runs in processes of its own, so the server's runtime is not shared with it.
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
	_, port, _ := net.SplitHostPort(overheadServer(t, authorized))
	var runs [3]func() time.Duration
	for i, user := range overheadUsers {
		runs[i] = func() time.Duration {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, sftpBin, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
				"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
				"-o", "IdentitiesOnly=yes", "-i", keyFile, "-P", port, "-b", batch, user+"@127.0.0.1")
			cmd.Env = []string{"HOME=" + work, "PATH=" + os.Getenv("PATH"), "LANG=C"}
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sftp as %s: %v\n%s", user, err, out)
			}
			return time.Since(start)
		}
	}
	for _, run := range runs { // warm up and create the remote folders
		run()
	}
	rotate(t, fmt.Sprintf("OpenSSH sftp, put -r of %d files of 1 KiB", files), rounds, runs)
}

// rotate times rounds of the three runs (without handlers, the control, with the two
// handlers), in an order rotated every round so that all see the same machine load, and logs
// the medians, the median of the rounds' paired differences and every round. It is a
// measurement, not a pass/fail gate: on a shared 2-core machine the figure swings by a few
// points between runs. The target (under 5%) is tracked in docs/performance.md.
func rotate(t *testing.T, what string, rounds int, runs [3]func() time.Duration) {
	t.Helper()
	var times [3][]time.Duration
	for r := range rounds {
		for i := range 3 {
			k := (r + i) % 3
			times[k] = append(times[k], runs[k]())
		}
	}
	added := func(k int) (medians, paired float64) {
		m0 := median(times[0])
		var d []float64
		for r := range rounds {
			d = append(d, float64(times[k][r]-times[0][r])/float64(times[0][r])*100)
		}
		slices.Sort(d)
		return float64(median(times[k])-m0) / float64(m0) * 100, d[len(d)/2]
	}
	with, withPaired := added(2)
	control, controlPaired := added(1)
	t.Logf("%s: without handlers %v, with a Before and an After handler %v (medians of %d rounds): %+.2f%% wall time (paired %+.2f%%)",
		what, median(times[0]), median(times[2]), rounds, with, withPaired)
	t.Logf("control, a second user without handlers: %v, %+.2f%% (paired %+.2f%%): the method's noise",
		median(times[1]), control, controlPaired)
	for k, name := range []string{"without", "control", "with"} {
		t.Logf("rounds %-8s %v", name+":", times[k])
	}
	if with >= 5 {
		t.Logf("above the 5%% target: %.2f%%", with)
	}
}

// BenchmarkE2ESFTPUpload is one 1 KiB SFTP upload as a user without handlers and as one with
// the two, on the same server.
func BenchmarkE2ESFTPUpload(b *testing.B) {
	addr := overheadServer(b, "")
	for _, user := range []string{overheadUsers[0], overheadUsers[2]} {
		b.Run(fmt.Sprintf("handlers=%v", user == overheadUsers[2]), func(b *testing.B) {
			c := overheadClient(b, addr, user)
			i := 0
			for b.Loop() {
				upload1K(b, c, fmt.Sprintf("/f%04d.txt", i%1000))
				i++
			}
		})
	}
}
