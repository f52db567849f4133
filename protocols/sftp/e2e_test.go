package sftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
	"github.com/wharf-project/wharf/internal/s3test"
)

// End-to-end tests with real clients. Each is skipped when its client is missing, and fails
// instead when WHARF_E2E=1.

// e2e is a running server with user "alice" (password and an OpenSSH key), and a client
// side work folder.
type e2e struct {
	srv  *Server
	addr string
	port string
	home string // alice's home on the host
	key  string // private key file for OpenSSH clients
	work string // the client's folder
	env  []string
	d    *coretest.Dispatcher
}

func newE2E(t *testing.T) *e2e { return newE2EOn(t, nil) }

// newE2EOn is newE2E with alice's home in object storage when store is not nil (prefix
// home/alice of bucket s3kit.Bucket); home is then that prefix's folder on the store's host.
func newE2EOn(t *testing.T, store *s3test.Server) *e2e {
	t.Helper()
	keygen := coretest.NeedBinary(t, "ssh-keygen")
	work := t.TempDir()
	key := filepath.Join(work, "id_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "wharf-test", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	u := testUser("alice")
	u.PublicKeys = []string{strings.TrimSpace(string(pub))}
	d := &coretest.Dispatcher{}
	// The dispatcher records only events that have a handler.
	for _, ev := range []core.EventName{core.BeforeOpenCmd, core.BeforeOpenSFTP, core.OnAuthSuccess, core.OnAuthFail} {
		d.On(ev, func(*core.Event) {})
	}
	cfg := testSiteConfig(root, u)
	home := filepath.Join(root, "home", "alice")
	if store != nil {
		cfg.VFS = []config.VFS{s3kit.VFS(store, "home", "home/{user}")}
		home = filepath.Join(store.Bucket(t, s3kit.Bucket), "home", "alice")
	}
	site := newTestSite(t, cfg, d)
	srv, addr := startServer(t, site)
	_, port, _ := net.SplitHostPort(addr)
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	clientHome := filepath.Join(work, "home")
	if err := os.MkdirAll(clientHome, 0o700); err != nil {
		t.Fatal(err)
	}
	// A private HOME keeps the clients away from the user's ~/.ssh, agent and rclone config.
	env := []string{"HOME=" + clientHome, "PATH=" + os.Getenv("PATH"), "LANG=C"}
	return &e2e{srv: srv, addr: addr, port: port, home: home, key: key, work: work, env: env, d: d}
}

func (e *e2e) sshOptions() []string {
	return []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
		"-i", e.key}
}

// run runs a client with a deadline and returns its combined output, failing on error.
func (e *e2e) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	start := time.Now()
	out, err := e.try(name, args...)
	t.Logf("%s took %v", filepath.Base(name), time.Since(start))
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func (e *e2e) try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.env
	cmd.Dir = e.work
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *e2e) local(p string) string { return filepath.Join(e.work, filepath.FromSlash(p)) }
func (e *e2e) remote(p string) string {
	return filepath.Join(e.home, filepath.FromSlash(strings.TrimPrefix(p, "/")))
}

func putFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sameFile(t *testing.T, want, got string) {
	t.Helper()
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !bytes.Equal(w, g) {
		t.Fatalf("%s differs from %s (%d bytes, want %d)", got, want, len(g), len(w))
	}
}

// sftpBatch runs OpenSSH sftp as alice with cmds as its batch file (one command a line) and
// returns its output; a failed command fails the test unless it starts with "-".
func (e *e2e) sftpBatch(t *testing.T, sftpBin string, cmds ...string) string {
	t.Helper()
	putFile(t, e.local("batch"), []byte(strings.Join(cmds, "\n")+"\n"))
	return e.run(t, sftpBin, append(e.sshOptions(), "-P", e.port, "-b", e.local("batch"), "alice@127.0.0.1")...)
}

