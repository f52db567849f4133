// Package authkeys reads public keys in OpenSSH's authorized_keys format: users' keys (with the
// one option wharf honours, from=) and certificate authorities' keys (TrustedUserCAKeys).
//
// Every other option is refused rather than ignored: a key restricted by command= or
// no-port-forwarding and then accepted without the restriction would grant more than its
// administrator wrote.
package authkeys

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/wharf-project/wharf/third_party/ssh"
)

// Key is one authorized key.
type Key struct {
	Key  ssh.PublicKey
	From *From // the from= restriction; nil: any address
	Line int   // line in its file (1-based); 0 for a key given on its own
}

// Allows reports whether the key may be used by a client at ip.
func (k Key) Allows(ip netip.Addr) bool { return k.From == nil || k.From.Match(ip) }

// LineError is a problem with one line of a keys file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }

func (e *LineError) Unwrap() error { return e.Err }

// Parse reads an authorized_keys file: one key per line, optionally preceded by options;
// blank lines and lines starting with # are skipped. It returns the keys of the good lines and
// a *LineError for each bad one, so a caller can report every problem at once.
func Parse(data []byte) ([]Key, []error) {
	var keys []Key
	var errs []error
	for i, line := range lines(data) {
		if skip(line) {
			continue
		}
		k, err := ParseLine(line)
		if err != nil {
			errs = append(errs, &LineError{Line: i + 1, Err: err})
			continue
		}
		k.Line = i + 1
		keys = append(keys, k)
	}
	return keys, errs
}

// ParseLine reads one authorized_keys line ("[from=\"…\"] type base64 [comment]").
func ParseLine(line string) (Key, error) {
	pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return Key{}, fmt.Errorf("invalid public key: %w", err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return Key{}, errors.New("one public key per line")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return Key{}, errors.New("a certificate is not an authorized key: trust its authority instead (ssh.trusted_user_ca_keys)")
	}
	k := Key{Key: pub}
	for _, o := range options {
		name, value, hasValue := strings.Cut(o, "=")
		if !strings.EqualFold(name, "from") {
			return Key{}, fmt.Errorf("option %q is not supported (only from= is)", truncate(name))
		}
		if k.From != nil {
			return Key{}, errors.New("from= is given twice")
		}
		if !hasValue {
			return Key{}, errors.New(`from= needs a quoted pattern list, e.g. from="10.0.0.0/8"`)
		}
		list, err := unquote(value)
		if err != nil {
			return Key{}, err
		}
		if k.From, err = ParseFrom(list); err != nil {
			return Key{}, err
		}
	}
	return k, nil
}

// ParseCAKeys reads a TrustedUserCAKeys file: one public key per line, without options;
// blank lines and comments are skipped.
func ParseCAKeys(data []byte) ([]ssh.PublicKey, []error) {
	var keys []ssh.PublicKey
	var errs []error
	for i, line := range lines(data) {
		if skip(line) {
			continue
		}
		pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		switch {
		case err != nil:
			err = fmt.Errorf("invalid public key: %w", err)
		case len(options) > 0:
			err = errors.New("options are not allowed in a certificate authority's key")
		case len(bytes.TrimSpace(rest)) > 0:
			err = errors.New("one public key per line")
		}
		if err == nil {
			if _, ok := pub.(*ssh.Certificate); ok {
				err = errors.New("a certificate cannot be an authority: give the authority's plain public key")
			}
		}
		if err != nil {
			errs = append(errs, &LineError{Line: i + 1, Err: err})
			continue
		}
		keys = append(keys, pub)
	}
	return keys, errs
}

func lines(data []byte) []string {
	return strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
}

func skip(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || t[0] == '#'
}

// unquote reads an option value: "…" with \" for a quote, as sshd reads it.
func unquote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New(`from= needs a quoted pattern list, e.g. from="10.0.0.0/8"`)
	}
	return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`), nil
}

// From is a from= pattern list: client addresses a key is limited to.
type From struct {
	text     string
	patterns []pattern
}

type pattern struct {
	negated bool
	prefix  netip.Prefix // a CIDR or a single address
	glob    string       // otherwise a wildcard pattern over the address text
}

// ParseFrom reads an OpenSSH pattern list ("10.0.0.0/8,192.168.1.*,!192.168.1.13"). wharf
// matches it against the client's address only, as sshd does with UseDNS no (its default):
// a host-name pattern could never match, so it is refused instead of silently locking the key
// out.
func ParseFrom(list string) (*From, error) {
	f := &From{text: list}
	for _, p := range strings.Split(list, ",") {
		var pt pattern
		if strings.HasPrefix(p, "!") {
			pt.negated, p = true, p[1:]
		}
		switch {
		case p == "":
			return nil, fmt.Errorf("from=%q: empty pattern", truncate(list))
		case strings.Contains(p, "/"):
			pr, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("from=%q: invalid CIDR %q", truncate(list), truncate(p))
			}
			pt.prefix = unmapPrefix(pr).Masked()
		case strings.ContainsAny(p, "*?"):
			if strings.Trim(strings.ToLower(p), "0123456789abcdef.:*?") != "" {
				return nil, fmt.Errorf("from=%q: %q is a host name pattern; wharf matches client addresses only (IP addresses, CIDRs and wildcards such as 192.168.1.*)", truncate(list), truncate(p))
			}
			pt.glob = strings.ToLower(p)
		default:
			a, err := netip.ParseAddr(p)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("from=%q: %q is not an IP address; wharf matches client addresses only (IP addresses, CIDRs and wildcards such as 192.168.1.*)", truncate(list), truncate(p))
			}
			a = a.Unmap()
			pt.prefix = netip.PrefixFrom(a, a.BitLen())
		}
		f.patterns = append(f.patterns, pt)
	}
	return f, nil
}

// Match reports whether ip is allowed: some pattern matches it and no negated one does
// (OpenSSH's rule: a negated match denies whatever else matched).
func (f *From) Match(ip netip.Addr) bool {
	ip = ip.Unmap()
	text := ip.String()
	ok := false
	for _, p := range f.patterns {
		var m bool
		if p.glob != "" {
			m, _ = path.Match(p.glob, text)
		} else {
			m = p.prefix.Contains(ip)
		}
		if m && p.negated {
			return false
		}
		ok = ok || m
	}
	return ok
}

// String returns the pattern list as written.
func (f *From) String() string { return f.text }

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// truncate shortens a value quoted in a message so one bad line cannot flood a log.
func truncate(s string) string {
	const limit = 64
	if r := []rune(s); len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return s
}
