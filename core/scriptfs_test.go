package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// scriptFS returns the ScriptFS a script of an event of s gets.
func scriptFS(t *testing.T, s *core.Session) *core.ScriptFS {
	t.Helper()
	f, err := (&core.Event{Name: core.AfterFileUpload, Session: s}).ScriptFS()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, f *core.ScriptFS, p string) (string, error) {
	t.Helper()
	b, err := f.ReadAt(context.Background(), p, 0, 0, core.FromStart, func(int64) error { return nil })
	return string(b), err
}

// TestScriptFSJail tries to leave the user's home and an allowed root: by "..", by an
// absolute host path, through symbolic links planted on the host (to a file and to a folder
// outside), and by host paths outside scripting.allowed_roots.
func TestScriptFSJail(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	allowed := t.TempDir()
	site, root := diskSite(t, nil, user("u", onDisk))
	sess := login(t, site, "u")
	ctx := context.Background()
	home := filepath.Join(root, "u")
	must(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(home, "link.txt")))
	must(t, os.Symlink(outside, filepath.Join(home, "out")))
	must(t, os.Symlink(outside, filepath.Join(allowed, "out")))
	must(t, os.WriteFile(filepath.Join(allowed, "in.txt"), []byte("allowed data"), 0o600))
	// The config of the site allows one root.
	cfg := *site.Config()
	cfg.Scripting.AllowedRoots = []string{allowed}
	must(t, site.Reload(&cfg))

	f := scriptFS(t, sess)
	for _, p := range []string{"/../../../../" + outside + "/secret.txt", outside + "/secret.txt", "/link.txt",
		"/out/secret.txt", "/../out/secret.txt"} {
		if got, err := readAll(t, f, p); err == nil || strings.Contains(got, "host secret") {
			t.Errorf("read %s: %q, %v; want an error", p, got, err)
		}
	}
	if _, err := f.Put(ctx, "/out/new.txt", strings.NewReader("x")); err == nil {
		t.Errorf("write through a link to outside succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "new.txt")); err == nil {
		t.Errorf("a file was written outside the home")
	}
	if err := f.RemoveAll(ctx, "/out"); err != nil {
		t.Errorf("removing the link itself: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret.txt")); err != nil {
		t.Errorf("RemoveAll of a link removed what it points to: %v", err)
	}

	// Allowed roots: inside works, outside and escapes do not.
	d, err := site.ScriptDisk(allowed, sess)
	must(t, err)
	defer d.Close()
	if got, err := readAll(t, d, "/in.txt"); err != nil || got != "allowed data" {
		t.Errorf("read in an allowed root: %q, %v", got, err)
	}
	if got, err := readAll(t, d, "/out/secret.txt"); err == nil {
		t.Errorf("read through a link out of the allowed root: %q", got)
	}
	for _, root := range []string{outside, allowed + "/../" + filepath.Base(outside), "/", "relative/dir", allowed + "/out"} {
		if sd, err := site.ScriptDisk(root, sess); err == nil {
			got, rerr := readAll(t, sd, "/secret.txt")
			_ = sd.Close()
			if rerr == nil {
				t.Errorf("ScriptDisk(%s) reads %q", root, got)
			}
			if root != allowed+"/out" {
				t.Errorf("ScriptDisk(%s) opened", root)
			}
		}
	}
	if _, _, err := site.LocalFS(filepath.Join(outside, "secret.txt")); !errors.Is(err, core.ErrDenied) {
		t.Errorf("LocalFS outside the roots: %v", err)
	}
	lf, name, err := site.LocalFS(filepath.Join(allowed, "sub", "..", "in.txt"))
	must(t, err)
	if got, err := readAll(t, lf, name); err != nil || got != "allowed data" {
		t.Errorf("LocalFS read: %q, %v (name %s)", got, err, name)
	}
	// Error texts name paths inside the vfs, never the host folder.
	_, err = readAll(t, f, "/nope.txt")
	if err == nil || strings.Contains(err.Error(), root) {
		t.Errorf("error %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestScriptFSOperations covers every operation on the session's mounts: results, the mount
// rules, temporary names, no events and an audit record per operation.
func TestScriptFSOperations(t *testing.T) {
	d := &coretest.Dispatcher{}
	for _, ev := range core.AllEvents() {
		d.On(ev, func(*core.Event) {})
	}
	obs := &factLog{}
	root := t.TempDir()
	yes := true
	site := testSiteObs(t, []config.User{user("u", onDisk, func(u *config.User) {
		u.Home.Permissions = []string{"list", "upload"} // the user's permissions do not bind scripts
		u.Folders = map[string]config.Mount{"/pub": {VFS: "mem"}}
	})}, d, obs, func(c *config.Site) {
		c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AtomicUploads: &yes})
	})
	sess := login(t, site, "u")
	firedBefore := len(d.Fired())
	ctx := context.Background()
	f := scriptFS(t, sess)

	must(t, f.Mkdir(ctx, "/a/b", true))
	must(t, f.Mkdir(ctx, "/a/b", true))
	if err := f.Mkdir(ctx, "/a", false); !errors.Is(err, core.ErrExists) {
		t.Errorf("mkdir existing: %v", err)
	}
	if n, err := f.Put(ctx, "/a/b/x.txt", strings.NewReader("hello world")); err != nil || n != 11 {
		t.Fatalf("put: %d %v", n, err)
	}
	fi, err := f.Stat(ctx, "/a/b/x.txt")
	if err != nil || fi.Size() != 11 || fi.Name() != "x.txt" {
		t.Errorf("stat: %v %v", fi, err)
	}
	if b, err := f.ReadAt(ctx, "/a/b/x.txt", 5, 6, core.FromStart, func(int64) error { return nil }); err != nil || string(b) != "world" {
		t.Errorf("read 5@6: %q %v", b, err)
	}
	if b, err := f.ReadAt(ctx, "/a/b/x.txt", 3, 0, core.FromEnd, func(int64) error { return nil }); err != nil || string(b) != "rld" {
		t.Errorf("read from end: %q %v", b, err)
	}
	b1, _ := f.ReadAt(ctx, "/a/b/x.txt", 5, 0, core.FromStart, func(int64) error { return nil })
	b2, _ := f.ReadAt(ctx, "/a/b/x.txt", 5, 1, core.FromCurrent, func(int64) error { return nil })
	if string(b1)+string(b2) != "helloworld" {
		t.Errorf("read from current: %q %q", b1, b2)
	}
	refused := errors.New("over budget")
	if _, err := f.ReadAt(ctx, "/a/b/x.txt", 0, 0, core.FromStart, func(n int64) error {
		if n != 11 {
			t.Errorf("charged %d", n)
		}
		return refused
	}); !errors.Is(err, refused) {
		t.Errorf("charge refusal: %v", err)
	}
	if _, err := f.ReadAt(ctx, "/a/b/x.txt", 1, -1, core.FromStart, func(int64) error { return nil }); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("negative position: %v", err)
	}
	must(t, f.WriteAt(ctx, "/a/b/x.txt", []byte("HELLO"), 0, core.FromStart))
	must(t, f.WriteAt(ctx, "/a/b/x.txt", []byte("!"), 0, core.FromEnd))
	if got, _ := readAll(t, f, "/a/b/x.txt"); got != "HELLO world!" {
		t.Errorf("after writes: %q", got)
	}
	must(t, f.Truncate(ctx, "/a/b/x.txt", 5))
	if got, _ := readAll(t, f, "/a/b/x.txt"); got != "HELLO" {
		t.Errorf("after truncate: %q", got)
	}
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, f.Chtimes(ctx, "/a/b/x.txt", when, when))
	if fi, _ := f.Stat(ctx, "/a/b/x.txt"); !fi.ModTime().Equal(when) {
		t.Errorf("mtime %v", fi.ModTime())
	}
	must(t, f.Rename(ctx, "/a/b/x.txt", "/a/y.txt"))
	if n, err := f.TreeSize(ctx, "/a"); err != nil || n != 5 {
		t.Errorf("treesize %d %v", n, err)
	}
	var names []string
	must(t, f.ReadDir(ctx, "/", func(fi fs.FileInfo) error { names = append(names, fi.Name()); return nil }))
	if strings.Join(names, ",") != "pub,a" {
		t.Errorf("root listing: %v", names)
	}
	// Mount points cannot go, and renames stay in their mount.
	for _, err := range []error{f.Remove(ctx, "/pub"), f.Rmdir(ctx, "/pub"), f.RemoveAll(ctx, "/pub"), f.Rename(ctx, "/pub", "/p2"),
		f.Remove(ctx, "/"), f.RemoveAll(ctx, "/")} {
		if !errors.Is(err, core.ErrDenied) {
			t.Errorf("mount point: %v", err)
		}
	}
	if err := f.Rename(ctx, "/a/y.txt", "/pub/y.txt"); !errors.Is(err, core.ErrCrossMount) {
		t.Errorf("rename across mounts: %v", err)
	}
	if err := f.Rmdir(ctx, "/a"); !errors.Is(err, core.ErrNotEmpty) {
		t.Errorf("rmdir non-empty: %v", err)
	}
	if err := f.Remove(ctx, "/a"); !errors.Is(err, core.ErrIsDir) {
		t.Errorf("remove a folder: %v", err)
	}
	// Temporary upload names are out of reach, in paths and listings.
	h, err := sess.OpenWrite(ctx, "/a/up.bin", core.WriteMode{Truncate: true}, 0)
	must(t, err)
	_, _ = h.Write([]byte("partial"))
	names = nil
	must(t, f.ReadDir(ctx, "/a", func(fi fs.FileInfo) error { names = append(names, fi.Name()); return nil }))
	if strings.Join(names, ",") != "b,y.txt" && strings.Join(names, ",") != "y.txt,b" {
		t.Errorf("listing with an upload in flight: %v", names)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "u", "a"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".wharf-upload-") {
			if _, err := readAll(t, f, "/a/"+e.Name()); !errors.Is(err, core.ErrNotFound) {
				t.Errorf("temporary name readable: %v", err)
			}
		}
	}
	// Removing the name cancels the upload in flight to it, as for a client.
	must(t, f.Remove(ctx, "/a/up.bin"))
	if err := h.Close(); err == nil {
		t.Errorf("an upload whose name a script removed was published")
	}
	must(t, f.RemoveAll(ctx, "/a"))
	if _, err := f.Stat(ctx, "/a"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("after RemoveAll: %v", err)
	}
	must(t, f.RemoveAll(ctx, "/a")) // nothing there: no error
	if _, err := f.Put(ctx, "/bad\nname", strings.NewReader("x")); !errors.Is(err, core.ErrBadName) {
		t.Errorf("control character: %v", err)
	}

	// No events fired for any of it (the upload's own open fired BeforeFileUpload and its
	// close OnTransferError); every operation is audited as the script's.
	for _, ev := range d.Fired()[firedBefore:] {
		if ev != core.BeforeFileUpload && ev != core.OnTransferError {
			t.Errorf("event %s fired by a script operation", ev)
		}
	}
	var scriptOps int
	for _, fact := range obs.kinds(core.FactOperation) {
		if fact.Actor == core.ScriptActor {
			scriptOps++
			if fact.User != "u" {
				t.Errorf("fact %+v", fact)
			}
		}
	}
	if scriptOps < 25 {
		t.Errorf("%d script operations audited", scriptOps)
	}
}