// wantBatchCopies checks what the batch tests' transfers leave: a.bin put to /up and renamed
// b.bin, got back whole to got/a.bin and by reget to got/partial.bin, and tree put as /up/tree.
func (e *e2e) wantBatchCopies(t *testing.T) {
	t.Helper()
	sameFile(t, e.local("a.bin"), e.remote("/up/b.bin"))
	sameFile(t, e.local("a.bin"), e.local("got/a.bin"))
	sameFile(t, e.local("a.bin"), e.local("got/partial.bin"))
	sameTree(t, e.local("tree"), e.remote("/up/tree"))
}

func TestOpenSSHSFTPBatch(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	e := newE2E(t)
	data := randomBytes(t, 3<<20+17)
	putFile(t, e.local("a.bin"), data)
	writeTree(t, e.local("tree"), 40)
	// reget: a local partial copy to complete; reput: a partial remote copy to complete.
	putFile(t, e.local("got/partial.bin"), data[:1<<20])
	putFile(t, e.remote("/up/half.bin"), data[:1<<20+5])

	out := e.sftpBatch(t, sftpBin,
		"mkdir /up/new",
		"cd /up",
		"put a.bin a.bin",
		"put -r tree tree",
		"get a.bin got/a.bin",
		"reget a.bin got/partial.bin",
		"reput a.bin half.bin",
		"rename a.bin b.bin",
		"chmod 600 b.bin",
		"ls -l",
		"rm half.bin",
		"rmdir /up/new",
		"-rmdir /up/tree",
		"bye",
	)

	e.wantBatchCopies(t)
	for _, gone := range []string{"/up/a.bin", "/up/half.bin", "/up/new"} {
		if _, err := os.Stat(e.remote(gone)); err == nil {
			t.Errorf("%s still exists", gone)
		}
	}
	fi, err := os.Stat(e.remote("/up/b.bin"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("chmod 600: mode %v, %v", fi.Mode(), err)
	}
	if !strings.Contains(out, "b.bin") || !strings.Contains(out, "-rw-------") {
		t.Errorf("ls -l output lacks b.bin with mode -rw-------:\n%s", out)
	}
	// The non-empty directory refusal carries the core's message.
	if !strings.Contains(out, "directory not empty") && !strings.Contains(out, "Failure") {
		t.Errorf("rmdir of a non-empty directory: no error in output:\n%s", out)
	}
}

// TestOpenSSHEveryCipher moves a file both ways with each cipher the server offers, forced
// with -c, against OpenSSH's own implementation of it (chacha20-poly1305 is wharf's patched
// copy of x/crypto's, see third_party/ssh/WHARF.md). The size crosses every packet size the
// client sends: full 32 KiB packets, a short last one, and the small requests around them.
func TestOpenSSHEveryCipher(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	e := newE2E(t)
	data := randomBytes(t, 3<<20+17)
	putFile(t, e.local("a.bin"), data)
	for _, c := range ciphers() {
		t.Run(c, func(t *testing.T) {
			batch := fmt.Sprintf("put a.bin %[1]s.bin\nget %[1]s.bin %[1]s.back\n", c)
			putFile(t, e.local("batch"), []byte(batch))
			args := append(e.sshOptions(), "-c", c, "-P", e.port, "-b", e.local("batch"), "alice@127.0.0.1")
			e.run(t, sftpBin, args...)
			sameFile(t, e.local("a.bin"), e.remote("/"+c+".bin"))
			sameFile(t, e.local("a.bin"), e.local(c+".back"))
		})
	}
}

// TestOpenSSHGetEscape: "get ../../../../etc/passwd" as typed in OpenSSH's client.
func TestOpenSSHGetEscape(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	e := newE2E(t)
	for i, p := range []string{"../../../../etc/passwd", "/etc/passwd", "/../../../etc/passwd"} {
		out := e.local(fmt.Sprintf("stolen%d", i))
		putFile(t, e.local("batch"), []byte(fmt.Sprintf("get %s %s\n", p, out)))
		res, err := e.try(sftpBin, append(e.sshOptions(), "-P", e.port, "-b", e.local("batch"), "alice@127.0.0.1")...)
		if err == nil {
			t.Errorf("get %s succeeded:\n%s", p, res)
		}
		if data, err := os.ReadFile(out); err == nil && bytes.Contains(data, []byte("root:")) {
			t.Fatalf("get %s returned the host's /etc/passwd", p)
		}
	}
}

func TestOpenSSHSCP(t *testing.T) {
	scpBin := coretest.NeedBinary(t, "scp")
	e := newE2E(t)
	for _, mode := range []struct{ name, flag string }{{"sftp", ""}, {"legacy", "-O"}} {
		t.Run(mode.name, func(t *testing.T) {
			scp := func(args ...string) string {
				t.Helper()
				all := append(e.sshOptions(), "-P", e.port)
				if mode.flag != "" {
					all = append(all, mode.flag)
				}
				return e.run(t, scpBin, append(all, args...)...)
			}
			dst := "/" + mode.name
			putFile(t, e.remote(dst+"/.keep"), nil)
			// One file up and down, with -p: the modification time travels both ways.
			data := randomBytes(t, 2<<20+3)
			local := e.local(mode.name + "/one.bin")
			putFile(t, local, data)
			old := time.Date(2020, 5, 17, 10, 20, 30, 0, time.UTC)
			if err := os.Chtimes(local, old, old); err != nil {
				t.Fatal(err)
			}
			scp("-p", local, "alice@127.0.0.1:"+dst+"/one.bin")
			sameFile(t, local, e.remote(dst+"/one.bin"))
			if fi, err := os.Stat(e.remote(dst + "/one.bin")); err != nil || !fi.ModTime().Equal(old) {
				t.Errorf("upload -p: server mtime %v, want %v (%v)", fi.ModTime(), old, err)
			}
			back := e.local(mode.name + "/back.bin")
			scp("-p", "alice@127.0.0.1:"+dst+"/one.bin", back)
			sameFile(t, local, back)
			if fi, err := os.Stat(back); err != nil || !fi.ModTime().Equal(old) {
				t.Errorf("download -p: local mtime %v, want %v (%v)", fi.ModTime(), old, err)
			}
			// A tree up (into an existing directory) and back down.
			tree := e.local(mode.name + "/tree")
			writeTree(t, tree, 30)
			scp("-r", tree, "alice@127.0.0.1:"+dst)
			sameTree(t, tree, e.remote(dst+"/tree"))
			down := e.local(mode.name + "/down")
			if err := os.MkdirAll(down, 0o755); err != nil {
				t.Fatal(err)
			}
			scp("-r", "alice@127.0.0.1:"+dst+"/tree", down)
			sameTree(t, tree, filepath.Join(down, "tree"))
			// A missing file is an error with the core's message, not a hang.
			all := append(e.sshOptions(), "-P", e.port)
			if mode.flag != "" {
				all = append(all, mode.flag)
			}
			out, err := e.try(scpBin, append(all, "alice@127.0.0.1:/no/such.bin", e.local("x"))...)
			if err == nil {
				t.Fatalf("download of a missing file succeeded:\n%s", out)
			}
			if !strings.Contains(strings.ToLower(out), "no such file") {
				t.Errorf("missing file: output %q does not say so", out)
			}
			gate := core.BeforeOpenSFTP
			if mode.flag == "-O" {
				gate = core.BeforeOpenCmd
			}
			if count(e.d, gate) == 0 {
				t.Errorf("%s did not fire", gate)
			}
		})
	}

}

// needCurlSFTP returns curl's path; a curl built without SFTP skips the test (fails it when
// WHARF_E2E=1).
func (e *e2e) needCurlSFTP(t *testing.T) string {
	t.Helper()
	curl := coretest.NeedBinary(t, "curl")
	if out, _ := e.try(curl, "-V"); !strings.Contains(out, "sftp") {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("curl has no sftp support:\n%s", out)
		}
		t.Skip("curl built without sftp")
	}
	return curl
}

