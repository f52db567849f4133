package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/s3test"
)

// TestRcloneIntegrationSuite runs rclone's own integration suites against a wharf server:
// its sftp and ftp backends' (fstests: about 80 tests each of listing, uploads that fail
// half way, renames, times, hashes, and names with every punctuation mark, control
// character and script), and its operations' and sync's (about 100 each: copy, move, check,
// purge, sync of trees with deletes and renames), over SFTP, FTP, explicit and implicit FTPS, on a
// disk vfs and on an s3 vfs. .ci/rclone-fstests builds the suites from the rclone release
// Debian ships; WHARF_RCLONE_FSTESTS names the folder it built them in.
func TestRcloneIntegrationSuite(t *testing.T) {
	dir := os.Getenv("WHARF_RCLONE_FSTESTS")
	if dir == "" {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatal("WHARF_E2E=1 but WHARF_RCLONE_FSTESTS is not set (.ci/rclone-fstests builds the suites)")
		}
		t.Skip("WHARF_RCLONE_FSTESTS not set: .ci/rclone-fstests DIR builds rclone's integration suites")
	}
	rclone := coretest.NeedBinary(t, "rclone")
	for _, bin := range []string{"sftp.test", "ftp.test", "operations.test", "sync.test"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			t.Fatalf("WHARF_RCLONE_FSTESTS=%s: %v", dir, err)
		}
	}
	work := t.TempDir()
	env := append(os.Environ(), "RCLONE_CONFIG="+filepath.Join(work, "rclone.conf"), "HOME="+work)
	out, err := exec.Command(rclone, "obscure", "pw").Output()
	if err != nil {
		t.Fatalf("rclone obscure: %v", err)
	}
	obscured := strings.TrimSpace(string(out))
	keyFile, authorized := clientKey(t, filepath.Join(work, "id_ed25519"))

	store := s3test.Start(t)
	store.Bucket(t, "fstests")
	cfgPath := filepath.Join(work, "wharf.yaml")
	site := func(name, vfs string) string {
		return fmt.Sprintf(`  - name: %s
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
      - { protocol: ftp, address: "127.0.0.1:0" }
      - { protocol: ftps, address: "127.0.0.1:0" }
    ftp: { tls: optional }
    vfs:
      - %s
    users:
      - { id: alice, password: "plain:pw", public_keys: [%q], home: { vfs: home, permissions: [all] } }
`, name, vfs, authorized)
	}
	cfg := "state_dir: ./state\nsites:\n" +
		site("disk", `{ name: home, type: disk, root: "./data/{user}" }`) +
		site("s3", fmt.Sprintf(`{ name: home, type: s3, bucket: fstests, prefix: "{user}", endpoint: %q, region: %s, `+
			`path_style: true, access_key: %s, secret_key: {env: WHARF_TEST_S3_SECRET} }`,
			store.Endpoint, s3test.Region, store.AccessKey))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_TEST_S3_SECRET", store.SecretKey)
	s := serveInProcess(t, "-c", cfgPath)
	listeners := map[string]string{} // "SFTP disk": address
	for _, m := range siteListenLine.FindAllStringSubmatch(s.stdout.String(), -1) {
		listeners[m[1]+" "+m[3]] = m[2]
	}
	addr := func(site, proto string) (host, port string) {
		t.Helper()
		a, ok := listeners[proto+" "+site]
		if !ok {
			t.Fatalf("no %s listener of site %s in %v", proto, site, listeners)
		}
		h, p, _ := strings.Cut(a, ":")
		return h, p
	}
	var conf strings.Builder
	for _, site := range []string{"disk", "s3"} {
		h, p := addr(site, "SFTP")
		fmt.Fprintf(&conf, "[%s-sftp]\ntype = sftp\nhost = %s\nport = %s\nuser = alice\nkey_file = %s\n\n", site, h, p, keyFile)
		h, p = addr(site, "FTP")
		fmt.Fprintf(&conf, "[%s-ftp]\ntype = ftp\nhost = %s\nport = %s\nuser = alice\npass = %s\n\n", site, h, p, obscured)
		fmt.Fprintf(&conf, "[%s-ftpes]\ntype = ftp\nhost = %s\nport = %s\nuser = alice\npass = %s\nexplicit_tls = true\nno_check_certificate = true\n\n", site, h, p, obscured)
		h, p = addr(site, "FTPS")
		fmt.Fprintf(&conf, "[%s-ftps]\ntype = ftp\nhost = %s\nport = %s\nuser = alice\npass = %s\ntls = true\nno_check_certificate = true\n\n", site, h, p, obscured)
	}
	if err := os.WriteFile(filepath.Join(work, "rclone.conf"), []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// What an object store cannot do, as the s3 rows of docs/storage.md say: a name that is
	// not UTF-8, and free space (statvfs) for a user without a quota, which rclone's sftp
	// backend then asks of df over a shell.
	const s3Skips = "TestIntegration/FsMkdir/FsEncoding/invalid_UTF-8|TestIntegration/FsMkdir/FsPutFiles/ObjectAbout"
	// The backends' suites, then rclone's operations (copy, move, check, purge, hashes…)
	// and sync (sync, copy and move of trees, with deletes and renames) on each protocol.
	type suite struct{ remote, bin, pkg, skip string }
	var suites []suite
	for _, site := range []string{"disk", "s3"} {
		skip := ""
		if site == "s3" {
			skip = s3Skips
		}
		suites = append(suites,
			suite{site + "-sftp", "sftp.test", "backend/sftp", skip},
			suite{site + "-ftp", "ftp.test", "backend/ftp", skip},
			suite{site + "-ftpes", "ftp.test", "backend/ftp", skip},
			suite{site + "-ftps", "ftp.test", "backend/ftp", skip})
		for _, proto := range []string{"sftp", "ftp"} {
			suites = append(suites,
				suite{site + "-" + proto, "operations.test", "fs/operations", ""},
				suite{site + "-" + proto, "sync.test", "fs/sync", ""})
		}
	}
	for _, tc := range suites {
		t.Run(tc.remote+"/"+tc.pkg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			args := []string{"-remote", tc.remote + ":", "-test.v", "-test.timeout", "4m"}
			if tc.skip != "" {
				args = append(args, "-test.skip", tc.skip)
			}
			cmd := exec.CommandContext(ctx, filepath.Join(dir, tc.bin), args...)
			// The suites read their own test files relative to their package's folder.
			cmd.Dir = filepath.Join(dir, "src", filepath.FromSlash(tc.pkg))
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			passed := len(regexp.MustCompile(`(?m)^\s*--- PASS`).FindAll(out, -1))
			if err != nil || passed < 50 {
				failed := regexp.MustCompile(`(?m)^\s*--- FAIL.*$`).FindAll(out, -1)
				t.Fatalf("rclone's %s suite against %s: %v, %d passed; failed:\n%s\n\nlast output:\n%s",
					tc.pkg, tc.remote, err, passed, joinLines(failed), tail(string(out), 60))
			}
			t.Logf("%d of rclone's tests passed", passed)
		})
	}
}

// siteListenLine is a listener as `wharf serve` prints it: protocol, address, site.
var siteListenLine = regexp.MustCompile(`(?m)^\s+(SFTP|FTPS|FTP)\s+(\S+) \(site (\S+)\)`)

func joinLines(lines [][]byte) string {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = string(l)
	}
	return strings.Join(s, "\n")
}
