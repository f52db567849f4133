package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/smtptest"
)

// A server configured with an SMTP relay (password from the environment) and asynchronous
// handlers: OpenSSH's sftp uploads two files; each upload is mailed as an attachment from an
// asynchronous AfterFileUpload handler, and the list of uploads from an asynchronous
// OnConnectionClose handler, through a real SMTP server with STARTTLS and AUTH. The metrics
// count it all. Then a session is open while the relay is down and the server stops: the
// session's OnConnectionClose handler still runs (the shutdown drains the queue), its mail
// waits in the spool, and the next start delivers it.
func TestServeMailsFromAsyncHandlers(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	certDir := t.TempDir()
	relay := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "wharf", Password: "relay-s3cret", CertDir: certDir})
	t.Setenv("WHARF_TEST_RELAY_PW", "relay-s3cret")

	dir := t.TempDir()
	work := t.TempDir()
	keyFile, authorized := clientKey(t, filepath.Join(work, "id_ed25519"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "scripts"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "scripts", "mail-upload.lua"), []byte(
		"SendMail('', 'ops@example.com', 'Uploaded ' .. CtxRelPath(), 'by ' .. Session.GetUserID(), CtxRelPath())\n"), 0o600))
	// Collecting is synchronous: the list must be complete when the session ends.
	must(os.WriteFile(filepath.Join(dir, "scripts", "collect.lua"), []byte("Session.AddCustomData(CtxRelPath())\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "scripts", "mail-list.js"), []byte(
		"{\n  if (Session && Session.GetAllCustomData().length > 0) {\n"+
			"    SendMail('', 'ops@example.com', 'Session of ' + Session.GetUserID(), Session.GetAllCustomData().join('\\n'), '');\n  }\n}\n"), 0o600))
	cfg := fmt.Sprintf(`state_dir: ./state
metrics: {address: "127.0.0.1:0", admin: "off"}
smtp:
  host: 127.0.0.1
  port: %d
  tls: starttls
  ca_file: %s
  username: wharf
  password: {env: WHARF_TEST_RELAY_PW}
  from: wharf@example.com
scripting: {async_workers: 2, async_queue: 100}
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
    vfs:
      - { name: home, type: disk, root: "./data/{user}" }
    users:
      - id: alice
        password: "plain:pw"
        public_keys: [%q]
        home: { vfs: home, permissions: [all] }
    event_handlers:
      - { event: AfterFileUpload, script: mail-upload.lua, mode: async }
      - { event: AfterFileUpload, script: collect.lua }
      - { event: OnConnectionClose, script: mail-list.js, mode: async, on_full: wait }
`, relay.Port, relay.CAFile, authorized)
	cfgPath := filepath.Join(dir, "wharf.yaml")
	must(os.WriteFile(cfgPath, []byte(cfg), 0o600))

	srv := serveInProcess(t, "-c", cfgPath)
	a, b := filepath.Join(work, "a.txt"), filepath.Join(work, "b.csv")
	must(os.WriteFile(a, []byte("alpha"), 0o600))
	must(os.WriteFile(b, []byte("id,n\n1,2\n"), 0o600))
	batch := filepath.Join(work, "batch")
	must(os.WriteFile(batch, []byte("put "+a+"\nput "+b+"\n"), 0o600))
	_, port, _ := strings.Cut(srv.addrs["SFTP"], ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sftpBin, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", keyFile, "-P", port, "-b", batch, "alice@127.0.0.1")
	cmd.Env = []string{"HOME=" + work, "PATH=" + os.Getenv("PATH"), "LANG=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	msgs := relay.Wait(3, 10*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("relay received %d messages:\n%s", len(msgs), srv.stderr.String())
	}
	var subjects []string
	for _, m := range msgs {
		data := strings.ReplaceAll(string(m.Data), "\r\n", "")
		if !m.TLS || m.User != "wharf" {
			t.Errorf("message not sent over TLS with AUTH: %+v", m)
		}
		for _, s := range []string{"Uploaded /a.txt", "Uploaded /b.csv", "Session of alice"} {
			if strings.Contains(data, "Subject: "+s) {
				subjects = append(subjects, s)
			}
		}
		if strings.Contains(data, "Subject: Uploaded /b.csv") && !strings.Contains(data, base64.StdEncoding.EncodeToString([]byte("id,n\n1,2\n"))) {
			t.Errorf("b.csv is not attached:\n%s", m.Data)
		}
		if strings.Contains(data, "Subject: Session of alice") && !strings.Contains(data, "/a.txt") {
			t.Errorf("the session's list lacks /a.txt:\n%s", m.Data)
		}
	}
	if len(subjects) != 3 {
		t.Errorf("subjects = %q", subjects)
	}
	// The relay has the messages once it replied; the queue counts the replies and removes
	// the spool files just after: the figures settle within moments.
	wants := []string{
		`wharf_mail_deliveries_total{result="sent",site="test"} 3`,
		`wharf_mail_queued_total{site="test"} 3`,
		`wharf_script_async_runs_total{event="AfterFileUpload",result="ok",site="test"} 2`,
		`wharf_script_async_runs_total{event="OnConnectionClose",result="ok",site="test"} 1`,
		`wharf_script_async_queue_depth{site="test"} 0`,
		`wharf_mail_spool_messages 0`,
	}
	var metrics string
	deadline := time.Now().Add(5 * time.Second)
	for {
		metrics = scrapeMail(t, filepath.Join(dir, "state"))
		missing := slices.DeleteFunc(slices.Clone(wants), func(w string) bool { return strings.Contains(metrics, w) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics lack %s:\n%s", strings.Join(missing, ", "), metrics)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(srv.stderr.String(), "relay-s3cret") {
		t.Error("the relay password is in the log")
	}

	// A session is open when the relay goes down and the server stops.
	c := sftpClient(t, srv.addrs["SFTP"], "alice", "pw")
	f, err := c.Create("/late.txt")
	must(err)
	_, _ = f.Write([]byte("late"))
	must(f.Close())
	relay.Wait(4, 10*time.Second) // the upload's own mail
	// The queue removes a message's spool file just after the relay's reply: wait for it, or
	// the stop below may keep the delivered message for the next start as well.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if spool, _ := os.ReadDir(filepath.Join(dir, "state", "mail")); len(spool) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the delivered message stays in the spool: %v", spool)
		}
	}
	relayAddr := relay.Addr()
	relay.Close()
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, srv.stderr.String())
	}
	log := srv.stderr.String()
	if !strings.Contains(log, "mail spool: messages kept for the next start") || strings.Contains(log, "asynchronous event handler dropped") {
		t.Fatalf("the session's mail was not queued at shutdown:\n%s", log)
	}
	spool, _ := os.ReadDir(filepath.Join(dir, "state", "mail"))
	if len(spool) != 1 {
		t.Fatalf("spool holds %v, want one message", spool)
	}

	relay2 := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "wharf", Password: "relay-s3cret", CertDir: certDir, Addr: relayAddr})
	serveInProcess(t, "-c", cfgPath)
	got := relay2.Wait(1, 10*time.Second)
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "/late.txt") {
		t.Fatalf("after the restart the relay received %d messages", len(got))
	}
}

// scrapeMail returns the metrics of the server whose state_dir is stateDir.
func scrapeMail(t *testing.T, stateDir string) string {
	t.Helper()
	addr, err := os.ReadFile(filepath.Join(stateDir, adminAddrFile))
	if err != nil {
		t.Fatal(err)
	}
	var body string
	coretest.Eventually(t, 5*time.Second, "the mail metrics", func() bool {
		resp, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `wharf_mail_deliveries_total{result="sent",site="test"} 3`)
	})
	return body
}

// clientKey writes an OpenSSH private key and returns its file and authorized_keys line.
func clientKey(t *testing.T, file string) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "wharf-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
}