// curlRoundTrip uploads 1 MiB and a bit with curl to the server's name, then downloads it
// back, checking both copies; it returns the URL.
func (e *e2e) curlRoundTrip(t *testing.T, curl, name string) string {
	t.Helper()
	putFile(t, e.local("c.bin"), randomBytes(t, 1<<20+99))
	url := fmt.Sprintf("sftp://127.0.0.1:%s%s", e.port, name)
	base := []string{"-sS", "--fail", "-k", "--connect-timeout", "10", "-u", "alice:" + testPassword}
	e.run(t, curl, append(base, "-T", e.local("c.bin"), url)...)
	sameFile(t, e.local("c.bin"), e.remote(name))
	e.run(t, curl, append(base, "-o", e.local("c.back"), url)...)
	sameFile(t, e.local("c.bin"), e.local("c.back"))
	return url
}

func TestCurlSFTP(t *testing.T) {
	e := newE2E(t)
	curl := e.needCurlSFTP(t)
	putFile(t, e.remote("/curl/.keep"), nil)
	url := e.curlRoundTrip(t, curl, "/curl/c.bin")
	// A wrong password fails.
	if out, err := e.try(curl, "-sS", "--fail", "-k", "-u", "alice:wrong", "-o", e.local("x"), url); err == nil {
		t.Fatalf("curl with a wrong password succeeded:\n%s", out)
	}
}

