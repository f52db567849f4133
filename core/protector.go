package core

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wharf-project/wharf/core/config"
)

// The protector bans addresses that collect threshold strikes (failed logins, connections
// that never authenticate, refused or escaping operations, protocol abuse) within window.
// A repeat offender is banned twice as long each time, up to maxBan. Bans survive restarts in
// the state folder (see banStore).
//
// It counts and bans keys: an IPv4 address, or the IPv6 prefix (ipv6_prefix bits, /64 by
// default) that holds an address, since one IPv6 host usually has a whole /64 to rotate
// addresses in. The allow, safe and block lists match the real address. Both tables are
// bounded: strikes to maxStrikeEntries, bans to max_bans, the least recent entry going first.

const (
	maxBan = 7 * 24 * time.Hour
	// offenceMemory is how long a past ban still makes the next one longer.
	offenceMemory = 7 * 24 * time.Hour
	// maxStrikeEntries bounds the keys with strikes in memory: a flood from many addresses
	// forgets the one struck least recently.
	maxStrikeEntries    = 100_000
	defaultMaxBans      = 100_000
	defaultIPv6Prefix   = 64
	defaultBanFor       = 30 * time.Minute
	defaultStrikeWindow = 10 * time.Minute
	defaultThreshold    = 10
)

type banRecord struct {
	Until     time.Time `json:"until"`
	Offences  int       `json:"offences"`
	LastOffen time.Time `json:"last_offence"`
}

type strikeEntry struct {
	key   netip.Prefix
	times []time.Time
	elem  *list.Element // in protector.strikeAge
}

type banEntry struct {
	key  netip.Prefix
	rec  banRecord
	elem *list.Element // in protector.banAge
}

type protector struct {
	store *banStore // nil: not persisted; its mutex is taken before mu
	log   *slog.Logger

	mu        sync.Mutex
	bits6     int // IPv6 prefix length of a key
	maxBans   int
	strikes   map[netip.Prefix]*strikeEntry
	strikeAge list.List // *strikeEntry, least recently struck first
	bans      map[netip.Prefix]*banEntry
	banAge    list.List // *banEntry, least recently banned first
	full      bool      // the ban table reached max_bans (logged once)
}

// newProtector builds the protector and loads the bans saved in stateFile ("" = in memory
// only). A damaged state file does not stop it (see banStore.load).
func newProtector(stateFile string, p config.Protector, now time.Time, log *slog.Logger) (*protector, error) {
	pr := &protector{log: log, strikes: map[netip.Prefix]*strikeEntry{}, bans: map[netip.Prefix]*banEntry{}}
	pr.bits6, pr.maxBans = protectorSizes(p)
	if stateFile == "" {
		return pr, nil
	}
	pr.store = newBanStore(stateFile, log)
	saved, rewrite, err := pr.store.load()
	if err != nil {
		return nil, err
	}
	pr.store.mu.Lock()
	defer pr.store.mu.Unlock()
	pr.mu.Lock()
	changed := pr.fillLocked(saved, now)
	snap := pr.snapshotLocked()
	pr.mu.Unlock()
	if rewrite || changed {
		pr.store.compactLocked(snap)
	}
	return pr, nil
}

// protectorSizes returns the IPv6 prefix length and ban cap, defaulted.
func protectorSizes(p config.Protector) (bits6, maxBans int) {
	bits6, maxBans = p.IPv6Prefix, p.MaxBans
	if bits6 <= 0 || bits6 > 128 {
		bits6 = defaultIPv6Prefix
	}
	if maxBans <= 0 {
		maxBans = defaultMaxBans
	}
	return bits6, maxBans
}

