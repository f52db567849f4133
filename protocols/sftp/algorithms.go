package sftp

import (
	"github.com/wharf-project/wharf/third_party/ssh"
	"golang.org/x/sys/cpu"
)

// Modern algorithms only: no SHA-1 anywhere, no CBC, no finite-field Diffie-Hellman.

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
