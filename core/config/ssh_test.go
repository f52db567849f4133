package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSSHAlgorithmsAndKeyFiles: algorithm lists, allow_legacy, trusted_user_ca_keys and
// authorized_keys_file load as written, with paths made absolute (issue #23 items 11, 13).
func TestSSHAlgorithmsAndKeyFiles(t *testing.T) {
	data := head + `    ssh:
      kex: [ecdh-sha2-nistp384, diffie-hellman-group16-sha512, diffie-hellman-group14-sha1]
      ciphers: [aes256-gcm@openssh.com, aes128-cbc]
      macs: [hmac-sha2-512, hmac-sha1]
      host_key_algorithms: [rsa-sha2-512, ssh-rsa]
      public_key_algorithms: [ecdsa-sha2-nistp256, ssh-rsa]
      allow_legacy: true
      trusted_user_ca_keys: keys/user_ca.pub
` + user + `        public_keys: ['from="192.0.2.0/24,!192.0.2.9" ` + testKey + `']
        authorized_keys_file: keys/authorized_keys
`
	cfg := mustParse(t, data, testDir)
	dir, _ := filepath.Abs(testDir)
	s := cfg.Sites[0].SSH
	if !slices.Equal(s.Kex, []string{"ecdh-sha2-nistp384", "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha1"}) ||
		!slices.Equal(s.Ciphers, []string{"aes256-gcm@openssh.com", "aes128-cbc"}) ||
		!slices.Equal(s.MACs, []string{"hmac-sha2-512", "hmac-sha1"}) ||
		!slices.Equal(s.HostKeyAlgorithms, []string{"rsa-sha2-512", "ssh-rsa"}) ||
		!slices.Equal(s.PublicKeyAlgorithms, []string{"ecdsa-sha2-nistp256", "ssh-rsa"}) || !s.AllowLegacy {
		t.Errorf("ssh = %+v", s)
	}
	if s.TrustedUserCAKeys != filepath.Join(dir, "keys", "user_ca.pub") {
		t.Errorf("trusted_user_ca_keys = %q", s.TrustedUserCAKeys)
	}
	if u := cfg.Sites[0].Users[0]; u.AuthorizedKeysFile != filepath.Join(dir, "keys", "authorized_keys") {
		t.Errorf("authorized_keys_file = %q", u.AuthorizedKeysFile)
	}

	// Absent lists stay empty: the adapter's defaults apply.
	s = mustParse(t, head, testDir).Sites[0].SSH
	if s.Kex != nil || s.Ciphers != nil || s.MACs != nil || s.HostKeyAlgorithms != nil || s.PublicKeyAlgorithms != nil || s.AllowLegacy {
		t.Errorf("defaults: ssh = %+v", s)
	}
}

// TestKeysFileWritableByOthersWarns: sshd's StrictModes would refuse such a file; wharf loads
// it and warns.
func TestKeysFileWritableByOthersWarns(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(testDir, "keys", "authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keys, 0o666); err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(head, "./data", dir, 1) + user + "        authorized_keys_file: " + keys + "\n"
	cfg := mustParse(t, data, dir)
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].String(), "writable by group or others") ||
		cfg.Warnings[0].Key != "sites[0].users[0].authorized_keys_file" {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
}