func testSiteObs(t *testing.T, users []config.User, d core.Dispatcher, obs core.Observer, mutate ...func(*config.Site)) *core.Site {
	t.Helper()
	yes := true
	c := &config.Site{
		Name:   "t",
		Limits: config.Limits{MaxConnections: 50, MaxConnectionsPerIP: 50, MaxSessionsPerUser: 10},
		Protector: config.Protector{Enabled: &yes, Threshold: 10, BanFor: config.Duration{Duration: time.Minute},
			Safe: []config.Prefix{mustPrefix(t, "127.0.0.1/32")}},
		VFS:   []config.VFS{{Name: "mem", Type: "memory"}},
		Users: users,
	}
	for _, m := range mutate {
		m(c)
	}
	s, err := core.NewSite(c, core.Options{Events: d, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// TestScriptFSEventUpload acts on the upload an AfterFileUpload is about while it is still
// under its temporary name: reads see the uploaded data (not the file it replaces), a rename
// publishes it under the new name, a removal leaves nothing, and the quota stays exact.
func TestScriptFSEventUpload(t *testing.T) {
	for _, action := range []string{"read", "rename", "remove", "copy", "block-after-read"} {
		t.Run(action, func(t *testing.T) {
			d := &coretest.Dispatcher{}
			var got string
			var scriptErr error
			d.On(core.AfterFileUpload, func(ev *core.Event) {
				f, err := ev.ScriptFS()
				if err != nil {
					scriptErr = err
					return
				}
				ctx := context.Background()
				b, err := f.ReadAt(ctx, ev.RelPath, 2, 0, core.FromStart, func(int64) error { return nil })
				got = string(b)
				if err != nil {
					scriptErr = err
					return
				}
				switch action {
				case "rename":
					if err := f.Mkdir(ctx, "/2024", true); err != nil {
						scriptErr = err
					}
					scriptErr = f.Rename(ctx, ev.RelPath, "/2024/moved.exe")
				case "remove":
					scriptErr = f.Remove(ctx, ev.RelPath)
				case "copy":
					_, scriptErr = f.CopyTo(ctx, ev.RelPath, f, "/copy.exe")
				case "block-after-read":
					if got == "MZ" {
						ev.Session.BlockOperation()
					}
				}
			})
			quota := func(u *config.User) { u.Quota = config.Quota{Bytes: 1 << 20, Files: 10} }
			site, root := diskSite(t, d, user("u", onDisk, quota))
			sess := login(t, site, "u")
			ctx := context.Background()
			must(t, upload(ctx, sess, "/in.exe", "OLD CONTENT"))
			err := upload(ctx, sess, "/in.exe", "MZ new executable")
			if scriptErr != nil {
				t.Fatalf("script: %v", scriptErr)
			}
			if got != "MZ" {
				t.Errorf("the script read %q, not the upload's first bytes", got)
			}
			home := filepath.Join(root, "u")
			content := func(p string) string {
				b, err := os.ReadFile(filepath.Join(home, p))
				if err != nil {
					return "<" + err.Error() + ">"
				}
				return string(b)
			}
			switch action {
			case "read", "copy":
				if err != nil || content("in.exe") != "MZ new executable" {
					t.Errorf("upload: %v, file %q", err, content("in.exe"))
				}
				if action == "copy" && content("copy.exe") != "MZ new executable" {
					t.Errorf("copy %q", content("copy.exe"))
				}
			case "rename":
				if err != nil || content("2024/moved.exe") != "MZ new executable" {
					t.Errorf("upload: %v, moved file %q", err, content("2024/moved.exe"))
				}
				if _, serr := os.Stat(filepath.Join(home, "in.exe")); !os.IsNotExist(serr) {
					t.Errorf("the uploaded name is still there: %v", serr)
				}
			case "remove":
				if err != nil {
					t.Errorf("upload: %v", err)
				}
				if _, serr := os.Stat(filepath.Join(home, "in.exe")); !os.IsNotExist(serr) {
					t.Errorf("removed upload still there: %v", serr)
				}
			case "block-after-read":
				if !errors.Is(err, core.ErrDenied) || content("in.exe") != "OLD CONTENT" {
					t.Errorf("veto: %v, file %q", err, content("in.exe"))
				}
			}
			checkUsage(t, sess, action)
			assertNoTemp(t, home)
		})
	}
}

// TestScriptFSEventUploadLater acts on an AfterFileUpload's event after the upload was
// published (as a handler that runs after the event would): the visible file is read and
// renamed, and nothing is published twice.
func TestScriptFSEventUploadLater(t *testing.T) {
	d := &coretest.Dispatcher{}
	var saved *core.Event
	d.On(core.AfterFileUpload, func(ev *core.Event) { saved = ev })
	quota := func(u *config.User) { u.Quota = config.Quota{Bytes: 1 << 20, Files: 10} }
	site, root := diskSite(t, d, user("u", onDisk, quota))
	sess := login(t, site, "u")
	ctx := context.Background()
	must(t, upload(ctx, sess, "/up.txt", "published"))
	f, err := saved.ScriptFS()
	must(t, err)
	if got, err := readAll(t, f, "/up.txt"); err != nil || got != "published" {
		t.Errorf("read after publication: %q %v", got, err)
	}
	must(t, f.Rename(ctx, "/up.txt", "/moved.txt"))
	if b, err := os.ReadFile(filepath.Join(root, "u", "moved.txt")); err != nil || string(b) != "published" {
		t.Errorf("moved: %q %v", b, err)
	}
	checkUsage(t, sess, "after a later rename")
}

// TestScriptFSQuotaMatchesDisk mixes random script operations (whole writes, writes in
// place, truncations, removals of files and trees, renames, copies) with a client's uploads,
// some left open across steps, and compares the user's charge with a scan of the disk after
// every step, as TestQuotaMatchesDisk does for clients alone.
func TestScriptFSQuotaMatchesDisk(t *testing.T) {
	for _, b := range []struct {
		name   string
		disk   bool
		atomic bool
	}{{"disk atomic", true, true}, {"disk in place", true, false}, {"memory", false, false}} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("%s/seed%d", b.name, seed), func(t *testing.T) {
				root := t.TempDir()
				q := func(u *config.User) { u.Quota = config.Quota{Bytes: 48 << 10, Files: 8} }
				var site *core.Site
				if b.disk {
					atomicUploads := b.atomic
					site = testSite(t, []config.User{user("q", onDisk, q)}, nil, func(c *config.Site) {
						c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"),
							AtomicUploads: &atomicUploads})
					})
				} else {
					site = testSite(t, []config.User{user("q", q)}, nil)
				}
				st := &propState{t: t, rng: rand.New(rand.NewPCG(seed, 20)), hostFn: func() int64 { return 0 }}
				st.sess[0], st.sess[1] = login(t, site, "q"), login(t, site, "q")
				if b.disk {
					home := filepath.Join(root, "q")
					st.hostFn = func() int64 { return tempBytes(t, home) }
				}
				ctx := context.Background()
				must(t, st.sess[0].Mkdir(ctx, "/d"))
				must(t, st.sess[0].Mkdir(ctx, "/e"))
				f := scriptFS(t, st.sess[1])
				var log []string
				for step := range 300 {
					var what string
					if st.rng.IntN(2) == 0 {
						what = st.step(ctx)
					} else {
						what = "script " + scriptStep(ctx, st, f)
					}
					log = append(log, what)
					if msg := scriptCheck(st); msg != "" {
						t.Fatalf("step %d (%s): %s\nsteps:\n%s\n%s", step, what, msg, strings.Join(log, "\n"), dumpState(st))
					}
				}
				for _, h := range st.open {
					_ = h.Close()
				}
				st.open = nil
				if msg := st.check(); msg != "" {
					t.Fatalf("after closing everything: %s\nsteps:\n%s", msg, strings.Join(log, "\n"))
				}
			})
		}
	}
}

