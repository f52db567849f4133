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

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/smtptest"
	"github.com/wharf-project/wharf/ops/mailq"
	"github.com/wharf-project/wharf/protocols/sftp"
	"github.com/wharf-project/wharf/scripting"
)

// The cost of an asynchronous AfterFileUpload handler that sends mail, over a real SFTP
// connection: the mail is queued in a spool (on tmpfs, like the data; on the test's temporary
// disk with WHARF_BENCH_SPOOL=disk) and delivered to a real SMTP server on loopback (STARTTLS,
// AUTH) while the uploads go on.

const mailHandler = "SendMail('', 'ops@example.com', 'Uploaded ' .. CtxRelPath(), 'by ' .. Session.GetUserID(), '')\n"

// asyncMailServer serves a site whose user "mona" has an asynchronous AfterFileUpload handler
// that mails every upload; "alice" and "carl" have no handlers. It returns the SFTP address
// and the SMTP relay: in this process, or (ownProcess) in a process of its own, whose CPU
// time is then not charged to the server's.
func asyncMailServer(tb testing.TB, authorized string, ownProcess bool) (string, mailRelay) {
	tb.Helper()
	fatal := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	var relaySrv mailRelay
	if ownProcess {
		relaySrv = startRelayProcess(tb)
	} else {
		relaySrv = inProcessRelay{smtptest.Start(tb, smtptest.Options{TLS: "starttls", Username: "wharf", Password: "pw"})}
	}
	host, port, caFile := relaySrv.Endpoint()
	relay := &config.SMTP{Host: host, Port: port, TLS: "starttls", CAFile: caFile, Username: "wharf",
		Password: config.InlineSecret("pw"), From: "wharf@example.com", MaxMessageSize: 1 << 20,
		Timeout: config.Duration{Duration: 30 * time.Second}, GiveUpAfter: config.Duration{Duration: time.Hour}}
	dir, root := tb.TempDir(), memTempDir(tb)
	fatal(os.WriteFile(filepath.Join(dir, "mail.lua"), []byte(mailHandler), 0o600))
	fatal(os.WriteFile(filepath.Join(dir, "log.lua"), []byte("Log('uploaded ' .. CtxRelPath() .. ' by ' .. Session.GetUserID())\n"), 0o600))
	fatal(os.WriteFile(filepath.Join(dir, "collect.lua"), []byte("Session.AddCustomData(CtxRelPath())\n"), 0o600))
	fatal(os.WriteFile(filepath.Join(dir, "mail-list.lua"), []byte(
		"local files = Session.GetAllCustomData()\n"+
			"if #files > 0 then SendMail('', 'ops@example.com', #files .. ' files from ' .. Session.GetUserID(), table.concat(files, '\\n'), '') end\n"), 0o600))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	spool := filepath.Join(root, "spool") // tmpfs, like the data
	if os.Getenv("WHARF_BENCH_SPOOL") == "disk" {
		spool = filepath.Join(tb.TempDir(), "spool") // where state_dir usually is: each message's fsync reaches the disk
	}
	q, err := mailq.Open(mailq.Options{Dir: spool, Relay: func(string) *config.SMTP { return relay }, Logger: log})
	fatal(err)
	q.Start()
	tb.Cleanup(func() { _ = q.Close(context.Background()) })
	yes := true
	key := filepath.Join(dir, "host_ed25519")
	writeKey(tb, key)
	var users []config.User
	for _, id := range []string{"alice", "carl", "mona", "nora", "sam", "erin"} {
		u := config.User{ID: id, Password: "plain:pw", Home: config.Mount{VFS: "disk", Permissions: []string{"all"}}}
		if authorized != "" {
			u.PublicKeys = []string{authorized}
		}
		switch id {
		case "mona": // mails every upload, asynchronously
			u.EventHandlers = []config.EventHandler{{Event: "AfterFileUpload", Script: "mail.lua", Mode: "async"}}
		case "nora": // logs every upload, asynchronously
			u.EventHandlers = []config.EventHandler{{Event: "AfterFileUpload", Script: "log.lua", Mode: "async"}}
		case "sam": // logs every upload, synchronously
			u.EventHandlers = []config.EventHandler{{Event: "AfterFileUpload", Script: "log.lua"}}
		case "erin": // Syncplify's E1: collects the uploads, mails the list when the session ends
			u.EventHandlers = []config.EventHandler{{Event: "AfterFileUpload", Script: "collect.lua"},
				{Event: "OnConnectionClose", Script: "mail-list.lua", Mode: "async"}}
		}
		users = append(users, u)
	}
	cfg := &config.Site{Name: "bench", ScriptsDir: dir,
		SSH:   config.SSH{HostKeys: []string{key}},
		VFS:   []config.VFS{{Name: "disk", Type: "disk", Root: root + "/{user}", AtomicUploads: &yes}},
		Users: users}
	eng, err := scripting.New(cfg, scripting.Options{Logger: log, Mail: queueMailer{q}})
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
	return l.Addr().String(), relaySrv
}

