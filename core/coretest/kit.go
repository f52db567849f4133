// Package coretest is the cross-protocol scenario kit: one table of scenarios written against a
// tiny Client interface. Each protocol adapter proves the same behaviour by implementing Client
// with a real client library; the core itself runs the table through a direct client.
package coretest

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// Entry is a directory entry or stat result as a client sees it.
type Entry struct {
	Name  string
	Size  int64
	IsDir bool
}

// Client is what a protocol shim implements with a real client library. Errors must carry the
// server's message, so that Kind can tell denied from not-found.
type Client interface {
	Upload(p string, data []byte) error                  // create or replace
	UploadAt(p string, data []byte, offset int64) error  // resume: write data at offset of an existing file
	Download(p string) ([]byte, error)                   // whole file
	DownloadFrom(p string, offset int64) ([]byte, error) // resume: from offset to the end
	List(dir string) ([]Entry, error)                    // without "." and ".."
	Stat(p string) (Entry, error)
	Mkdir(p string) error
	Rmdir(p string) error
	Remove(p string) error
	Rename(from, to string) error // replaces an existing target file where the protocol can
	Close() error
}

// Protocol describes one way of reaching a site.
type Protocol struct {
	Name string // "core", "SFTP", "FTP", "FTPES", "FTPS"
	// Serve starts serving site (on a port-0 listener) until the test ends and returns a
	// function that logs a user in.
	Serve func(t *testing.T, site *core.Site) Dial
	// Kind maps a client error to a core error kind (core.ErrDenied, …); KindFromText is a
	// good default when the server's message reaches the client.
	Kind func(err error) error
	// Lacks names the Client abilities (Cap…) the protocol does not have: legacy SCP only
	// copies whole files. Scenarios that need one are skipped; others check the host
	// folder instead of the missing step. Nil means the protocol can do everything.
	Lacks map[string]bool
}

// Client abilities a protocol may lack (Protocol.Lacks).
const (
	CapList   = "list"   // Client.List
	CapStat   = "stat"   // Client.Stat
	CapMkdir  = "mkdir"  // Client.Mkdir
	CapRmdir  = "rmdir"  // Client.Rmdir
	CapRemove = "remove" // Client.Remove
	CapRename = "rename" // Client.Rename
	CapResume = "resume" // Client.UploadAt and Client.DownloadFrom
)

// Dial logs a user in.
type Dial func(user, password string) (Client, error)

// KindFromText finds the core error kind named in an error message ("open /a: permission
// denied"). It returns core.ErrFailure when the text names none.
func KindFromText(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.ToLower(err.Error())
	for _, k := range []error{core.ErrDenied, core.ErrNotFound, core.ErrExists, core.ErrNotEmpty,
		core.ErrIsDir, core.ErrNotDir, core.ErrQuota, core.ErrInvalid, core.ErrUnsupported,
		core.ErrCrossMount, core.ErrAuth, core.ErrLimit, core.ErrBadName} {
		if strings.Contains(msg, k.Error()) {
			return k
		}
	}
	return core.ErrFailure
}

// Users of the scenario site. Passwords are "plain:" in the config: test fixtures only.
const (
	UserAlice       = "alice"   // all permissions on home, /shared read-only
	UserBob         = "bob"     // quota: 1 MiB, 20 files
	UserReader      = "reader"  // list and download only
	UserDropbox     = "dropbox" // upload only
	UserLimited     = "limited" // at most LimitedSessions sessions at a time
	UserSlow        = "slow"    // downloads limited to SlowKiBps, shared by all its transfers
	LimitedSessions = 2
	SlowKiBps       = 512
	Password        = "correct horse battery staple"
	QuotaBytes      = 1 << 20
	SharedFile      = "/shared/readme.txt"
	SharedData      = "shared between users\n"
	BlockedExt      = ".exe" // BeforeFileUpload refuses it
	HiddenSuffix    = ".tmp" // OnDirList hides it
)