// fillLocked replaces the ban table with bans: keys made again for the current prefix length
// (the latest record of a key wins), forgotten bans dropped, the newest max_bans kept, in
// order of their last offence. It reports whether anything was dropped or merged.
func (p *protector) fillLocked(bans []storedBan, now time.Time) (changed bool) {
	latest := make(map[netip.Prefix]storedBan, len(bans))
	for _, b := range bans {
		k := b.key
		if k.Addr().Is6() {
			if k.Bits() < p.bits6 {
				// Saved for a wider prefix than is configured now: it cannot be narrowed.
				changed = true
				continue
			}
			k = netip.PrefixFrom(k.Addr(), p.bits6).Masked()
		}
		if old, ok := latest[k]; ok {
			changed = changed || k != b.key
			if old.rec.LastOffen.After(b.rec.LastOffen) {
				continue
			}
		}
		latest[k] = storedBan{key: k, rec: b.rec, removed: b.removed}
	}
	keep := make([]storedBan, 0, len(latest))
	for k, b := range latest {
		if b.removed || forgotten(b.rec, now) {
			changed = true
			continue
		}
		keep = append(keep, storedBan{key: k, rec: b.rec})
	}
	slices.SortStableFunc(keep, func(a, b storedBan) int {
		if c := a.rec.LastOffen.Compare(b.rec.LastOffen); c != 0 {
			return c
		}
		return a.key.Addr().Compare(b.key.Addr())
	})
	if len(keep) > p.maxBans {
		keep, changed = keep[len(keep)-p.maxBans:], true
	}
	p.bans = make(map[netip.Prefix]*banEntry, len(keep))
	p.banAge.Init()
	for _, b := range keep {
		e := &banEntry{key: b.key, rec: b.rec}
		e.elem = p.banAge.PushBack(e)
		p.bans[b.key] = e
	}
	return changed || len(keep) != len(bans)
}

// forgotten reports whether a ban has ended and no longer makes the next one longer.
func forgotten(rec banRecord, now time.Time) bool {
	return now.Sub(rec.LastOffen) > offenceMemory && !now.Before(rec.Until)
}

// snapshotLocked returns the bans, oldest first.
func (p *protector) snapshotLocked() []storedBan {
	out := make([]storedBan, 0, len(p.bans))
	for el := p.banAge.Front(); el != nil; el = el.Next() {
		e := el.Value.(*banEntry)
		out = append(out, storedBan{key: e.key, rec: e.rec})
	}
	return out
}

// configure applies a reloaded protector config: a new IPv6 prefix length makes the keys
// again (IPv6 strikes start over), a lower cap evicts the oldest bans.
func (p *protector) configure(c config.Protector, now time.Time) {
	bits6, maxBans := protectorSizes(c)
	if p.store != nil {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
	}
	p.mu.Lock()
	if bits6 == p.bits6 && maxBans == p.maxBans {
		p.mu.Unlock()
		return
	}
	if bits6 != p.bits6 {
		for k, e := range p.strikes {
			if k.Addr().Is6() {
				p.strikeAge.Remove(e.elem)
				delete(p.strikes, k)
			}
		}
	}
	p.bits6, p.maxBans, p.full = bits6, maxBans, false
	changed := p.fillLocked(p.snapshotLocked(), now)
	snap := p.snapshotLocked()
	p.mu.Unlock()
	if changed && p.store != nil {
		p.store.compactLocked(snap)
	}
}

// key returns what ip is counted and banned as.
func (p *protector) key(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	k, err := ip.WithZone("").Prefix(p.bits6)
	if err != nil {
		return netip.PrefixFrom(ip.WithZone(""), 128)
	}
	return k
}

// banned reports whether ip is banned at now, and until when.
func (p *protector) banned(ip netip.Addr, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.bans[p.key(ip)]
	if !ok || !now.Before(e.rec.Until) {
		return time.Time{}, false
	}
	return e.rec.Until, true
}

// strike records a strike and reports whether it reached the threshold.
func (p *protector) strike(ip netip.Addr, now time.Time, window time.Duration, threshold int) (count int, reached bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Entries are in order of their last strike: those whose window has passed are in front.
	for el := p.strikeAge.Front(); el != nil; el = p.strikeAge.Front() {
		e := el.Value.(*strikeEntry)
		if now.Sub(e.times[len(e.times)-1]) < window {
			break
		}
		p.dropStrikesLocked(e)
	}
	k := p.key(ip)
	e, ok := p.strikes[k]
	if ok {
		p.strikeAge.MoveToBack(e.elem)
	} else {
		e = &strikeEntry{key: k}
		e.elem = p.strikeAge.PushBack(e)
		p.strikes[k] = e
		if len(p.strikes) > maxStrikeEntries {
			p.dropStrikesLocked(p.strikeAge.Front().Value.(*strikeEntry))
		}
	}
	list := e.times[:0]
	for _, t := range e.times {
		if now.Sub(t) < window {
			list = append(list, t)
		}
	}
	e.times = append(list, now)
	n := len(e.times)
	if n >= threshold {
		p.dropStrikesLocked(e)
		return n, true
	}
	return n, false
}

