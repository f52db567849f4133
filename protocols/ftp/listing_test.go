package ftp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// openData opens an EPSV data connection with a receive buffer of 4 KiB, so that a client
// that stops reading stops the server's writes within a few KiB (the kernel's buffers would
// otherwise take a listing of megabytes whole).
func (r *rawClient) openData() net.Conn {
	r.t.Helper()
	msg := r.cmd(229, "EPSV")
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		r.t.Fatalf("EPSV reply %q", msg)
	}
	host, _, _ := net.SplitHostPort(r.ts.addr)
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	dc, err := d.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		r.t.Fatalf("data connection: %v", err)
	}
	r.t.Cleanup(func() { _ = dc.Close() })
	_ = dc.SetDeadline(time.Now().Add(60 * time.Second))
	return dc
}

// scratchSite is newSite with the homes on tmpfs when there is one (creating thousands of
// files there takes a fraction of the time); it returns alice's home.
func scratchSite(t *testing.T) (*core.Site, string) {
	t.Helper()
	scratch := coretest.ScratchDir(t)
	site, _ := newSite(t, nil, func(c *config.Site) {
		c.VFS[0].Root = filepath.Join(scratch, "home", "{user}")
	})
	home := filepath.Join(scratch, "home", coretest.UserAlice)
	must(t, os.MkdirAll(home, 0o755))
	return site, home
}

// TestListingHoldsOnlyABatch runs MLSD, LIST and NLST on a directory of 20,000 files with
// 200-byte names, reads a little of each listing and stops reading: the server is then
// blocked partway, and the test checks what it holds. A listing read into memory whole (a
// slice of 20,000 FileInfo values, about 7 MiB here) would show; one written batch by batch
// holds a few hundred entries and a buffer. Then it reads on and checks every file was
// listed exactly once.
func TestListingHoldsOnlyABatch(t *testing.T) {
	const files, nameLen = 20_000, 200
	site, home := scratchSite(t)
	ts := serve(t, site, modePlain)
	coretest.MakeFiles(t, filepath.Join(home, "big"), files, nameLen)
	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	for _, verb := range []string{"MLSD", "LIST", "NLST"} {
		t.Run(verb, func(t *testing.T) {
			seen := coretest.NewSeen(t, files) // allocated before the baseline: it is the test's
			base := coretest.LiveHeap()
			dc := r.openData()
			if code, msg := r.send("%s /big", verb); code != 150 {
				t.Fatalf("%s: %d %s", verb, code, msg)
			}
			br := bufio.NewReaderSize(dc, 4096)
			readLine := func() (string, bool) {
				line, err := br.ReadString('\n')
				if err == io.EOF && line == "" {
					return "", false
				}
				if err != nil {
					t.Fatalf("%s data: %v", verb, err)
				}
				line = strings.TrimSuffix(line, "\r\n")
				switch verb {
				case "MLSD":
					_, line, _ = strings.Cut(line, "; ")
				case "LIST":
					line = line[strings.LastIndexByte(line, ' ')+1:]
				case "NLST":
					line = strings.TrimPrefix(line, "big/")
				}
				return line, true
			}
			for range 200 {
				n, _ := readLine()
				seen.Add(n)
			}
			// The server goes on until the connection is full, then blocks: until it does, the
			// garbage of its last lines may still count as live, so the heap is measured until
			// it is under the limit or for 5 s, and the smallest figure is the one that counts.
			// A listing held whole would be held all along.
			held := int64(1 << 62)
			for deadline := time.Now().Add(5 * time.Second); held > 1<<20 && time.Now().Before(deadline); {
				held = min(held, int64(coretest.LiveHeap())-int64(base))
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("after %d of %d entries the process holds %.0f KiB more than before the listing",
				seen.N, files, float64(held)/1024)
			if held > 1<<20 {
				t.Errorf("partway through %s of %d entries the server holds %.1f MiB more than before it: "+
					"the listing is held whole instead of written batch by batch", verb, files, float64(held)/(1<<20))
			}
			for {
				n, ok := readLine()
				if !ok {
					break
				}
				seen.Add(n)
			}
			_ = dc.Close()
			if code, msg := r.read(); code != 226 {
				t.Fatalf("%s final reply: %d %s", verb, code, msg)
			}
			if seen.N != files {
				t.Fatalf("%s listed %d entries, want %d", verb, seen.N, files)
			}
		})
	}
}

// logRecorder keeps the messages logged at Info and above.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) find(sub string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			return m
		}
	}
	return ""
}

