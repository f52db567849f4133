package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/cluster"
	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/ops/admin"
)

// clusterSite is what a site offers the store's announcements (core, issue #22).
type clusterSite interface {
	// ApplyClusterBan records a ban another node (or this one) stored, without firing
	// events or storing it again.
	ApplyClusterBan(core.ClusterBan)
	// ApplyClusterLift lifts bans lifted in the cluster.
	ApplyClusterLift(keys []netip.Prefix, all bool)
	// SyncCluster pushes what the site did while the store could not be reached and
	// reloads the cluster's bans.
	SyncCluster(ctx context.Context) error
	// ClusterSessions lists the site's logged-in sessions as the store records them.
	ClusterSessions() []core.ClusterSession
}

// clusterNode is the server's membership of a cluster (the cluster: section).
type clusterNode struct {
	store  *cluster.Store
	nodeID string
	mode   string // cluster.on_store_down
	// sites is set once every site is built: announcements that arrive before are dropped
	// (SyncCluster, called right after, loads what they said).
	sites atomic.Pointer[[]clusterSite]
}

// defaultNodeID is the host name and the port of the first site's first listener
// ("gw1:2022"): unique per node when every node runs the same file on its own host.
func defaultNodeID(cfg *config.Config) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster.node_id: the host name is unknown (%w); set cluster.node_id", err)
	}
	port := "0"
	if len(cfg.Sites) > 0 && len(cfg.Sites[0].Listeners) > 0 {
		if _, p, err := net.SplitHostPort(cfg.Sites[0].Listeners[0].Address); err == nil {
			port = p
		}
	}
	return host + ":" + port, nil
}

