package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as a Go duration string ("15m", "2s").
// Bare numbers are refused: "timeout: 5" is ambiguous (seconds? milliseconds?).
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"30s\" or \"15m\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as \"30s\", \"15m\" or \"1h30m\"", truncate(n.Value))
	}
	d.Duration = v
	return nil
}

// MarshalYAML implements yaml.Marshaler so that a loaded config prints back the same way.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// PortRange is an inclusive TCP port range, written "50000-50100" or as a single port "50000".
// Range checks (1..65535, Start <= End) are done by the validator so that a PortRange built in
// code is checked the same way as one read from YAML.
type PortRange struct{ Start, End int }

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *PortRange) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a port range such as \"50000-50100\", got %s", describe(n))
	}
	s := strings.TrimSpace(n.Value)
	lo, hi, isRange := strings.Cut(s, "-")
	start, err1 := strconv.Atoi(strings.TrimSpace(lo))
	end, err2 := start, error(nil)
	if isRange {
		end, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil {
		return fmt.Errorf("invalid port range %q: expected \"START-END\" such as \"50000-50100\", or a single port", truncate(n.Value))
	}
	r.Start, r.End = start, end
	return nil
}

// MarshalYAML implements yaml.Marshaler. A single port is written as a number, a range as "A-B".
func (r PortRange) MarshalYAML() (any, error) {
	if r.Start == r.End {
		return r.Start, nil
	}
	return r.String(), nil
}

// String returns the range as written in the config ("50000-50100").
func (r PortRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

// Size returns the number of ports in the range (0 if it is inverted).
func (r PortRange) Size() int { return max(0, r.End-r.Start+1) }

// Prefix is an IP network written as a CIDR ("10.0.0.0/8", "::1/128") or a bare address,
// which becomes a single-host prefix (/32 or /128).
type Prefix struct{ netip.Prefix }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a CIDR such as \"10.0.0.0/8\" or an IP address, got %s", describe(n))
	}
	v, err := ParsePrefix(n.Value)
	if err != nil {
		return err
	}
	p.Prefix = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (p Prefix) MarshalYAML() (any, error) { return p.String(), nil }

// ParsePrefix parses a CIDR or a bare IP address the way the config does. Host bits are
// masked off ("10.1.2.3/8" means 10.0.0.0/8) because that is what every writer of such a
// line means, and an IPv4-mapped IPv6 address is unmapped because client addresses are
// compared unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", truncate(s))
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", truncate(s))
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// describe names the kind of a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if n.ShortTag() == "!!null" {
		return "nothing (null)"
	}
	return strconv.Quote(truncate(n.Value))
}

// truncate shortens a value quoted in a message so one bad line cannot flood the log.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	r := []rune(s)
	if len(r) <= limit {
		return s
	}
	return string(r[:limit]) + "…"
}

// ByteSize is a size in bytes, written as an integer of bytes (67108864) or as a number with
// a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000), with or
// without a space ("64MiB", "1.5 GiB"). The result must be a whole number of bytes.
type ByteSize int64

var byteUnits = []struct {
	name string
	size float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize parses a size as the config writes it.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	num, mult := s, 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.name) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.name)), u.size
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "eExXpP_") || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid size %q: use a number of bytes or a number with a unit such as \"64MiB\" or \"512KiB\"", truncate(s))
	}
	b := f * mult
	if b != math.Trunc(b) || b >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", truncate(s))
	}
	return ByteSize(b), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as \"64MiB\", got %s", describe(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler: a whole number of KiB, MiB, GiB or TiB is written
// with its unit, anything else as bytes.
func (b ByteSize) MarshalYAML() (any, error) {
	if s := b.String(); !strings.HasSuffix(s, " bytes") {
		return s, nil
	}
	return int64(b), nil
}

// String gives the size in the largest binary unit that divides it ("64MiB"), or in bytes
// ("1000 bytes").
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + " bytes"
}

