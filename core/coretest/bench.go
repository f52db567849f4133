package coretest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// AliceOnMemory is the config of a site named name whose one user, alice (password "pw",
// every permission), is at home on a memory vfs "mem", with handlers running the scripts of
// scriptsDir: the least a script benchmark needs.
func AliceOnMemory(name, scriptsDir string, handlers []config.EventHandler) *config.Site {
	return &config.Site{Name: name, ScriptsDir: scriptsDir, EventHandlers: handlers,
		VFS:   []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{{ID: "alice", Password: "plain:pw", Home: config.Mount{VFS: "mem", Permissions: []string{"all"}}}}}
}

// StartSite builds a site on cfg with events as its dispatcher, shut down when tb ends.
func StartSite(tb testing.TB, cfg *config.Site, events core.Dispatcher, log *slog.Logger) *core.Site {
	tb.Helper()
	site, err := core.NewSite(cfg, core.Options{Logger: log, Events: events})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	return site
}

// MustDialDirect is DialDirect that fails tb on an error; the session closes when tb ends.
func MustDialDirect(tb testing.TB, site *core.Site, user, password string) *core.Session {
	tb.Helper()
	c, err := DialDirect(context.Background(), site, user, password)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.S.Close)
	return c.S
}
