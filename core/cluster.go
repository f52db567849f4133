package core

import (
	"context"
	"net/netip"
	"time"
)

// Cluster is the state a site shares with the other nodes of a cluster (the cluster: section
// of the config): protector strikes and bans, the live logged-in sessions and quota usage. A
// site without one (Options.Cluster nil) keeps all of it in the process, as a single node.
//
// Every method may wait on the network and is bounded by ctx. An error means the store did
// not answer: the site then carries on as cluster.on_store_down says, and never fails an
// operation already in progress because of it. Sites are told apart by name: nodes that
// serve a site of the same name share its bans, sessions and quotas.
type Cluster interface {
	// NodeID names this node.
	NodeID() string

	// Strike records a strike against key at the given time and returns the key's strikes
	// within window on every node, this one included.
	Strike(ctx context.Context, site string, key netip.Prefix, at time.Time, window time.Duration) (int, error)
	// UpdateBan changes the ban record of key atomically across the cluster: change receives
	// the stored record (the zero record when there is none) and returns the new one, which
	// is stored, clears the key's strikes and is announced to every node (this one
	// included). It returns the record stored.
	UpdateBan(ctx context.Context, site string, key netip.Prefix, change func(BanRecord) BanRecord) (BanRecord, error)
	// PutBans stores records made while the store was unreachable: each replaces the stored
	// record of its key only when its LastOffence is later. They are announced like
	// UpdateBan's.
	PutBans(ctx context.Context, site string, bans []ClusterBan) error
	// LiftBans removes the records of keys (every record of the site when all is set),
	// announces it, and returns the records removed.
	LiftBans(ctx context.Context, site string, keys []netip.Prefix, all bool) ([]ClusterBan, error)
	// Bans returns every ban record of the site, expired ones included (their offences
	// still count for a repeat offender).
	Bans(ctx context.Context, site string) ([]ClusterBan, error)

	// ClaimSession records a logged-in session unless its user already has max live
	// sessions in the cluster (max > 0), in which case the error wraps ErrLimit: for users
	// with a session limit, whose login waits for the count. The claim tells the user's other
	// live sessions in the cluster. Sessions of a node that stopped heartbeating for node_ttl
	// are not live.
	ClaimSession(ctx context.Context, s ClusterSession, max int) (Claim, error)
	// RecordSession records a logged-in session soon (within tens of milliseconds), together
	// with others, without waiting: for sessions whose user has no session limit, for which
	// the cluster only lists and kicks (a quota needs no record: its reservations ask the
	// store when they are made). A session that ends (through
	// EndSessionLater) before its record was written writes nothing. It returns an error,
	// and records nothing, when the store is known to be unreachable (so that
	// on_store_down applies); records that cannot be written later are dropped: after an
	// outage the node rewrites its records from its live sessions.
	RecordSession(s ClusterSession) error
	// EndSession removes a session's record.
	EndSession(ctx context.Context, site, id string) error
	// EndSessionLater removes a session's record soon (within tens of milliseconds), together
	// with others, without waiting: for sessions whose user has no session limit, whose
	// record no login waits for. Ends that cannot be written are dropped: after an outage the
	// node rewrites its records from its live sessions.
	EndSessionLater(site, id string)

	// AddUsage adds bytes and files (either may be negative) to the user's quota usage in
	// the cluster. A positive addition that would take usage past a positive limit (maxBytes,
	// maxFiles) is refused: ok is false and nothing is added. Usage never goes below zero.
	// held says whether this node holds part of the user's usage after the call (an
	// allowance not used yet, or uploads in progress, which a count of the storage misses):
	// SetUsage waits until no live node holds any. It returns the usage after the change.
	AddUsage(ctx context.Context, site, user string, bytes, files, maxBytes, maxFiles int64, held bool) (ok bool, usedBytes, usedFiles int64, err error)
	// ReadUsage returns the user's stored quota usage (the zero StoredUsage when none is
	// stored) and whether a live node holds part of it.
	ReadUsage(ctx context.Context, site, user string) (StoredUsage, error)
	// SetUsage replaces the user's usage with a fresh count of the storage, unless the usage
	// changed since ReadUsage returned version (a reservation, a give-back or another count
	// made meanwhile) or a live node holds part of it by then: replaced is false then, and
	// the stored usage stands. No lock is needed: the check and the replacement are one
	// conditional statement.
	SetUsage(ctx context.Context, site, user string, bytes, files, version int64) (replaced bool, err error)
}

// Claim is what the cluster knows of a user when one of its sessions logs in.
type Claim struct {
	Others int // the user's other live sessions in the cluster
}

// StoredUsage is a user's quota usage as the cluster stores it (allowances that nodes hold
// included).
type StoredUsage struct {
	Bytes, Files int64
	// CountedAt is when SetUsage last replaced the figure with a count of the storage; zero
	// when it never did.
	CountedAt time.Time
	// Version changes with every change of the figure; 0 when none is stored.
	Version int64
	// Held: a live node holds part of the figure (see AddUsage).
	Held bool
}

// BanRecord is a ban as the cluster stores it.
type BanRecord struct {
	Until       time.Time // the ban is in force before Until
	Offences    int       // bans of the key within the last 7 days, this one included
	LastOffence time.Time
}

// ClusterBan is a key's ban record.
type ClusterBan struct {
	Key netip.Prefix // an address (/32, /128) or an IPv6 prefix
	BanRecord
}

// ClusterSession is a logged-in session as the cluster records it.
type ClusterSession struct {
	ID       string
	Site     string
	User     string
	Node     string // the node that serves it; set by the store
	Protocol string
	RemoteIP string
	Start    time.Time
}