// TestE2EAsyncMailHandlerOverhead compares the wall time of 1,000 uploads of 1 KiB over one
// SFTP connection as a user without handlers and as one whose asynchronous AfterFileUpload
// handler mails each upload, on the same server, in rounds of rotating order (as
// TestE2EUploadHandlerOverhead does). The contract: under 5% added. The mail is delivered
// while the uploads go on, so its cost (the spool's writes, the SMTP sessions) is in the
// figure as far as it lands in the rounds. It runs only with WHARF_BENCH=1.
func TestE2EAsyncMailHandlerOverhead(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure the asynchronous mail handler's overhead")
	}
	const files, rounds = 1000, 9
	addr, relay := asyncMailServer(t, "", false)
	users := [3]string{"alice", "carl", "mona"} // without, control, with
	var clients [3]*pkgsftp.Client
	for i, u := range users {
		clients[i] = overheadClient(t, addr, u)
	}
	for i := range 200 {
		for _, c := range clients {
			upload1K(t, c, fmt.Sprintf("/f%04d.txt", i))
		}
	}
	var times [3][]time.Duration
	for r := range rounds {
		for i := range 3 {
			k := (r + i) % 3
			start := time.Now()
			for j := range files {
				upload1K(t, clients[k], fmt.Sprintf("/f%04d.txt", j))
			}
			times[k] = append(times[k], time.Since(start))
		}
	}
	reportAsyncMail(t, fmt.Sprintf("%d uploads of 1 KiB over one SFTP connection (pkg/sftp)", files), rounds, times)
	want := 200 + rounds*files
	if got := relay.WaitCount(want, 2*time.Minute); got != want {
		t.Errorf("the relay received %d of %d messages", got, want)
	}
}

// TestE2EAsyncMailHandlerOverheadOpenSSH is TestE2EAsyncMailHandlerOverhead with OpenSSH's
// sftp as the client (its own processes), one `put -r` of 1,000 files of 1 KiB per round.
//
// A round's wall time is the client's: from starting sftp to its exit, which is what the user
// sees (the mail is queued, not sent, while it waits). After it, the round waits until the
// relay received every message of the round (all 1,000, counted), so that no delivery spills
// into the next round, and the CPU time of the server process (and of the relay, when it runs
// in a process of its own: WHARF_BENCH_RELAY=process) is read then: the CPU figure per upload
// includes all of the mail's work, its delivery too. The time until the last message arrived
// is logged as well. It runs only with WHARF_BENCH=1.
func TestE2EAsyncMailHandlerOverheadOpenSSH(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure the asynchronous mail handler's overhead")
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
	ownProcess := os.Getenv("WHARF_BENCH_RELAY") == "process"
	addr, relay := asyncMailServer(t, authorized, ownProcess)
	_, port, _ := net.SplitHostPort(addr)
	// Without handlers, the control, the mail handler, E1, and an asynchronous handler that
	// only logs: the share of the asynchronous run itself.
	users := [5]string{"alice", "carl", "mona", "erin", "nora"}
	mails := [5]int{0, 0, files, 1, 0} // messages a run of each user sends
	expected := 0
	type run struct{ wall, delivered, cpu, relayCPU, clientCPU time.Duration }
	do := func(k int) run {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, sftpBin, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
			"-o", "IdentitiesOnly=yes", "-i", keyFile, "-P", port, "-b", batch, users[k]+"@127.0.0.1")
		cmd.Env = []string{"HOME=" + work, "PATH=" + os.Getenv("PATH"), "LANG=C"}
		cpu0, relay0 := processCPU(t), relay.CPU()
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sftp as %s: %v\n%s", users[k], err, out)
		}
		r := run{wall: time.Since(start), clientCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
		expected += mails[k]
		if got := relay.WaitCount(expected, 2*time.Minute); got != expected {
			t.Fatalf("after %s's run the relay received %d of %d messages", users[k], got, expected)
		}
		r.delivered = time.Since(start)
		r.cpu, r.relayCPU = processCPU(t)-cpu0, relay.CPU()-relay0
		return r
	}
	for k := range users { // warm up and create the remote folders
		do(k)
	}
	var runs [5][]run
	for r := range rounds {
		for i := range 5 {
			k := (r + i) % 5
			runs[k] = append(runs[k], do(k))
		}
	}
	pick := func(k int, f func(run) time.Duration) []time.Duration {
		var d []time.Duration
		for _, r := range runs[k] {
			d = append(d, f(r))
		}
		return d
	}
	wall := func(r run) time.Duration { return r.wall }
	var times [3][]time.Duration
	for k := range 3 {
		times[k] = pick(k, wall)
	}
	reportAsyncMail(t, fmt.Sprintf("OpenSSH sftp, put -r of %d files of 1 KiB", files), rounds, times)
	e1, e1Paired := overheadOf(times[0], pick(3, wall))
	t.Logf("Syncplify's E1 instead (each upload collected by a synchronous handler, the list mailed by an asynchronous OnConnectionClose): %v, %+.2f%% (paired %+.2f%%)",
		median(pick(3, wall)), e1, e1Paired)
	delivered := func(r run) time.Duration { return r.delivered }
	asyncLog, asyncLogPaired := overheadOf(times[0], pick(4, wall))
	t.Logf("an asynchronous AfterFileUpload handler that only logs: %v, %+.2f%% (paired %+.2f%%)", median(pick(4, wall)), asyncLog, asyncLogPaired)
	t.Logf("until the relay had all the round's mail: with the mail handler %v (medians), %v after the client was done",
		median(pick(2, delivered)), median(pick(2, delivered))-median(times[2]))
	where := "in the server's process, charged to it"
	if ownProcess {
		where = "in a process of its own, its CPU counted apart"
	}
	perUpload := func(k int, f func(run) time.Duration) time.Duration { return median(pick(k, f)) / files }
	server := func(r run) time.Duration { return r.cpu }
	relayCPU := func(r run) time.Duration { return r.relayCPU }
	client := func(r run) time.Duration { return r.clientCPU }
	for k, name := range []string{"without handlers", "control", "mail handler", "E1", "async log"} {
		t.Logf("CPU per upload, %-16s server %v, relay %v, client (sftp, ssh) %v (medians of %d rounds; the relay runs %s)",
			name+":", perUpload(k, server), perUpload(k, relayCPU), perUpload(k, client), rounds, where)
	}
	base := perUpload(0, server) + perUpload(0, client)
	for _, c := range []struct {
		k    int
		name string
	}{{2, "mail handler"}, {3, "E1"}, {4, "async log handler"}} {
		k, name := c.k, c.name
		added := perUpload(k, server) + perUpload(k, relayCPU) - perUpload(0, server)
		t.Logf("CPU added per upload by the %s: %v (server and relay), %+.1f%% of an upload's CPU without handlers (server and client, %v)",
			name, added, float64(added)/float64(base)*100, base)
	}
}

