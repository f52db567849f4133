package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jlaffaye/ftp"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/config"
)

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestCheckListsEveryProblem(t *testing.T) {
	code, _, stderr := runCmd(t, "", "check", "-c", "../../testdata/bad-config.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"bad-config.yaml:13: sites[0].limits.max_conections",
		"bad-config.yaml:22: sites[0].users[1].allow_from[1]",
		"bad-config.yaml:27: sites[0].event_handlers[1].event",
		"bad-config.yaml:28: sites[0].event_handlers[1].script",
		"4 problem(s) found",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
}

func TestCheckAcceptsGoodConfig(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "check", "-c", "../../testdata/config/full.yaml")
	if code != 0 || !strings.Contains(stdout, "OK") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	code, _, stderr := runCmd(t, "", "serve", "-c", "../../testdata/bad-config.yaml")
	if code != 1 || !strings.Contains(stderr, "max_conections") {
		t.Fatalf("serve on a bad config: exit %d, stderr %s", code, stderr)
	}
}

func TestHashPassword(t *testing.T) {
	code, out, errOut := runCmd(t, "s3cret pass\n", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	h := strings.TrimSpace(out)
	if ok, err := argon2id.ComparePasswordAndHash("s3cret pass", h); err != nil || !ok {
		t.Fatalf("argon2id hash %q does not verify: %v", h, err)
	}
	code, out, _ = runCmd(t, "s3cret pass", "hash-password", "--bcrypt")
	if code != 0 || bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("s3cret pass")) != nil {
		t.Fatalf("bcrypt: exit %d, %q", code, out)
	}
	if code, _, _ := runCmd(t, "\n", "hash-password"); code != 1 {
		t.Fatal("empty password accepted")
	}
}

func TestPrintDefaultParses(t *testing.T) {
	code, out, _ := runCmd(t, "", "config", "print-default")
	if code != 0 {
		t.Fatal("print-default failed")
	}
	if _, err := config.Parse([]byte(out), "default.yaml", t.TempDir()); err != nil {
		t.Fatalf("printed default does not parse: %v", err)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "wharf ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenLine = regexp.MustCompile(`(?m)^\s+(SFTP|FTP)\s+(\S+) \(site`)

// served is a `wharf serve` running in-process.
type served struct {
	addrs  map[string]string // SFTP, FTP: the bound addresses
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() int // the equivalent of SIGTERM; returns the exit status
}

// serveInProcess runs `wharf serve args...` in-process until it says it is running, and
// stops it when the test ends.
func serveInProcess(t *testing.T, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), out, errb) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "is running") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s := &served{addrs: map[string]string{}, stdout: out, stderr: errb}
	for _, m := range listenLine.FindAllStringSubmatch(out.String(), -1) {
		s.addrs[m[1]] = m[2]
	}
	if len(s.addrs) == 0 {
		cancel()
		t.Fatalf("no listeners printed:\n%s\n%s", out.String(), errb.String())
	}
	var once sync.Once
	code := -1
	s.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop within 30s")
			}
		})
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// startServe runs `wharf serve` in-process and returns the bound addresses and a stop
// function that sends the equivalent of SIGTERM and returns the exit status.
func startServe(t *testing.T, args ...string) (addrs map[string]string, stop func() int, stderr *syncBuffer) {
	t.Helper()
	s := serveInProcess(t, args...)
	return s.addrs, s.stop, s.stderr
}

func writeConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `state_dir: ./state
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
      - { protocol: ftp, address: "127.0.0.1:0" }
    vfs:
      - { name: home, type: disk, root: "./data/{user}" }
    users:
      - id: alice
        password: "plain:pw"
        home: { vfs: home, permissions: [all] }
`
	p := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sftpClient(t *testing.T, addr, user, pass string) *sftp.Client {
	t.Helper()
	conn, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pass)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("ssh dial %s: %v", addr, err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func TestServeConfigFileBothProtocols(t *testing.T) {
	cfgPath := writeConfig(t)
	addrs, stop, stderr := startServe(t, "-c", cfgPath)
	c := sftpClient(t, addrs["SFTP"], "alice", "pw")
	f, err := c.Create("/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "hello over sftp")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fc, err := ftp.Dial(addrs["FTP"], ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	r, err := fc.Retr("/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "hello over sftp" {
		t.Fatalf("FTP read %q", got)
	}
	onDisk, err := os.ReadFile(filepath.Join(filepath.Dir(cfgPath), "data", "alice", "hello.txt"))
	if err != nil || string(onDisk) != "hello over sftp" {
		t.Fatalf("host file %q, %v", onDisk, err)
	}
	// Graceful stop with sessions open: exit 0 and every session closed.
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM:\n%s", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), `msg="session closed"`); n < 2 {
		t.Fatalf("%d sessions closed at shutdown, want 2:\n%s", n, stderr.String())
	}
	if _, err := c.Stat("/hello.txt"); err == nil {
		t.Fatal("SFTP session still works after shutdown")
	}
	_ = fc.Quit()
}

func TestServeEmbeddedDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("WHARF_DEMO_PASSWORD", "demo-pass-123")
	cfg, pw, err := loadForServe("")
	if err != nil {
		t.Fatal(err)
	}
	if pw != "demo-pass-123" {
		t.Fatalf("demo password %q", pw)
	}
	// The default binds fixed ports; move them to free ones for the test.
	for i := range cfg.Sites[0].Listeners {
		cfg.Sites[0].Listeners[i].Address = "127.0.0.1:0"
	}
	log, _, _ := newLogger(cfg.Log, io.Discard)
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background(), 0)
	var banner bytes.Buffer
	srv.printBanner(&banner, pw)
	for _, want := range []string{"demo-pass-123", "sftp -P", "wharf-data", "SFTP", "FTP"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	c := sftpClient(t, srv.addr("sftp"), "demo", "demo-pass-123")
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatalf("demo cannot list its home: %v", err)
	}
	if _, err := os.Stat("wharf-data/state"); err != nil {
		t.Fatalf("state folder not created: %v", err)
	}
	// Without the variable a password is generated (and kept in state_dir, see TestQuickStart).
	t.Setenv("WHARF_DEMO_PASSWORD", "")
	_, gen, err := loadForServe("")
	if err != nil || len(gen) < 12 {
		t.Fatalf("generated password %q, %v", gen, err)
	}
}

func TestLogFileAndJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "logs", "wharf.log")
	// Batched for up to an hour: a warning and Close must write the lines themselves.
	log, logOut, err := newLogger(config.Log{Level: "debug", Format: "json", File: p,
		FlushInterval: config.Duration{Duration: time.Hour}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	log.Debug("hello", "k", "v")
	if lines := read(); len(lines) != 1 || lines[0] != "" {
		t.Fatalf("a debug line was written at once: %q", lines)
	}
	log.Warn("careful")
	lines := read()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "{") || !strings.Contains(lines[0], `"msg":"hello"`) ||
		!strings.Contains(lines[1], `"msg":"careful"`) {
		t.Fatalf("after a warning: %q, want both lines in order", lines)
	}
	log.Info("last")
	logOut.Close()
	if lines := read(); len(lines) != 3 || !strings.Contains(lines[2], `"msg":"last"`) {
		t.Fatalf("after Close: %q", lines)
	}
}