// Secret is a value the config names rather than holds, so that it can stay out of the file
// and out of everything that prints the config: {env: NAME} reads an environment variable,
// {file: path} a file (one trailing newline dropped; the path is relative to the config's
// folder). Keys that allow it (smtp.password) also take a plain string, with a warning. The
// value is read when the config is loaded (and again at each reload); it is never printed:
// MarshalYAML writes the reference, String and LogValue a placeholder.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"` // absolute after loading

	value  string
	inline bool // written as a plain string
}

// maxSecretFile bounds a {file: …} secret: a secret is a password or a token, and a path
// that names a large file by mistake must not be read into memory.
const maxSecretFile = 64 << 10

// UnmarshalYAML implements yaml.Unmarshaler: a mapping with exactly one of env and file, or
// a plain string.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	*s = Secret{}
	switch n.Kind {
	case yaml.ScalarNode:
		s.value, s.inline = n.Value, true
		return nil
	case yaml.MappingNode:
	default:
		// Not described: what is written there may be the secret itself.
		return fmt.Errorf("a secret's value cannot be written in the config: give {env: NAME} or {file: path}")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst *string
		switch k.Value {
		case "env":
			dst = &s.Env
		case "file":
			dst = &s.File
		default:
			return fmt.Errorf("unknown key %q in a secret: use {env: NAME} or {file: path}", truncate(k.Value))
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || v.Value == "" {
			return fmt.Errorf("a secret is {env: NAME} or {file: path}, each a non-empty string")
		}
		*dst = v.Value
	}
	switch {
	case s.Env != "" && s.File != "":
		return fmt.Errorf("a secret takes env or file, not both")
	case s.Env == "" && s.File == "":
		return fmt.Errorf("a secret is either {env: NAME} or {file: path}")
	case s.Env != "" && !validEnvName(s.Env):
		return fmt.Errorf("invalid environment variable name %q (letters, digits and _, not starting with a digit)", truncate(s.Env))
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler: the reference, never the value.
func (s Secret) MarshalYAML() (any, error) {
	switch {
	case s.Env != "":
		return map[string]string{"env": s.Env}, nil
	case s.File != "":
		return map[string]string{"file": s.File}, nil
	case s.inline:
		return "(hidden)", nil
	}
	return nil, nil
}

// IsSet reports whether the config gave the secret.
func (s Secret) IsSet() bool { return s.inline || s.Env != "" || s.File != "" }

// Inline reports whether the value was written in the config file itself.
func (s Secret) Inline() bool { return s.inline }

// Value returns the secret, as read when the config was loaded.
func (s Secret) Value() string { return s.value }

// String hides the value from fmt.
func (s Secret) String() string {
	switch {
	case s.Env != "":
		return "{env: " + s.Env + "}"
	case s.File != "":
		return "{file: " + s.File + "}"
	case s.inline:
		return "(hidden)"
	}
	return ""
}

// LogValue hides the value from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// GoString hides the value from %#v.
func (s Secret) GoString() string { return "config.Secret" + s.String() }

// InlineSecret returns a Secret holding value, as if written as a plain string (for configs
// built in code).
func InlineSecret(value string) Secret { return Secret{value: value, inline: true} }

// resolveSecret reads the value of a secret reference; dir resolves a relative file.
func resolveSecret(s *Secret, dir string) error {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return fmt.Errorf("environment variable %s is not set", truncate(s.Env))
		}
		s.value = v
	case s.File != "":
		if !filepath.IsAbs(s.File) {
			s.File = filepath.Join(dir, s.File)
		}
		f, err := os.Open(s.File)
		if err != nil {
			return fmt.Errorf("cannot read secret file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		if err != nil {
			return fmt.Errorf("cannot read secret file %s: %w", s.File, err)
		}
		if len(b) > maxSecretFile {
			return fmt.Errorf("secret file %s is larger than %d bytes", s.File, maxSecretFile)
		}
		v := strings.TrimSuffix(string(b), "\n")
		s.value = strings.TrimSuffix(v, "\r")
	}
	return nil
}