// configHash summarises the configuration in force so that `wharf cluster status` can tell
// nodes that run a different one: the sha256 of the loaded configuration (as YAML, secrets
// as their references, never their values) without what differs per node by design
// (cluster.node_id), and of the files in the sites' scripts folders. Nodes that read the same
// file and scripts from the same paths get the same hash.
func configHash(cfg *config.Config) (string, error) {
	c := *cfg
	if cfg.Cluster != nil {
		cl := *cfg.Cluster
		cl.NodeID = ""
		c.Cluster = &cl
	}
	doc, err := yaml.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("config hash: %w", err)
	}
	h := sha256.New()
	h.Write(doc)
	var dirs []string
	for _, sc := range cfg.Sites {
		if sc.ScriptsDir != "" && !slices.Contains(dirs, sc.ScriptsDir) {
			dirs = append(dirs, sc.ScriptsDir)
		}
	}
	for _, dir := range dirs {
		// WalkDir visits in lexical order, so the hash does not depend on the file system.
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == dir {
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			fmt.Fprintf(h, "\x00%s\x00%s\x00%d\x00", dir, rel, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("config hash: scripts_dir %s: %w", dir, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openCluster opens the cluster store for the server: its handlers reach the sites once
// startCluster has been called.
func (s *server) openCluster(cfg *config.Config) error {
	cl := cfg.Cluster
	n := &clusterNode{nodeID: cl.NodeID, mode: cl.OnStoreDown}
	if n.nodeID == "" {
		id, err := defaultNodeID(cfg)
		if err != nil {
			return err
		}
		n.nodeID = id
	}
	hash, err := configHash(cfg)
	if err != nil {
		return err
	}
	log := s.log.With("component", "cluster")
	st, err := cluster.Open(context.Background(), cluster.Options{
		DSN:        cl.DSN.Value(),
		NodeID:     n.nodeID,
		Heartbeat:  cl.Heartbeat.Duration,
		NodeTTL:    cl.NodeTTL.Duration,
		Version:    version,
		ConfigHash: hash,
		Logger:     log,
		OnBan: func(site string, b core.ClusterBan) {
			if cs := n.site(s, site); cs != nil {
				cs.ApplyClusterBan(b)
			}
		},
		OnLift: func(site string, keys []netip.Prefix, all bool) {
			if cs := n.site(s, site); cs != nil {
				cs.ApplyClusterLift(keys, all)
			}
		},
		OnKick: func(id string) {
			for _, site := range s.sites {
				if site.Kick(id) {
					log.Info("session kicked at another node's request", "session", id, "site", site.Name())
				}
			}
		},
		OnReload: func() {
			// A reload compiles scripts: not on the store's listening goroutine.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_, _ = s.reload(context.Background(), "cluster")
			}()
		},
		OnReconnect: func(ctx context.Context) { n.sync(ctx, s) },
		LocalSessions: func() []core.ClusterSession {
			var out []core.ClusterSession
			if sites := n.sites.Load(); sites != nil {
				for _, cs := range *sites {
					out = append(out, cs.ClusterSessions()...)
				}
			}
			return out
		},
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n.store = st
	s.cluster = n
	log.Info("joined the cluster", "node_id", n.nodeID, "on_store_down", n.mode, "config_hash", shortHash(hash))
	return nil
}

// coreCluster returns what the sites share through the store, counting its failures.
func (n *clusterNode) coreCluster(count func(op string)) core.Cluster {
	return countingCluster{Cluster: n.store, count: count}
}

// A site is what the announcements reach.
var _ clusterSite = (*core.Site)(nil)

// startCluster hands the built sites to the announcement handlers and loads the cluster's
// bans into them.
func (s *server) startCluster() {
	n := s.cluster
	sites := make([]clusterSite, 0, len(s.sites))
	for _, site := range s.sites {
		sites = append(sites, site)
	}
	n.sites.Store(&sites)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.sync(ctx, s)
}

// sync brings every site up to date with the store (after start and after an outage).
func (n *clusterNode) sync(ctx context.Context, s *server) {
	sites := n.sites.Load()
	if sites == nil {
		return
	}
	for i, cs := range *sites {
		if err := cs.SyncCluster(ctx); err != nil {
			s.log.Warn("cluster: cannot synchronise the site with the store; it serves on its local state meanwhile",
				"site", s.sites[i].Name(), "err", err)
		}
	}
}

// site returns the site called name, nil when this node does not serve it.
func (n *clusterNode) site(s *server, name string) clusterSite {
	sites := n.sites.Load()
	if sites == nil {
		return nil
	}
	for i, site := range s.sites {
		if site.Name() == name {
			return (*sites)[i]
		}
	}
	return nil
}

// health is the /healthz detail: "" while the store answers.
func (n *clusterNode) health() string {
	up, since, _ := n.store.Health()
	if up {
		return ""
	}
	msg := fmt.Sprintf("degraded: cluster store unreachable since %s (on_store_down: %s)",
		since.UTC().Format(time.RFC3339), n.mode)
	if n.mode == config.StoreDownRefuse {
		msg += ": new logins refused"
	}
	return msg
}

// adminView is what the admin API sees of the cluster.
func (n *clusterNode) adminView() admin.Cluster {
	return adminCluster{n}
}

type adminCluster struct{ n *clusterNode }

func (a adminCluster) NodeID() string { return a.n.nodeID }
func (a adminCluster) Sessions(ctx context.Context) ([]core.ClusterSession, error) {
	return a.n.store.Sessions(ctx)
}
func (a adminCluster) Kick(ctx context.Context, id string) (string, bool, error) {
	return a.n.store.Kick(ctx, id)
}
func (a adminCluster) ReloadAll(ctx context.Context) ([]string, error) {
	return a.n.store.ReloadAll(ctx)
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// countingCluster counts the store's failures for wharf_cluster_store_errors_total. A
// refusal (the session limit) and a caller that gave up are not failures of the store.
type countingCluster struct {
	core.Cluster
	count func(op string)
}

func (c countingCluster) failed(op string, err error) error {
	if err != nil && c.count != nil && !errors.Is(err, core.ErrLimit) && !errors.Is(err, context.Canceled) {
		c.count(op)
	}
	return err
}

func (c countingCluster) Strike(ctx context.Context, site string, key netip.Prefix, at time.Time, window time.Duration) (int, error) {
	n, err := c.Cluster.Strike(ctx, site, key, at, window)
	return n, c.failed("strike", err)
}

func (c countingCluster) UpdateBan(ctx context.Context, site string, key netip.Prefix, change func(core.BanRecord) core.BanRecord) (core.BanRecord, error) {
	r, err := c.Cluster.UpdateBan(ctx, site, key, change)
	return r, c.failed("update_ban", err)
}

func (c countingCluster) PutBans(ctx context.Context, site string, bans []core.ClusterBan) error {
	return c.failed("put_bans", c.Cluster.PutBans(ctx, site, bans))
}

func (c countingCluster) LiftBans(ctx context.Context, site string, keys []netip.Prefix, all bool) ([]core.ClusterBan, error) {
	r, err := c.Cluster.LiftBans(ctx, site, keys, all)
	return r, c.failed("lift_bans", err)
}

func (c countingCluster) Bans(ctx context.Context, site string) ([]core.ClusterBan, error) {
	r, err := c.Cluster.Bans(ctx, site)
	return r, c.failed("bans", err)
}

func (c countingCluster) ClaimSession(ctx context.Context, s core.ClusterSession, max int) (core.Claim, error) {
	cl, err := c.Cluster.ClaimSession(ctx, s, max)
	return cl, c.failed("claim_session", err)
}

func (c countingCluster) EndSession(ctx context.Context, site, id string) error {
	return c.failed("end_session", c.Cluster.EndSession(ctx, site, id))
}

func (c countingCluster) AddUsage(ctx context.Context, site, user string, bytes, files, maxBytes, maxFiles int64, held bool) (bool, int64, int64, error) {
	ok, b, f, err := c.Cluster.AddUsage(ctx, site, user, bytes, files, maxBytes, maxFiles, held)
	return ok, b, f, c.failed("add_usage", err)
}

func (c countingCluster) ReadUsage(ctx context.Context, site, user string) (core.StoredUsage, error) {
	st, err := c.Cluster.ReadUsage(ctx, site, user)
	return st, c.failed("read_usage", err)
}

func (c countingCluster) SetUsage(ctx context.Context, site, user string, bytes, files, version int64) (bool, error) {
	ok, err := c.Cluster.SetUsage(ctx, site, user, bytes, files, version)
	return ok, c.failed("set_usage", err)
}
