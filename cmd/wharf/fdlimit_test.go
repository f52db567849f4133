package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/wharf-project/wharf/core/coretest"
)

// fdChildEnv tells the test binary, started again by TestListenersSurviveDescriptorExhaustion,
// to run `wharf serve -c <its value>` with a low descriptor limit instead of the tests.
const fdChildEnv = "WHARF_TEST_FD_CHILD"

// fdChildLimit is the child's RLIMIT_NOFILE: a few dozen connections exhaust it.
const fdChildLimit = 64

// TestFDChildServe is the child process's body; it is skipped in a normal test run.
func TestFDChildServe(t *testing.T) {
	cfg := os.Getenv(fdChildEnv)
	if cfg == "" {
		t.Skip("runs only as the child of TestListenersSurviveDescriptorExhaustion")
	}
	lim := syscall.Rlimit{Cur: fdChildLimit, Max: fdChildLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(3)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, []string{"serve", "-c", cfg}, strings.NewReader(""), os.Stdout, os.Stderr))
}

var childListenLine = regexp.MustCompile(`(?m)^\s+(SFTP|FTP|FTPS)\s+(\S+) \(site`)

// TestListenersSurviveDescriptorExhaustion runs the server in a child process whose
// descriptor limit is low, opens connections until accept(2) fails with EMFILE on every
// listener (SFTP, FTP, implicit FTPS, the admin endpoint and an FTP passive data listener),
// releases them, and logs in on every protocol: each listener must still be serving.
func TestListenersSurviveDescriptorExhaustion(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wharf.yaml")
	cfg := `state_dir: ./state
log: {flush_interval: 0s}
metrics: {address: "127.0.0.1:0"}
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
      - { protocol: ftp, address: "127.0.0.1:0" }
      - { protocol: ftps, address: "127.0.0.1:0" }
    limits: { max_connections: 0, max_connections_per_ip: 0, max_unauthenticated: 0, max_unauthenticated_per_ip: 0 }
    vfs:
      - { name: mem, type: memory }
    users:
      - id: alice
        password: "plain:pw"
        home: { vfs: mem, permissions: [all] }
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFDChildServe$")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+cfgPath)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the child did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("child stdout:\n%s\nchild stderr:\n%s", stdout.String(), stderr.String())
		}
	}()
	// The banner is written line by line: wait for all of it, not its first line.
	coretest.Eventually(t, 30*time.Second, "the child to start serving", func() bool {
		out := stdout.String()
		return strings.Contains(out, "is running") && len(childListenLine.FindAllStringSubmatch(out, -1)) == 3 &&
			metricsLine.MatchString(out)
	})
	addrs := map[string]string{}
	for _, m := range childListenLine.FindAllStringSubmatch(stdout.String(), -1) {
		addrs[m[1]] = m[2]
	}
	m := metricsLine.FindStringSubmatch(stdout.String())
	if len(addrs) != 3 || m == nil {
		t.Fatalf("listeners %v, metrics %v in the banner:\n%s", addrs, m, stdout.String())
	}
	addrs["admin"] = m[1]

	// warned waits for the child's warning that accepting on addr's port failed for want of
	// descriptors (a passive listener binds every address: its warning names [::]:port).
	warned := func(addr string) {
		t.Helper()
		_, port, _ := net.SplitHostPort(addr)
		re := regexp.MustCompile(`msg="accept failed; retrying" .*address=\S*:` + port + ` .*too many open files`)
		coretest.Eventually(t, 20*time.Second, "an accept warning for "+addr, func() bool {
			return re.MatchString(stderr.String())
		})
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	dial := func(addr string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		held = append(held, c)
	}

	// An FTP client logs in and asks for a passive port before descriptors run out, so that
	// the data connection is the one accept that fails.
	ctrl := rawFTP(t, addrs["FTP"])
	ctrl.expect(t, 230, "USER alice", "PASS pw")
	ctrl.expect(t, 200, "TYPE I")
	epsv := ctrl.expect(t, 229, "EPSV")
	pm := regexp.MustCompile(`\(\|\|\|(\d+)\|\)`).FindStringSubmatch(epsv)
	if pm == nil {
		t.Fatalf("EPSV reply %q", epsv)
	}
	dataAddr := net.JoinHostPort("127.0.0.1", pm[1])

	// Exhaust the child's descriptors with connections that never speak.
	for range fdChildLimit + 16 {
		dial(addrs["SFTP"])
	}
	warned(addrs["SFTP"])
	for _, name := range []string{"FTP", "FTPS", "admin"} {
		dial(addrs[name])
		warned(addrs[name])
	}
	data, err := net.DialTimeout("tcp", dataAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	ctrl.send(t, "STOR survived.txt")
	warned(dataAddr)

	// Release the descriptors: every listener must take connections again.
	for _, c := range held {
		c.Close()
	}
	held = nil
	ctrl.read(t, 150)
	if _, err := io.WriteString(data, "still here"); err != nil {
		t.Fatal(err)
	}
	data.Close()
	ctrl.read(t, 226)

	c := sftpClient(t, addrs["SFTP"], "alice", "pw")
	f, err := c.Open("/survived.txt")
	if err != nil {
		t.Fatalf("SFTP after the exhaustion: %v", err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "still here" {
		t.Fatalf("SFTP read %q, want the passive upload's data", got)
	}
	for _, name := range []string{"FTP", "FTPS"} {
		opts := []ftp.DialOption{ftp.DialWithTimeout(10 * time.Second)}
		if name == "FTPS" {
			opts = append(opts, ftp.DialWithTLS(&tls.Config{InsecureSkipVerify: true}))
		}
		fc, err := ftpLogin(t, addrs[name], "alice", "pw", opts...)
		if err != nil {
			t.Fatalf("%s login after the exhaustion: %v", name, err)
		}
		if _, err := fc.CurrentDir(); err != nil {
			t.Fatalf("%s PWD: %v", name, err)
		}
		_ = fc.Quit()
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addrs["admin"] + "/healthz")
	if err != nil {
		t.Fatalf("/healthz after the exhaustion: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the exhaustion: %s", resp.Status)
	}
	ctrl.expect(t, 221, "QUIT")
}

// ftpConn is a raw FTP control connection.
type ftpConn struct {
	c  net.Conn
	tp *textproto.Conn
}

func rawFTP(t *testing.T, addr string) *ftpConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &ftpConn{c: c, tp: textproto.NewConn(c)}
	f.read(t, 220)
	return f
}

func (f *ftpConn) send(t *testing.T, line string) {
	t.Helper()
	_ = f.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := f.tp.PrintfLine("%s", line); err != nil {
		t.Fatal(err)
	}
}

// read reads a reply and fails unless its code is want.
func (f *ftpConn) read(t *testing.T, want int) string {
	t.Helper()
	_ = f.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	code, msg, err := f.tp.ReadResponse(want)
	if err != nil {
		t.Fatalf("reply %d %q: %v (want %s)", code, msg, err, strconv.Itoa(want))
	}
	return msg
}

// expect sends each command and checks the last one's reply code; earlier replies must be
// positive (2xx or 3xx).
func (f *ftpConn) expect(t *testing.T, want int, cmds ...string) string {
	t.Helper()
	for i, cmd := range cmds {
		f.send(t, cmd)
		if i < len(cmds)-1 {
			_ = f.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if code, msg, err := f.tp.ReadResponse(0); err != nil || code >= 400 {
				t.Fatalf("%s: %d %q %v", strings.Fields(cmd)[0], code, msg, err)
			}
		}
	}
	return f.read(t, want)
}
