package core

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// A site of a cluster (Options.Cluster) shares its protector, session limit and quotas
// through the cluster store. The node-local state stays what the site serves from (the ban
// table that Banned reads, the per-user counts, the quota allowance), and the store is
// asked at the points where the cluster must agree: a strike, a ban or a lift, a login, a
// quota reservation beyond the node's allowance, an allowance given back, a session's end.
//
// While the store does not answer (every call has storeTimeout), the site serves on local
// state (cluster.on_store_down: local) or refuses new logins (refuse), and remembers what it
// changed meanwhile: the bans and lifts it made and the quota deltas, pushed by SyncCluster
// and by the next successful quota call. Once a call failed, only logins (ClaimSession) and
// SyncCluster ask the store again until one of them gets an answer: strikes, bans, transfers
// and session ends go straight to the local state, so that a black-holed database costs one
// timeout per login, not one per operation.

// storeTimeout bounds every call to the cluster store, on top of the caller's context.
const storeTimeout = 2 * time.Second

// ErrStoreDown is why a login is refused while the cluster store cannot be reached and
// cluster.on_store_down is refuse. The login's error is of kind ErrLimit (adapters answer
// with their "service not available" replies); IsStoreDown tells it apart from a session
// limit, to send this text instead.
var ErrStoreDown = errors.New("the cluster store cannot be reached; new logins are refused (cluster.on_store_down: refuse)")

// IsStoreDown reports whether a login was refused because the cluster store cannot be
// reached (see ErrStoreDown).
func IsStoreDown(err error) bool {
	var oe *OpError
	if errors.As(err, &oe) {
		return errors.Is(oe.Err, ErrStoreDown)
	}
	return errors.Is(err, ErrStoreDown)
}

// clusterLink is a site's connection to the cluster store and what it remembers while the
// store does not answer.
type clusterLink struct {
	c      Cluster
	refuse bool // cluster.on_store_down: refuse
	down   atomic.Bool

	mu      sync.Mutex // guards the pending changes; never held while calling the protector
	bans    map[netip.Prefix]banRecord
	lifts   map[netip.Prefix]bool
	liftAll bool

	syncMu sync.Mutex // one SyncCluster at a time
}

func newClusterLink(c Cluster, refuse bool) *clusterLink {
	if c == nil {
		return nil
	}
	return &clusterLink{c: c, refuse: refuse, bans: map[netip.Prefix]banRecord{}, lifts: map[netip.Prefix]bool{}}
}

// ctx bounds one store call.
func (l *clusterLink) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, storeTimeout)
}

// usable reports whether calls outside logins and SyncCluster should ask the store.
func (l *clusterLink) usable() bool { return !l.down.Load() }

// note records the outcome of a store call and returns err: the site logs once when the
// store stops answering and once when it answers again. A refusal that wraps ErrLimit is an
// answer; a call its caller cancelled is neither.
func (s *Site) note(err error) error {
	l := s.cl
	if errors.Is(err, context.Canceled) {
		return err // the caller gave up (a client left mid-login): says nothing about the store
	}
	if err == nil || errors.Is(err, ErrLimit) {
		if l.down.Swap(false) {
			s.log.Info("cluster store answers again", "node", l.c.NodeID())
		}
		return err
	}
	if !l.down.Swap(true) {
		mode := "serving on local state"
		if l.refuse {
			mode = "refusing new logins"
		}
		s.log.Warn("cluster store cannot be reached; "+mode+" until it answers", "node", l.c.NodeID(), "err", err.Error())
	}
	return err
}

// rememberBan keeps a ban made while the store did not answer, for SyncCluster.
func (l *clusterLink) rememberBan(k netip.Prefix, rec banRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bans[k] = rec
	delete(l.lifts, k)
}

// rememberLift keeps a lift made while the store did not answer, for SyncCluster.
func (l *clusterLink) rememberLift(keys []netip.Prefix, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if all {
		l.liftAll = true
		clear(l.bans)
		clear(l.lifts)
		return
	}
	for _, k := range keys {
		delete(l.bans, k)
		l.lifts[k] = true
	}
}

// forgetPendingBans drops remembered bans of keys a lift that reached the store removed.
func (l *clusterLink) forgetPendingBans(keys []netip.Prefix, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if all {
		clear(l.bans)
		clear(l.lifts)
		l.liftAll = false
		return
	}
	for _, k := range keys {
		delete(l.bans, k)
		delete(l.lifts, k)
	}
}

// takePending returns the remembered changes and forgets them.
func (l *clusterLink) takePending() (bans []ClusterBan, lifts []netip.Prefix, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, r := range l.bans {
		bans = append(bans, ClusterBan{Key: k, BanRecord: toClusterRecord(r)})
	}
	for k := range l.lifts {
		lifts = append(lifts, k)
	}
	all = l.liftAll
	clear(l.bans)
	clear(l.lifts)
	l.liftAll = false
	return bans, lifts, all
}

// restorePending puts back changes a failed push took, unless newer ones replaced them.
func (l *clusterLink) restorePending(bans []ClusterBan, lifts []netip.Prefix, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.liftAll {
		return // a lift of everything came meanwhile and supersedes what the push took
	}
	// A lift of everything that was taken came before what was remembered since.
	l.liftAll = all
	for _, k := range lifts {
		if _, banned := l.bans[k]; !banned {
			l.lifts[k] = true
		}
	}
	for _, b := range bans {
		if _, lifted := l.lifts[b.Key]; lifted {
			continue
		}
		if cur, ok := l.bans[b.Key]; ok && cur.LastOffen.After(b.LastOffence) {
			continue
		}
		l.bans[b.Key] = fromClusterRecord(b.BanRecord)
	}
}

// pendingBans returns the keys with a remembered ban.
func (l *clusterLink) pendingBans() map[netip.Prefix]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[netip.Prefix]bool, len(l.bans))
	for k := range l.bans {
		out[k] = true
	}
	return out
}

func toClusterRecord(r banRecord) BanRecord {
	return BanRecord{Until: r.Until, Offences: r.Offences, LastOffence: r.LastOffen}
}

func fromClusterRecord(r BanRecord) banRecord {
	return banRecord{Until: r.Until, Offences: r.Offences, LastOffen: r.LastOffence}
}
