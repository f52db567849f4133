package coretest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/wharf-project/wharf/core"
)

// ErrStoreDown is what every call of a ClusterStore's nodes returns while the store is down.
var ErrStoreDown = errors.New("coretest: cluster store unreachable")

// ClusterStore is an in-process cluster store for tests: the contract of core.Cluster kept in
// maps under one mutex, shared by the nodes that Node returns. Announcements (bans stored,
// bans lifted) go to the listeners, after the change, outside the lock, as a real store's
// notifications arrive after its transaction. SetDown makes every call fail like an
// unreachable store.
type ClusterStore struct {
	mu        sync.Mutex
	down      bool
	strikes   map[string][]time.Time // site + key
	bans      map[string]map[netip.Prefix]core.BanRecord
	sessions  map[string]core.ClusterSession // by site + id
	deadNodes map[string]bool
	usage     map[string]*clusterUsage // by site + user
	calls     map[string]int
	listeners []func(ClusterAnnouncement)
	// beforeSetUsage runs at the start of SetUsage, outside the lock (BeforeSetUsage).
	beforeSetUsage func()
}

// BeforeSetUsage makes f run at the start of every SetUsage call, before the store looks at
// anything: a test interleaves another node's login there.
func (c *ClusterStore) BeforeSetUsage(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.beforeSetUsage = f
}

type clusterUsage struct {
	bytes, files int64
	countedAt    time.Time
	version      int64
	holders      map[string]bool // nodes that hold part of the usage
}

// heldLocked tells whether a live node holds part of u. c.mu is held.
func (c *ClusterStore) heldLocked(u *clusterUsage) bool {
	for node := range u.holders {
		if !c.deadNodes[node] {
			return true
		}
	}
	return false
}

// Held tells whether a live node holds part of a user's usage (AddUsage's held).
func (c *ClusterStore) Held(site, user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.usage[site+"\x00"+user]
	return ok && c.heldLocked(u)
}

// ClusterAnnouncement is a ban stored (Ban set) or bans lifted (Lift or All).
type ClusterAnnouncement struct {
	Site string
	Ban  *core.ClusterBan
	Lift []netip.Prefix
	All  bool
}

// NewClusterStore returns an empty store.
func NewClusterStore() *ClusterStore {
	return &ClusterStore{strikes: map[string][]time.Time{}, bans: map[string]map[netip.Prefix]core.BanRecord{},
		sessions: map[string]core.ClusterSession{}, deadNodes: map[string]bool{}, usage: map[string]*clusterUsage{},
		calls: map[string]int{}}
}

// Listen adds a listener for announcements.
func (c *ClusterStore) Listen(f func(ClusterAnnouncement)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, f)
}

// Deliver returns a listener that applies the announcements of site to sites, as cmd wires a
// node's store to its sites.
func Deliver(sites ...*core.Site) func(ClusterAnnouncement) {
	return func(a ClusterAnnouncement) {
		for _, s := range sites {
			if s.Name() != a.Site {
				continue
			}
			if a.Ban != nil {
				s.ApplyClusterBan(*a.Ban)
			} else {
				s.ApplyClusterLift(a.Lift, a.All)
			}
		}
	}
}

// SetDown makes every call fail (true) or answer again (false).
func (c *ClusterStore) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// KillNode makes a node's sessions not live (as after node_ttl without a heartbeat).
func (c *ClusterStore) KillNode(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadNodes[node] = true
}

// Calls returns how many calls of a method (by name, "AddUsage") the store answered.
func (c *ClusterStore) Calls(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// AgeUsageCounts makes every stored count of usage d older (tests of the recount interval).
func (c *ClusterStore) AgeUsageCounts(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.usage {
		if !u.countedAt.IsZero() {
			u.countedAt = u.countedAt.Add(-d)
		}
	}
}

// Usage returns a user's usage as the store holds it.
func (c *ClusterStore) Usage(site, user string) (bytes, files int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.usage[site+"\x00"+user]; ok {
		return u.bytes, u.files
	}
	return 0, 0
}

// BanRecords returns a site's ban records.
func (c *ClusterStore) BanRecords(site string) map[netip.Prefix]core.BanRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[netip.Prefix]core.BanRecord{}
	for k, r := range c.bans[site] {
		out[k] = r
	}
	return out
}

// LiveSessions returns the live sessions of a site's user.
func (c *ClusterStore) LiveSessions(site, user string) []core.ClusterSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []core.ClusterSession
	for _, s := range c.sessions {
		if s.Site == site && s.User == user && !c.deadNodes[s.Node] {
			out = append(out, s)
		}
	}
	return out
}

