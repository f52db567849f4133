package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckReportsSSHProblems: `wharf check` names file, line and key for a bad or legacy
// algorithm name and for an authorized_keys_file or trusted_user_ca_keys file that is missing
// or has a bad line (issue #23 items 11 and 13).
func TestCheckReportsSSHProblems(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "alice_keys")
	if err := os.WriteFile(keys, []byte("# alice\nno-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFukPeQ9jhX//KbEJH+2VJF2yI/45j9WoqWddeVBxiEp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(cfg, []byte(`sites:
  - name: main
    listeners: [{protocol: sftp, address: "127.0.0.1:0"}]
    ssh:
      kex: [curve25519-sha256, diffie-hellman-group1-sha1]
      ciphers: [aes128-gmc@openssh.com]
      trusted_user_ca_keys: missing_ca.pub
    vfs: [{name: home, type: disk, root: ./data}]
    users:
      - id: alice
        home: {vfs: home}
        authorized_keys_file: alice_keys
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "check", "-c", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		cfg + `:5: sites[0].ssh.kex[1]: key exchange "diffie-hellman-group1-sha1" is legacy`,
		cfg + `:6: sites[0].ssh.ciphers[0]: unknown or unsupported cipher "aes128-gmc@openssh.com"; did you mean "aes128-gcm@openssh.com"?`,
		cfg + `:7: sites[0].ssh.trusted_user_ca_keys: cannot read ` + filepath.Join(dir, "missing_ca.pub") + ": no such file or directory",
		cfg + `:12: sites[0].users[0].authorized_keys_file: ` + keys + `:2: option "no-pty" is not supported (only from= is)`,
		"4 problem(s) found",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
}
