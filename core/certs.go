package core

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/internal/authkeys"
)

// sourceAddress is the certificate critical option that limits the client addresses.
const sourceAddress = "source-address"

// userCAs are the certificate authorities of ssh.trusted_user_ca_keys (OpenSSH's
// TrustedUserCAKeys): a user certificate one of them signed logs in as any user its
// principals name.
type userCAs struct {
	keys [][]byte // marshalled public keys
}

// loadUserCAs reads the authorities' file; "" means no certificates are accepted (nil).
func loadUserCAs(file string) (*userCAs, error) {
	if file == "" {
		return nil, nil
	}
	keys, errs := authkeys.ReadCAFile(file)
	if err := authkeys.Join(file, errs); err != nil {
		return nil, fmt.Errorf("ssh.trusted_user_ca_keys: %w", err)
	}
	c := &userCAs{}
	for _, k := range keys {
		c.keys = append(c.keys, k.Key.Marshal())
	}
	return c, nil
}

func (c *userCAs) trusts(key ssh.PublicKey) bool {
	if c == nil {
		return false
	}
	m := key.Marshal()
	for _, k := range c.keys {
		if bytes.Equal(k, m) {
			return true
		}
	}
	return false
}

// errUntrustedCert is the refusal of a certificate no trusted authority signed: anyone can
// make one, so it is not worth a log line at the default level.
var errUntrustedCert = errors.New("certificate not signed by an authority in ssh.trusted_user_ca_keys")

// check verifies a user certificate for login name from ip at now, as sshd does with
// TrustedUserCAKeys: a trusted signature, name among the principals, within its validity, and
// no critical option wharf cannot enforce. source-address is enforced; force-command (and any
// other critical option) refuses the certificate, because wharf runs no commands and a
// certificate meant to run only one thing must not open a full file-transfer session.
func (c *userCAs) check(cert *ssh.Certificate, name string, ip netip.Addr, now time.Time) error {
	if cert.CertType != ssh.UserCert {
		return errors.New("not a user certificate")
	}
	if !c.trusts(cert.SignatureKey) {
		return errUntrustedCert
	}
	checker := ssh.CertChecker{
		SupportedCriticalOptions: []string{sourceAddress},
		Clock:                    func() time.Time { return now },
	}
	if err := checker.CheckCert(name, cert); err != nil {
		return fmt.Errorf("certificate %q (serial %d): %s", cert.KeyId, cert.Serial, strings.TrimPrefix(err.Error(), "ssh: "))
	}
	if list, ok := cert.CriticalOptions[sourceAddress]; ok && !sourceAddressAllows(list, ip) {
		return fmt.Errorf("certificate %q (serial %d): source-address %q does not allow %s", cert.KeyId, cert.Serial, list, ip)
	}
	return nil
}

// sourceAddressAllows matches ip against a source-address list: addresses and CIDRs,
// comma-separated. A list with an entry that does not parse allows nothing (sshd refuses
// such a certificate too).
func sourceAddressAllows(list string, ip netip.Addr) bool {
	var prefixes []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		p, err := netip.ParsePrefix(s)
		if !strings.Contains(s, "/") {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return false
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		prefixes = append(prefixes, p.Masked())
	}
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
