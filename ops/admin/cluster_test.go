package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
)

// nodes stands for the cluster store as the admin API sees it: the rows of other nodes'
// sessions, kicks sent to them and reloads asked. (The store itself is tested on a real
// PostgreSQL in package cluster, and the whole path end to end in cmd/wharf.)
type nodes struct {
	mu      sync.Mutex
	self    string
	rows    []core.ClusterSession
	down    bool
	kicked  []string
	reloads int
}

var errStoreDown = errors.New("the cluster store is unreachable")

func (n *nodes) NodeID() string { return n.self }

func (n *nodes) Sessions(context.Context) ([]core.ClusterSession, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil, errStoreDown
	}
	return append([]core.ClusterSession(nil), n.rows...), nil
}

func (n *nodes) Kick(_ context.Context, id string) (string, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return "", false, errStoreDown
	}
	for _, r := range n.rows {
		if r.ID == id {
			n.kicked = append(n.kicked, id)
			return r.Node, true, nil
		}
	}
	return "", false, nil
}

func (n *nodes) ReloadAll(context.Context) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil, errStoreDown
	}
	n.reloads++
	return []string{"a:2022", "b:2022", "c:2022"}, nil
}

// TestClusterSessionsKickReload: on a node of a cluster the admin API lists every live
// node's sessions with the node that serves each, kicks a session of another node through
// the store (404 when no live node has it, 503 when the store does not answer), asks every
// node to reload with ?cluster=1, and still lists its own sessions when the store is down.
func TestClusterSessionsKickReload(t *testing.T) {
	site, sess := newSite(t)
	closed := make(chan struct{})
	sess.SetCloser(func() { sess.Close(); close(closed) })
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cl := &nodes{self: "a:2022", rows: []core.ClusterSession{
		{ID: "01OTHERNODE", Site: "main", User: "bob", Node: "c:2022", Protocol: "SFTP", RemoteIP: "198.51.100.9", Start: start},
		// This node's own row: listed once, from the live session.
		{ID: sess.ID(), Site: "main", User: "alice", Node: "a:2022", Protocol: "FTP", RemoteIP: "192.0.2.7", Start: start},
	}}
	s := New(Options{Sites: func() []*core.Site { return []*core.Site{site} }, Mode: ModeLocal, Token: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Cluster: cl,
		Reload: func(context.Context) ([]string, error) { return nil, nil }})
	c := serve(t, s)
	ctx := context.Background()

	list, partial, err := c.SessionsPartial(ctx)
	if err != nil || partial != "" {
		t.Fatalf("sessions: %v, partial %q", err, partial)
	}
	if len(list) != 2 {
		t.Fatalf("sessions: %+v", list)
	}
	byID := map[string]SessionInfo{}
	for _, x := range list {
		byID[x.ID] = x
	}
	if x := byID[sess.ID()]; x.Node != "a:2022" || x.LastCommand != "USER alice" {
		t.Errorf("this node's session: %+v", x)
	}
	if x := byID["01OTHERNODE"]; x.Node != "c:2022" || x.User != "bob" || !x.Authenticated || x.Protocol != "SFTP" || !x.Start.Equal(start) {
		t.Errorf("the other node's session: %+v", x)
	}

	res, err := c.Kick(ctx, "01OTHERNODE")
	if err != nil || res.Node != "c:2022" {
		t.Fatalf("kick on another node: %+v, %v", res, err)
	}
	if _, err := c.Kick(ctx, "01NOWHERE"); !IsNotFound(err) {
		t.Errorf("kick of a session no node has: %v", err)
	}
	res, err = c.Kick(ctx, sess.ID())
	if err != nil || res.Node != "a:2022" {
		t.Fatalf("kick here: %+v, %v", res, err)
	}
	<-closed
	cl.mu.Lock()
	kicked := cl.kicked
	cl.mu.Unlock()
	if len(kicked) != 1 {
		t.Errorf("kicks sent through the store: %v, want only the other node's", kicked)
	}

	nodesAsked, err := c.ReloadCluster(ctx)
	cl.mu.Lock()
	reloads := cl.reloads
	cl.mu.Unlock()
	if err != nil || len(nodesAsked) != 3 || reloads != 1 {
		t.Fatalf("cluster reload: %v, %v (reloads %d)", nodesAsked, err, reloads)
	}

	cl.mu.Lock()
	cl.down = true
	cl.mu.Unlock()
	list, partial, err = c.SessionsPartial(ctx)
	if err != nil || partial == "" || len(list) != 0 {
		t.Errorf("sessions with the store down: %+v, partial %q, %v", list, partial, err)
	}
	var ae *APIError
	if _, err := c.Kick(ctx, "01OTHERNODE"); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("kick with the store down: %v", err)
	}
	if _, err := c.ReloadCluster(ctx); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("cluster reload with the store down: %v", err)
	}
}

// TestClusterReloadWithoutCluster: ?cluster=1 on a single node is refused, not taken for a
// local reload.
func TestClusterReloadWithoutCluster(t *testing.T) {
	reloaded := false
	s := New(Options{Mode: ModeLocal, Token: token, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reload: func(context.Context) ([]string, error) { reloaded = true; return nil, nil }})
	c := serve(t, s)
	var ae *APIError
	if _, err := c.ReloadCluster(context.Background()); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest ||
		!strings.Contains(ae.Msg, "not a node of a cluster") {
		t.Fatalf("cluster reload on a single node: %v", err)
	}
	if reloaded {
		t.Fatal("a cluster reload on a single node reloaded it")
	}
}

// TestHealthzDegraded: /healthz stays 200 while the node serves without its cluster store,
// with the degradation as its body; `wharf health` gets it as the detail.
func TestHealthzDegraded(t *testing.T) {
	var mu sync.Mutex
	detail := ""
	s := New(Options{Mode: ModeLocal, Token: token, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Degraded: func() string { mu.Lock(); defer mu.Unlock(); return detail }})
	c := serve(t, s)
	ctx := context.Background()
	if d, err := c.Health(ctx); err != nil || d != "" {
		t.Fatalf("healthy: %q, %v", d, err)
	}
	mu.Lock()
	detail = "degraded: cluster store unreachable since 2026-03-01T10:00:00Z (on_store_down: local)"
	mu.Unlock()
	resp, err := http.Get(c.BaseURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "degraded: cluster store unreachable since ") {
		t.Fatalf("degraded: %d %q", resp.StatusCode, body)
	}
	if d, err := c.Health(ctx); err != nil || !strings.Contains(d, "on_store_down: local") {
		t.Fatalf("client: %q, %v", d, err)
	}
	s.Draining()
	if _, err := c.Health(ctx); err == nil {
		t.Fatal("draining and degraded: healthy")
	}
}

func serve(t *testing.T, s *Server) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base, err := BaseURL(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return &Client{BaseURL: base, Token: token}
}
