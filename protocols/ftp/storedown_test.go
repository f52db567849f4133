package ftp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestStoreDownRefusalMessage: with cluster.on_store_down: refuse, a login with the right
// password while the cluster store cannot be reached gets a 530 that says why, not the
// session-limit text.
func TestStoreDownRefusalMessage(t *testing.T) {
	root := t.TempDir()
	store := coretest.NewClusterStore()
	site, err := core.NewSite(coretest.SiteConfig(root), core.Options{Logger: testLogger(t),
		Cluster: store.Node("n1"), RefuseWhenStoreDown: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	must(t, os.MkdirAll(filepath.Join(root, "home", coretest.UserAlice), 0o755))
	ts := serve(t, site, modePlain)

	c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	if err != nil {
		t.Fatalf("login with the store up: %v", err)
	}
	_ = c.Quit()

	store.SetDown(true)
	_, err = ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	if err == nil || !strings.Contains(err.Error(), "530") || !strings.Contains(err.Error(), "cluster store cannot be reached") {
		t.Fatalf("login with the store down: %v, want a 530 naming the cluster store", err)
	}
}