// rclone returns a runner of rclone, with the transfer flags the tests use, and the
// on-the-fly remote (":sftp,…:") that logs in to the server as alice.
func (e *e2e) rclone(t *testing.T) (rc func(args ...string) string, remote string) {
	t.Helper()
	bin := coretest.NeedBinary(t, "rclone")
	conf := e.local("rclone.conf")
	putFile(t, conf, nil)
	obscured := strings.TrimSpace(e.run(t, bin, "--config", conf, "obscure", testPassword))
	remote = fmt.Sprintf(":sftp,host=127.0.0.1,port=%s,user=alice,pass=%s:", e.port, obscured)
	flags := []string{"--config", conf, "--transfers", "8", "--checkers", "8", "--retries", "1", "--low-level-retries", "2"}
	return func(args ...string) string {
		t.Helper()
		return e.run(t, bin, append(append([]string(nil), args...), flags...)...)
	}, remote
}

func TestRclone(t *testing.T) {
	e := newE2E(t)
	rc, remote := e.rclone(t)
	tree := e.local("tree")
	writeTree(t, tree, 240)
	rc("copy", tree, remote+"/r/tree")
	sameTree(t, tree, e.remote("/r/tree"))
	rc("check", "--download", tree, remote+"/r/tree")

	// Change the local tree: remove some files, add and modify others; sync mirrors it.
	for i := 0; i < 240; i += 9 {
		p := filepath.Join(tree, fmt.Sprintf("d%02d", i%7), fmt.Sprintf("e%d", i%3), fmt.Sprintf("f%04d.bin", i))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	putFile(t, filepath.Join(tree, "new", "n.bin"), randomBytes(t, 12345))
	putFile(t, filepath.Join(tree, "d01", "e1", "f0001.bin"), randomBytes(t, 777))
	rc("sync", tree, remote+"/r/tree")
	sameTree(t, tree, e.remote("/r/tree"))
	rc("check", "--download", tree, remote+"/r/tree")

	back := e.local("back")
	rc("copy", remote+"/r/tree", back)
	sameTree(t, tree, back)
}

// needParamiko returns Debian's python3, which imports paramiko; the test skips without it,
// and fails under WHARF_E2E=1.
func (e *e2e) needParamiko(t *testing.T) string {
	t.Helper()
	py := coretest.NeedBinary(t, "/usr/bin/python3")
	if out, err := e.try(py, "-c", "import paramiko"); err != nil {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("paramiko is not importable: %v\n%s", err, out)
		}
		t.Skip("python3-paramiko not installed")
	}
	return py
}

