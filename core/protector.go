package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The protector bans addresses that collect threshold strikes (failed logins, connections
// that never authenticate, refused or escaping operations, protocol abuse) within window.
// A repeat offender is banned twice as long each time, up to maxBan. Bans survive restarts in
// a small JSON file in the state folder.

const (
	maxBan = 7 * 24 * time.Hour
	// offenceMemory is how long a past ban still makes the next one longer.
	offenceMemory = 7 * 24 * time.Hour
)

type banRecord struct {
	Until     time.Time `json:"until"`
	Offences  int       `json:"offences"`
	LastOffen time.Time `json:"last_offence"`
}

type protector struct {
	mu      sync.Mutex
	strikes map[netip.Addr][]time.Time
	bans    map[netip.Addr]banRecord
	file    string // "" = not persisted
}

func newProtector(stateFile string) (*protector, error) {
	p := &protector{strikes: map[netip.Addr][]time.Time{}, bans: map[netip.Addr]banRecord{}, file: stateFile}
	if stateFile == "" {
		return p, nil
	}
	data, err := os.ReadFile(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("protector state: %w", err)
	}
	var saved map[string]banRecord
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, fmt.Errorf("protector state %s: %w", stateFile, err)
	}
	for k, v := range saved {
		if ip, err := netip.ParseAddr(k); err == nil {
			p.bans[ip] = v
		}
	}
	return p, nil
}

// banned reports whether ip is banned at now, and until when.
func (p *protector) banned(ip netip.Addr, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.bans[ip]
	if !ok || !now.Before(b.Until) {
		return time.Time{}, false
	}
	return b.Until, true
}

// strike records a strike and reports whether it reached the threshold.
func (p *protector) strike(ip netip.Addr, now time.Time, window time.Duration, threshold int) (count int, reached bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.strikes[ip][:0]
	for _, t := range p.strikes[ip] {
		if now.Sub(t) < window {
			list = append(list, t)
		}
	}
	list = append(list, now)
	if len(p.strikes) > 100_000 {
		p.pruneLocked(now, window) // a flood from many addresses must not grow memory without bound
	}
	if len(list) >= threshold {
		delete(p.strikes, ip)
		return len(list), true
	}
	p.strikes[ip] = list
	return len(list), false
}

func (p *protector) pruneLocked(now time.Time, window time.Duration) {
	for ip, list := range p.strikes {
		if len(list) == 0 || now.Sub(list[len(list)-1]) >= window {
			delete(p.strikes, ip)
		}
	}
}

// ban bans ip for base, doubled for each recent earlier offence, and returns the duration.
func (p *protector) ban(ip netip.Addr, now time.Time, base time.Duration) time.Duration {
	p.mu.Lock()
	b := p.bans[ip]
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
	p.bans[ip] = b
	for k, v := range p.bans {
		if now.Sub(v.LastOffen) > offenceMemory && !now.Before(v.Until) {
			delete(p.bans, k)
		}
	}
	snapshot := make(map[string]banRecord, len(p.bans))
	for k, v := range p.bans {
		snapshot[k.String()] = v
	}
	p.mu.Unlock()
	p.save(snapshot)
	return d
}

// save writes the bans atomically (temp file + rename).
func (p *protector) save(bans map[string]banRecord) {
	if p.file == "" {
		return
	}
	data, err := json.MarshalIndent(bans, "", "  ")
	if err != nil {
		return
	}
	tmp := p.file + ".tmp"
	if err := os.MkdirAll(filepath.Dir(p.file), 0o700); err != nil {
		return
	}
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return
	}
	_ = os.Rename(tmp, p.file)
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
		window = 10 * time.Minute
	}
	if threshold <= 0 {
		threshold = 10
	}
	n, reached := s.prot.strike(ip, s.now(), window, threshold)
	s.log.Info("protector strike", "ip", ip.String(), "reason", reason, "strikes", n, "threshold", threshold)
	s.observe(&Fact{Kind: FactStrike, Session: sess, IP: ip.String(), Reason: reason})
	if s.events.Handles(OnProtectorStrike, sessionUser(sess)) {
		conn := &Conn{RemoteIP: ip.String(), Site: s.name}
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
		d = 30 * time.Minute
	}
	d = s.prot.ban(ip, s.now(), d)
	s.log.Warn("address banned", "ip", ip.String(), "for", d.String())
	s.observe(&Fact{Kind: FactBan, Session: sess, IP: ip.String(), Duration: d})
	if s.events.Handles(OnBlocklistAdd, sessionUser(sess)) {
		conn := &Conn{RemoteIP: ip.String(), Site: s.name}
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