// overheadOf is what b adds to a, rounds paired: the difference of the medians and the
// median of the rounds' differences, in percent of a.
func overheadOf(a, b []time.Duration) (medians, paired float64) {
	m0 := median(a)
	var d []float64
	for r := range a {
		d = append(d, float64(b[r]-a[r])/float64(a[r])*100)
	}
	slices.Sort(d)
	return float64(median(b)-m0) / float64(m0) * 100, d[len(d)/2]
}

// reportAsyncMail logs the medians of the rounds (without handlers, the control, with the
// mail handler) and the median of the paired differences.
func reportAsyncMail(t *testing.T, what string, rounds int, times [3][]time.Duration) {
	t.Helper()
	with, withPaired := overheadOf(times[0], times[2])
	control, controlPaired := overheadOf(times[0], times[1])
	t.Logf("%s: without handlers %v, with an async AfterFileUpload mail handler %v (medians of %d rounds): %+.2f%% wall time (paired %+.2f%%)",
		what, median(times[0]), median(times[2]), rounds, with, withPaired)
	t.Logf("control, a second user without handlers: %v, %+.2f%% (paired %+.2f%%): the method's noise", median(times[1]), control, controlPaired)
	for k, name := range []string{"without", "control", "with"} {
		t.Logf("rounds %-8s %v", name+":", times[k])
	}
}

// BenchmarkE2ESFTPUploadAsyncMail is one 1 KiB SFTP upload as a user without handlers, as one
// whose AfterFileUpload handler logs it (synchronously, asynchronously), and as one whose
// asynchronous AfterFileUpload handler mails it.
func BenchmarkE2ESFTPUploadAsyncMail(b *testing.B) {
	addr, _ := asyncMailServer(b, "", false)
	for _, c := range []struct{ name, user string }{{"none", "alice"}, {"log-sync", "sam"}, {"log-async", "nora"}, {"mail-async", "mona"}} {
		user := c.user
		b.Run(c.name, func(b *testing.B) {
			c := overheadClient(b, addr, user)
			i := 0
			for b.Loop() {
				upload1K(b, c, fmt.Sprintf("/f%04d.txt", i%1000))
				i++
			}
		})
	}
}