func scriptStep(ctx context.Context, st *propState, f *core.ScriptFS) string {
	r := st.rng
	switch k := r.IntN(8); k {
	case 0:
		n, d := st.name(), st.data()
		_, err := f.Put(ctx, n, bytes.NewReader(d))
		return fmt.Sprintf("put %s %d: %v", n, len(d), err)
	case 1:
		n, d, off := st.name(), st.data(), int64(r.IntN(20<<10))
		whence := r.IntN(3)
		if whence != core.FromStart {
			off = 0
		}
		return fmt.Sprintf("write %s @%d/%d %d: %v", n, off, whence, len(d), f.WriteAt(ctx, n, d, off, whence))
	case 2:
		n, size := st.name(), int64(r.IntN(24<<10))
		return fmt.Sprintf("truncate %s %d: %v", n, size, f.Truncate(ctx, n, size))
	case 3:
		n := st.name()
		return fmt.Sprintf("remove %s: %v", n, f.Remove(ctx, n))
	case 4:
		n := []string{"/d", "/e", st.name()}[r.IntN(3)]
		err := f.RemoveAll(ctx, n)
		if n == "/d" || n == "/e" {
			_ = f.Mkdir(ctx, n, false)
		}
		return fmt.Sprintf("removeall %s: %v", n, err)
	case 5:
		from, to := st.name(), st.name()
		if r.IntN(5) == 0 {
			from, to = "/d", "/e"
		}
		return fmt.Sprintf("rename %s %s: %v", from, to, f.Rename(ctx, from, to))
	case 6:
		from, to := st.name(), st.name()
		_, err := f.CopyTo(ctx, from, f, to)
		return fmt.Sprintf("copy %s %s: %v", from, to, err)
	default:
		n := st.name()
		_, err := f.TreeSize(ctx, n)
		return fmt.Sprintf("treesize %s: %v", n, err)
	}
}