// Resync replaces a node's session records with sessions (what the store does after an
// outage, from the node's core.Site.ClusterSessions).
func (c *ClusterStore) Resync(node string, sessions []core.ClusterSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.sessions {
		if s.Node == node {
			delete(c.sessions, k)
		}
	}
	for _, s := range sessions {
		s.Node = node
		c.sessions[s.Site+"\x00"+s.ID] = s
	}
}

// Node returns the view of the store that one node (one process) uses.
func (c *ClusterStore) Node(id string) core.Cluster { return &clusterNode{c: c, id: id} }

type clusterNode struct {
	c  *ClusterStore
	id string
}

var _ core.Cluster = (*clusterNode)(nil)

// begin takes the lock and counts the call, or fails like an unreachable store (also when
// ctx is done: a real store's call would be cut off).
func (n *clusterNode) begin(ctx context.Context, method string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.c.mu.Lock()
	if n.c.down {
		n.c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ErrStoreDown)
	}
	n.c.calls[method]++
	return nil
}

// announce sends announcements to the listeners (called without the lock).
func (c *ClusterStore) announce(as []ClusterAnnouncement) {
	c.mu.Lock()
	ls := append([]func(ClusterAnnouncement){}, c.listeners...)
	c.mu.Unlock()
	for _, a := range as {
		for _, l := range ls {
			l(a)
		}
	}
}

func (n *clusterNode) NodeID() string { return n.id }

func (n *clusterNode) Strike(ctx context.Context, site string, key netip.Prefix, at time.Time, window time.Duration) (int, error) {
	if err := n.begin(ctx, "Strike"); err != nil {
		return 0, err
	}
	defer n.c.mu.Unlock()
	k := site + "\x00" + key.String()
	var keep []time.Time
	for _, t := range n.c.strikes[k] {
		if at.Sub(t) < window {
			keep = append(keep, t)
		}
	}
	keep = append(keep, at)
	n.c.strikes[k] = keep
	return len(keep), nil
}

func (n *clusterNode) UpdateBan(ctx context.Context, site string, key netip.Prefix, change func(core.BanRecord) core.BanRecord) (core.BanRecord, error) {
	if err := n.begin(ctx, "UpdateBan"); err != nil {
		return core.BanRecord{}, err
	}
	if n.c.bans[site] == nil {
		n.c.bans[site] = map[netip.Prefix]core.BanRecord{}
	}
	rec := change(n.c.bans[site][key])
	n.c.bans[site][key] = rec
	delete(n.c.strikes, site+"\x00"+key.String())
	n.c.mu.Unlock()
	n.c.announce([]ClusterAnnouncement{{Site: site, Ban: &core.ClusterBan{Key: key, BanRecord: rec}}})
	return rec, nil
}

func (n *clusterNode) PutBans(ctx context.Context, site string, bans []core.ClusterBan) error {
	if err := n.begin(ctx, "PutBans"); err != nil {
		return err
	}
	if n.c.bans[site] == nil {
		n.c.bans[site] = map[netip.Prefix]core.BanRecord{}
	}
	var as []ClusterAnnouncement
	for _, b := range bans {
		if cur, ok := n.c.bans[site][b.Key]; ok && !b.LastOffence.After(cur.LastOffence) {
			continue
		}
		n.c.bans[site][b.Key] = b.BanRecord
		delete(n.c.strikes, site+"\x00"+b.Key.String())
		as = append(as, ClusterAnnouncement{Site: site, Ban: &core.ClusterBan{Key: b.Key, BanRecord: b.BanRecord}})
	}
	n.c.mu.Unlock()
	n.c.announce(as)
	return nil
}

