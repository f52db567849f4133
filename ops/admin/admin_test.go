package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

const token = "test-token"

func newSite(t *testing.T) (*core.Site, *core.Session) {
	t.Helper()
	sc := &config.Site{Name: "main", VFS: []config.VFS{{Name: "m", Type: "memory"}}}
	site, err := core.NewSite(sc, core.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := site.Connect(context.Background(), core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, Protocol: "FTP"})
	if err != nil {
		t.Fatal(err)
	}
	sess.RecordCommand("USER alice")
	return site, sess
}

func TestAccessControl(t *testing.T) {
	site, _ := newSite(t)
	tests := []struct {
		name, mode, remote, auth, path string
		want                           int
	}{
		{"metrics need no token", ModeLocal, "192.0.2.1:5", "", "/healthz", http.StatusOK},
		{"no token", ModeLocal, "127.0.0.1:5", "", "/admin/sessions", http.StatusUnauthorized},
		{"wrong token", ModeLocal, "127.0.0.1:5", "Bearer nope", "/admin/sessions", http.StatusUnauthorized},
		{"not bearer", ModeLocal, "127.0.0.1:5", token, "/admin/sessions", http.StatusUnauthorized},
		{"token over loopback", ModeLocal, "127.0.0.1:5", "Bearer " + token, "/admin/sessions", http.StatusOK},
		{"token over IPv6 loopback", ModeLocal, "[::1]:5", "Bearer " + token, "/admin/sessions", http.StatusOK},
		{"remote client in local mode", ModeLocal, "192.0.2.1:5", "Bearer " + token, "/admin/sessions", http.StatusForbidden},
		{"remote client in any mode", ModeAny, "192.0.2.1:5", "Bearer " + token, "/admin/sessions", http.StatusOK},
		{"remote client in any mode without token", ModeAny, "192.0.2.1:5", "", "/admin/sessions", http.StatusUnauthorized},
		{"admin off", ModeOff, "127.0.0.1:5", "Bearer " + token, "/admin/sessions", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			s := New(Options{Sites: func() []*core.Site { return []*core.Site{site} }, Mode: tt.mode, Token: token,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.RemoteAddr = tt.remote
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if strings.Contains(logs.String(), "nope") || strings.Contains(logs.String(), token) {
				t.Fatalf("a token reached the log: %s", logs.String())
			}
		})
	}
}

func TestSessionsKickReloadOverHTTP(t *testing.T) {
	site, sess := newSite(t)
	closed := make(chan struct{})
	sess.SetCloser(func() { sess.Close(); close(closed) })
	reloadErr := errors.New("sites[0].users[0].password: bad hash")
	s := New(Options{Sites: func() []*core.Site { return []*core.Site{site} }, Mode: ModeLocal, Token: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Reload: func(context.Context) ([]string, error) { return nil, reloadErr }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	base, err := BaseURL(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{BaseURL: base, Token: token}
	ctx := context.Background()

	list, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("sessions: %+v", list)
	}
	got := list[0]
	if got.ID != sess.ID() || got.Site != "main" || got.Protocol != "FTP" || got.RemoteIP != "192.0.2.7" ||
		got.Authenticated || got.LastCommand != "USER alice" || got.LastCommandTime == nil {
		t.Errorf("session info %+v", got)
	}
	if _, err := c.Reload(ctx); err == nil || !strings.Contains(err.Error(), "bad hash") {
		t.Errorf("reload error %v", err)
	}
	if _, err := c.Kick(ctx, "01NOSUCHSESSION"); !IsNotFound(err) {
		t.Errorf("kick unknown: %v", err)
	}
	if _, err := c.Kick(ctx, sess.ID()); err != nil {
		t.Fatal(err)
	}
	<-closed
	if list, err := c.Sessions(ctx); err != nil || len(list) != 0 {
		t.Errorf("after kick: %+v, %v", list, err)
	}
	bad := &Client{BaseURL: base, Token: "wrong"}
	if _, err := bad.Sessions(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	s.Draining()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz while draining: %d", resp.StatusCode)
	}
}

func TestToken(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "admin.token")
	tok, created, err := LoadOrCreateToken(p)
	if err != nil || !created || len(tok) < 40 {
		t.Fatalf("token %q created %v: %v", tok, created, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateToken(p)
	if err != nil || created || again != tok {
		t.Fatalf("second start: %q %v %v", again, created, err)
	}
	if r, err := ReadToken(p); err != nil || r != tok {
		t.Fatalf("ReadToken %q %v", r, err)
	}
	if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateToken(p); err == nil {
		t.Fatal("empty token file accepted")
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9090": "http://127.0.0.1:9090",
		"0.0.0.0:9090":   "http://127.0.0.1:9090",
		":9090":          "http://127.0.0.1:9090",
		"[::]:9090":      "http://[::1]:9090",
		"[::1]:9":        "http://[::1]:9",
	} {
		if got, err := BaseURL(in); err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