func (p *protector) dropStrikesLocked(e *strikeEntry) {
	p.strikeAge.Remove(e.elem)
	delete(p.strikes, e.key)
}

// ban bans ip's key for base, doubled for each recent earlier offence, and returns the
// duration and the key. It costs the same whatever the size of the table: an update in
// memory and a line in the journal.
func (p *protector) ban(ip netip.Addr, now time.Time, base time.Duration) (time.Duration, netip.Prefix) {
	k, rec := p.update(func() netip.Prefix { return p.key(ip) }, banChange(now, base, true), now)
	return rec.Until.Sub(now), k
}

// banChange is what a ban at now does to the key's record: it bans for base, doubled for
// each offence within offenceMemory when double is set (the protector's bans; an operator's
// last exactly base, and replace a longer ban in force), up to maxBan. It is a pure function of the record, so that a cluster
// store may apply it to the record it holds.
func banChange(now time.Time, base time.Duration, double bool) func(banRecord) banRecord {
	return func(b banRecord) banRecord {
		if now.Sub(b.LastOffen) > offenceMemory {
			b.Offences = 0
		}
		d := base
		if double {
			for range b.Offences {
				if d >= maxBan/2 {
					d = maxBan
					break
				}
				d *= 2
			}
		}
		b.Offences++
		b.LastOffen, b.Until = now, now.Add(d)
		return b
	}
}

// update changes the record of the key that keyOf returns (called under the table's lock)
// with change, evicts beyond max_bans, and journals the new record. It returns the key and
// the new record.
func (p *protector) update(keyOf func() netip.Prefix, change func(banRecord) banRecord, now time.Time) (netip.Prefix, banRecord) {
	if p.store != nil {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
	}
	p.mu.Lock()
	k := keyOf()
	b, firstEviction, maxBans := p.setLocked(k, change(p.recordLocked(k)), now)
	p.mu.Unlock()
	if firstEviction {
		p.log.Warn("the ban table is full: each new ban evicts the oldest; raise protector.max_bans if this is no attack",
			"max_bans", maxBans)
	}
	// Evicted and forgotten bans need no line: reading the state applies the same rules.
	p.journalLocked(storedBan{key: k, rec: b})
	return k, b
}

// recordLocked returns k's record, the zero record when it has none.
func (p *protector) recordLocked(k netip.Prefix) banRecord {
	if e, ok := p.bans[k]; ok {
		return e.rec
	}
	return banRecord{}
}

// setLocked stores rec as k's record (the most recent), evicts beyond max_bans and drops
// forgotten bans. It reports whether this was the first eviction (to log) and the cap.
func (p *protector) setLocked(k netip.Prefix, rec banRecord, now time.Time) (_ banRecord, firstEviction bool, maxBans int) {
	e, ok := p.bans[k]
	if ok {
		p.banAge.MoveToBack(e.elem)
	} else {
		e = &banEntry{key: k}
		e.elem = p.banAge.PushBack(e)
		p.bans[k] = e
	}
	e.rec = rec
	for len(p.bans) > p.maxBans {
		p.dropBanLocked(p.banAge.Front().Value.(*banEntry))
		if !p.full {
			firstEviction, p.full = true, true
		}
	}
	for el := p.banAge.Front(); el != nil && forgotten(el.Value.(*banEntry).rec, now); el = p.banAge.Front() {
		p.dropBanLocked(el.Value.(*banEntry))
	}
	return rec, firstEviction, p.maxBans
}

