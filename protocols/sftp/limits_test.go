package sftp

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	pkgsftp "github.com/pkg/sftp"
)

// TestHandleCapPerSession opens one file again and again on one session: beyond
// limits.max_handles_per_session the open fails with SSH_FX_FAILURE naming the limit (before,
// one session could hold the file open 20,000 times, each a host file descriptor); closing a
// handle frees a place, and another session has its own count.
func TestHandleCapPerSession(t *testing.T) {
	const limit = 512
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	cfg.Limits.MaxHandlesPerSession = limit
	site := newTestSite(t, cfg, nil)
	srv, addr := startServer(t, site)
	c := mustSFTP(t, srv, addr, "alice")
	f, err := c.Create("/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "data"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var open []*pkgsftp.File
	defer func() {
		for _, f := range open {
			_ = f.Close()
		}
	}()
	for i := 0; i < limit+10; i++ {
		f, err := c.Open("/f.txt")
		if err != nil {
			if i != limit {
				t.Fatalf("open %d failed (%v), want the first failure at %d", i+1, err, limit+1)
			}
			wantCapError(t, "open", err, limit)
			break
		}
		open = append(open, f)
	}
	if len(open) != limit {
		t.Fatalf("%d handles open on one session, want at most %d", len(open), limit)
	}
	_, err = c.ReadDir("/")
	wantCapError(t, "a directory listing", err, limit)
	if _, err := c.Stat("/f.txt"); err != nil {
		t.Fatalf("stat at the limit: %v", err)
	}

	other := mustSFTP(t, srv, addr, "alice")
	g, err := other.Open("/f.txt")
	if err != nil {
		t.Fatalf("another session at the first one's limit: %v", err)
	}
	_ = g.Close()

	if err := open[0].Close(); err != nil {
		t.Fatal(err)
	}
	if open[0], err = c.Open("/f.txt"); err != nil {
		t.Fatalf("open after closing a handle: %v", err)
	}
	b := make([]byte, 4)
	if _, err := open[0].Read(b); err != nil || string(b) != "data" {
		t.Fatalf("read %q, %v", b, err)
	}
}

func wantCapError(t *testing.T, what string, err error, limit int) {
	t.Helper()
	var se *pkgsftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != pkgsftp.ErrSSHFxFailure ||
		!strings.Contains(err.Error(), fmt.Sprintf("too many open handles (limit %d)", limit)) {
		t.Fatalf("%s beyond %d handles: %v, want SSH_FX_FAILURE \"too many open handles (limit %d)\"", what, limit, err, limit)
	}
}
