package sftp

import (
	"context"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestSSHStoreDownMessage: with cluster.on_store_down: refuse, a login with the right
// password while the cluster store cannot be reached is refused with a banner that says why.
func TestSSHStoreDownMessage(t *testing.T) {
	store := coretest.NewClusterStore()
	site, err := core.NewSite(testSiteConfig(t.TempDir(), testUser("alice")), core.Options{Logger: testLogger(),
		Cluster: store.Node("n1"), RefuseWhenStoreDown: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	srv, addr := startServer(t, site)
	first := mustSFTP(t, srv, addr, "alice")
	if _, err := first.Getwd(); err != nil {
		t.Fatal(err)
	}

	store.SetDown(true)
	_, err = dialKit(srv, addr, "alice", testPassword)
	if err == nil || !strings.Contains(err.Error(), "cluster store cannot be reached") {
		t.Fatalf("login with the store down: %v, want the store-down banner", err)
	}
	if _, err := first.Getwd(); err != nil {
		t.Fatalf("the session in progress after the refusal: %v", err)
	}
}