// TestListingControlCharacterNames is issue #19 item 14 for listings: names with CR, LF or
// another control character, made on the host (a client cannot create them), must not forge
// listing lines or control replies. LIST, NLST and MLSD omit them from the data connection
// (an escaped name would be another name) and log that they did; STAT <dir> escapes a bare
// CR as RFC 959 says (CR NUL) and omits names with other control characters, so its
// multi-line reply ends where the server ends it and nothing is left queued behind it.
func TestListingControlCharacterNames(t *testing.T) {
	site, root := newSite(t, nil, nil)
	rec := &logRecorder{}
	srv, err := New(site, Options{StateDir: t.TempDir(), Logger: slog.New(rec)})
	must(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	ts := &testServer{srv: srv, addr: l.Addr().String(), site: site}

	dir := filepath.Join(root, "home", coretest.UserAlice, "evil")
	must(t, os.MkdirAll(dir, 0o755))
	evil := []string{
		"a\r\n-rw-r--r-- 1 ftp ftp 1 Jan 01 00:00 forged-list.txt",
		"b\r\nType=file;Size=1;Modify=20200101000000; forged-mlsd.txt",
		"c\r\nforged-nlst.txt",
		"d\r\n212 End\r\n530 forged reply",
		"lf\nonly.txt",
		"tab\there.txt",
		"del\x7f.txt",
	}
	const bareCR = "bare\rcr.txt"
	for _, n := range append(slices.Clone(evil), bareCR, "good.txt") {
		must(t, os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644))
	}

	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	for verb, want := range map[string]string{
		"LIST": "-rw-r--r-- 1 ftp ftp ",
		"NLST": "evil/good.txt",
		"MLSD": "Type=file;Size=1;Modify=",
	} {
		first, data, final, msg := r.transfer(nil, "%s /evil", verb)
		if first != 150 || final != 226 {
			t.Fatalf("%s: %d then %d %q", verb, first, final, msg)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n")
		if len(lines) != 1 || !strings.Contains(lines[0], want) || !strings.HasSuffix(lines[0], "good.txt") {
			t.Errorf("%s /evil listed %q, want only good.txt", verb, data)
		}
		if strings.ContainsAny(string(data), "\x00\t\x7f") || strings.Count(string(data), "\n") != 1 {
			t.Errorf("%s /evil: control characters in the listing %q", verb, data)
		}
	}
	// The log line is written when a listing ends, before its final reply.
	if msg := rec.find("omitted"); msg == "" {
		t.Error("no log line about the omitted entries")
	} else {
		t.Logf("log: %s", msg)
	}

	// STAT <dir> answers on the control connection.
	code, msg := r.send("STAT /evil")
	if code != 212 {
		t.Fatalf("STAT /evil: %d %q", code, msg)
	}
	if strings.Contains(msg, "%s") {
		t.Errorf("STAT /evil prints a literal %%s: %q", msg)
	}
	if !strings.Contains(msg, "good.txt") || !strings.Contains(msg, "bare\r\x00cr.txt") {
		t.Errorf("STAT /evil = %q, want good.txt and bare CR NUL cr.txt", msg)
	}
	if strings.Contains(msg, "forged") || strings.Contains(msg, "only.txt") {
		t.Errorf("STAT /evil shows a name with a line break: %q", msg)
	}
	// Nothing the listing forged is waiting: the next reply is NOOP's.
	if code, msg := r.send("NOOP"); code != 200 {
		t.Fatalf("NOOP after STAT answered %d %q: STAT's reply was cut short and left forged replies queued", code, msg)
	}
}

// TestListingMemory200k is the measurement of issue #19 item 5 for FTP: five clients
// (jlaffaye/ftp's List, which uses MLSD, each in a process of its own so that what they hold
// is not counted) list a directory of 200,000 files at once, and the server's extra resident
// memory and heap are reported. Target: at most 16 MiB of extra RSS. Run it with
//
//	WHARF_BENCH=1 go test ./protocols/ftp -run TestListingMemory200k -v
func TestListingMemory200k(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure five concurrent listings of 200,000 entries")
	}
	const files, clients, nameLen = 200_000, 5, 24
	site, home := scratchSite(t)
	ts := serve(t, site, modePlain)
	start := time.Now()
	coretest.MakeFiles(t, filepath.Join(home, "big"), files, nameLen)
	t.Logf("created %d files in %v", files, time.Since(start).Round(time.Millisecond))

	w := coretest.WatchMemory()
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			cmd := coretest.ChildProcess(t, "TestListingClientProcess", ts.addr+" /big")
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("client: %v\n%s", err, out)
				return
			}
			if !strings.Contains(string(out), fmt.Sprintf("listed %d entries", files)) {
				errs <- fmt.Errorf("client output:\n%s", out)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	rep := w.Stop()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d concurrent FTP listings (MLSD) of %d entries in %v: %v", clients, files, took.Round(time.Millisecond), rep)
	if rep.ExtraRSS > 16<<20 {
		t.Errorf("extra RSS %.1f MiB, target at most 16 MiB", float64(rep.ExtraRSS)/(1<<20))
	}
}