// SiteConfig returns the scenario site's configuration; home and shared folders live under
// root (a test's temp dir).
func SiteConfig(root string) *config.Site {
	yes := true
	mk := func(id string, home []string, quota config.Quota, folders map[string]config.Mount) config.User {
		return config.User{ID: id, Password: "plain:" + Password, Type: "normal",
			Home: config.Mount{VFS: "home", Permissions: home}, Folders: folders, Quota: quota}
	}
	shared := map[string]config.Mount{"/shared": {VFS: "shared", Permissions: []string{"list", "download"}}}
	limited := mk(UserLimited, []string{"all"}, config.Quota{}, nil)
	limited.MaxSessions = LimitedSessions
	slow := mk(UserSlow, []string{"all"}, config.Quota{}, nil)
	slow.Bandwidth = config.Bandwidth{Download: SlowKiBps}
	return &config.Site{
		Name: "scenarios",
		Limits: config.Limits{MaxConnections: 100, MaxConnectionsPerIP: 100, MaxSessionsPerUser: 50,
			IdleTimeout: config.Duration{Duration: 60e9}, LoginTimeout: config.Duration{Duration: 10e9}},
		Protector: config.Protector{Enabled: &yes, Threshold: 1000, Window: config.Duration{Duration: 60e9},
			BanFor: config.Duration{Duration: 1e9}},
		VFS: []config.VFS{
			{Name: "home", Type: "disk", Root: path.Join(root, "home", "{user}"), AtomicUploads: &yes},
			{Name: "shared", Type: "disk", Root: path.Join(root, "shared"), AtomicUploads: &yes},
		},
		Users: []config.User{
			mk(UserAlice, []string{"all"}, config.Quota{}, shared),
			mk(UserBob, []string{"all"}, config.Quota{Bytes: QuotaBytes, Files: 20}, nil),
			mk(UserReader, []string{"list", "download"}, config.Quota{}, shared),
			mk(UserDropbox, []string{"upload"}, config.Quota{}, nil),
			limited,
			slow,
		},
	}
}

// Dispatcher runs Go functions as event handlers; the scenario site uses it for the script
// rules (blocked extension, hidden entries) so the kit does not depend on the Lua engine.
type Dispatcher struct {
	mu       sync.Mutex
	handlers map[core.EventName][]func(*core.Event)
	fired    []core.EventName
}

// On adds a handler.
func (d *Dispatcher) On(name core.EventName, f func(*core.Event)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handlers == nil {
		d.handlers = map[core.EventName][]func(*core.Event){}
	}
	d.handlers[name] = append(d.handlers[name], f)
}

// Handles implements core.Dispatcher.
func (d *Dispatcher) Handles(name core.EventName, _ *core.User) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.handlers[name]) > 0
}

// Fire implements core.Dispatcher.
func (d *Dispatcher) Fire(_ context.Context, ev *core.Event) {
	d.mu.Lock()
	hs := append([]func(*core.Event){}, d.handlers[ev.Name]...)
	d.fired = append(d.fired, ev.Name)
	d.mu.Unlock()
	for _, h := range hs {
		h(ev)
	}
}

// Fired returns the events fired so far.
func (d *Dispatcher) Fired() []core.EventName {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]core.EventName(nil), d.fired...)
}

// ScenarioRules installs the kit's script rules on d.
func ScenarioRules(d *Dispatcher) {
	d.On(core.BeforeFileUpload, func(ev *core.Event) {
		if strings.HasSuffix(ev.RelPath, BlockedExt) {
			ev.Session.BlockOperation()
		}
	})
	d.On(core.OnDirList, func(ev *core.Event) { ev.Session.RemoveFromListDir("*" + HiddenSuffix) })
}

// NewSite builds the scenario site under a temp dir, with the kit's rules.
func NewSite(t *testing.T) (*core.Site, string) {
	t.Helper()
	return NewSiteOn(t, DiskStorage)
}

// Storage is where the scenario site keeps its files: the definitions of its "home" (with
// {user}) and "shared" vfs, and the host folder that holds their files as home/<user> and
// shared, which scenarios check.
type Storage struct {
	Name string
	VFS  func(t *testing.T) (defs []config.VFS, root string)
	// NoHostLinks: symbolic links made on the host do not show through (object storage).
	NoHostLinks bool
	// Mkdir makes a folder of the site's files (rel is below root, slash-separated) for a
	// protocol that cannot; nil = os.MkdirAll on the host.
	Mkdir func(t *testing.T, rel string)
}

// DiskStorage keeps the scenario site's files on disk backends under a temp dir.
var DiskStorage = Storage{Name: "disk", VFS: func(t *testing.T) ([]config.VFS, string) {
	root := t.TempDir()
	return SiteConfig(root).VFS, root
}}

// NewSiteOn builds the scenario site on storage, with the kit's rules, and returns it with
// the host folder of its files.
func NewSiteOn(t *testing.T, st Storage) (*core.Site, string) {
	t.Helper()
	defs, root := st.VFS(t)
	cfg := SiteConfig(root)
	cfg.VFS = defs
	d := &Dispatcher{}
	ScenarioRules(d)
	// Sessions log at Info; the table runs hundreds of logins, so keep test output readable.
	site, err := core.NewSite(cfg, core.Options{Events: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("scenario site: %v", err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	return site, root
}

// wantKind fails the test unless err has the kind want (after the protocol's mapping).
func wantKind(t *testing.T, p Protocol, err error, want error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want error %q", what, want)
	}
	kind := KindFromText
	if p.Kind != nil {
		kind = p.Kind
	}
	if got := kind(err); !errors.Is(got, want) {
		t.Fatalf("%s: error %q has kind %q, want %q", what, err, got, want)
	}
}
