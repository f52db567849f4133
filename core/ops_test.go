package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

func diskSite(t *testing.T, d core.Dispatcher, users ...config.User) (*core.Site, string) {
	t.Helper()
	root := t.TempDir()
	yes := true
	site := testSite(t, users, d, func(c *config.Site) {
		c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AtomicUploads: &yes})
	})
	return site, root
}

func login(t *testing.T, site *core.Site, id string) *core.Session {
	t.Helper()
	s := connect(t, site, "127.0.0.1", core.ProtoSFTP)
	if err := s.AuthPassword(context.Background(), id, "pw"); err != nil {
		t.Fatalf("login %s: %v", id, err)
	}
	return s
}

func upload(ctx context.Context, s *core.Session, p, data string) error {
	h, err := s.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(h, data); err != nil {
		h.Abort(err)
	}
	return h.Close()
}

func onDisk(u *config.User) { u.Home.VFS = "disk" }

func TestBlockOperationSemantics(t *testing.T) {
	d := &coretest.Dispatcher{}
	// Blocking in a non-gate event refuses the session's next operation, whatever it is.
	d.On(core.AfterDirCreate, func(ev *core.Event) {
		if strings.HasSuffix(ev.RelPath, "trap") {
			ev.Session.BlockOperation()
		}
	})
	site := testSite(t, []config.User{user("u")}, d)
	s := login(t, site, "u")
	ctx := context.Background()
	if err := s.Mkdir(ctx, "/trap"); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if _, err := s.Stat(ctx, "/trap"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("operation after BlockOperation in an After event: %v, want denied", err)
	}
	if _, err := s.Stat(ctx, "/trap"); err != nil {
		t.Fatalf("the block must apply to one operation only: %v", err)
	}
}