func TestParamikoKeyboardInteractive(t *testing.T) {
	e := newE2E(t)
	py := e.needParamiko(t)
	e.d.On(core.OnAuthInteractiveSetQuestions, func(ev *core.Event) {
		ev.Session.AddQuestion(2, "Favourite colour? ", "blue", true)
		ev.Session.AddQuestionPassword(1, "Password: ")
	})
	script := `
import sys, paramiko
host, port, user, password, local, remote = sys.argv[1:]
seen = []
def answer(title, instructions, prompts):
    seen.append(prompts)
    return [password if p.startswith("Password") else "blue" for p, echo in prompts]
t = paramiko.Transport((host, int(port)))
t.start_client(timeout=10)
t.auth_interactive(user, answer)
assert t.is_authenticated()
assert seen == [[("Password: ", False), ("Favourite colour? ", True)]], seen
s = paramiko.SFTPClient.from_transport(t)
s.mkdir("/py")
s.put(local, remote)
s.get(remote, local + ".back")
print("listing:", sorted(s.listdir("/py")))
s.close()
t.close()
`
	putFile(t, e.local("ki.py"), []byte(script))
	data := randomBytes(t, 700_001)
	putFile(t, e.local("p.bin"), data)
	e.run(t, py, e.local("ki.py"), "127.0.0.1", e.port, "alice", testPassword, e.local("p.bin"), "/py/p.bin")
	sameFile(t, e.local("p.bin"), e.remote("/py/p.bin"))
	sameFile(t, e.local("p.bin"), e.local("p.bin.back"))
	if count(e.d, core.OnAuthSuccess) == 0 {
		t.Error("OnAuthSuccess did not fire")
	}
}

// TestParamikoCheckFile: paramiko's SFTPFile.check (the check-file extension, on a handle)
// gets the core's hashes of the file and of a range of it; an algorithm wharf does not know,
// or hashes of blocks, are refused with a message.
func TestParamikoCheckFile(t *testing.T) {
	e := newE2E(t)
	py := e.needParamiko(t)
	script := `
import sys, hashlib, paramiko
host, port, user, password, local = sys.argv[1:]
data = open(local, "rb").read()
t = paramiko.Transport((host, int(port)))
t.connect(username=user, password=password)
s = paramiko.SFTPClient.from_transport(t)
s.put(local, "/ck.bin")
f = s.open("/ck.bin")
for alg in ["md5", "sha1", "sha256", "sha512"]:
    assert f.check(alg).hex() == hashlib.new(alg, data).hexdigest(), alg
assert f.check("sha256", 1000, 5000).hex() == hashlib.sha256(data[1000:6000]).hexdigest()
for args, want in [(("crc32",), "none of"), (("md5", 0, 0, 1024), "blocks")]:
    try:
        f.check(*args)
        raise SystemExit("check%r succeeded" % (args,))
    except IOError as e:
        assert want in str(e), e
print("ok")
`
	putFile(t, e.local("ck.py"), []byte(script))
	putFile(t, e.local("ck.bin"), randomBytes(t, 300_001))
	e.run(t, py, e.local("ck.py"), "127.0.0.1", e.port, "alice", testPassword, e.local("ck.bin"))
}

// TestOpenSSHCopy: OpenSSH's sftp copies a file on the server with cp (the copy-data
// extension: the server reads one handle and writes the other, through the core like any
// read and write), on a disk home and on one in object storage; cp of a missing file fails.
func TestOpenSSHCopy(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	for _, store := range []string{"disk", "s3"} {
		t.Run(store, func(t *testing.T) {
			var e *e2e
			if store == "s3" {
				e = newE2EOn(t, s3test.Start(t))
			} else {
				e = newE2E(t)
			}
			putFile(t, e.local("a.bin"), randomBytes(t, 3_000_001))
			e.sftpBatch(t, sftpBin, "put a.bin /a.bin", "mkdir /d", "cp /a.bin /d/copy.bin", "cp /d/copy.bin /d/again.bin",
				"-cp /missing.bin /d/x.bin")
			sameFile(t, e.local("a.bin"), e.remote("/d/copy.bin"))
			sameFile(t, e.local("a.bin"), e.remote("/d/again.bin"))
			if _, err := os.Stat(e.remote("/d/x.bin")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cp of a missing file left %v", err)
			}
		})
	}
}
