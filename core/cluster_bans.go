package core

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Bans and strikes of a site in a cluster: the store counts strikes and holds the ban
// records; the local table is the cache that Banned reads, filled from what this node stores
// and from what the store announces (ApplyClusterBan, ApplyClusterLift).

// normalizeLocked returns the key a record from the cluster is kept under here: an IPv6
// prefix made again for this node's ipv6_prefix. A prefix wider than that cannot be
// narrowed: false. p.mu is held.
func (p *protector) normalizeLocked(k netip.Prefix) (netip.Prefix, bool) {
	if !k.IsValid() {
		return netip.Prefix{}, false
	}
	if k.Addr().Is4() {
		return netip.PrefixFrom(k.Addr(), 32), k.Bits() == 32
	}
	if k.Bits() < p.bits6 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(k.Addr().WithZone(""), p.bits6).Masked(), true
}

// sameRecord reports whether two records say the same (times compared as instants).
func sameRecord(a, b banRecord) bool {
	return a.Until.Equal(b.Until) && a.Offences == b.Offences && a.LastOffen.Equal(b.LastOffen)
}

// put stores a record the cluster holds for k, unless the local one is more recent; an equal
// record changes nothing (a node hears its own bans again). It journals a change and reports
// whether there was one.
func (p *protector) put(k netip.Prefix, rec banRecord, now time.Time) bool {
	if p.store != nil {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
	}
	p.mu.Lock()
	k, ok := p.normalizeLocked(k)
	if !ok || forgotten(rec, now) {
		p.mu.Unlock()
		return false
	}
	if e, ok := p.bans[k]; ok && (e.rec.LastOffen.After(rec.LastOffen) || sameRecord(e.rec, rec)) {
		p.mu.Unlock()
		return false
	}
	if se, ok := p.strikes[k]; ok {
		p.dropStrikesLocked(se) // a ban clears the key's strikes, as the store does
	}
	_, firstEviction, maxBans := p.setLocked(k, rec, now)
	p.mu.Unlock()
	if firstEviction {
		p.log.Warn("the ban table is full: each new ban evicts the oldest; raise protector.max_bans if this is no attack",
			"max_bans", maxBans)
	}
	p.journalLocked(storedBan{key: k, rec: rec})
	return true
}

// merge makes the local table agree with the records the store holds: a store record more
// recent than the local one replaces it, and a local key the store does not hold was lifted
// elsewhere and goes, unless keep says it was made here since (a ban not pushed yet, or one
// made after the store's records were read).
func (p *protector) merge(records []ClusterBan, keep func(netip.Prefix, banRecord) bool, now time.Time) {
	if p.store != nil {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
	}
	p.mu.Lock()
	held := make(map[netip.Prefix]banRecord, len(records))
	for _, b := range records {
		k, ok := p.normalizeLocked(b.Key)
		if !ok {
			continue
		}
		rec := fromClusterRecord(b.BanRecord)
		if old, ok := held[k]; ok && old.LastOffen.After(rec.LastOffen) {
			continue
		}
		held[k] = rec
	}
	var lines []storedBan
	for el := p.banAge.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*banEntry)
		if _, ok := held[e.key]; !ok && !keep(e.key, e.rec) {
			p.dropBanLocked(e)
			lines = append(lines, storedBan{key: e.key, rec: banRecord{LastOffen: now}, removed: true})
		}
		el = next
	}
	keys := make([]netip.Prefix, 0, len(held))
	for k, rec := range held {
		if e, ok := p.bans[k]; (ok && !rec.LastOffen.After(e.rec.LastOffen)) || forgotten(rec, now) {
			continue
		}
		keys = append(keys, k)
	}
	// Oldest first, so that the table stays in the order of the last offences.
	slices.SortFunc(keys, func(a, b netip.Prefix) int { return held[a].LastOffen.Compare(held[b].LastOffen) })
	firstEviction, maxBans := false, 0
	for _, k := range keys {
		var first bool
		_, first, maxBans = p.setLocked(k, held[k], now)
		firstEviction = firstEviction || first
		lines = append(lines, storedBan{key: k, rec: held[k]})
	}
	p.full = p.full && len(p.bans) >= p.maxBans
	p.mu.Unlock()
	if firstEviction {
		p.log.Warn("the ban table is full: each new ban evicts the oldest; raise protector.max_bans if this is no attack",
			"max_bans", maxBans)
	}
	for _, l := range lines {
		p.journalLocked(l)
	}
}

// clusterStrike counts a strike in the store: the key's strikes on every node within window.
// ok is false when the store did not answer (the caller counts locally).
func (s *Site) clusterStrike(ctx context.Context, ip netip.Addr, now time.Time, window time.Duration) (n int, ok bool) {
	if !s.cl.usable() {
		return 0, false
	}
	cctx, cancel := s.cl.ctx(ctx)
	defer cancel()
	n, err := s.cl.c.Strike(cctx, s.name, s.prot.key(ip), now, window)
	if s.note(err) != nil {
		return 0, false
	}
	return n, true
}

