package sftp

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// execResult is what a command run over SSH exec (or by a local shell) printed, and its status.
type execResult struct {
	stdout, stderr string
	status         int
}

// sshExec runs command on the server with stdin, over x/crypto's client.
func sshExec(t *testing.T, sc *ssh.Client, command, stdin string) execResult {
	t.Helper()
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out, errOut bytes.Buffer
	sess.Stdin, sess.Stdout, sess.Stderr = strings.NewReader(stdin), &out, &errOut
	err = sess.Run(command)
	status := 0
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitStatus()
	case err != nil:
		t.Fatalf("%s: %v", command, err)
	}
	return execResult{out.String(), errOut.String(), status}
}

// checksumTree makes the same files in each folder: plain names, names a shell must quote,
// names coreutils escapes in its output, and a folder.
func checksumTree(t *testing.T, dirs ...string) {
	t.Helper()
	files := map[string]string{
		"a.txt": "hello\n", "sp ace.txt": "x", "it's.txt": "quote", "b\\s": "backslash", "n\nl": "newline",
		"c\rr": "cr", "empty": "", "big.bin": strings.Repeat("0123456789abcdef", 70_000), "sub/deep.txt": "deep",
		"-b": "a file named like an option",
	}
	for _, d := range dirs {
		for name, data := range files {
			putFile(t, filepath.Join(d, filepath.FromSlash(name)), []byte(data))
		}
	}
}

// TestChecksumCommandsAsCoreutils is issue #23 item 12: every checksum command line gives
// byte for byte what GNU coreutils gives run by a shell over the same files (stdout, stderr
// and exit status): one file, several, quoting, names coreutils escapes, standard input,
// missing files, folders, options and option errors.
func TestChecksumCommandsAsCoreutils(t *testing.T) {
	sh := coretest.NeedBinary(t, "/bin/sh")
	for _, p := range []string{"md5sum", "sha1sum", "sha256sum", "sha512sum"} {
		coretest.NeedBinary(t, p)
	}
	root := t.TempDir()
	site := newTestSite(t, testSiteConfig(root, testUser("alice")), nil)
	srv, addr := startServer(t, site)
	home := filepath.Join(root, "home", "alice")
	local := t.TempDir()
	checksumTree(t, home, local)
	sc, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	for _, tc := range []struct{ command, stdin string }{
		{"md5sum a.txt", ""},
		{"sha1sum a.txt 'sp ace.txt' \"it's.txt\" sub/deep.txt", ""},
		{"sha256sum big.bin empty", ""},
		{"sha512sum a.txt", ""},
		{`md5sum sp\ ace.txt`, ""},          // rclone escapes with backslashes
		{"md5sum b\\\\s 'n\nl' 'c\rr'", ""}, // names coreutils escapes in its output
		{"md5sum -b a.txt 'sp ace.txt'", ""},
		{"sha1sum --tag a.txt 'b\\s'", ""},
		{"sha256sum -z 'n\nl' a.txt", ""},
		{"md5sum -z --tag 'n\nl'", ""},
		{"md5sum a.txt -t", ""},
		{"md5sum", "abc"},
		{"sha256sum -", "abc"},
		{"md5sum - a.txt -", "abc"},
		{"md5sum nosuch a.txt", ""},
		{"md5sum sub", ""},
		{"md5sum 'no such' \"it's gone\" 'a:b' '#x' 'x#' 'a=b' 'tab\there'", ""},
		{"md5sum ''", ""},
		{"md5sum -- -b", ""},
		{"md5sum -x a.txt", ""},
		{"md5sum --nope a.txt", ""},
		{"md5sum --t a.txt", ""},
		{"md5sum --tag -t a.txt", ""},
		{"md5sum -t --tag a.txt", ""},
		{"md5sum --bin a.txt", ""},
	} {
		t.Run(tc.command, func(t *testing.T) {
			command := tc.command
			want := localShell(t, sh, local, command, tc.stdin)
			got := sshExec(t, sc, command, tc.stdin)
			if got != want {
				t.Errorf("%q\n got  %#v\nwant %#v", command, got, want)
			}
		})
	}
}

