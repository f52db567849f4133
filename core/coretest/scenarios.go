package coretest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
)

// Scenario is one row of the table: a behaviour every protocol must show.
type Scenario struct {
	Name string
	Run  func(t *testing.T, e *Env)
}

// Env is what a scenario works with: a dialer for the protocol under test and the host folder
// behind the site (to check what did or did not reach the disk).
type Env struct {
	Protocol Protocol
	Dial     Dial
	Root     string // host folder: home/<user>, shared
	Storage  Storage
}

// Login dials a user or fails the test; the client is closed when the test ends.
func (e *Env) Login(t *testing.T, user string) Client {
	t.Helper()
	c, err := e.Dial(user, Password)
	if err != nil {
		t.Fatalf("login %s over %s: %v", user, e.Protocol.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// HomeDir is the host folder of a user's home.
func (e *Env) HomeDir(user string) string { return filepath.Join(e.Root, "home", user) }

// Run runs every scenario against a protocol, on disk.
func Run(t *testing.T, p Protocol) { RunOn(t, p, DiskStorage) }

// RunOn runs every scenario against a protocol, with the site's files on storage.
func RunOn(t *testing.T, p Protocol, st Storage) {
	site, root := NewSiteOn(t, st)
	if err := os.MkdirAll(filepath.Join(root, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shared", "readme.txt"), []byte(SharedData), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Env{Protocol: p, Dial: p.Serve(t, site), Root: root, Storage: st}
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) { sc.Run(t, e) })
	}
}

// need skips a scenario that cannot run without abilities (Cap…) the protocol lacks.
func (e *Env) need(t *testing.T, abilities ...string) {
	t.Helper()
	for _, a := range abilities {
		if !e.Can(a) {
			t.Skipf("%s cannot %s", e.Protocol.Name, a)
		}
	}
}

// Can reports whether the protocol under test has an ability (Cap…).
func (e *Env) Can(ability string) bool { return !e.Protocol.Lacks[ability] }

// mkdir creates a folder in a user's home over the protocol, or on the host when the
// protocol cannot.
func (e *Env) mkdir(t *testing.T, c Client, user, p string) {
	t.Helper()
	if e.Can(CapMkdir) {
		mustNil(t, c.Mkdir(p), "mkdir "+p)
		return
	}
	if e.Storage.Mkdir != nil {
		e.Storage.Mkdir(t, path.Join("home", user, p))
		return
	}
	mustNil(t, os.MkdirAll(filepath.Join(e.HomeDir(user), filepath.FromSlash(p)), 0o755), "mkdir on the host")
}

// list lists a folder of a user's home over the protocol, or on the host when the protocol
// cannot.
func (e *Env) list(t *testing.T, c Client, user, dir string) []Entry {
	t.Helper()
	if e.Can(CapList) {
		es, err := c.List(dir)
		mustNil(t, err, "list "+dir)
		return es
	}
	des, err := os.ReadDir(filepath.Join(e.HomeDir(user), filepath.FromSlash(dir)))
	mustNil(t, err, "list on the host")
	out := make([]Entry, 0, len(des))
	for _, d := range des {
		out = append(out, Entry{Name: d.Name(), IsDir: d.IsDir()})
	}
	return out
}

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustNil(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustEqual(t *testing.T, got, want []byte, what string) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d bytes (content differs)", what, len(got), len(want))
	}
}

func names(es []Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func find(es []Entry, name string) (Entry, bool) {
	for _, e := range es {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// noTempFiles fails if an atomic-upload temp file is left in a host folder tree.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) > 0 && bytes.HasPrefix([]byte(d.Name()), []byte(".wharf-upload-")) {
			t.Errorf("temp upload file left behind: %s", d.Name())
		}
		return nil
	})
}