func (n *clusterNode) LiftBans(ctx context.Context, site string, keys []netip.Prefix, all bool) ([]core.ClusterBan, error) {
	if err := n.begin(ctx, "LiftBans"); err != nil {
		return nil, err
	}
	var out []core.ClusterBan
	for k, r := range n.c.bans[site] {
		if all || containsPrefix(keys, k) {
			out = append(out, core.ClusterBan{Key: k, BanRecord: r})
			delete(n.c.bans[site], k)
		}
	}
	n.c.mu.Unlock()
	n.c.announce([]ClusterAnnouncement{{Site: site, Lift: keys, All: all}})
	return out, nil
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func (n *clusterNode) Bans(ctx context.Context, site string) ([]core.ClusterBan, error) {
	if err := n.begin(ctx, "Bans"); err != nil {
		return nil, err
	}
	defer n.c.mu.Unlock()
	var out []core.ClusterBan
	for k, r := range n.c.bans[site] {
		out = append(out, core.ClusterBan{Key: k, BanRecord: r})
	}
	return out, nil
}

func (n *clusterNode) ClaimSession(ctx context.Context, s core.ClusterSession, max int) (core.Claim, error) {
	if err := n.begin(ctx, "ClaimSession"); err != nil {
		return core.Claim{}, err
	}
	defer n.c.mu.Unlock()
	others := 0
	for _, x := range n.c.sessions {
		if x.Site == s.Site && x.User == s.User && x.ID != s.ID && !n.c.deadNodes[x.Node] {
			others++
		}
	}
	if max > 0 && others >= max {
		return core.Claim{Others: others}, fmt.Errorf("user %s has %d live sessions in the cluster: %w", s.User, others, core.ErrLimit)
	}
	s.Node = n.id
	n.c.sessions[s.Site+"\x00"+s.ID] = s
	return core.Claim{Others: others}, nil
}

func (n *clusterNode) EndSession(ctx context.Context, site, id string) error {
	if err := n.begin(ctx, "EndSession"); err != nil {
		return err
	}
	defer n.c.mu.Unlock()
	delete(n.c.sessions, site+"\x00"+id)
	return nil
}

func (n *clusterNode) RecordSession(s core.ClusterSession) error {
	if err := n.begin(context.Background(), "RecordSession"); err != nil {
		return err
	}
	defer n.c.mu.Unlock()
	s.Node = n.id
	n.c.sessions[s.Site+"\x00"+s.ID] = s
	return nil
}

func (n *clusterNode) EndSessionLater(site, id string) {
	if err := n.begin(context.Background(), "EndSessionLater"); err != nil {
		return // dropped, as a real store drops them while it is down
	}
	defer n.c.mu.Unlock()
	delete(n.c.sessions, site+"\x00"+id)
}

func (n *clusterNode) AddUsage(ctx context.Context, site, user string, bytes, files, maxBytes, maxFiles int64, held bool) (bool, int64, int64, error) {
	if err := n.begin(ctx, "AddUsage"); err != nil {
		return false, 0, 0, err
	}
	defer n.c.mu.Unlock()
	u := n.c.usage[site+"\x00"+user]
	if u == nil {
		u = &clusterUsage{}
		n.c.usage[site+"\x00"+user] = u
	}
	if held {
		if u.holders == nil {
			u.holders = map[string]bool{}
		}
		u.holders[n.id] = true
	} else {
		delete(u.holders, n.id)
	}
	if (bytes > 0 && maxBytes > 0 && u.bytes+bytes > maxBytes) || (files > 0 && maxFiles > 0 && u.files+files > maxFiles) {
		return false, u.bytes, u.files, nil
	}
	if bytes != 0 || files != 0 {
		u.version++
	}
	u.bytes = max(0, u.bytes+bytes)
	u.files = max(0, u.files+files)
	return true, u.bytes, u.files, nil
}

func (n *clusterNode) ReadUsage(ctx context.Context, site, user string) (core.StoredUsage, error) {
	if err := n.begin(ctx, "ReadUsage"); err != nil {
		return core.StoredUsage{}, err
	}
	defer n.c.mu.Unlock()
	u, ok := n.c.usage[site+"\x00"+user]
	if !ok {
		return core.StoredUsage{}, nil
	}
	return core.StoredUsage{Bytes: u.bytes, Files: u.files, CountedAt: u.countedAt, Version: u.version, Held: n.c.heldLocked(u)}, nil
}

func (n *clusterNode) SetUsage(ctx context.Context, site, user string, bytes, files, version int64) (bool, error) {
	n.c.mu.Lock()
	before := n.c.beforeSetUsage
	n.c.mu.Unlock()
	if before != nil {
		before()
	}
	if err := n.begin(ctx, "SetUsage"); err != nil {
		return false, err
	}
	defer n.c.mu.Unlock()
	u, ok := n.c.usage[site+"\x00"+user]
	switch {
	case !ok && version != 0:
		return false, nil
	case !ok:
		u = &clusterUsage{}
		n.c.usage[site+"\x00"+user] = u
	case u.version != version || n.c.heldLocked(u):
		return false, nil
	}
	u.bytes, u.files, u.countedAt = max(0, bytes), max(0, files), time.Now()
	u.version++
	return true, nil
}