// localShell runs command with /bin/sh in dir, as a shell-backed OpenSSH server would.
func localShell(t *testing.T, sh, dir, command, stdin string) execResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, "-c", command)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	status := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return execResult{out.String(), errOut.String(), status}
}

// TestChecksumRefusals: the checksum commands run on plain words only (no shell, so nothing a
// shell would expand or chain), other commands stay refused, a file outside the download
// permission is refused as coreutils refuses an unreadable file, nothing leaves the jail, and
// a BeforeOpenCmd script can refuse the command.
func TestChecksumRefusals(t *testing.T) {
	root := t.TempDir()
	u := testUser("alice")
	u.Folders = map[string]config.Mount{"/ro": {VFS: "pub", Permissions: []string{"list"}}}
	cfg := testSiteConfig(root, u, testUser("bob"))
	cfg.VFS = append(cfg.VFS, config.VFS{Name: "pub", Type: "disk", Root: filepath.Join(root, "pub")})
	d := &coretest.Dispatcher{}
	d.On(core.BeforeOpenCmd, func(ev *core.Event) {
		if ev.Session.User().GetID() == "bob" {
			ev.Session.BlockOperation()
		}
	})
	site := newTestSite(t, cfg, d)
	srv, addr := startServer(t, site)
	home := filepath.Join(root, "home", "alice")
	checksumTree(t, home)
	putFile(t, filepath.Join(root, "pub", "secret.txt"), []byte("listed but not downloadable"))
	putFile(t, filepath.Join(root, "home", "bob", "b.txt"), []byte("bob's"))
	sc, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	for _, command := range []string{
		"md5sum $(id)", "md5sum `id`", "md5sum a.txt; rm -rf /", "md5sum a.txt && id", "md5sum a.txt | cat",
		"md5sum *.txt", "md5sum a.tx?", "md5sum ~/a.txt", "md5sum a.txt > out", "md5sum \"$HOME/a.txt\"",
		"md5sum {a,b}.txt", "md5sum a.txt\nid", "md5sum (a.txt)", "md5sum 'unterminated",
	} {
		r := sshExec(t, sc, command, "")
		if r.status != 1 || r.stdout != "" || !strings.Contains(r.stderr, "md5sum: ") {
			t.Errorf("%q: %+v, want a refusal", command, r)
		}
	}
	for _, command := range []string{"cat a.txt", "md5 a.txt", "/usr/bin/md5sum a.txt", "b2sum a.txt", "sha224sum a.txt", "sh -c 'md5sum a.txt'"} {
		r := sshExec(t, sc, command, "")
		if r.status != 1 || r.stdout != "" || !strings.Contains(r.stderr, "commands are not available") {
			t.Errorf("%q: %+v, want the no-commands message", command, r)
		}
	}
	for command, want := range map[string]string{
		"md5sum ro/secret.txt":             "md5sum: ro/secret.txt: Permission denied\n",
		"md5sum ../../../pub/secret.txt":   "md5sum: ../../../pub/secret.txt: No such file or directory\n",
		"md5sum ../bob/b.txt":              "md5sum: ../bob/b.txt: No such file or directory\n",
		"md5sum /etc/passwd":               "md5sum: /etc/passwd: No such file or directory\n",
		"md5sum -c sums":                   "md5sum: option '-c' is not supported on this server (it computes checksums; it does not verify them)\n",
		"md5sum --check sums":              "md5sum: option '--check' is not supported on this server (it computes checksums; it does not verify them)\n",
		"md5sum .hidden-upload.wharf-tmp1": "md5sum: .hidden-upload.wharf-tmp1: No such file or directory\n",
	} {
		if r := sshExec(t, sc, command, ""); r.status != 1 || r.stdout != "" || r.stderr != want {
			t.Errorf("%q: %+v, want stderr %q", command, r, want)
		}
	}
	// The jail's root is the home.
	if r := sshExec(t, sc, "md5sum /sub/deep.txt", ""); r.status != 0 || r.stdout != fmt.Sprintf("%x  /sub/deep.txt\n", md5.Sum([]byte("deep"))) {
		t.Errorf("absolute name: %+v", r)
	}
	// The refusal of a file does not stop the others, as in coreutils.
	if r := sshExec(t, sc, "md5sum ro/secret.txt a.txt", ""); r.status != 1 || r.stdout != fmt.Sprintf("%x  a.txt\n", md5.Sum([]byte("hello\n"))) {
		t.Errorf("mixed: %+v", r)
	}

	bc, err := dialSSH(srv, addr, "bob", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if r := sshExec(t, bc, "md5sum b.txt", ""); r.status != 1 || r.stdout != "" || r.stderr != "md5sum: permission denied\n" {
		t.Errorf("blocked by BeforeOpenCmd: %+v", r)
	}
}

// TestRcloneChecksums is issue #23 item 12 with rclone: over SFTP it finds md5sum and
// sha1sum, `rclone md5sum` lists the server's hashes, and `rclone check` (without
// --size-only or --download) compares hashes: it finds a file changed on the server with
// the same size and modification time, which sizes alone would miss.
func TestRcloneChecksums(t *testing.T) {
	rclone := coretest.NeedBinary(t, "rclone")
	e := newE2E(t)
	// A remote of a config file, as users have: rclone saves the hash commands it detects
	// there (an on-the-fly remote detects them again in every goroutine, racing with itself).
	conf := e.local("rclone.conf")
	putFile(t, conf, []byte(fmt.Sprintf("[w]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = alice\nkey_file = %s\n", e.port, e.key)))
	remote := "w:"
	tree := e.local("tree")
	writeTree(t, tree, 40)
	putFile(t, filepath.Join(tree, "sp ace & 'quote'.bin"), randomBytes(t, 1000))
	flags := []string{"--config", conf, "--retries", "1", "--low-level-retries", "1", "-v"}
	rc := func(args ...string) (string, error) {
		return e.try(rclone, append(append([]string(nil), args...), flags...)...)
	}
	if out, err := rc("copy", tree, remote+"/r"); err != nil {
		t.Fatalf("rclone copy: %v\n%s", err, out)
	}

	out, err := rc("md5sum", "--checkers", "1", remote+"/r")
	if err != nil {
		t.Fatalf("rclone md5sum: %v\n%s", err, out)
	}
	saved, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), "md5sum_command = md5sum\n") || !strings.Contains(string(saved), "sha1sum_command = sha1sum\n") {
		t.Errorf("rclone did not detect the hash commands; its config:\n%s", saved)
	}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok || len(sum) != 32 {
			continue // rclone's own log lines
		}
		data, err := os.ReadFile(filepath.Join(tree, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("rclone md5sum listed %q: %v", name, err)
		}
		if h := md5.Sum(data); sum != hex.EncodeToString(h[:]) {
			t.Errorf("rclone md5sum %s = %s, want %x", name, sum, h)
		}
		lines++
	}
	if lines != 41 {
		t.Fatalf("rclone md5sum gave %d hashes, want 41:\n%s", lines, out)
	}

	if out, err := rc("check", tree, remote+"/r"); err != nil || !strings.Contains(out, "0 differences found") ||
		strings.Contains(out, "hashes could not be checked") || strings.Contains(out, "No common hash") {
		t.Fatalf("rclone check of equal trees: %v\n%s", err, out)
	}
	// Change one byte on the server, keeping size and modification time.
	victim := e.remote("/r/d03/e0/f0003.bin")
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(victim, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(victim, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	out, err = rc("check", tree, remote+"/r")
	if err == nil || !strings.Contains(out, "1 differences found") || !strings.Contains(out, "d03/e0/f0003.bin") {
		t.Fatalf("rclone check missed a changed file: %v\n%s", err, out)
	}
}
