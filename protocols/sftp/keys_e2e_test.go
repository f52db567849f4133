package sftp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// keysRig runs OpenSSH's sftp against a server with user alice, made by mutate.
type keysRig struct {
	t      *testing.T
	sftp   string
	keygen string
	work   string
	port   string
	env    []string
	site   *core.Site
	cfg    *config.Site
}

func newKeysRig(t *testing.T, mutate func(r *keysRig, u *config.User, c *config.Site)) *keysRig {
	t.Helper()
	r := &keysRig{t: t, sftp: coretest.NeedBinary(t, "sftp"), keygen: coretest.NeedBinary(t, "ssh-keygen"), work: t.TempDir()}
	u := testUser("alice") // a password and no keys of its own
	r.cfg = testSiteConfig(t.TempDir(), u)
	off := false
	r.cfg.Protector.Enabled = &off // the refusals fail many logins from 127.0.0.1
	mutate(r, &r.cfg.Users[0], r.cfg)
	r.site = newTestSite(t, r.cfg, nil)
	_, addr := startServer(t, r.site)
	r.port = addr[strings.LastIndexByte(addr, ':')+1:]
	home := filepath.Join(r.work, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	r.env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C"}
	putFile(t, filepath.Join(r.work, "batch"), []byte("ls /\n"))
	return r
}

// keygen runs ssh-keygen in the rig's folder.
func (r *keysRig) run(args ...string) {
	r.t.Helper()
	cmd := exec.Command(r.keygen, args...)
	cmd.Dir = r.work
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
}

// newKey makes a key pair named name in the rig's folder and returns its public line.
func (r *keysRig) newKey(name string) string {
	r.t.Helper()
	r.run("-q", "-t", "ed25519", "-N", "", "-C", name, "-f", name)
	pub, err := os.ReadFile(filepath.Join(r.work, name+".pub"))
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

// login runs sftp in batch mode with key (and cert, when not empty) and only publickey.
func (r *keysRig) login(key, cert string) (string, error) {
	args := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey",
		"-o", "ConnectTimeout=10", "-i", filepath.Join(r.work, key), "-P", r.port, "-b", filepath.Join(r.work, "batch")}
	if cert != "" {
		args = append(args, "-o", "CertificateFile="+filepath.Join(r.work, cert))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.sftp, append(args, "alice@127.0.0.1")...)
	cmd.Env, cmd.Dir = r.env, r.work
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestOpenSSHCertificates is issue #23 item 13: user certificates made by ssh-keygen -s and
// offered by OpenSSH's sftp, against ssh.trusted_user_ca_keys. force-command is refused:
// wharf runs no commands, and honouring a certificate meant for one command with a full
// SFTP session would grant more than its authority signed.
func TestOpenSSHCertificates(t *testing.T) {
	r := newKeysRig(t, func(r *keysRig, _ *config.User, c *config.Site) {
		r.newKey("ca")
		r.newKey("other-ca")
		r.newKey("id")
		cas := filepath.Join(r.work, "trusted_user_ca_keys")
		ca, err := os.ReadFile(filepath.Join(r.work, "ca.pub"))
		if err != nil {
			t.Fatal(err)
		}
		putFile(t, cas, append([]byte("# the corporate CA\n"), ca...))
		c.SSH.TrustedUserCAKeys = cas
	})
	for _, tc := range []struct {
		name string
		sign []string // ssh-keygen -s arguments
		ok   bool
	}{
		{"valid", []string{"-s", "ca", "-n", "alice", "-V", "-5m:+1h"}, true},
		{"valid forever, several principals", []string{"-s", "ca", "-n", "ops,alice"}, true},
		{"source-address match", []string{"-s", "ca", "-n", "alice", "-O", "source-address=10.9.9.9,127.0.0.0/8"}, true},
		{"extensions cleared", []string{"-s", "ca", "-n", "alice", "-O", "clear"}, true},
		{"expired", []string{"-s", "ca", "-n", "alice", "-V", "20200101:20200102"}, false},
		{"not yet valid", []string{"-s", "ca", "-n", "alice", "-V", "+1d:+2d"}, false},
		{"wrong principal", []string{"-s", "ca", "-n", "bob"}, false},
		{"other CA", []string{"-s", "other-ca", "-n", "alice"}, false},
		{"source-address mismatch", []string{"-s", "ca", "-n", "alice", "-O", "source-address=10.0.0.0/8"}, false},
		{"force-command", []string{"-s", "ca", "-n", "alice", "-O", "force-command=internal-sftp"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Sign a copy of the key, so each case has its own certificate file.
			tag := strings.ReplaceAll(tc.name, " ", "-")
			tag = strings.ReplaceAll(tag, ",", "")
			for _, ext := range []string{"", ".pub"} {
				data, err := os.ReadFile(filepath.Join(r.work, "id"+ext))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(r.work, tag+ext), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r.run(append(append([]string{"-q", "-I", "cert-" + tag}, tc.sign...), tag+".pub")...)
			out, err := r.login(tag, tag+"-cert.pub")
			if tc.ok && err != nil {
				t.Fatalf("refused: %v\n%s", err, out)
			}
			if !tc.ok && err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
		})
	}
	// The certified key alone is no authorized key.
	if out, err := r.login("id", ""); err == nil {
		t.Fatalf("the plain key logged in:\n%s", out)
	}
}

// TestOpenSSHAuthorizedKeysFile is issue #23 item 13: a user's authorized_keys_file with
// from= honoured, a key added to the file works at the next login without a reload, one
// removed stops working, and a reload with another file takes it.
func TestOpenSSHAuthorizedKeysFile(t *testing.T) {
	var keys string
	lines := map[string]string{}
	r := newKeysRig(t, func(r *keysRig, u *config.User, _ *config.Site) {
		for _, k := range []string{"k1", "k2", "k3", "k4"} {
			lines[k] = r.newKey(k)
		}
		keys = filepath.Join(r.work, "authorized_keys")
		putFile(t, keys, []byte(fmt.Sprintf("# alice\n%s\nfrom=\"10.0.0.0/8\" %s\nfrom=\"127.0.0.*,!127.0.0.2\" %s\n", lines["k1"], lines["k2"], lines["k3"])))
		u.AuthorizedKeysFile = keys
	})
	want := func(key string, ok bool) {
		t.Helper()
		out, err := r.login(key, "")
		if ok && err != nil {
			t.Fatalf("%s refused: %v\n%s", key, err, out)
		}
		if !ok && err == nil {
			t.Fatalf("%s accepted:\n%s", key, out)
		}
	}
	want("k1", true)
	want("k2", false) // from= another network
	want("k3", true)  // from= a wildcard that matches 127.0.0.1
	want("k4", false)

	// Edited on disk (written in place, as `cat >> authorized_keys` does): no reload needed.
	f, err := os.OpenFile(keys, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintln(f, lines["k4"]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want("k4", true)
	putFile(t, keys, []byte(lines["k4"]+"\n"))
	want("k1", false)

	// A reload that points the user at another file.
	other := filepath.Join(r.work, "other_keys")
	putFile(t, other, []byte(lines["k2"]+"\n"))
	next := *r.cfg
	next.Users = []config.User{r.cfg.Users[0]}
	next.Users[0].AuthorizedKeysFile = other
	if err := r.site.Reload(&next); err != nil {
		t.Fatal(err)
	}
	want("k2", true)
	want("k4", false)
}
