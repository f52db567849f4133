package ftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// End-to-end tests with real client binaries. Each is skipped when its binary is missing,
// and fails instead when WHARF_E2E=1.

// run executes a client binary with a deadline and returns its combined output.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", name, timeout, ctx.Err())
	}
	return string(out), err
}

func mustRun(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, timeout, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(redact(args), " "), err, out)
	}
	return out
}

// redact keeps the test password out of failure messages.
func redact(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, coretest.Password, "****")
	}
	return out
}

// makeTree writes n files of random sizes (some empty) in nested folders under dir.
func makeTree(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%7), fmt.Sprintf("e%d", i%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		size := mrand.IntN(40_000)
		if i%25 == 0 {
			size = 0
		}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.bin", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameTree fails unless both trees hold the same files with the same bytes.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		files[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, ok := files[rel]
		switch {
		case !ok:
			t.Errorf("unexpected file %s", rel)
		case !bytes.Equal(w, data):
			t.Errorf("%s differs: %d bytes, want %d", rel, len(data), len(w))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) {
		t.Fatalf("%d files in %s, want %d", n, got, len(files))
	}
}

func port(ts *testServer) string {
	_, p, _ := net.SplitHostPort(ts.addr)
	return p
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLFTP mirrors a tree up and back, resumes a download and manages files with lftp, over
// plain FTP and explicit TLS (whose data connections must resume the control session).
func TestLFTP(t *testing.T) {
	lftp := coretest.NeedBinary(t, "lftp")
	for _, m := range []mode{modePlain, modeExplicit} {
		t.Run(m.String(), func(t *testing.T) {
			site, root := newSite(t, nil, nil)
			ts := serve(t, site, m)
			home := filepath.Join(root, "home", coretest.UserAlice)
			local := t.TempDir()
			src, back := filepath.Join(local, "src"), filepath.Join(local, "back")
			makeTree(t, src, 220)
			big := randomBytes(t, 3<<20)
			if err := os.WriteFile(filepath.Join(home, "big.bin"), big, 0o644); err != nil {
				t.Fatal(err)
			}
			// A partial local copy whose prefix differs from the server's: if lftp resumes
			// (REST), the result keeps this prefix; a full download would overwrite it.
			partial := filepath.Join(local, "big.part")
			prefix := bytes.Repeat([]byte{'#'}, 1<<20)
			if err := os.WriteFile(partial, prefix, 0o644); err != nil {
				t.Fatal(err)
			}

			tlsSettings := "set ftp:ssl-allow no\n"
			if m == modeExplicit {
				tlsSettings = "set ftp:ssl-force true\nset ftp:ssl-protect-data true\nset ftp:ssl-protect-list true\nset ssl:verify-certificate no\n"
			}
			out := runLftp(t, lftp, local, tlsSettings, port(ts), fmt.Sprintf(`mirror -R --no-perms %s /tree
mirror --no-perms /tree %s
get -c /big.bin -o %s
mkdir /newdir
mv /tree/d0/e0/f000.bin /newdir/moved.bin
rm /tree/d1/e1/f001.bin
cls -1 /newdir
rm /newdir/moved.bin
rmdir /newdir
`, src, back, partial))

			sameTree(t, src, back)
			// The server's copy of the tree (before the mv/rm at the end) came back intact;
			// now check the server side after the file operations.
			if _, err := os.Stat(filepath.Join(home, "tree", "d0", "e0", "f000.bin")); err == nil {
				t.Error("mv left the source in place")
			}
			if _, err := os.Stat(filepath.Join(home, "tree", "d1", "e1", "f001.bin")); err == nil {
				t.Error("rm left the file in place")
			}
			if _, err := os.Stat(filepath.Join(home, "newdir")); err == nil {
				t.Error("rmdir left the folder in place")
			}
			if !strings.Contains(out, "moved.bin") {
				t.Errorf("listing after mv does not show moved.bin:\n%s", out)
			}
			got, err := os.ReadFile(partial)
			if err != nil {
				t.Fatal(err)
			}
			if want := append(append([]byte(nil), prefix...), big[len(prefix):]...); !bytes.Equal(got, want) {
				t.Fatalf("get -c did not resume at the local size (got %d bytes, prefix kept: %v)",
					len(got), bytes.HasPrefix(got, prefix))
			}
		})
	}
}

// TestCurl uploads, downloads and resumes with curl over FTP, explicit and implicit TLS.
func TestCurl(t *testing.T) {
	curl := coretest.NeedBinary(t, "curl")
	for _, m := range []mode{modePlain, modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) {
			site, root := newSite(t, nil, nil)
			ts := serve(t, site, m)
			home := filepath.Join(root, "home", coretest.UserAlice)
			local := t.TempDir()
			scheme, extra := "ftp", []string{}
			switch m {
			case modeExplicit:
				extra = []string{"--ssl-reqd", "-k"}
			case modeImplicit:
				scheme, extra = "ftps", []string{"-k"}
			}
			base := fmt.Sprintf("%s://127.0.0.1:%s", scheme, port(ts))
			args := func(a ...string) []string {
				return append(append([]string{"-sS", "--fail", "--max-time", "60", "-u", coretest.UserAlice + ":" + coretest.Password}, extra...), a...)
			}

			data, up := curlRoundTrip(t, curl, args, base, home, local)

			// Download resume: a wrong local prefix survives only if curl used REST.
			part := filepath.Join(local, "part.bin")
			prefix := bytes.Repeat([]byte{'#'}, 700_000)
			if err := os.WriteFile(part, prefix, 0o644); err != nil {
				t.Fatal(err)
			}
			mustRun(t, time.Minute, nil, curl, args("-C", "-", "-o", part, base+"/c/up.bin")...)
			if got, _ := os.ReadFile(part); !bytes.Equal(got, append(append([]byte(nil), prefix...), data[len(prefix):]...)) {
				t.Fatalf("-C - download did not resume at the local size")
			}

			// Upload resume: the server holds a prefix, curl sends the rest (SIZE + APPE).
			if err := os.WriteFile(filepath.Join(home, "c", "resume.bin"), data[:1<<20], 0o644); err != nil {
				t.Fatal(err)
			}
			mustRun(t, time.Minute, nil, curl, args("-C", "-", "-T", up, base+"/c/resume.bin")...)
			if got, _ := os.ReadFile(filepath.Join(home, "c", "resume.bin")); !bytes.Equal(got, data) {
				t.Fatalf("-C - upload: server file differs (%d bytes, want %d)", len(got), len(data))
			}

			// Listing.
			out := mustRun(t, time.Minute, nil, curl, args("-l", base+"/c/")...)
			if !strings.Contains(out, "up.bin") || !strings.Contains(out, "resume.bin") {
				t.Fatalf("NLST output:\n%s", out)
			}
		})
	}
}

