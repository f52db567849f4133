package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// shellWords splits a command line as a POSIX shell does for the commands wharf prints:
// words separated by spaces, single-quoted parts taken as they are.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// runClient runs a client command with a deadline and returns its combined output.
func runClient(t *testing.T, dir string, env []string, stdin string, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tryClientCommand runs a command wharf printed for the user demo with password pw, as a
// person would, only made non-interactive: the password is given the way each client takes
// it without a terminal, and a few commands upload and list a file. Everything that decides
// whether it connects (host, port, TLS settings, the certificate file) is as printed.
func tryClientCommand(t *testing.T, dir, line, pw string) {
	t.Helper()
	w := shellWords(t, line)
	upload := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(upload, []byte("hello from "+w[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	var out string
	var err error
	switch filepath.Base(w[0]) {
	case "sftp":
		// OpenSSH reads the password through SSH_ASKPASS when told to; the batch of
		// commands comes on stdin. The host key is accepted on first use, as a person would
		// after comparing the fingerprint the banner printed.
		askpass := filepath.Join(dir, "askpass.sh")
		if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho '"+pw+"'\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		argv := append([]string{coretest.NeedBinary(t, "sftp"), "-o", "StrictHostKeyChecking=accept-new",
			"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-o", "PubkeyAuthentication=no"}, w[1:]...)
		out, err = runClient(t, dir, []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none"},
			"put hello.txt sftp.txt\nls\nbye\n", argv...)
		if err == nil && !strings.Contains(out, "sftp.txt") {
			t.Errorf("%s: the upload is not listed:\n%s", line, out)
		}
	case "lftp":
		// -u demo,PASSWORD instead of a prompt; the printed -e settings are kept and the
		// commands appended to them.
		argv := []string{coretest.NeedBinary(t, "lftp")}
		for i := 1; i < len(w); i++ {
			switch w[i] {
			case "-u":
				argv = append(argv, "-u", w[i+1]+","+pw)
				i++
			case "-e":
				argv = append(argv, "-e", w[i+1]+"; put hello.txt -o lftp.txt; ls; bye")
				i++
			default:
				argv = append(argv, w[i])
			}
		}
		if !strings.Contains(line, " -e ") {
			argv = append(argv[:1], append([]string{"-e", "put hello.txt -o lftp.txt; ls; bye"}, argv[1:]...)...)
		}
		out, err = runClient(t, dir, nil, "", argv...)
		if err == nil && !strings.Contains(out, "lftp.txt") {
			t.Errorf("%s: the upload is not listed:\n%s", line, out)
		}
	case "curl":
		argv := []string{coretest.NeedBinary(t, "curl"), "-sS", "--max-time", "30", "-T", "hello.txt"}
		for i := 1; i < len(w); i++ {
			if w[i] == "-u" {
				argv = append(argv, "-u", w[i+1]+":"+pw)
				i++
				continue
			}
			argv = append(argv, w[i])
		}
		out, err = runClient(t, dir, nil, "", argv...)
		if err == nil {
			// curl -T to a folder URL uploads under the local name; list it back.
			list := append([]string{argv[0], "-sS", "--max-time", "30"}, argv[6:]...)
			out, err = runClient(t, dir, nil, "", list...)
			if err == nil && !strings.Contains(out, "hello.txt") {
				t.Errorf("%s: the upload is not listed:\n%s", line, out)
			}
		}
	default:
		t.Fatalf("untested command printed: %s", line)
	}
	if err != nil {
		t.Errorf("printed command %q failed: %v\n%s", line, err, out)
	}
}

// TestQuickStart is issue #23 items 2 and 3: the embedded default keeps its generated demo
// password in state_dir (WHARF_DEMO_PASSWORD overrides it), the banner prints the SSH host
// key and TLS certificate fingerprints, and every client command the banner prints, for the
// SFTP, FTP (explicit TLS) and implicit FTPS listeners, works with the real client.
func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("WHARF_DEMO_PASSWORD", "")
	cfg, pw, err := loadForServe("")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 12 {
		t.Fatalf("generated password %q", pw)
	}
	_, again, err := loadForServe("")
	if err != nil || again != pw {
		t.Fatalf("the demo password changed across restarts: %q then %q (%v)", pw, again, err)
	}
	pwFile := filepath.Join(dir, "wharf-data", "state", "demo-password")
	if fi, err := os.Stat(pwFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo password file: %v %v", fi, err)
	}
	t.Setenv("WHARF_DEMO_PASSWORD", "chosen-by-me-1")
	if _, over, err := loadForServe(""); err != nil || over != "chosen-by-me-1" {
		t.Fatalf("WHARF_DEMO_PASSWORD did not override: %q %v", over, err)
	}
	t.Setenv("WHARF_DEMO_PASSWORD", "")

	protocols := map[string]bool{}
	for i := range cfg.Sites[0].Listeners {
		// The default binds fixed ports; the test moves them to free ones.
		cfg.Sites[0].Listeners[i].Address = "127.0.0.1:0"
		protocols[cfg.Sites[0].Listeners[i].Protocol] = true
	}
	if !protocols["ftps"] {
		t.Fatal("the default has no implicit FTPS listener, yet the README suggests curl ftps://")
	}
	log, _, _ := newLogger(cfg.Log, io.Discard)
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background(), 0)
	var banner bytes.Buffer
	srv.printBanner(&banner, pw)
	text := banner.String()
	t.Logf("banner:\n%s", text)
	if !strings.Contains(text, pw) || !strings.Contains(text, pwFile) {
		t.Errorf("banner lacks the password or its file:\n%s", text)
	}

	// Host key fingerprints as ssh-keygen -l (and ssh on first connection) shows them.
	keygen := coretest.NeedBinary(t, "ssh-keygen")
	pubs, _ := filepath.Glob(filepath.Join(dir, "wharf-data", "state", "ssh_host_*_key.pub"))
	if len(pubs) == 0 {
		t.Fatal("no host public keys in state_dir")
	}
	for _, p := range pubs {
		out, err := exec.Command(keygen, "-l", "-E", "sha256", "-f", p).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -l %s: %v %s", p, err, out)
		}
		fp := strings.Fields(string(out))[1]
		if !strings.HasPrefix(fp, "SHA256:") || !strings.Contains(text, fp) {
			t.Errorf("banner lacks host key fingerprint %s:\n%s", fp, text)
		}
	}
	// The certificate's SHA-256, as openssl prints it.
	certPEM, err := os.ReadFile(filepath.Join(dir, "wharf-data", "state", "ftps_cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blk.Bytes)
	hexFP := strings.ToUpper(fmt.Sprintf("% x", sum[:]))
	if !strings.Contains(text, strings.ReplaceAll(hexFP, " ", ":")) {
		t.Errorf("banner lacks the certificate fingerprint %s:\n%s", hexFP, text)
	}

	var cmds []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if regexp.MustCompile(`^(sftp|lftp|curl) `).MatchString(l) {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) != 3 {
		t.Fatalf("want a command for each of the 3 listeners, got %q", cmds)
	}
	for _, c := range cmds {
		tryClientCommand(t, dir, c, pw)
	}
}

// TestPrintDefaultCommandsWork: the client commands in `wharf config print-default`'s
// comments work as printed (from the folder of the file, with the file's ports), and a file
// saved from it does not pass `check`: its demo user has no password and could never log in.
func TestPrintDefaultCommandsWork(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, out, _ := runCmd(t, "", "config", "print-default")
	if code != 0 {
		t.Fatal("print-default failed")
	}
	cfgFile := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(cfgFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "", "check", "-c", cfgFile)
	if code != 1 || !strings.Contains(errOut, `user "demo" can never log in`) || !strings.Contains(errOut, "wharf hash-password") {
		t.Fatalf("check of the saved default: exit %d\n%s", code, errOut)
	}

	// The commands in the comments, each with the port of its listener.
	re := regexp.MustCompile(`(?m)^\s*- protocol: (\w+)\s+#[^>]*->\s+(.+)$`)
	found := re.FindAllStringSubmatch(out, -1)
	if len(found) != 3 {
		t.Fatalf("commands in the default's comments: %q", found)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Sites[0].Listeners {
		cfg.Sites[0].Listeners[i].Address = "127.0.0.1:0"
	}
	const pw = "demo-pw-for-the-test"
	cfg.Sites[0].Users[0].Password = "plain:" + pw
	log, _, _ := newLogger(cfg.Log, io.Discard)
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background(), 0)
	fixed := map[string]string{"sftp": "2022", "ftp": "2121", "ftps": "9990"}
	for _, m := range found {
		_, port, _ := strings.Cut(srv.addr(m[1]), ":")
		line := strings.TrimSpace(m[2])
		if !strings.Contains(line, fixed[m[1]]) {
			t.Fatalf("%s command %q does not use port %s", m[1], line, fixed[m[1]])
		}
		tryClientCommand(t, dir, strings.ReplaceAll(line, fixed[m[1]], port), pw)
	}
}