// Scenarios returns the table. Each scenario works in its own folder of alice's home (or uses
// another user), so they do not disturb each other.
func Scenarios() []Scenario {
	return []Scenario{
		{"upload and download", func(t *testing.T, e *Env) {
			c := e.Login(t, UserAlice)
			e.mkdir(t, c, UserAlice, "/up")
			data := randomData(t, 1<<20+123)
			mustNil(t, c.Upload("/up/a.bin", data), "upload")
			got, err := c.Download("/up/a.bin")
			mustNil(t, err, "download")
			mustEqual(t, got, data, "downloaded content")
			if e.Can(CapStat) {
				st, err := c.Stat("/up/a.bin")
				mustNil(t, err, "stat")
				if st.Size != int64(len(data)) || st.IsDir {
					t.Fatalf("stat = %+v, want a file of %d bytes", st, len(data))
				}
			}
			onDisk, err := os.ReadFile(filepath.Join(e.HomeDir(UserAlice), "up", "a.bin"))
			mustNil(t, err, "read host file")
			mustEqual(t, onDisk, data, "host file")
			noTempFiles(t, e.HomeDir(UserAlice))
		}},
		{"overwrite replaces content", func(t *testing.T, e *Env) {
			c := e.Login(t, UserAlice)
			e.mkdir(t, c, UserAlice, "/ow")
			mustNil(t, c.Upload("/ow/f.txt", []byte("first version, longer than the second")), "upload 1")
			mustNil(t, c.Upload("/ow/f.txt", []byte("second")), "upload 2")
			got, err := c.Download("/ow/f.txt")
			mustNil(t, err, "download")
			mustEqual(t, got, []byte("second"), "content after overwrite")
		}},
		{"resume upload", func(t *testing.T, e *Env) {
			e.need(t, CapResume)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Mkdir("/ru"), "mkdir")
			data := randomData(t, 300_000)
			mustNil(t, c.Upload("/ru/big.bin", data[:100_000]), "first part")
			mustNil(t, c.UploadAt("/ru/big.bin", data[100_000:], 100_000), "resume")
			got, err := c.Download("/ru/big.bin")
			mustNil(t, err, "download")
			mustEqual(t, got, data, "resumed file")
		}},
		{"resume download", func(t *testing.T, e *Env) {
			e.need(t, CapResume)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Mkdir("/rd"), "mkdir")
			data := randomData(t, 200_000)
			mustNil(t, c.Upload("/rd/f.bin", data), "upload")
			got, err := c.DownloadFrom("/rd/f.bin", 150_000)
			mustNil(t, err, "download from offset")
			mustEqual(t, got, data[150_000:], "tail")
		}},
		{"list directory", func(t *testing.T, e *Env) {
			e.need(t, CapList, CapMkdir)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Mkdir("/ls"), "mkdir")
			mustNil(t, c.Mkdir("/ls/sub"), "mkdir sub")
			mustNil(t, c.Upload("/ls/b.txt", []byte("bb")), "upload b")
			mustNil(t, c.Upload("/ls/a.txt", []byte("a")), "upload a")
			es, err := c.List("/ls")
			mustNil(t, err, "list")
			got := names(es)
			slices.Sort(got)
			if !slices.Equal(got, []string{"a.txt", "b.txt", "sub"}) {
				t.Fatalf("list = %v", got)
			}
			if b, _ := find(es, "b.txt"); b.Size != 2 || b.IsDir {
				t.Fatalf("b.txt entry = %+v", b)
			}
			if s, _ := find(es, "sub"); !s.IsDir {
				t.Fatalf("sub entry = %+v, want a directory", s)
			}
		}},
		{"names with control characters are refused", func(t *testing.T, e *Env) {
			// A CR or LF in a name could forge FTP reply lines or SCP headers (issue #19,
			// item 14): no protocol may create one. LF itself cannot travel in an FTP command,
			// so every protocol tries CR, another C0 control and DEL.
			c := e.Login(t, UserAlice)
			e.mkdir(t, c, UserAlice, "/ctl")
			mustNil(t, c.Upload("/ctl/ok.txt", []byte("ok")), "upload ok.txt")
			for _, bad := range []string{"cr\rname.txt", "soh\x01name", "del\x7fname"} {
				if err := c.Upload("/ctl/"+bad, []byte("x")); err == nil {
					t.Errorf("upload %q succeeded", bad)
				}
				if e.Can(CapMkdir) {
					if err := c.Mkdir("/ctl/" + bad); err == nil {
						t.Errorf("mkdir %q succeeded", bad)
					}
				}
				if e.Can(CapRename) {
					if err := c.Rename("/ctl/ok.txt", "/ctl/"+bad); err == nil {
						t.Errorf("rename to %q succeeded", bad)
					}
				}
			}
			entries, err := os.ReadDir(filepath.Join(e.HomeDir(UserAlice), "ctl"))
			mustNil(t, err, "read host folder")
			for _, de := range entries {
				if de.Name() != "ok.txt" {
					t.Errorf("host folder holds %q", de.Name())
				}
			}
		}},
		{"mkdir and rmdir", func(t *testing.T, e *Env) {
			e.need(t, CapMkdir, CapRmdir, CapStat, CapRemove)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Mkdir("/md"), "mkdir")
			st, err := c.Stat("/md")
			mustNil(t, err, "stat")
			if !st.IsDir {
				t.Fatalf("stat /md = %+v, want a directory", st)
			}
			wantKind(t, e.Protocol, c.Mkdir("/md"), core.ErrExists, "mkdir existing")
			mustNil(t, c.Upload("/md/f", []byte("x")), "upload")
			if err := c.Rmdir("/md"); err == nil {
				t.Fatal("rmdir of a non-empty directory succeeded")
			}
			mustNil(t, c.Remove("/md/f"), "remove")
			mustNil(t, c.Rmdir("/md"), "rmdir")
			_, err = c.Stat("/md")
			wantKind(t, e.Protocol, err, core.ErrNotFound, "stat removed dir")
		}},
		{"rename", func(t *testing.T, e *Env) {
			e.need(t, CapRename, CapStat, CapMkdir)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Mkdir("/rn"), "mkdir")
			mustNil(t, c.Upload("/rn/old.txt", []byte("payload")), "upload")
			mustNil(t, c.Rename("/rn/old.txt", "/rn/new.txt"), "rename")
			_, err := c.Stat("/rn/old.txt")
			wantKind(t, e.Protocol, err, core.ErrNotFound, "stat old name")
			got, err := c.Download("/rn/new.txt")
			mustNil(t, err, "download new name")
			mustEqual(t, got, []byte("payload"), "renamed content")
			mustNil(t, c.Mkdir("/rn/d"), "mkdir d")
			mustNil(t, c.Rename("/rn/d", "/rn/e"), "rename dir")
			st, err := c.Stat("/rn/e")
			mustNil(t, err, "stat renamed dir")
			if !st.IsDir {
				t.Fatal("renamed directory is not a directory")
			}
		}},
		{"delete", func(t *testing.T, e *Env) {
			e.need(t, CapRemove)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Upload("/del.txt", []byte("bye")), "upload")
			mustNil(t, c.Remove("/del.txt"), "remove")
			_, err := c.Download("/del.txt")
			wantKind(t, e.Protocol, err, core.ErrNotFound, "download deleted")
			wantKind(t, e.Protocol, c.Remove("/del.txt"), core.ErrNotFound, "remove again")
		}},
		{"missing file", func(t *testing.T, e *Env) {
			c := e.Login(t, UserAlice)
			_, err := c.Download("/no/such/file.txt")
			wantKind(t, e.Protocol, err, core.ErrNotFound, "download missing")
			if e.Can(CapStat) {
				_, err = c.Stat("/nothing-here")
				wantKind(t, e.Protocol, err, core.ErrNotFound, "stat missing")
			}
		}},
		{"permission denied", func(t *testing.T, e *Env) {
			a := e.Login(t, UserAlice)
			mustNil(t, a.Upload("/for-reader.txt", []byte("r")), "alice upload")
			r := e.Login(t, UserReader)
			wantKind(t, e.Protocol, r.Upload("/x.txt", []byte("x")), core.ErrDenied, "reader upload")
			if e.Can(CapMkdir) {
				wantKind(t, e.Protocol, r.Mkdir("/newdir"), core.ErrDenied, "reader mkdir")
			}
			wantKind(t, e.Protocol, a.Upload("/shared/x.txt", []byte("x")), core.ErrDenied, "upload to read-only folder")
			if e.Can(CapRemove) {
				wantKind(t, e.Protocol, a.Remove(SharedFile), core.ErrDenied, "delete in read-only folder")
			}
			got, err := r.Download(SharedFile)
			mustNil(t, err, "reader download shared")
			mustEqual(t, got, []byte(SharedData), "shared file")
			d := e.Login(t, UserDropbox)
			mustNil(t, d.Upload("/drop.txt", []byte("dropped")), "dropbox upload")
			_, err = d.Download("/drop.txt")
			wantKind(t, e.Protocol, err, core.ErrDenied, "dropbox download")
			wantKind(t, e.Protocol, d.Upload("/drop.txt", []byte("again")), core.ErrDenied, "dropbox overwrite")
			if _, err := os.Stat(filepath.Join(e.HomeDir(UserReader), "x.txt")); err == nil {
				t.Fatal("a refused upload reached the disk")
			}
		}},
		{"quota", func(t *testing.T, e *Env) {
			c := e.Login(t, UserBob)
			mustNil(t, c.Upload("/small.bin", randomData(t, 100_000)), "upload under quota")
			err := c.Upload("/big.bin", randomData(t, 2*QuotaBytes))
			wantKind(t, e.Protocol, err, core.ErrQuota, "upload over quota")
			if e.Can(CapStat) {
				if _, err := c.Stat("/big.bin"); err == nil {
					t.Fatal("an upload over quota left a file under its final name")
				}
			}
			if _, err := os.Stat(filepath.Join(e.HomeDir(UserBob), "big.bin")); err == nil {
				t.Fatal("an upload over quota left a file on disk")
			}
			noTempFiles(t, e.HomeDir(UserBob))
			mustNil(t, c.Upload("/after.bin", randomData(t, 100_000)), "upload after the refused one")
		}},
		{"escape attempts", func(t *testing.T, e *Env) {
			c := e.Login(t, UserAlice)
			secret := filepath.Join(e.Root, "secret.txt")
			mustNil(t, os.WriteFile(secret, []byte("top secret"), 0o600), "write secret")
			for _, p := range []string{"../../../../etc/passwd", "/../secret.txt", "../../secret.txt", secret, "/../../" + UserBob + "/x"} {
				got, err := c.Download(p)
				if err == nil && bytes.Contains(got, []byte("top secret")) {
					t.Fatalf("download %q escaped the home", p)
				}
				if err == nil {
					t.Fatalf("download %q succeeded", p)
				}
				if !strings.Contains(p, e.Root) && strings.Contains(err.Error(), e.Root) {
					t.Fatalf("error for %q reveals the host path: %v", p, err)
				}
			}
			mustNil(t, c.Upload("../../escaped.txt", []byte("x")), "upload with ..")
			if _, err := os.Stat(filepath.Join(e.Root, "escaped.txt")); err == nil {
				t.Fatal("upload with .. was written outside the home")
			}
			if _, err := os.Stat(filepath.Join(e.HomeDir(UserAlice), "escaped.txt")); err != nil {
				t.Fatalf("upload with .. did not land at the home root: %v", err)
			}
		}},
		{"hidden entries", func(t *testing.T, e *Env) {
			e.need(t, CapList, CapMkdir)
			c := e.Login(t, UserAlice)
			mustNil(t, c.Mkdir("/hid"), "mkdir")
			mustNil(t, c.Upload("/hid/visible.txt", []byte("v")), "upload visible")
			mustNil(t, c.Upload("/hid/secret"+HiddenSuffix, []byte("h")), "upload hidden")
			es, err := c.List("/hid")
			mustNil(t, err, "list")
			if _, ok := find(es, "secret"+HiddenSuffix); ok {
				t.Fatalf("hidden entry listed: %v", names(es))
			}
			if _, ok := find(es, "visible.txt"); !ok {
				t.Fatalf("visible entry missing: %v", names(es))
			}
			_, err = c.Download("/hid/secret" + HiddenSuffix)
			wantKind(t, e.Protocol, err, core.ErrNotFound, "download hidden")
			_, err = c.Stat("/hid/secret" + HiddenSuffix)
			wantKind(t, e.Protocol, err, core.ErrNotFound, "stat hidden")
		}},
		{"hidden entries through links", func(t *testing.T, e *Env) {
			// A hidden file must stay hidden under every other path that leads to it: a
			// directory link to its folder, a link to the file itself (both put there on the
			// host; users cannot create links on the scenario site).
			e.need(t, CapList)
			if e.Storage.NoHostLinks {
				t.Skipf("%s storage has no symbolic links", e.Storage.Name)
			}
			c := e.Login(t, UserAlice)
			e.mkdir(t, c, UserAlice, "/hidl")
			secret := "secret" + HiddenSuffix
			mustNil(t, c.Upload("/hidl/"+secret, []byte("h")), "upload hidden")
			mustNil(t, c.Upload("/hidl/plain.txt", []byte("p")), "upload visible")
			dir := filepath.Join(e.HomeDir(UserAlice), "hidl")
			mustNil(t, os.Symlink(".", filepath.Join(dir, "via")), "link via -> . on the host")
			mustNil(t, os.Symlink(secret, filepath.Join(dir, "alias")), "link alias -> the hidden file on the host")
			es, err := c.List("/hidl")
			mustNil(t, err, "list")
			if got := names(es); slices.Contains(got, secret) || slices.Contains(got, "alias") || !slices.Contains(got, "via") {
				t.Fatalf("list /hidl = %v: want via, without %s and its alias", got, secret)
			}
			for _, p := range []string{"/hidl/via/" + secret, "/hidl/via/via/" + secret, "/hidl/alias", "/hidl/via/alias"} {
				_, err := c.Download(p)
				wantKind(t, e.Protocol, err, core.ErrNotFound, "download "+p)
				if e.Can(CapStat) {
					_, err = c.Stat(p)
					wantKind(t, e.Protocol, err, core.ErrNotFound, "stat "+p)
				}
				if e.Can(CapRename) {
					wantKind(t, e.Protocol, c.Rename(p, "/hidl/unhidden.txt"), core.ErrNotFound, "rename "+p)
				}
			}
			got, err := c.Download("/hidl/via/plain.txt")
			mustNil(t, err, "download a visible file through the link")
			mustEqual(t, got, []byte("p"), "visible file through the link")
		}},
		{"script blocks upload", func(t *testing.T, e *Env) {
			c := e.Login(t, UserAlice)
			e.mkdir(t, c, UserAlice, "/blk")
			wantKind(t, e.Protocol, c.Upload("/blk/x"+BlockedExt, []byte("MZ")), core.ErrDenied, "upload blocked extension")
			mustNil(t, c.Upload("/blk/x.txt", []byte("ok")), "upload allowed extension")
			es := e.list(t, c, UserAlice, "/blk")
			if got := names(es); !slices.Equal(got, []string{"x.txt"}) {
				t.Fatalf("list = %v, want [x.txt]", got)
			}
		}},
		{"mount points", func(t *testing.T, e *Env) {
			e.need(t, CapList, CapRename, CapRmdir)
			c := e.Login(t, UserAlice)
			es, err := c.List("/")
			mustNil(t, err, "list /")
			if sh, ok := find(es, "shared"); !ok || !sh.IsDir {
				t.Fatalf("mount point missing from / listing: %v", names(es))
			}
			got, err := c.Download(SharedFile)
			mustNil(t, err, "download from mount")
			mustEqual(t, got, []byte(SharedData), "shared content")
			mustNil(t, c.Upload("/tomove.txt", []byte("m")), "upload")
			if err := c.Rename("/tomove.txt", "/shared/moved.txt"); err == nil {
				t.Fatal("rename into a read-only mount succeeded")
			}
			if err := c.Rmdir("/shared"); err == nil {
				t.Fatal("removing a mount point succeeded")
			}
		}},
		{"concurrent sessions", func(t *testing.T, e *Env) {
			const n = 4
			errs := make(chan error, n)
			for i := range n {
				go func() {
					c, err := e.Dial(UserAlice, Password)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					p := fmt.Sprintf("/par-%d.bin", i)
					data := bytes.Repeat([]byte{byte(i)}, 64<<10+i)
					if err := c.Upload(p, data); err != nil {
						errs <- err
						return
					}
					got, err := c.Download(p)
					if err == nil && !bytes.Equal(got, data) {
						err = fmt.Errorf("%s: content differs", p)
					}
					errs <- err
				}()
			}
			for range n {
				mustNil(t, <-errs, "parallel upload/verify")
			}
		}},
		{"session limit", func(t *testing.T, e *Env) {
			first := e.Login(t, UserLimited)
			second, err := e.Dial(UserLimited, Password)
			mustNil(t, err, "second session")
			if c, err := e.Dial(UserLimited, Password); err == nil {
				_ = c.Close()
				t.Fatalf("a session over the limit of %d was accepted", LimitedSessions)
			} else {
				wantKind(t, e.Protocol, err, core.ErrLimit, "session over the limit")
			}
			mustNil(t, second.Close(), "close the second session")
			// The server learns of the closed connection a moment later.
			deadline := time.Now().Add(10 * time.Second)
			for {
				c, err := e.Dial(UserLimited, Password)
				if err == nil {
					mustNil(t, c.Upload("/again.txt", []byte("room again")), "upload in the new session")
					_ = c.Close()
					break
				}
				wantKind(t, e.Protocol, err, core.ErrLimit, "session after one was closed")
				if time.Now().After(deadline) {
					t.Fatalf("no session allowed 10 s after one of %d was closed", LimitedSessions)
				}
				time.Sleep(20 * time.Millisecond)
			}
			got, err := first.Download("/again.txt")
			mustNil(t, err, "the first session still works")
			mustEqual(t, got, []byte("room again"), "file seen by the first session")
		}},
		{"bandwidth", func(t *testing.T, e *Env) {
			// 1 MiB through the user's SlowKiBps limit, as two concurrent downloads on two
			// sessions: they share one limiter, so together they take as long as one would.
			const half = 512 << 10
			a, b := e.Login(t, UserSlow), e.Login(t, UserSlow)
			data := randomData(t, 2*half)
			mustNil(t, a.Upload("/a.bin", data[:half]), "upload a (uploads are not limited)")
			mustNil(t, b.Upload("/b.bin", data[half:]), "upload b")
			start := time.Now()
			errs := make(chan error, 1)
			go func() {
				got, err := b.Download("/b.bin")
				if err == nil && !bytes.Equal(got, data[half:]) {
					err = fmt.Errorf("b.bin: content differs")
				}
				errs <- err
			}()
			got, err := a.Download("/a.bin")
			mustNil(t, err, "download a")
			mustEqual(t, got, data[:half], "a.bin")
			mustNil(t, <-errs, "download b")
			// (1 MiB - the limiter's 0.1 s burst) / 512 KiB/s = 1.9 s.
			if d := time.Since(start); d < 1500*time.Millisecond || d > 3500*time.Millisecond {
				t.Fatalf("1 MiB at %d KiB/s took %v, want 1.5-3.5 s", SlowKiBps, d.Round(time.Millisecond))
			}
		}},
		{"wrong password", func(t *testing.T, e *Env) {
			if c, err := e.Dial(UserAlice, "wrong"); err == nil {
				_ = c.Close()
				t.Fatal("login with a wrong password succeeded")
			}
			if c, err := e.Dial("nobody", Password); err == nil {
				_ = c.Close()
				t.Fatal("login as an unknown user succeeded")
			}
		}},
	}
}
