package core

import (
	"container/list"
	"context"
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
	latest := make(map[netip.Prefix]banRecord, len(bans))
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
			if old.LastOffen.After(b.rec.LastOffen) {
				continue
			}
		}
		latest[k] = b.rec
	}
	keep := make([]storedBan, 0, len(latest))
	for k, rec := range latest {
		if forgotten(rec, now) {
			changed = true
			continue
		}
		keep = append(keep, storedBan{k, rec})
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
		out = append(out, storedBan{e.key, e.rec})
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
	if p.store != nil {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
	}
	p.mu.Lock()
	k := p.key(ip)
	e, ok := p.bans[k]
	if ok {
		p.banAge.MoveToBack(e.elem)
	} else {
		e = &banEntry{key: k}
		e.elem = p.banAge.PushBack(e)
		p.bans[k] = e
	}
	b := e.rec
	if now.Sub(b.LastOffen) > offenceMemory {
		b.Offences = 0
	}
	d := base
	for range b.Offences {
		if d >= maxBan/2 {
			d = maxBan
			break
		}
		d *= 2
	}
	b.Offences++
	b.LastOffen, b.Until = now, now.Add(d)
	e.rec = b
	firstEviction := false
	for len(p.bans) > p.maxBans {
		p.dropBanLocked(p.banAge.Front().Value.(*banEntry))
		if !p.full {
			firstEviction, p.full = true, true
		}
	}
	for el := p.banAge.Front(); el != nil && forgotten(el.Value.(*banEntry).rec, now); el = p.banAge.Front() {
		p.dropBanLocked(el.Value.(*banEntry))
	}
	maxBans := p.maxBans
	p.mu.Unlock()
	if firstEviction {
		p.log.Warn("the ban table is full: each new ban evicts the oldest; raise protector.max_bans if this is no attack",
			"max_bans", maxBans)
	}
	if p.store != nil {
		// Evicted and forgotten bans need no line: reading the state applies the same rules.
		lines, snapSize := p.store.appendLocked(storedBan{k, b})
		if lines >= max(journalMinLines, snapSize) {
			p.mu.Lock()
			snap := p.snapshotLocked()
			p.mu.Unlock()
			p.store.compactLocked(snap)
		}
	}
	return d, k
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
	n, reached := s.prot.strike(ip, s.now(), window, threshold)
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
		s.Ban(ctx, ip, cfg.BanFor.Duration, sess)
	}
}

// Ban refuses new connections from ip for d (longer for a repeat offender). Safe-listed
// addresses are never banned. It reports whether a ban was added.
func (s *Site) Ban(ctx context.Context, ip netip.Addr, d time.Duration, sess *Session) bool {
	sc := s.cfg.Load()
	if !ip.IsValid() || containsIP(sc.safe, ip) {
		return false
	}
	if d <= 0 {
		d = defaultBanFor
	}
	d, key := s.prot.ban(ip, s.now(), d)
	if key.IsSingleIP() {
		s.log.Warn("address banned", "ip", ip.String(), "for", d.String())
	} else {
		s.log.Warn("address banned", "ip", ip.String(), "prefix", key.String(), "for", d.String())
	}
	s.observe(&Fact{Kind: FactBan, Session: sess, IP: ip.String(), Duration: d})
	if s.events.Handles(OnBlocklistAdd, sessionUser(sess)) {
		conn := &Conn{RemoteIP: ip.String(), Site: s.name, site: s}
		if sess != nil {
			conn = sess.conn
		}
		s.events.Fire(ctx, &Event{Name: OnBlocklistAdd, Session: sess, Conn: conn})
	}
	return true
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