// TestListingClientProcess is TestListingMemory200k's client, run in a process of its own:
// it logs in as alice and lists a directory with jlaffaye/ftp.
func TestListingClientProcess(t *testing.T) {
	arg := coretest.Child()
	if arg == "" {
		t.Skip("a helper process of TestListingMemory200k")
	}
	addr, dir, _ := strings.Cut(arg, " ")
	c, err := jftp.Dial(addr, jftp.DialWithTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Quit() }()
	if err := c.Login(coretest.UserAlice, coretest.Password); err != nil {
		t.Fatal(err)
	}
	es, err := c.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("listed " + strconv.Itoa(len(es)) + " entries")
}

// TestListingGlob: NLST and LIST take a wildcard in their last element, as Windows ftp's mget
// and scripts that list "*.csv" send it; the listing goes through the core like any other.
func TestListingGlob(t *testing.T) {
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	home := filepath.Join(root, "home", coretest.UserAlice)
	for _, n := range []string{"a.txt", "b.txt", "c.log", "sub/x.txt", "sub/y.log"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(home, n)), 0o755))
		must(t, os.WriteFile(filepath.Join(home, n), []byte("x"), 0o644))
	}
	c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	must(t, err)
	defer c.Quit()
	names, err := c.NameList("*.txt")
	must(t, err)
	slices.Sort(names)
	if !slices.Equal(names, []string{"a.txt", "b.txt"}) {
		t.Fatalf("NLST *.txt = %q", names)
	}
	// LIST (jlaffaye/ftp lists with MLSD, which takes no pattern, unless told not to).
	cl, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password, jftp.DialWithDisabledMLSD(true))
	must(t, err)
	defer cl.Quit()
	entries, err := cl.List("sub/*.log")
	must(t, err)
	if len(entries) != 1 || entries[0].Name != "y.log" {
		t.Fatalf("LIST sub/*.log = %+v", entries)
	}
	if names, err := c.NameList("*.none"); err != nil || len(names) != 0 {
		t.Fatalf("NLST *.none = %q, %v; want an empty listing", names, err)
	}
	// A pattern after ".." stays in the user's tree: the same names as the root's.
	up, err := c.NameList("../../*")
	must(t, err)
	top, err := c.NameList("/")
	must(t, err)
	slices.Sort(up)
	slices.Sort(top)
	if !slices.Contains(up, "a.txt") || !slices.Equal(up, top) {
		t.Fatalf("NLST ../../* = %q, want the root's %q", up, top)
	}
}