// banKey bans key with change: through the store in a cluster (the stored record is then the
// local one too), else, and while the store does not answer, in the local table (remembered
// for SyncCluster). It returns the record in force.
func (s *Site) banKey(ctx context.Context, key netip.Prefix, change func(banRecord) banRecord, now time.Time) banRecord {
	if s.cl == nil {
		_, rec := s.prot.update(func() netip.Prefix { return key }, change, now)
		return rec
	}
	if s.cl.usable() {
		cctx, cancel := s.cl.ctx(ctx)
		stored, err := s.cl.c.UpdateBan(cctx, s.name, key, func(r BanRecord) BanRecord {
			return toClusterRecord(change(fromClusterRecord(r)))
		})
		cancel()
		if s.note(err) == nil {
			rec := fromClusterRecord(stored)
			s.prot.put(key, rec, now)
			return rec
		}
	}
	_, rec := s.prot.update(func() netip.Prefix { return key }, change, now)
	s.cl.rememberBan(key, rec)
	return rec
}

// liftKeys lifts the bans of keys (all: every ban) in the store and in the local table, and
// returns the bans that were in force at now.
func (s *Site) liftKeys(ctx context.Context, keys []netip.Prefix, all bool, now time.Time) []storedBan {
	match := func(k netip.Prefix) bool { return all || slices.Contains(keys, k) }
	if s.cl == nil {
		return s.prot.lift(match, now)
	}
	var fromStore []ClusterBan
	err := fmt.Errorf("the cluster store was not asked: %w", ErrFailure)
	if s.cl.usable() {
		cctx, cancel := s.cl.ctx(ctx)
		fromStore, err = s.cl.c.LiftBans(cctx, s.name, keys, all)
		cancel()
		err = s.note(err)
	}
	local := s.prot.lift(match, now)
	if err != nil {
		s.cl.rememberLift(keys, all)
		return local
	}
	s.cl.forgetPendingBans(keys, all)
	// The bans the store held (a ban another node made may not have reached this one yet),
	// and the local ones it did not.
	out := local
	for _, b := range fromStore {
		if !now.Before(b.Until) || slices.ContainsFunc(out, func(l storedBan) bool { return l.key == b.Key }) {
			continue
		}
		out = append(out, storedBan{key: b.Key, rec: fromClusterRecord(b.BanRecord)})
	}
	return out
}

// ApplyClusterBan applies a ban the cluster store announced (made by any node, this one
// included) to the local table: no events, no audit fact, nothing sent back to the store. A
// record older than the local one of the key changes nothing, and so does the same record
// again.
func (s *Site) ApplyClusterBan(b ClusterBan) {
	s.prot.put(b.Key, fromClusterRecord(b.BanRecord), s.now())
}

// ApplyClusterLift applies a lift the cluster store announced to the local table: the bans of
// keys, or every ban when all is set. Like ApplyClusterBan it fires nothing.
func (s *Site) ApplyClusterLift(keys []netip.Prefix, all bool) {
	s.prot.mu.Lock()
	norm := make([]netip.Prefix, 0, len(keys))
	for _, k := range keys {
		if n, ok := s.prot.normalizeLocked(k); ok {
			norm = append(norm, n)
		}
	}
	s.prot.mu.Unlock()
	s.prot.lift(func(k netip.Prefix) bool { return all || slices.Contains(norm, k) }, s.now())
}

// SyncCluster reconciles the site with the cluster store (cmd calls it when the store opens
// and when it answers again after an outage): it pushes the lifts and bans made while the
// store did not answer and the quota changes not counted there yet, then loads the store's
// ban records into the local table (the later last offence wins; keys lifted elsewhere go).
// Without a cluster it does nothing.
func (s *Site) SyncCluster(ctx context.Context) error {
	if s.cl == nil {
		return nil
	}
	s.cl.syncMu.Lock()
	defer s.cl.syncMu.Unlock()
	bans, lifts, all := s.cl.takePending()
	if err := s.pushPending(ctx, bans, lifts, all); err != nil {
		s.cl.restorePending(bans, lifts, all)
		return err
	}
	if err := s.pushUsage(ctx); err != nil {
		return err
	}
	since := s.now()
	cctx, cancel := s.cl.ctx(ctx)
	records, err := s.cl.c.Bans(cctx, s.name)
	cancel()
	if err := s.note(err); err != nil {
		return fmt.Errorf("site %q: loading the cluster's bans: %w", s.name, err)
	}
	pending := s.cl.pendingBans()
	s.prot.merge(records, func(k netip.Prefix, rec banRecord) bool {
		return pending[k] || !rec.LastOffen.Before(since)
	}, s.now())
	return nil
}

// pushPending sends the lifts and bans made while the store did not answer.
func (s *Site) pushPending(ctx context.Context, bans []ClusterBan, lifts []netip.Prefix, all bool) error {
	call := func(what string, f func(context.Context) error) error {
		cctx, cancel := s.cl.ctx(ctx)
		defer cancel()
		if err := s.note(f(cctx)); err != nil {
			return fmt.Errorf("site %q: pushing %s to the cluster store: %w", s.name, what, err)
		}
		return nil
	}
	if all {
		if err := call("a lift of every ban", func(c context.Context) error {
			_, err := s.cl.c.LiftBans(c, s.name, nil, true)
			return err
		}); err != nil {
			return err
		}
	}
	if len(lifts) > 0 {
		if err := call(fmt.Sprintf("%d lifted bans", len(lifts)), func(c context.Context) error {
			_, err := s.cl.c.LiftBans(c, s.name, lifts, false)
			return err
		}); err != nil {
			return err
		}
	}
	if len(bans) > 0 {
		slices.SortFunc(bans, func(a, b ClusterBan) int { return a.LastOffence.Compare(b.LastOffence) })
		if err := call(fmt.Sprintf("%d bans", len(bans)), func(c context.Context) error {
			return s.cl.c.PutBans(c, s.name, bans)
		}); err != nil {
			return err
		}
	}
	return nil
}