func TestAfterUploadVeto(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.AfterFileUpload, func(ev *core.Event) {
		if strings.Contains(ev.RelPath, "virus") {
			ev.Session.BlockOperation()
		}
	})
	site, root := diskSite(t, d, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	if err := upload(ctx, s, "/clean.txt", "ok"); err != nil {
		t.Fatalf("clean upload: %v", err)
	}
	err := upload(ctx, s, "/virus.txt", "EICAR")
	if !errors.Is(err, core.ErrDenied) {
		t.Fatalf("vetoed upload: %v, want denied", err)
	}
	if _, err := os.Stat(filepath.Join(root, "u", "virus.txt")); !os.IsNotExist(err) {
		t.Fatalf("vetoed upload was published: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "u"))
	if len(entries) != 1 || entries[0].Name() != "clean.txt" {
		t.Fatalf("host folder holds %v, want only clean.txt (no temp files)", entries)
	}
	// The veto consumed the block: the next operation goes through.
	if _, err := s.Stat(ctx, "/clean.txt"); err != nil {
		t.Fatalf("operation after a veto: %v", err)
	}
}

func TestTransferEventsExactlyOnce(t *testing.T) {
	d := &coretest.Dispatcher{}
	for _, e := range []core.EventName{core.BeforeFileUpload, core.AfterFileUpload, core.BeforeFileDownload,
		core.AfterFileDownload, core.OnTransferError} {
		d.On(e, func(*core.Event) {})
	}
	site, root := diskSite(t, d, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	h, err := s.OpenWrite(ctx, "/a.bin", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt([]byte("hello "), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	r, err := s.OpenRead(ctx, "/a.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "hello world" {
		t.Fatalf("content %q", got)
	}
	_ = r.Close()
	_ = r.Close()
	// An aborted upload: OnTransferError, nothing published.
	h, err = s.OpenWrite(ctx, "/b.bin", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = h.Write([]byte("partial"))
	h.Abort(errors.New("client went away"))
	if err := h.Close(); err == nil {
		t.Fatal("closing an aborted upload reported success")
	}
	if _, err := os.Stat(filepath.Join(root, "u", "b.bin")); !os.IsNotExist(err) {
		t.Fatal("aborted upload left a file under its final name")
	}
	want := []core.EventName{core.BeforeFileUpload, core.AfterFileUpload, core.BeforeFileDownload,
		core.AfterFileDownload, core.BeforeFileUpload, core.OnTransferError}
	if got := d.Fired(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestSessionFields(t *testing.T) {
	d := &coretest.Dispatcher{}
	var relInEvent, targetInEvent string
	d.On(core.BeforeFileRename, func(ev *core.Event) {
		relInEvent, targetInEvent = ev.Session.RelPath(), ev.Session.RelTargetPath()
		ev.Session.AddCustomData("renamed " + ev.RelPath)
	})
	site, root := diskSite(t, d, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	if s.VirtualSite() != "t" || s.RemoteAddress() != "127.0.0.1" || s.Protocol() != core.ProtoSFTP {
		t.Fatalf("site %q ip %q protocol %q", s.VirtualSite(), s.RemoteAddress(), s.Protocol())
	}
	if _, ok := s.LastErrorTime(); ok {
		t.Fatal("LastErrorTime set before any error")
	}
	if err := upload(ctx, s, "/x.txt", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename(core.WithCommand(ctx, "RNTO y.txt"), "/x.txt", "/y.txt", false); err != nil {
		t.Fatal(err)
	}
	if relInEvent != "/x.txt" || targetInEvent != "/y.txt" {
		t.Fatalf("paths in BeforeFileRename: %q -> %q", relInEvent, targetInEvent)
	}
	if s.AbsTargetPath() != filepath.Join(root, "u", "y.txt") {
		t.Fatalf("AbsTargetPath = %q", s.AbsTargetPath())
	}
	if s.LastCommand() != "RNTO y.txt" {
		t.Fatalf("LastCommand = %q", s.LastCommand())
	}
	if s.CustomData(0) != "renamed /x.txt" || s.CustomData(1) != "" || s.CustomData(-1) != "" {
		t.Fatalf("custom data %q", s.AllCustomData())
	}
	_, err := s.OpenRead(ctx, "/missing", 0)
	if !errors.Is(err, core.ErrNotFound) || s.LastError() != "open /missing: no such file or directory" {
		t.Fatalf("err %v, LastError %q", err, s.LastError())
	}
	if _, ok := s.LastErrorTime(); !ok {
		t.Fatal("LastErrorTime not set")
	}
	if s.RelPath() != "/missing" || s.AbsPath() != filepath.Join(root, "u", "missing") {
		t.Fatalf("RelPath %q AbsPath %q", s.RelPath(), s.AbsPath())
	}
	if err := s.Rename(ctx, "/y.txt", "/y.txt/../z", false); err != nil {
		t.Fatalf("rename with dots: %v", err)
	}
	if err := upload(ctx, s, "/w.txt", "w"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename(ctx, "/w.txt", "/z", false); !errors.Is(err, core.ErrExists) {
		t.Fatalf("rename over an existing file without replace: %v", err)
	}
	if err := s.Rename(ctx, "/w.txt", "/z", true); err != nil {
		t.Fatalf("replacing rename: %v", err)
	}
}

func TestQuotaAccounting(t *testing.T) {
	site, _ := diskSite(t, nil, user("q", onDisk, func(u *config.User) { u.Quota = config.Quota{Bytes: 1000, Files: 2} }))
	s := login(t, site, "q")
	ctx := context.Background()
	if err := upload(ctx, s, "/a", strings.Repeat("a", 600)); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, s, "/b", strings.Repeat("b", 600)); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("upload over the byte quota: %v", err)
	}
	if err := upload(ctx, s, "/a", strings.Repeat("a", 900)); err != nil {
		t.Fatalf("replacing a file within quota: %v", err)
	}
	if err := upload(ctx, s, "/c", "c"); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, s, "/d", "d"); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("upload over the file quota: %v", err)
	}
	if err := s.Remove(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, s, "/d", strings.Repeat("d", 900)); err != nil {
		t.Fatalf("upload after freeing space: %v", err)
	}
	st, err := s.StatFS(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 2 || st.FilesFree != 0 {
		t.Fatalf("statfs from quota: %+v", st)
	}
	// A second session of the same user shares the usage.
	s2 := login(t, site, "q")
	if err := upload(ctx, s2, "/e", "e"); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("quota not shared across sessions: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	site, _ := diskSite(t, nil,
		user("all", onDisk),
		user("up", onDisk, func(u *config.User) { u.Home.Permissions = []string{"upload", "list"} }),
	)
	ctx := context.Background()
	a := login(t, site, "all")
	if err := upload(ctx, a, "/f", "1"); err != nil {
		t.Fatal(err)
	}
	u := login(t, site, "up")
	cases := []struct {
		name string
		err  error
	}{
		{"upload new", upload(ctx, u, "/g", "1")},
		{"overwrite", upload(ctx, u, "/g", "2")},
		{"mkdir", u.Mkdir(ctx, "/d")},
		{"remove", u.Remove(ctx, "/g")},
		{"rename", u.Rename(ctx, "/g", "/h", false)},
		{"chmod", u.SetStat(ctx, "/g", core.Attrs{Mode: ptr(os.FileMode(0o600))})},
	}
	want := []error{nil, core.ErrDenied, core.ErrDenied, core.ErrDenied, core.ErrDenied, core.ErrDenied}
	for i, c := range cases {
		if !errors.Is(c.err, want[i]) && !(want[i] == nil && c.err == nil) {
			t.Errorf("%s: %v, want %v", c.name, c.err, want[i])
		}
	}
	if _, err := u.OpenRead(ctx, "/g", 0); !errors.Is(err, core.ErrDenied) {
		t.Errorf("download without permission: %v", err)
	}
	// Append needs only upload.
	h, err := u.OpenWrite(ctx, "/g", core.WriteMode{Append: true}, 0)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	_, _ = h.Write([]byte("+"))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSetStatOnOpenAtomicUpload(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	h, err := s.OpenWrite(ctx, "/p.txt", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	// What "put -p" does: times and mode just before CLOSE, while the data is still under a
	// temporary name; and a size change on the open upload.
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	mode := os.FileMode(0o600)
	size := int64(4)
	if err := s.SetStat(ctx, "/p.txt", core.Attrs{Mode: &mode, Atime: &mtime, Mtime: &mtime, Size: &size}); err != nil {
		t.Fatalf("setstat on an open upload: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "u", "p.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o600 || fi.Size() != 4 {
		t.Fatalf("published file: mtime %v mode %v size %d", fi.ModTime(), fi.Mode(), fi.Size())
	}
}

// SetStat looks the file up only when a change needs it; every kind of change, and none,
// still reports a missing file, and a time the client left out keeps the file's.
func TestSetStatKinds(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	then := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	later := then.Add(time.Hour)
	mode, size := os.FileMode(0o640), int64(2)
	for name, a := range map[string]core.Attrs{
		"nothing": {}, "mode": {Mode: &mode}, "size": {Size: &size},
		"both times": {Atime: &then, Mtime: &then}, "mtime only": {Mtime: &then}, "atime only": {Atime: &then},
	} {
		if err := s.SetStat(ctx, "/missing", a); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("%s on a missing file: %v, want %v", name, err, core.ErrNotFound)
		}
	}
	if err := upload(ctx, s, "/f", "abcd"); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(root, "u", "f")
	if err := os.Chtimes(host, then, then); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStat(ctx, "/f", core.Attrs{Atime: &later}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(host); err != nil || !fi.ModTime().Equal(then) {
		t.Fatalf("after an atime-only setstat: %v, %v (want the mtime kept: %v)", fi, err, then)
	}
	if err := s.SetStat(ctx, "/f", core.Attrs{Mode: &mode, Size: &size}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(host); err != nil || fi.Mode().Perm() != mode || fi.Size() != size {
		t.Fatalf("after a mode and size setstat: %v, %v", fi, err)
	}
}

// OpenRead opens, then looks at what it opened: a folder is refused as such, a missing file
// as missing, and a download that BeforeFileDownload blocks is refused; what it opened for
// them is closed again (the process holds no more descriptors than before) and no transfer
// is counted.
func TestOpenReadRefusals(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.BeforeFileDownload, func(ev *core.Event) {
		if ev.RelPath == "/blocked.txt" {
			ev.Session.BlockOperation()
		}
	})
	site, _ := diskSite(t, d, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	if err := s.Mkdir(ctx, "/dir"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"/blocked.txt", "/ok.txt"} {
		if err := upload(ctx, s, name, "data"); err != nil {
			t.Fatal(err)
		}
	}
	fds := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return -1 // no procfs: the descriptor check is skipped
		}
		return len(entries)
	}
	before := fds()
	for range 20 {
		for _, c := range []struct {
			path string
			want error
		}{{"/dir", core.ErrIsDir}, {"/missing", core.ErrNotFound}, {"/blocked.txt", core.ErrDenied}} {
			if h, err := s.OpenRead(ctx, c.path, 0); !errors.Is(err, c.want) {
				t.Fatalf("OpenRead %s: %v, %v; want %v", c.path, h, err, c.want)
			}
		}
	}
	// 40 refusals opened a file or folder: a leak would show as 40 more descriptors.
	if after := fds(); before >= 0 && after > before+5 {
		t.Fatalf("%d open descriptors after 40 refused opens, %d before", after, before)
	}
	if n := site.ActiveTransfers(); n != 0 {
		t.Fatalf("%d transfers active after refused downloads", n)
	}
	h, err := s.OpenRead(ctx, "/ok.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != 4 {
		t.Fatalf("size %d, want 4", h.Size())
	}
	_ = h.Close()
}

// What scripts hand to a session outlives their runs (and their memory budget): hidden
// patterns and interactive questions are bounded, and hiding the same pattern at every
// listing keeps one entry.
func TestSessionListsFromScriptsAreBounded(t *testing.T) {
	site := testSite(t, []config.User{user("u")}, nil)
	s := login(t, site, "u")
	for range 5000 {
		s.RemoveFromListDir("*.tmp")
	}
	for i := range 5000 {
		s.RemoveFromListDir(fmt.Sprintf("f%d", i))
	}
	s.RemoveFromListDir(strings.Repeat("x", 10000))
	if n := core.HiddenCount(s); n != 1024 {
		t.Fatalf("%d hidden entries kept, want the limit of 1024", n)
	}
	for i := range 500 {
		s.AddQuestion(i, "q", "a", true)
	}
	s.AddQuestion(0, strings.Repeat("q", 10000), "a", true)
	if n := core.QuestionCount(s); n != 64 {
		t.Fatalf("%d questions kept, want the limit of 64", n)
	}
}

// refused_by names the script that called BlockOperation, not every script attached to the
// event (issue #23 item 8).
func TestRefusedByNamesTheBlockingScript(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.BeforeFileUpload, func(ev *core.Event) {
		if strings.HasSuffix(ev.RelPath, ".exe") {
			ev.Session.BlockOperationBy("deny.lua")
		}
	})
	site := testSite(t, []config.User{user("u")}, d, func(c *config.Site) {
		c.EventHandlers = []config.EventHandler{
			{Event: "BeforeFileUpload", Script: "log.lua"}, {Event: "BeforeFileUpload", Script: "deny.lua"}}
	})
	s := login(t, site, "u")
	err := upload(context.Background(), s, "/a.exe", "MZ")
	if !errors.Is(err, core.ErrDenied) || core.RefusedBy(err) != "script:deny.lua" {
		t.Fatalf("refused upload: %v, refused_by %q, want script:deny.lua", err, core.RefusedBy(err))
	}
	// A block without a name falls back to every script attached to the event.
	d.On(core.BeforeFileUpload, func(ev *core.Event) { ev.Session.BlockOperation() })
	err = upload(context.Background(), s, "/b.txt", "x")
	if core.RefusedBy(err) != "script:log.lua,deny.lua" {
		t.Fatalf("refused_by %q, want both scripts", core.RefusedBy(err))
	}
}

// A mount point's permissions belong to the operator: a client's chmod 777 would open the
// host folder to every account on the host, a chmod 000 would lock the server (and every
// user sharing the mount) out of it with no way back. Its times, and everything below it,
// stay the client's.
func TestMountPointModeIsRefused(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk, func(u *config.User) {
		u.Folders = map[string]config.Mount{"/pub": {VFS: "disk", Permissions: []string{"all"}}}
	}))
	s := login(t, site, "u")
	ctx := context.Background()
	home := filepath.Join(root, "u")
	if err := os.Chmod(home, 0o750); err != nil {
		t.Fatal(err)
	}
	mode := fs.FileMode(0o777)
	for _, p := range []string{"/", "/pub"} {
		err := s.SetStat(ctx, p, core.Attrs{Mode: &mode})
		if !errors.Is(err, core.ErrDenied) {
			t.Errorf("chmod %s: %v, want denied", p, err)
		}
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("home folder mode %v (%v), want 0750 kept", fi.Mode().Perm(), err)
	}
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := s.SetStat(ctx, "/", core.Attrs{Atime: &when, Mtime: &when}); err != nil {
		t.Errorf("times of the mount point: %v", err)
	}
	if err := s.Mkdir(ctx, "/d"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStat(ctx, "/d", core.Attrs{Mode: &mode}); err != nil {
		t.Errorf("chmod of a folder in the mount: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(home, "d")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("folder mode %v (%v), want 0777", fi.Mode().Perm(), err)
	}
}
