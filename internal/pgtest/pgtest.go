// Package pgtest runs a real PostgreSQL for tests: initdb into a temporary folder, the server
// on a free loopback port with its socket in that folder, durability off (fsync,
// synchronous_commit, full_page_writes) since the data dies with the test. As root (CI) the
// server runs as the unprivileged user nobody, since initdb and postgres refuse root.
//
// A test package shares one server (Shared, NewDB; stopped by Main in TestMain) and gets a
// fresh database per test. Tests that stop and start the server (store down) use their own
// (New), so they do not take the database away from tests running in parallel.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharf-project/wharf/internal/childproc"
)

// Superuser is the role initdb creates; its password is Server.Password.
const Superuser = "wharf"

// MaxConnections is the server's max_connections: three nodes' pools and listeners plus the
// tests' own connections, with room to spare.
const MaxConnections = 300

// Server is a running PostgreSQL.
type Server struct {
	Port     int
	Password string // the superuser's; TCP connections authenticate with scram-sha-256
	Dir      string // data/ and the unix socket

	bin    string
	owner  *syscall.Credential // nil: run as the current user
	dbSeq  atomic.Int64
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	output *childproc.Output
}

// debianBins is where Debian installs each PostgreSQL version's programs.
const debianBins = "/usr/lib/postgresql/*/bin"

// Binaries returns the folder holding initdb and postgres, from PATH or the newest
// /usr/lib/postgresql/*/bin.
func Binaries() (string, error) { return binaries(debianBins) }

func binaries(fallback string) (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(fallback)
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("postgres and initdb are not on PATH nor in /usr/lib/postgresql/*/bin")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// need skips the test without PostgreSQL, and fails it when WHARF_E2E=1 says the environment
// must have it (as CI does after installing it).
func need(t testing.TB) string { return needIn(t, debianBins) }

func needIn(t testing.TB, fallback string) string {
	t.Helper()
	dir, err := binaries(fallback)
	if err != nil {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("WHARF_E2E=1 but PostgreSQL is not installed: %v", err)
		}
		t.Skipf("PostgreSQL not installed: %v", err)
	}
	return dir
}

// New starts a server of the test's own, stopped and removed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	bin := need(t)
	s, err := start(bin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.Remove)
	return s
}

// shared is the test package's server (see Shared). Package state, since it must outlive
// the tests that use it; Main stops it.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the test package's server, starting it on first use. A package that uses
// it stops it with Main in its TestMain.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := need(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start(bin)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.srv
}

// Main runs the package's tests and then stops the shared server: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Remove()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// NewDB creates a fresh database on the shared server for the test (dropped when it ends)
// and returns its connection string (a postgres:// URL with the password).
func NewDB(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDB(t)
}

// NewDB creates a fresh database for the test (dropped when it ends) and returns its
// connection string.
func (s *Server) NewDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", s.dbSeq.Add(1), randomHex(4))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The server may be stopped by the test, or gone: nothing to drop then.
		_ = s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.DSN(name)
}

// DSN is the connection string of a database on the server.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(Superuser, s.Password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	return u.String()
}

func (s *Server) admin(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start makes a data folder with initdb and starts the server on a free port.
func start(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "wharf-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin, Password: randomHex(12)}
	if err := s.init(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// A port taken between the probe and the server's bind makes it exit; retry.
	var lastErr error
	for range 5 {
		if s.Port, err = childproc.FreePort(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		if lastErr = s.Start(); lastErr == nil {
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("postgres did not start: %w", lastErr)
}

func (s *Server) init() error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.owner = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// MkdirTemp made it 0700 root's; its parent (the system temp folder) is world-reachable.
		if err := os.Chown(s.Dir, uid, gid); err != nil {
			return err
		}
	}
	pwfile := filepath.Join(s.Dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	if s.owner != nil {
		if err := os.Chown(pwfile, int(s.owner.Uid), int(s.owner.Gid)); err != nil {
			return err
		}
	}
	defer os.Remove(pwfile)
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.Dir, "data"),
		"-U", Superuser, "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	cmd.Dir = s.Dir
	cmd.SysProcAttr = s.procAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	return nil
}

// Start starts the server (again, after Stop: same port and data) and waits until it
// accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.Dir, "data"),
		"-k", s.Dir, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections="+strconv.Itoa(MaxConnections), "-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning")
	cmd.Dir = s.Dir
	cmd.SysProcAttr = s.procAttr()
	s.output = &childproc.Output{}
	cmd.Stdout, cmd.Stderr = s.output, s.output
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			s.cmd, s.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited: %s", s.output.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("no connection after 30 s: %v; output: %s", err, s.output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server (fast shutdown: open connections are ended), keeping its data.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if children, err := childrenOf(s.cmd.Process.Pid); err == nil {
		for _, c := range append(children, s.cmd.Process.Pid) {
			_ = syscall.Kill(c, syscall.SIGCONT) // it may be paused
		}
	}
	childproc.Stop(s.cmd.Process, syscall.SIGINT, s.done, 10*time.Second)
	s.cmd, s.done = nil, nil
}

// Pause freezes the server and its backends (SIGSTOP to its process group): connections stay
// open and connects are accepted by the kernel, but nothing answers, as with a black-holed
// or hung database. Resume undoes it; a paused server is resumed before it is stopped.
func (s *Server) Pause() error { return s.signalGroup(syscall.SIGSTOP) }

// Resume lets a paused server run again.
func (s *Server) Resume() error { return s.signalGroup(syscall.SIGCONT) }

func (s *Server) signalGroup(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("not running")
	}
	// Every backend makes itself a process group leader: signal the postmaster (first, so
	// that it forks no more) and each of its children.
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	children, err := childrenOf(pid)
	if err != nil {
		return err
	}
	for _, c := range children {
		_ = syscall.Kill(c, sig) // one may have exited meanwhile
	}
	return nil
}

// Running reports whether the server is started.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Output is what the server logged (the first 64 KiB), to explain a failure.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.output == nil {
		return ""
	}
	return s.output.String()
}

// Remove stops the server and deletes its folder.
func (s *Server) Remove() {
	s.Stop()
	_ = os.RemoveAll(s.Dir)
}
