package sftp

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wharf-project/wharf/third_party/ssh"
	"golang.org/x/sys/cpu"

	"github.com/wharf-project/wharf/core/config"
)

// The defaults are modern algorithms only: no SHA-1 anywhere, no CBC, no finite-field
// Diffie-Hellman. A site's ssh section may list others (core/config checks the names and
// refuses legacy ones without allow_legacy); each list then replaces its default.

// keyExchanges: post-quantum hybrid first. x/crypto also offers the
// curve25519-sha256@libssh.org alias that older libssh2 and paramiko need.
var keyExchanges = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519}

// macs apply to the CTR ciphers only (AEAD ciphers ignore them). The encrypt-then-MAC forms
// come first; the plain SHA-2 forms stay because libssh2 < 1.11 (curl) and paramiko < 3.3
// offer nothing else, and hmac-sha2 with CTR has no known weakness.
var macs = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512}

// publicKeyAuthAlgorithms excludes ssh-rsa (SHA-1 signatures).
var publicKeyAuthAlgorithms = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512,
}

// ciphers returns the ciphers in preference order. With AES instructions AES-GCM is the
// fastest cipher by far; without them ChaCha20-Poly1305 is faster and constant-time. SSH
// picks the first of the *client's* list that the server supports, so this order decides
// only for clients that ask the server's preference (none of the common ones): OpenSSH's
// client still chooses chacha20-poly1305 unless told otherwise ("-c aes128-gcm@openssh.com").
func ciphers() []string {
	hasAES := cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ || cpu.ARM64.HasAES && cpu.ARM64.HasPMULL ||
		cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	gcm := []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM}
	chacha := []string{ssh.CipherChaCha20Poly1305}
	ctr := []string{ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR}
	if hasAES {
		return append(append(gcm, chacha...), ctr...)
	}
	return append(append(chacha, gcm...), ctr...)
}

// defaultHostKeyAlgorithms are the signature algorithms host keys sign with by default: every
// one the library implements except ssh-rsa (SHA-1) and host certificates (wharf has none).
func defaultHostKeyAlgorithms() []string {
	return slices.DeleteFunc(ssh.SupportedAlgorithms().HostKeys, func(a string) bool { return strings.Contains(a, "-cert-") })
}

// sshAlgorithms returns the site's algorithm lists, defaults filled in.
func sshAlgorithms(c config.SSH) ssh.Config {
	or := func(list, def []string) []string {
		if len(list) > 0 {
			return list
		}
		return def
	}
	return ssh.Config{KeyExchanges: or(c.Kex, keyExchanges), Ciphers: or(c.Ciphers, ciphers()), MACs: or(c.MACs, macs)}
}

// publicKeyAlgorithms returns the signature algorithms accepted from clients.
func publicKeyAlgorithms(c config.SSH) []string {
	if len(c.PublicKeyAlgorithms) > 0 {
		return c.PublicKeyAlgorithms
	}
	return publicKeyAuthAlgorithms
}

// hostKeySigners limits each host key to the configured signature algorithms (an RSA key signs
// with rsa-sha2-512, rsa-sha2-256 and, only if listed, ssh-rsa). A key that none of them
// fits is left out and reported in skipped; no key left is an error.
func hostKeySigners(keys []ssh.Signer, algorithms []string) (signers []ssh.Signer, skipped []string, err error) {
	if len(algorithms) == 0 {
		algorithms = defaultHostKeyAlgorithms()
	}
	for _, k := range keys {
		format := k.PublicKey().Type()
		candidates := []string{format}
		if format == ssh.KeyAlgoRSA {
			candidates = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		var allowed []string
		for _, a := range algorithms {
			if slices.Contains(candidates, a) {
				allowed = append(allowed, a)
			}
		}
		if len(allowed) == 0 {
			skipped = append(skipped, format+" "+ssh.FingerprintSHA256(k.PublicKey()))
			continue
		}
		as, ok := k.(ssh.AlgorithmSigner)
		if !ok {
			return nil, nil, fmt.Errorf("host key %s: signer without algorithm selection", format)
		}
		s, err := ssh.NewSignerWithAlgorithms(as, allowed)
		if err != nil {
			return nil, nil, fmt.Errorf("host key %s: %w", format, err)
		}
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		return nil, skipped, fmt.Errorf("no host key can sign with any of ssh.host_key_algorithms (%s); the keys are %s",
			strings.Join(algorithms, ", "), strings.Join(skipped, ", "))
	}
	return signers, skipped, nil
}