// runLftp runs lftp's commands (one a line) as alice on the server at port, after settings
// (the TLS ones) and those every test uses, with local as HOME; it returns lftp's output.
func runLftp(t *testing.T, lftp, local, settings, port, cmds string) string {
	t.Helper()
	script := settings + fmt.Sprintf(`set net:max-retries 1
set net:timeout 20
set cmd:fail-exit true
set mirror:parallel-transfer-count 2
open -u "%s,%s" -p %s 127.0.0.1
`, coretest.UserAlice, coretest.Password, port) + cmds + "bye\n"
	sf := filepath.Join(local, "script.lftp")
	if err := os.WriteFile(sf, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	return mustRun(t, 3*time.Minute, []string{"HOME=" + local}, lftp, "-f", sf)
}

// curlRoundTrip uploads 2 MiB and a bit with curl to /c/up.bin (creating /c), checks the
// file in home, downloads it back and checks it; it returns the data and its local file.
// args adds the login and the mode's flags to curl's arguments; base is the server's URL.
func curlRoundTrip(t *testing.T, curl string, args func(...string) []string, base, home, local string) ([]byte, string) {
	t.Helper()
	data := randomBytes(t, 2<<20+17)
	up := filepath.Join(local, "up.bin")
	if err := os.WriteFile(up, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, time.Minute, nil, curl, args("--ftp-create-dirs", "-T", up, base+"/c/up.bin")...)
	if got, _ := os.ReadFile(filepath.Join(home, "c", "up.bin")); !bytes.Equal(got, data) {
		t.Fatalf("uploaded file differs (%d bytes, want %d)", len(got), len(data))
	}
	down := filepath.Join(local, "down.bin")
	mustRun(t, time.Minute, nil, curl, args("-o", down, base+"/c/up.bin")...)
	if got, _ := os.ReadFile(down); !bytes.Equal(got, data) {
		t.Fatal("downloaded file differs")
	}
	return data, up
}

// pythonScript drives ftplib; it prints one line per step so the test can check each.
const pythonScript = `
import ftplib, io, ssl, sys
host, port, user, pw, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
if mode == "plain":
    f = ftplib.FTP()
else:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    f = ftplib.FTP_TLS(context=ctx)
f.connect(host, port, timeout=20)
f.login(user, pw)
if mode != "plain":
    f.prot_p()
payload = bytes(range(256)) * 4000
try:
    f.storbinary("STOR py.bin", io.BytesIO(payload))
    buf = io.BytesIO()
    f.retrbinary("RETR py.bin", buf.write)
    print("transfer", "ok" if buf.getvalue() == payload else "corrupt")
except ftplib.Error as e:
    print("transfer", "error", type(e).__name__, str(e).replace("\n", " "))
except Exception as e:
    # The data connection's TLS failed first: the server's final reply is still pending.
    # (OpenSSL may report the data connection's alert once more on the control connection.)
    print("transfer", "error", type(e).__name__, str(e).replace("\n", " "))
    for _ in range(3):
        try:
            print("pending", f.getresp().replace("\n", " "))
            break
        except ftplib.Error as e2:
            print("pending", str(e2).replace("\n", " "))
            break
        except ssl.SSLError as e3:
            print("stale TLS error", e3)
# OpenSSL keeps errors in a queue per thread, not per connection: the data connection's
# alert can surface on the control connection's next read, once, whichever branch ran above.
f.putcmd("NOOP")
for _ in range(3):
    try:
        print("noop", f.voidresp())
        break
    except ssl.SSLError as e4:
        print("stale TLS error", e4)
print("pwd", f.pwd())
f.quit()
`

// TestPythonFTPLib uses Python's ftplib: FTP, and FTP_TLS, which never resumes TLS sessions
// on data connections: refused with tls_session_reuse required (the control connection
// survives), accepted with optional.
func TestPythonFTPLib(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = coretest.NeedBinary(t, "python3")
	}
	script := filepath.Join(t.TempDir(), "ftpcheck.py")
	if err := os.WriteFile(script, []byte(pythonScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mode   mode
		reuse  string
		wantOK bool
	}{
		{"plain", modePlain, "required", true},
		{"tls reuse required", modeExplicit, "required", false},
		{"tls reuse optional", modeExplicit, "optional", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			site, _ := newSite(t, nil, func(c *config.Site) { c.FTP.TLSSessionReuse = tc.reuse })
			ts := serve(t, site, tc.mode)
			pm := "plain"
			if tc.mode == modeExplicit {
				pm = "tls"
			}
			out := mustRun(t, time.Minute, nil, py, script, "127.0.0.1", port(ts), coretest.UserAlice, coretest.Password, pm)
			t.Logf("ftplib:\n%s", out)
			if tc.wantOK {
				if !strings.Contains(out, "transfer ok") {
					t.Fatalf("transfer failed:\n%s", out)
				}
			} else if !strings.Contains(out, "transfer error") || !strings.Contains(out, "TLS session of data connection not resumed") {
				t.Fatalf("transfer was not refused for lack of TLS session reuse:\n%s", out)
			}
			if !strings.Contains(out, "noop 200") || !strings.Contains(out, "pwd /") {
				t.Fatalf("control connection did not survive:\n%s", out)
			}
		})
	}
}