// TestScriptFSConcurrentQuota runs script operations and client operations of one user from
// several goroutines at once; once all is closed the charge equals the disk.
func TestScriptFSConcurrentQuota(t *testing.T) {
	root := t.TempDir()
	q := func(u *config.User) { u.Quota = config.Quota{Bytes: 96 << 10, Files: 12} }
	yes := true
	site := testSite(t, []config.User{user("q", onDisk, q)}, nil, func(c *config.Site) {
		c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AtomicUploads: &yes})
	})
	sess := [2]*core.Session{login(t, site, "q"), login(t, site, "q")}
	ctx := context.Background()
	must(t, sess[0].Mkdir(ctx, "/d"))
	must(t, sess[0].Mkdir(ctx, "/e"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &propState{t: t, rng: rand.New(rand.NewPCG(uint64(g), 9)), sess: sess}
			f := scriptFS(t, sess[g%2])
			for range 120 {
				if st.rng.IntN(2) == 0 {
					st.step(ctx)
				} else {
					scriptStep(ctx, st, f)
				}
			}
			for _, h := range st.open {
				_ = h.Close()
			}
		}()
	}
	wg.Wait()
	b, fl := core.UsageOf(sess[0])
	sb, sf, err := core.ScanUsage(core.HomeFS(sess[0]))
	must(t, err)
	if b != sb || fl != sf {
		t.Fatalf("charged %d bytes in %d files, the disk holds %d bytes in %d files", b, fl, sb, sf)
	}
}

