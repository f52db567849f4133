package main

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/wharf-project/wharf/core/coretest"
)

// childArgsEnv tells the test binary, started again by a test, to run `wharf` with these
// arguments (separated by the unit separator, 0x1F) instead of the tests: the binary stands in for an installed
// wharf, e.g. run as another user.
const childArgsEnv = "WHARF_TEST_CHILD_ARGS"

// TestWharfChild is the child process's body; it is skipped in a normal test run.
func TestWharfChild(t *testing.T) {
	args := os.Getenv(childArgsEnv)
	if args == "" {
		t.Skip("runs only as a child of another test")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, strings.Split(args, "\x1f"), os.Stdin, os.Stdout, os.Stderr))
}

// systemdRoot is a folder standing for / in which the documented install is carried out.
type systemdRoot struct {
	dir      string
	uid, gid int
}

// path maps an absolute path of the docs and the unit into the root.
func (r systemdRoot) path(p string) string {
	for _, prefix := range []string{"/etc/", "/var/", "/usr/"} {
		if strings.HasPrefix(p, prefix) {
			return filepath.Join(r.dir, p)
		}
	}
	return p
}

// rewrite maps every absolute path of a text (a config) into the root.
func (r systemdRoot) rewrite(s string) string {
	return regexp.MustCompile(`(^|[\s"'(])/(etc|var|usr)/`).ReplaceAllString(s, "${1}"+r.dir+"/$2/")
}

// docInstallSteps returns the shell lines of the first sh block of docs/systemd.md.
func docInstallSteps(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "systemd.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("docs/systemd.md has no sh block")
	}
	return strings.Split(strings.TrimSpace(m[1]), "\n")
}

// unitKeys returns the Key=value lines of the unit file (the last one of a key wins).
func unitKeys(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "wharf.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z]+)=(.*)$`).FindAllStringSubmatch(string(data), -1) {
		keys[m[1]] = m[2]
	}
	return keys
}

// asServiceUser runs an Exec line of the unit (its wharf binary replaced by this test
// binary) as the unit's user would run it: another uid and gid, in WorkingDirectory.
func (r systemdRoot) asServiceUser(t *testing.T, execLine, workDir string) *exec.Cmd {
	t.Helper()
	f := strings.Fields(execLine)
	if f[0] != "/usr/local/bin/wharf" {
		t.Fatalf("unexpected command %q", execLine)
	}
	args := make([]string, len(f)-1)
	for i, a := range f[1:] {
		args[i] = r.path(a)
	}
	cmd := exec.Command(r.path(f[0]), "-test.run=^TestWharfChild$")
	cmd.Env = []string{"PATH=/usr/bin:/bin", childArgsEnv + "=" + strings.Join(args, "\x1f")}
	cmd.Dir = r.path(workDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid), Groups: []uint32{uint32(r.gid)}}}
	return cmd
}