// journalLocked appends a line to the journal and compacts it when it is long enough. The
// store's mutex is held.
func (p *protector) journalLocked(b storedBan) {
	if p.store == nil {
		return
	}
	lines, snapSize := p.store.appendLocked(b)
	if lines >= max(journalMinLines, snapSize) {
		p.mu.Lock()
		snap := p.snapshotLocked()
		p.mu.Unlock()
		p.store.compactLocked(snap)
	}
}

// lift removes the records of the keys that match (a lifted ban also forgets the key's past
// offences) and journals each removal. It returns the bans that were in force at now.
func (p *protector) lift(match func(netip.Prefix) bool, now time.Time) []storedBan {
	if p.store != nil {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
	}
	p.mu.Lock()
	var removed, active []storedBan
	for el := p.banAge.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*banEntry)
		if match(e.key) {
			removed = append(removed, storedBan{key: e.key, rec: e.rec})
			if now.Before(e.rec.Until) {
				active = append(active, storedBan{key: e.key, rec: e.rec})
			}
			p.dropBanLocked(e)
		}
		el = next
	}
	p.full = p.full && len(p.bans) >= p.maxBans
	p.mu.Unlock()
	for _, b := range removed {
		p.journalLocked(storedBan{key: b.key, rec: banRecord{LastOffen: now}, removed: true})
	}
	return active
}

// list returns the bans in force at now, oldest first.
func (p *protector) list(now time.Time) []storedBan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []storedBan
	for el := p.banAge.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*banEntry); now.Before(e.rec.Until) {
			out = append(out, storedBan{key: e.key, rec: e.rec})
		}
	}
	return out
}

// count returns how many bans are in force at now.
func (p *protector) count(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.bans {
		if now.Before(e.rec.Until) {
			n++
		}
	}
	return n
}

// keyOf parses an address or prefix an operator gave into the key it is banned as: an IPv4
// address, an IPv6 address's prefix, or an IPv6 prefix of exactly ipv6_prefix bits.
func (p *protector) keyOf(addr string) (netip.Prefix, error) {
	pfx, err := config.ParsePrefix(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address: %w", truncateKey(addr), err)
	}
	p.mu.Lock()
	bits6 := p.bits6
	p.mu.Unlock()
	switch {
	case pfx.Addr().Is4() && pfx.Bits() != 32:
		return netip.Prefix{}, fmt.Errorf("%s: IPv4 bans are single addresses (protector.block takes networks)", pfx)
	case pfx.Addr().Is6() && pfx.Bits() != 128 && pfx.Bits() != bits6:
		return netip.Prefix{}, fmt.Errorf("%s: IPv6 clients are banned by their /%d (protector.ipv6_prefix): give an address or a /%d", pfx, bits6, bits6)
	case pfx.Addr().Is4():
		return pfx, nil
	}
	return netip.PrefixFrom(pfx.Addr(), bits6).Masked(), nil
}

func (p *protector) dropBanLocked(e *banEntry) {
	p.banAge.Remove(e.elem)
	delete(p.bans, e.key)
}

// close folds the journal into the snapshot (at shutdown), so that a server stopped cleanly
// leaves one state file.
func (p *protector) close() {
	if p.store == nil {
		return
	}
	p.store.mu.Lock()
	if p.store.lines > 0 {
		p.mu.Lock()
		snap := p.snapshotLocked()
		p.mu.Unlock()
		p.store.compactLocked(snap)
	}
	p.store.mu.Unlock()
	p.store.close()
}