// TestScriptVFSByName opens vfs definitions by name: the user's home backend counts against
// the quota, {user} roots need a user, unknown names are errors.
func TestScriptVFSByName(t *testing.T) {
	quota := func(u *config.User) { u.Quota = config.Quota{Bytes: 100, Files: 10} }
	site, root := diskSite(t, nil, user("u", onDisk, quota))
	sess := login(t, site, "u")
	ctx := context.Background()
	f, err := site.ScriptVFS("disk", sess)
	must(t, err)
	if _, err := f.Put(ctx, "/big", bytes.NewReader(make([]byte, 200))); !errors.Is(err, core.ErrQuota) {
		t.Errorf("over quota through the named home vfs: %v", err)
	}
	if _, err := f.Put(ctx, "/small", strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if b, _ := core.UsageOf(sess); b != 3 {
		t.Errorf("charged %d", b)
	}
	if _, err := os.Stat(filepath.Join(root, "u", "small")); err != nil {
		t.Errorf("not on disk: %v", err)
	}
	if _, err := site.ScriptVFS("disk", nil); !errors.Is(err, core.ErrUnsupported) {
		t.Errorf("per-user vfs without a user: %v", err)
	}
	if _, err := site.ScriptVFS("nope", sess); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown vfs: %v", err)
	}
	m, err := site.ScriptVFS("mem", nil)
	must(t, err)
	if _, err := m.Put(ctx, "/x", strings.NewReader("shared")); err != nil || m.Kind("/") != "memory" || m.Name("/") != "mem" {
		t.Errorf("memory vfs: %v %s %s", err, m.Kind("/"), m.Name("/"))
	}
	var buf bytes.Buffer
	file, err := m.Open(ctx, "/x")
	must(t, err)
	_, _ = io.Copy(&buf, file)
	_ = file.Close()
	if buf.String() != "shared" {
		t.Errorf("read back %q", buf.String())
	}
}