// TestRclone copies and checks a tree with rclone's FTP backend, plain and explicit TLS.
func TestRclone(t *testing.T) {
	rclone := coretest.NeedBinary(t, "rclone")
	for _, m := range []mode{modePlain, modeExplicit} {
		t.Run(m.String(), func(t *testing.T) {
			site, root := newSite(t, nil, nil)
			ts := serve(t, site, m)
			local := t.TempDir()
			src := filepath.Join(local, "src")
			makeTree(t, src, 60)
			env := []string{"RCLONE_CONFIG=" + filepath.Join(local, "rclone.conf"), "HOME=" + local}
			obscured := strings.TrimSpace(mustRun(t, time.Minute, env, rclone, "obscure", coretest.Password))
			remote := fmt.Sprintf(":ftp,host=127.0.0.1,port=%s,user=%s,pass=%s", port(ts), coretest.UserAlice, obscured)
			if m == modeExplicit {
				remote += ",explicit_tls=true,no_check_certificate=true"
			}
			remote += ":rc"
			mustRun(t, 2*time.Minute, env, rclone, "copy", src, remote)
			mustRun(t, 2*time.Minute, env, rclone, "check", src, remote)
			sameTree(t, src, filepath.Join(root, "home", coretest.UserAlice, "rc"))
			back := filepath.Join(local, "back")
			mustRun(t, 2*time.Minute, env, rclone, "copy", remote, back)
			sameTree(t, src, back)
		})
	}
}