// Strike records abuse from ip (reason is logged). When the strikes within the protector's
// window reach its threshold the address is banned. Safe-listed addresses never collect
// strikes. sess may be nil.
func (s *Site) Strike(ctx context.Context, ip netip.Addr, reason string, sess *Session) {
	cfg := s.Config().Protector
	sc := s.cfg.Load()
	if !cfg.IsEnabled() || !ip.IsValid() || containsIP(sc.safe, ip) {
		return
	}
	window, threshold := cfg.Window.Duration, cfg.Threshold
	if window <= 0 {
		window = defaultStrikeWindow
	}
	if threshold <= 0 {
		threshold = defaultThreshold
	}
	now := s.now()
	var n int
	var reached, counted bool
	if s.cl != nil {
		// The store clears the key's strikes when it is banned; counts past the threshold
		// come from strikes that raced with that ban.
		if n, counted = s.clusterStrike(ctx, ip, now, window); counted {
			reached = n >= threshold
		}
	}
	if !counted {
		n, reached = s.prot.strike(ip, now, window, threshold)
	}
	s.log.Info("protector strike", "ip", ip.String(), "reason", reason, "strikes", n, "threshold", threshold)
	s.observe(&Fact{Kind: FactStrike, Session: sess, IP: ip.String(), Reason: reason})
	if s.events.Handles(OnProtectorStrike, sessionUser(sess)) {
		conn := &Conn{RemoteIP: ip.String(), Site: s.name, site: s}
		if sess != nil {
			conn = sess.conn
		}
		s.events.Fire(ctx, &Event{Name: OnProtectorStrike, Session: sess, Conn: conn})
	}
	if reached {
		s.banByStrikes(ctx, ip, cfg.BanFor.Duration, sess, "protector",
			fmt.Sprintf("%d strikes within %s, the last: %s", n, window, reason))
	}
}

// Ban refuses new connections from ip for d (longer for a repeat offender). Safe-listed
// addresses are never banned. It reports whether a ban was added.
func (s *Site) Ban(ctx context.Context, ip netip.Addr, d time.Duration, sess *Session) bool {
	return s.banBy(ctx, ip, d, sess, "protector", "")
}

// banBy is Ban with who banned and why, for the log and the audit log.
func (s *Site) banBy(ctx context.Context, ip netip.Addr, d time.Duration, sess *Session, by, reason string) bool {
	sc := s.cfg.Load()
	if !ip.IsValid() || containsIP(sc.safe, ip) {
		return false
	}
	if d <= 0 {
		d = defaultBanFor
	}
	now := s.now()
	var key netip.Prefix
	if s.cl == nil {
		d, key = s.prot.ban(ip, now, d)
	} else {
		key = s.prot.key(ip)
		rec := s.banKey(ctx, key, banChange(now, d, true), now)
		d = rec.Until.Sub(now)
	}
	s.banned(ctx, ip, key, now.Add(d), d, sess, by, reason)
	return true
}

// banByStrikes is the ban of an address whose strikes reached the threshold. In a cluster,
// two nodes can each see the threshold reached by strikes that raced with the other's ban:
// a ban in force in the store then stands as it is, instead of counting a second offence
// (which would double its length) and being announced twice.
func (s *Site) banByStrikes(ctx context.Context, ip netip.Addr, d time.Duration, sess *Session, by, reason string) {
	if s.cl == nil {
		s.banBy(ctx, ip, d, sess, by, reason)
		return
	}
	if !ip.IsValid() || containsIP(s.cfg.Load().safe, ip) {
		return
	}
	if d <= 0 {
		d = defaultBanFor
	}
	now := s.now()
	key := s.prot.key(ip)
	kept := false
	ban := banChange(now, d, true)
	rec := s.banKey(ctx, key, func(b banRecord) banRecord {
		if now.Before(b.Until) {
			kept = true
			return b
		}
		kept = false // the store may call the change again on a retry
		return ban(b)
	}, now)
	if kept {
		return
	}
	d = rec.Until.Sub(now)
	s.banned(ctx, ip, key, rec.Until, d, sess, by, reason)
}

// banned logs, observes and fires OnBlocklistAdd for a ban just made.
func (s *Site) banned(ctx context.Context, ip netip.Addr, key netip.Prefix, until time.Time, d time.Duration, sess *Session, by, reason string) {
	attrs := []any{"ip", ip.String()}
	if !key.IsSingleIP() {
		attrs = append(attrs, "prefix", key.String())
	}
	attrs = append(attrs, "for", d.String(), "until", until.UTC().Format(time.RFC3339), "by", by)
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	s.log.Warn("address banned", attrs...)
	s.observe(&Fact{Kind: FactBan, Session: sess, IP: formatBanKey(key), Duration: d, By: by, Reason: reason, Until: until})
	if s.events.Handles(OnBlocklistAdd, sessionUser(sess)) {
		conn := &Conn{RemoteIP: ip.String(), Site: s.name, site: s}
		if sess != nil {
			conn = sess.conn
		}
		s.events.Fire(ctx, &Event{Name: OnBlocklistAdd, Session: sess, Conn: conn})
	}
}