// scriptCheck is propState.check for runs where scripts remove folders with uploads in
// flight: a cancelled upload's temporary file may be gone while the upload is open, and it
// stays charged until it is closed. So while uploads are open the charge lies between what
// is visible and that plus the data the open uploads hold; with none open it equals the
// disk.
func scriptCheck(st *propState) string {
	if len(st.open) == 0 {
		return st.check()
	}
	b, f := core.UsageOf(st.sess[0])
	sb, sf, err := core.ScanUsage(core.HomeFS(st.sess[0]))
	if err != nil {
		return err.Error()
	}
	var held int64
	for _, h := range st.open {
		if fi, err := h.Stat(); err == nil {
			held += fi.Size()
		}
	}
	if b < sb || b > sb+max(held, st.hostFn()) {
		return fmt.Sprintf("charged %d bytes, the disk holds %d bytes and the open uploads %d", b, sb, held)
	}
	if f < sf || f > sf+int64(len(st.open)) {
		return fmt.Sprintf("charged %d files, the disk holds %d with %d uploads open", f, sf, len(st.open))
	}
	return ""
}

// TestScriptFSCancelsUploadsInFlight: a script's rename onto a name, rename of a folder above
// an upload, whole write of a name and removal of a tree cancel the uploads in flight there,
// as the same changes by a client do; an upload elsewhere is not touched.
func TestScriptFSCancelsUploadsInFlight(t *testing.T) {
	site, _ := diskSite(t, nil, user("u", onDisk))
	sess := login(t, site, "u")
	ctx := context.Background()
	f := scriptFS(t, sess)
	must(t, f.Mkdir(ctx, "/d", false))
	must(t, f.Mkdir(ctx, "/t", false))
	_, err := f.Put(ctx, "/src.txt", strings.NewReader("src"))
	must(t, err)
	open := func(p string) *core.WriteHandle {
		h, err := sess.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0)
		must(t, err)
		_, err = h.Write([]byte("client data"))
		must(t, err)
		return h
	}
	onto, below, written, tree, other := open("/target.txt"), open("/d/x.txt"), open("/w.txt"), open("/t/y.txt"), open("/keep.txt")
	must(t, f.Rename(ctx, "/src.txt", "/target.txt"))
	must(t, f.Rename(ctx, "/d", "/d2"))
	_, err = f.Put(ctx, "/w.txt", strings.NewReader("script data"))
	must(t, err)
	must(t, f.RemoveAll(ctx, "/t"))
	for name, h := range map[string]*core.WriteHandle{"rename onto": onto, "folder rename": below, "whole write": written, "tree removal": tree} {
		if err := h.Close(); err == nil {
			t.Errorf("%s: the upload in flight was published", name)
		}
	}
	must(t, other.Close())
	for p, want := range map[string]string{"/target.txt": "src", "/w.txt": "script data", "/keep.txt": "client data"} {
		if got, err := readAll(t, f, p); err != nil || got != want {
			t.Errorf("%s: %q %v", p, got, err)
		}
	}
}

