package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/wharf-project/wharf/internal/authkeys"
	"github.com/wharf-project/wharf/third_party/ssh"
)

// sshAlgoKind is one of the ssh algorithm lists: which names the SSH library implements, and
// which of them are legacy (offered only with allow_legacy), with why.
type sshAlgoKind struct {
	key    string // config key under ssh
	what   string // for messages
	known  []string
	legacy map[string]string // name -> why it is legacy
	// refused are implemented names that make no sense in this list, with why.
	refused map[string]string
}

const (
	whySHA1      = "it uses SHA-1"
	whyCBC       = "CBC mode is open to padding-oracle and plaintext-recovery attacks"
	whyRC4       = "RC4 is broken"
	whyDH1024    = "a 1024-bit group is within reach of a state-level attacker, and it uses SHA-1"
	whySHA1Sigs  = "its signatures use SHA-1"
	whyHostCerts = "wharf presents plain host keys, not host certificates"
	whyUserCerts = "certificates are accepted for their key's algorithm; list that instead"
)

func sshAlgoKinds() []sshAlgoKind {
	sup, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	legacyOf := func(names []string, why func(string) string) map[string]string {
		m := map[string]string{}
		for _, n := range names {
			m[n] = why(n)
		}
		return m
	}
	kexLegacy := legacyOf(insecure.KeyExchanges, func(n string) string {
		if n == ssh.InsecureKeyExchangeDH1SHA1 {
			return whyDH1024
		}
		return whySHA1
	})
	cipherLegacy := legacyOf(insecure.Ciphers, func(n string) string {
		if strings.HasSuffix(n, "-cbc") {
			return whyCBC
		}
		return whyRC4
	})
	// hmac-sha1 is secure as a MAC, but wharf offers nothing with SHA-1 unless asked.
	macLegacy := legacyOf(append(insecure.MACs, ssh.HMACSHA1), func(string) string { return whySHA1 })
	hostLegacy := legacyOf(insecure.HostKeys, func(string) string { return whySHA1Sigs })
	pubLegacy := legacyOf(insecure.PublicKeyAuths, func(string) string { return whySHA1Sigs })

	hostKnown, hostRefused := []string{}, map[string]string{}
	for _, n := range slices.Concat(sup.HostKeys, insecure.HostKeys) {
		if strings.Contains(n, "-cert-") {
			hostRefused[n] = whyHostCerts
			continue
		}
		hostKnown = append(hostKnown, n)
	}
	pubRefused := map[string]string{}
	for _, n := range slices.Concat(sup.HostKeys, insecure.HostKeys) {
		if strings.Contains(n, "-cert-") {
			pubRefused[n] = whyUserCerts
		}
	}
	return []sshAlgoKind{
		{key: "kex", what: "key exchange",
			// The library adds curve25519-sha256@libssh.org itself next to curve25519-sha256;
			// naming it is allowed too.
			known:  slices.Concat(sup.KeyExchanges, insecure.KeyExchanges, []string{"curve25519-sha256@libssh.org"}),
			legacy: kexLegacy},
		{key: "ciphers", what: "cipher", known: slices.Concat(sup.Ciphers, insecure.Ciphers), legacy: cipherLegacy},
		{key: "macs", what: "MAC", known: slices.Concat(sup.MACs, insecure.MACs), legacy: macLegacy},
		{key: "host_key_algorithms", what: "host key algorithm", known: hostKnown, legacy: hostLegacy, refused: hostRefused},
		{key: "public_key_algorithms", what: "public key algorithm",
			known: slices.Concat(sup.PublicKeyAuths, insecure.PublicKeyAuths), legacy: pubLegacy, refused: pubRefused},
	}
}

// sshAlgoList returns the configured list for kind.
func sshAlgoList(s *SSH, key string) []string {
	switch key {
	case "kex":
		return s.Kex
	case "ciphers":
		return s.Ciphers
	case "macs":
		return s.MACs
	case "host_key_algorithms":
		return s.HostKeyAlgorithms
	case "public_key_algorithms":
		return s.PublicKeyAlgorithms
	}
	return nil
}

// checkSSHAlgorithms validates the algorithm lists of a site's ssh section (key is the
// section's key path).
func (c *checker) checkSSHAlgorithms(key string, s *SSH) {
	for _, k := range sshAlgoKinds() {
		lk := key + "." + k.key
		list := sshAlgoList(s, k.key)
		if c.has(lk) && len(list) == 0 {
			c.errorf(lk, "an empty list offers nothing; omit the key for the default")
			continue
		}
		seen := map[string]bool{}
		for i, name := range list {
			ik := lk + "[" + strconv.Itoa(i) + "]"
			why, refused := k.refused[name]
			switch {
			case refused:
				c.errorf(ik, "%s %q cannot be used here: %s", k.what, truncate(name), why)
			case !slices.Contains(k.known, name):
				msg := fmt.Sprintf("unknown or unsupported %s %q", k.what, truncate(name))
				if s := closest(name, k.known); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				c.errorf(ik, "%s (supported: %s)", msg, strings.Join(k.known, ", "))
			case seen[name]:
				c.errorf(ik, "%s %q is listed twice", k.what, name)
			case k.legacy[name] != "" && !s.AllowLegacy:
				c.errorf(ik, "%s %q is legacy (%s); set ssh.allow_legacy: true to offer it anyway", k.what, name, k.legacy[name])
			}
			seen[name] = true
		}
	}
}

// checkKeysFile validates an authorized_keys (ca false) or TrustedUserCAKeys (ca true) file:
// it must be readable and every line valid, so `wharf check` reports a bad file with its line
// instead of a login failing later.
func (c *checker) checkKeysFile(key, name string, ca bool) {
	var errs []error
	if ca {
		_, errs = authkeys.ReadCAFile(name)
	} else {
		_, errs = authkeys.ReadFile(name)
	}
	for _, e := range errs {
		var le *authkeys.LineError
		var pe *fs.PathError
		switch {
		case errors.As(e, &le):
			c.errorf(key, "%s:%d: %v", name, le.Line, le.Err)
		case errors.As(e, &pe):
			c.errorf(key, "cannot read %s: %v", pe.Path, pe.Err)
		default:
			c.errorf(key, "%v", e)
		}
	}
	if fi, err := os.Stat(name); err == nil && fi.Mode().Perm()&0o022 != 0 {
		// sshd's StrictModes refuses such a file: whoever can write it can add a key.
		c.warnf(key, "%s is writable by group or others (mode %s): whoever can write it can add a key", name, fi.Mode().Perm())
	}
}