// BanInfo is a ban in force.
type BanInfo struct {
	Site        string
	Addr        string // an address, or an IPv6 prefix ("2001:db8::/64")
	Until       time.Time
	Offences    int // bans of the address within the last 7 days, this one included
	LastOffence time.Time
}

func (s *Site) banInfo(b storedBan) BanInfo {
	return BanInfo{Site: s.name, Addr: formatBanKey(b.key), Until: b.rec.Until, Offences: b.rec.Offences, LastOffence: b.rec.LastOffen}
}

// Bans lists the bans in force, oldest first.
func (s *Site) Bans() []BanInfo {
	list := s.prot.list(s.now())
	out := make([]BanInfo, len(list))
	for i, b := range list {
		out[i] = s.banInfo(b)
	}
	return out
}

// ActiveBans returns how many bans are in force.
func (s *Site) ActiveBans() int { return s.prot.count(s.now()) }

// AddBan bans addr (an address, or an IPv6 prefix of protector.ipv6_prefix bits) for exactly
// d, as an operator asked; by and reason go to the log and the audit log. An address on the
// safe list is refused: it would not be banned anyway.
func (s *Site) AddBan(ctx context.Context, addr string, d time.Duration, by, reason string) (BanInfo, error) {
	if d <= 0 {
		return BanInfo{}, fmt.Errorf("a ban needs a positive duration, got %s", d)
	}
	key, err := s.prot.keyOf(addr)
	if err != nil {
		return BanInfo{}, err
	}
	if containsIP(s.cfg.Load().safe, key.Addr()) {
		return BanInfo{}, fmt.Errorf("%s is on the site's protector.safe list: it is never banned", formatBanKey(key))
	}
	now := s.now()
	rec := s.banKey(ctx, key, banChange(now, d, false), now)
	s.banned(ctx, key.Addr(), key, rec.Until, d, nil, by, reason)
	return s.banInfo(storedBan{key: key, rec: rec}), nil
}

// RemoveBans lifts the ban of addr (an address, or an IPv6 prefix of protector.ipv6_prefix
// bits), or every ban when addr is "all". The key's past offences are forgotten too. It
// returns the bans that were in force.
func (s *Site) RemoveBans(ctx context.Context, addr, by, reason string) ([]BanInfo, error) {
	var keys []netip.Prefix
	if addr != "all" {
		key, err := s.prot.keyOf(addr)
		if err != nil {
			return nil, err
		}
		keys = []netip.Prefix{key}
	}
	lifted := s.liftKeys(ctx, keys, addr == "all", s.now())
	out := make([]BanInfo, len(lifted))
	for i, b := range lifted {
		out[i] = s.banInfo(b)
		s.log.Warn("ban lifted", "ip", out[i].Addr, "by", by, "reason", reason)
		s.observe(&Fact{Kind: FactUnban, IP: out[i].Addr, By: by, Reason: reason})
	}
	return out, nil
}

// sessionUser is sess.NamedUser(), nil without a session.
func sessionUser(sess *Session) *User {
	if sess == nil {
		return nil
	}
	return sess.NamedUser()
}

// Banned reports whether ip is banned now.
func (s *Site) Banned(ip netip.Addr) bool {
	_, ok := s.prot.banned(ip, s.now())
	return ok
}

// Strike records abuse by this session's client (adapters: unknown or malformed commands,
// a failed handshake). A connection struck this way is not struck again when it closes
// without having logged in.
func (s *Session) Strike(reason string) {
	s.judged.Store(true)
	s.site.Strike(context.Background(), s.ip, reason, s)
}

// Accounted reports whether the protector has judged this connection already: it tried to
// log in, or an adapter struck it. Adapters use it to avoid striking one event twice.
func (s *Session) Accounted() bool { return s.judged.Load() }
