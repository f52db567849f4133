package sftp

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wharf-project/wharf/third_party/ssh"
)

// Generated host key files in the state directory.
const (
	ed25519KeyFile = "ssh_host_ed25519_key"
	rsaKeyFile     = "ssh_host_rsa_key"
	rsaKeyBits     = 3072
)

// loadHostKeys reads the configured host key files or, when there are none, the keys
// generated once into stateDir (creating them on first use).
func loadHostKeys(files []string, stateDir string, log *slog.Logger) ([]ssh.Signer, error) {
	if len(files) == 0 {
		if stateDir == "" {
			return nil, errors.New("no ssh host_keys configured and no state directory to generate them in")
		}
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		files = []string{filepath.Join(stateDir, ed25519KeyFile), filepath.Join(stateDir, rsaKeyFile)}
		for _, f := range files {
			if err := ensureKey(f, log); err != nil {
				return nil, err
			}
		}
	}
	signers := make([]ssh.Signer, 0, len(files))
	for _, f := range files {
		s, err := readKey(f, log)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	return signers, nil
}

func readKey(file string, log *slog.Logger) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("host key file is readable by other users", "file", file, "mode", fi.Mode().Perm().String())
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", file, err)
	}
	// The signature algorithms it may use are chosen later (hostKeySigners): an RSA key
	// never signs with ssh-rsa (SHA-1) unless ssh.host_key_algorithms says so.
	return s, nil
}

// ensureKey generates a host key into file unless it exists. The key is written to a
// temporary file and linked into place, so a concurrent start never sees half a key and never
// replaces a key that clients may already trust.
func ensureKey(file string, log *slog.Logger) error {
	if _, err := os.Stat(file); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("host key: %w", err)
	}
	var key crypto.Signer
	var err error
	if filepath.Base(file) == rsaKeyFile {
		key, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	} else {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return fmt.Errorf("encode host key: %w", err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("encode host key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-"+filepath.Base(file)+"-*")
	if err != nil {
		return fmt.Errorf("write host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write host key: %w", err)
	}
	if err := pem.Encode(tmp, block); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write host key: %w", err)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process won the race; use its key
		}
		return fmt.Errorf("write host key: %w", err)
	}
	// The public half helps administrators publish fingerprints; the server never reads it.
	if err := os.WriteFile(file+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		log.Warn("cannot write host public key", "file", file+".pub", "err", err)
	}
	log.Info("generated ssh host key", "file", file, "fingerprint", ssh.FingerprintSHA256(pub))
	return nil
}