// midway is a reader that calls during once, at its first Read: a script's whole write
// reads its data after it has created its temporary file.
type midway struct {
	r      io.Reader
	during func()
}

func (m *midway) Read(p []byte) (int, error) {
	if m.during != nil {
		m.during()
		m.during = nil
	}
	return m.r.Read(p)
}

// TestScriptFSPutFolderMovedMidway: a script writes /d/x whole (Put, CopyTo) while its
// folder is renamed away, by a client or by a script, and perhaps made again. The write's
// temporary file moved with the folder, so publishing it would replace the file that moved
// with it (now /e/x), which the charge would keep counting, and the file the write was
// charged against would be /d/x's, another or none. The write fails instead, loses nothing,
// and the charge stays equal to the disk (TestScriptFSConcurrentQuota failed once in CI on
// this: "charged 39934 bytes in 5 files, the disk holds 38180 bytes in 4 files").
func TestScriptFSPutFolderMovedMidway(t *testing.T) {
	for _, c := range []struct {
		name  string
		moved func(t *testing.T, s *core.Session, f *core.ScriptFS)
	}{
		{"client renames the folder", func(t *testing.T, s *core.Session, f *core.ScriptFS) {
			must(t, s.Rename(context.Background(), "/d", "/e", false))
		}},
		{"script renames the folder", func(t *testing.T, s *core.Session, f *core.ScriptFS) {
			must(t, f.Rename(context.Background(), "/d", "/e"))
		}},
		{"folder renamed and made again", func(t *testing.T, s *core.Session, f *core.ScriptFS) {
			must(t, s.Rename(context.Background(), "/d", "/e", false))
			must(t, s.Mkdir(context.Background(), "/d"))
		}},
		{"folder renamed and made again with the name", func(t *testing.T, s *core.Session, f *core.ScriptFS) {
			must(t, s.Rename(context.Background(), "/d", "/e", false))
			must(t, s.Mkdir(context.Background(), "/d"))
			must(t, upload(context.Background(), s, "/d/x", strings.Repeat("n", 500)))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			quota := func(u *config.User) { u.Quota = config.Quota{Bytes: 1 << 20, Files: 10} }
			site, root := diskSite(t, nil, user("u", onDisk, quota))
			sess := login(t, site, "u")
			ctx := context.Background()
			f, other := scriptFS(t, sess), scriptFS(t, sess)
			must(t, f.Mkdir(ctx, "/d", false))
			_, err := f.Put(ctx, "/d/x", bytes.NewReader(bytes.Repeat([]byte("o"), 1754)))
			must(t, err)
			r := &midway{r: bytes.NewReader(bytes.Repeat([]byte("w"), 3000)), during: func() { c.moved(t, sess, other) }}
			if _, err := f.Put(ctx, "/d/x", r); core.Kind(err) != core.ErrFailure {
				t.Errorf("the write into the moved folder: %v", err)
			}
			if n := tempBytes(t, filepath.Join(root, "u")); n != 0 {
				t.Errorf("%d bytes of temporary files left", n)
			}
			if got, err := readAll(t, f, "/e/x"); err != nil || got != strings.Repeat("o", 1754) {
				t.Errorf("the file that moved with the folder: %d bytes, %v", len(got), err)
			}
			b, fl := core.UsageOf(sess)
			sb, sf, err := core.ScanUsage(core.HomeFS(sess))
			must(t, err)
			if b != sb || fl != sf {
				t.Errorf("charged %d bytes in %d files, the disk holds %d bytes in %d files", b, fl, sb, sf)
			}
		})
	}
}