// TestSystemdInstallStarts is issue #23 item 1: the install steps of docs/systemd.md are
// carried out in a folder standing for /, with a service user of its own (no systemd
// needed), and the unit's ExecStartPre (`wharf check`) and ExecStart (`wharf serve`) run as
// that user in the unit's WorkingDirectory: check says OK, serve serves, and data and state
// land in /var/lib/wharf. A config whose state_dir is under /etc/wharf fails `check` there,
// where `serve` would fail.
func TestSystemdInstallStarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run commands as another user (CI runs as root)")
	}
	install := coretest.NeedBinary(t, "install")
	top, err := os.MkdirTemp("", "wharf-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	// An unused uid and gid stand for the user created by useradd.
	r := systemdRoot{dir: top, uid: 64231, gid: 64231}
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}

	// The documented steps, as written, with paths moved into the root.
	sawUser, sawConfig := false, false
	for _, line := range docInstallSteps(t) {
		f := strings.Fields(line)
		switch {
		case strings.Contains(line, "go build"):
			continue // the test binary stands in for the built one
		case f[0] == "systemctl":
			continue // the unit's commands are run below
		case f[0] == "useradd":
			sawUser = slicesContains(f, "wharf")
			continue
		case f[0] != "install":
			t.Fatalf("docs/systemd.md step the test does not know: %s", line)
		}
		args := []string{}
		for i := 1; i < len(f); i++ {
			a := f[i]
			switch {
			case (a == "-o" || a == "-g") && i+1 < len(f):
				id := f[i+1]
				if id == "wharf" {
					id = strconv.Itoa(r.uid)
				} else if id == "root" {
					id = "0"
				}
				args = append(args, a, id)
				i++
				continue
			case a == "wharf":
				a = self
			case strings.HasPrefix(a, "packaging/"):
				a = filepath.Join(repo, a)
			case strings.HasPrefix(a, "/"):
				a = r.path(a)
				if err := os.MkdirAll(filepath.Dir(a), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, a)
		}
		if strings.Contains(line, "/etc/wharf/wharf.yaml") {
			sawConfig = true
		}
		if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	if !sawUser || !sawConfig {
		t.Fatalf("the documented steps do not create the user and install a config: %q", docInstallSteps(t))
	}
	unit := unitKeys(t)
	if unit["User"] != "wharf" || unit["StateDirectory"] != "wharf" || unit["WorkingDirectory"] != "/var/lib/wharf" {
		t.Fatalf("unit: User=%q StateDirectory=%q WorkingDirectory=%q", unit["User"], unit["StateDirectory"], unit["WorkingDirectory"])
	}
	// What systemd does before ExecStartPre: StateDirectory= and LogsDirectory= created
	// with their modes and owned by the user.
	for _, d := range []string{"/var/lib/" + unit["StateDirectory"], "/var/log/" + unit["LogsDirectory"]} {
		p := r.path(d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, r.uid, r.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}

	// The installed config, moved into the root, on free ports, with one user as the docs
	// say to add: the file keeps its owner and mode.
	cfgFile := r.path("/etc/wharf/wharf.yaml")
	data, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.rewrite(string(data))
	cfg = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(cfg, "127.0.0.1:0")
	cfg = strings.Replace(cfg, "    users: []\n", `    users:
      - id: alice
        password: "plain:pw"
        home: { vfs: home, permissions: [all] }
`, 1)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cfgFile); err != nil || fi.Mode().Perm() != 0o640 || fi.Sys().(*syscall.Stat_t).Gid != uint32(r.gid) {
		t.Fatalf("config %v %v", fi.Mode(), err)
	}

	// ExecStartPre.
	out, err := r.asServiceUser(t, unit["ExecStartPre"], unit["WorkingDirectory"]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("ExecStartPre as the service user: %v\n%s", err, out)
	}

	// ExecStart: serves, and a client's file lands in /var/lib/wharf, owned by the user.
	serve := r.asServiceUser(t, unit["ExecStart"], unit["WorkingDirectory"])
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = serve.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
		}
	})
	sftpAddr := ""
	deadline := time.After(30 * time.Second)
	for sftpAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended:\n%s", stderr.String())
			}
			if m := childListenLine.FindStringSubmatch(l); m != nil && m[1] == "SFTP" {
				sftpAddr = m[2]
			}
		case <-deadline:
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	c := sftpClient(t, sftpAddr, "alice", "pw")
	f, err := c.Create("/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "hello")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	onDisk := r.path("/var/lib/wharf/data/alice/hello.txt")
	if fi, err := os.Stat(onDisk); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(r.uid) {
		t.Fatalf("uploaded file %s: %v %v", onDisk, fi, err)
	}
	for _, p := range []string{"/var/lib/wharf/state/admin.token", "/var/log/wharf/audit.log"} {
		if _, err := os.Stat(r.path(p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	_ = serve.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", waitErr, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("serve did not stop")
	}

	// A config saved from print-default (with a password for demo) in /etc/wharf: its
	// relative paths are under the read-only /etc/wharf. check must fail as serve would.
	code, def, _ := runCmd(t, "", "config", "print-default")
	if code != 0 {
		t.Fatal("print-default")
	}
	def = strings.Replace(def, "      - id: demo\n", "      - id: demo\n        password: \"plain:pw\"\n", 1)
	def = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(def, "127.0.0.1:0")
	if err := os.WriteFile(cfgFile, []byte(def), 0); err != nil {
		t.Fatal(err)
	}
	out, err = r.asServiceUser(t, unit["ExecStartPre"], unit["WorkingDirectory"]).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "state_dir: "+r.path("/etc/wharf/wharf-data/state")) ||
		!strings.Contains(string(out), "vfs[0].root") {
		t.Fatalf("check of a config writing under /etc/wharf: %v\n%s", err, out)
	}
	out, err = r.asServiceUser(t, unit["ExecStart"], unit["WorkingDirectory"]).CombinedOutput()
	if err == nil {
		t.Fatalf("serve started with state_dir under /etc/wharf:\n%s", out)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
