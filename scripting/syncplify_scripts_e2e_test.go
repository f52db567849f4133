package scripting_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/scripting"
)

// Every script of testdata/scripts/syncplify, run end to end: the server in-process (SSH and
// FTP adapters) with the script attached as its header says, real clients (OpenSSH sftp, lftp,
// curl) doing what fires the events, a real SMTP server (go-smtp, STARTTLS and AUTH) behind
// the mail spool, and a web service on loopback. Each case checks the client's result, the
// files on disk, and the mail received or the HTTP request seen.

// syncplifyE2E maps each script of the folder to its end-to-end test; a script without one
// fails TestE2ESyncplifyScripts.
var syncplifyE2E = map[string]func(t *testing.T){
	"archive-by-date.js":         e2eArchiveByDate,
	"auth-fail-chat.js":          e2eAuthFailChat,
	"ban-after-wrong-answers.js": e2eBanAfterWrongAnswers,
	"ban-alert-mail.lua":         e2eBanAlertMail,
	"copy-to-backup.js":          e2eCopyToBackup,
	"delete-exe-v6.js":           e2eDeleteExeV6,
	"download-receipt.lua":       e2eDownloadReceipt,
	"exit-codes.js":              e2eExitCodes,
	"list-root-by-time.js":       e2eListRootByTime,
	"mail-upload-attached.js":    e2eMailUploadAttached,
	"mail-uploads-on-close.js":   e2eMailUploadsOnClose,
	"normalize-names.js":         e2eNormalizeNames,
	"refuse-by-regex.js":         e2eRefuseByRegex,
	"refuse-executable.js":       e2eRefuseExecutable,
	"rest-register-upload.js":    e2eRestRegisterUpload,
	"route-by-name.js":           e2eRouteByName,
	"upload-report.lua":          e2eUploadReport,
	"webhook-bearer.js":          e2eWebhookBearer,
}

func TestE2ESyncplifyScripts(t *testing.T) {
	dir := filepath.Join("..", "testdata", "scripts", "syncplify")
	coretest.RunPerFile(t, dir, 15, syncplifyE2E, func(t *testing.T, _ string, run func(*testing.T)) { run(t) })
}

// The secrets of the web service, as the site's secret store holds them.
const (
	hookToken = "tok-5e6f7a8b9c"
	dmsKey    = "key-1a2b3c4d5e"
)

// sstack is a stack for the folder's scripts: SSH and FTP adapters, mail through the spool to
// a real SMTP server, a web service whose address and credentials are secrets.
type sstack struct {
	*stack
	mail *mailSetup
	hook *hookServer
}

// newSyncplifyStack builds an sstack whose handlers run the folder's scripts; mutate changes
// the config before the site is built.
func newSyncplifyStack(t *testing.T, handlers []config.EventHandler, mutate func(*config.Site)) *sstack {
	t.Helper()
	m := newMailSetup(t)
	hook := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/documents" {
			fmt.Fprint(w, "ok")
			return
		}
		// The document API: it files documents under /filed/acme and refuses anything else.
		var doc struct{ Path, Magic string }
		if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		if !strings.HasPrefix(doc.Magic, "25504446") { // %PDF
			fmt.Fprint(w, `{"accept": false, "reason": "not a PDF"}`)
			return
		}
		fmt.Fprint(w, `{"accept": true, "id": "DOC-17", "folder": "/filed/acme"}`)
	})
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "scripts", "syncplify"))
	must(t, err)
	secrets := t.TempDir()
	s := buildStack(t, nil, handlers, stackSetup{lang: "C.UTF-8",
		engine: func(o *scripting.Options) { o.Mail = queueMailer{m.queue} },
		mutate: func(cfg *config.Site) {
			cfg.ScriptsDir = dir
			cfg.Secrets = map[string]config.Secret{}
			for name, value := range map[string]string{"webhook_url": hook.URL + "/hook", "webhook_token": hookToken,
				"chat_webhook": hook.URL + "/chat/T01/B02/c0ffee", "dms_url": hook.URL, "dms_api_key": dmsKey} {
				p := filepath.Join(secrets, name)
				must(t, os.WriteFile(p, []byte(value+"\n"), 0o600))
				cfg.Secrets[name] = config.Secret{File: p}
			}
			if mutate != nil {
				mutate(cfg)
			}
		}})
	return &sstack{stack: s, mail: m, hook: hook}
}

// lftp runs commands in an lftp session (FTP, with AUTH TLS when offered) as user.
func (s *stack) lftp(t *testing.T, user, password string, cmds ...string) (string, error) {
	t.Helper()
	bin := coretest.NeedBinary(t, "lftp")
	script := s.local(t, "cmds.lftp", []byte(fmt.Sprintf(`set ssl:verify-certificate no
set net:max-retries 1
set net:persist-retries 0
set net:timeout 10
set cmd:fail-exit true
open -u %s,%s -p %s 127.0.0.1
%s
bye
`, user, password, s.ftpPort(), strings.Join(cmds, "\n"))))
	return s.try(bin, "-f", script)
}

// curl runs curl with the arguments every case uses: errors shown, failure on an FTP or SFTP
// error, the test server's certificate and host key accepted, bounded in time.
func (s *stack) curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := coretest.NeedBinary(t, "curl")
	return s.try(bin, append([]string{"-sS", "--fail", "-k", "--connect-timeout", "10", "--max-time", "20"}, args...)...)
}

// needCurlSFTP skips unless curl speaks SFTP (libssh2).
func (s *stack) needCurlSFTP(t *testing.T) {
	t.Helper()
	if v, _ := s.curl(t, "-V"); !strings.Contains(v, "sftp") {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("curl has no sftp:\n%s", v)
		}
		t.Skip("curl built without libssh2")
	}
}

func (s *stack) sftpURL(p string) string { return "sftp://127.0.0.1:" + s.sshPort() + p }
func (s *stack) ftpURL(p string) string  { return "ftp://127.0.0.1:" + s.ftpPort() + p }

// mustRun fails the test when a client failed.
func mustRun(t *testing.T, what string) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return out
	}
}

// mustFail fails the test when a client succeeded.
func mustFail(t *testing.T, what string) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded, want a refusal:\n%s", what, out)
		}
		return out
	}
}

// waitMail waits until n messages arrived and the spool is empty, and returns them.
func (s *sstack) waitMail(t *testing.T, n int) []mailMsg {
	t.Helper()
	s.mail.srv.Wait(n, 10*time.Second)
	// An empty spool: what the scripts queued so far was delivered (a message too many shows).
	coretest.Eventually(t, 10*time.Second, "the spool to empty", func() bool { return s.mail.queue.Len() == 0 })
	msgs := s.mail.srv.Messages()
	if len(msgs) != n {
		s.logs.dump(t)
		t.Fatalf("received %d messages, want %d", len(msgs), n)
	}
	out := make([]mailMsg, len(msgs))
	for i, m := range msgs {
		out[i] = mailMsg{From: m.From, To: m.To, Data: unfold(m.Data)}
	}
	return out
}

type mailMsg struct {
	From string
	To   []string
	Data string // unfolded: headers and base64 lines joined
}

func (m mailMsg) has(s ...string) bool {
	for _, x := range s {
		if !strings.Contains(m.Data, x) {
			return false
		}
	}
	return true
}

// waitRequests waits until the web service saw n requests and returns them.
func (s *sstack) waitRequests(t *testing.T, n int) []seen {
	t.Helper()
	coretest.Eventually(t, 10*time.Second, fmt.Sprintf("%d web requests", n), func() bool { return len(s.hook.requests()) >= n })
	return s.hook.requests()
}

// e2eAuthFailChat: failed logins by curl (SFTP, as mallory) and lftp (FTP, as alice) are
// posted to the chat hook, whose URL is a secret, as JSON; the clients are refused.
func e2eAuthFailChat(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("OnAuthFail", "auth-fail-chat.js", async)}, nil)
	s.needCurlSFTP(t)
	mustFail(t, "curl with a wrong password")(s.curl(t, "-u", "mallory:guess", s.sftpURL("/")))
	reqs := s.waitRequests(t, 1)
	mustFail(t, "lftp with a wrong password")(s.lftp(t, "alice", "wrong", "ls"))
	reqs = s.waitRequests(t, len(reqs)+1)
	bodies := map[string]bool{}
	for _, r := range reqs {
		var msg struct{ Text, Username string }
		if r.Method != "POST" || r.Path != "/chat/T01/B02/c0ffee" || r.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(r.Body), &msg) != nil || msg.Username != "wharf" {
			t.Errorf("request %+v", r)
		}
		switch {
		case strings.HasPrefix(msg.Text, "Failed login as mallory from 127.0.0.1 over SFTP on test at "):
			bodies["sftp"] = true
		case regexp.MustCompile(`^Failed login from 127\.0\.0\.1 over FTP(ES)? on test at \d{4}-`).MatchString(msg.Text):
			bodies["ftp"] = true
		default:
			t.Errorf("text %q", msg.Text)
		}
	}
	if !bodies["sftp"] || !bodies["ftp"] {
		t.Errorf("requests %+v", reqs)
	}
	onlyFiles(t, s.home("alice"))
}

// e2eBanAfterWrongAnswers: OpenSSH sftp answers alice's keyboard-interactive question wrongly
// three times in one connection (through SSH_ASKPASS); the script bans the address, so the
// next connection (with alice's key) is refused too.
func e2eBanAfterWrongAnswers(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("OnAuthInteractive", "ban-after-wrong-answers.js")}, nil)
	bin := coretest.NeedBinary(t, "sftp")
	askpass := s.local(t, "askpass.sh", []byte("#!/bin/sh\necho not-the-password\n"))
	must(t, os.Chmod(askpass, 0o700))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No -b: with a batch file sftp sets BatchMode, which turns keyboard-interactive off.
	cmd := exec.CommandContext(ctx, bin, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "PreferredAuthentications=keyboard-interactive",
		"-o", "NumberOfPasswordPrompts=3", "-P", s.sshPort(), "alice@127.0.0.1")
	cmd.Env = append(slices.Clone(s.cliEnv), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none")
	cmd.Dir = s.work
	cmd.Stdin = strings.NewReader("ls\nbye\n")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("sftp logged in with wrong answers:\n%s", out)
	}
	if !s.site.Banned(netip.MustParseAddr("127.0.0.1")) {
		s.logs.dump(t)
		t.Fatalf("127.0.0.1 not banned; sftp said:\n%s", out)
	}
	if n := len(s.records("Too many wrong answers from 127.0.0.1, banning")); n != 1 {
		t.Errorf("%d ban lines, want 1", n)
	}
	mustFail(t, "sftp with alice's key from a banned address")(s.sftpBatch(t, "ls"))
}

// e2eBanAlertMail: two failed curl logins over FTP reach the protector's threshold; the ban
// fires OnBlocklistAdd, whose script mails the security team; curl's next (right) login is
// refused.
func e2eBanAlertMail(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("OnBlocklistAdd", "ban-alert-mail.lua", async)},
		func(c *config.Site) { c.Protector.Threshold = 2 })
	for range 2 {
		mustFail(t, "curl with a wrong password")(s.curl(t, "-u", "alice:wrong", s.ftpURL("/")))
	}
	mustFail(t, "curl from a banned address")(s.curl(t, "-u", "alice:pw", s.ftpURL("/")))
	msgs := s.waitMail(t, 1)
	m := msgs[0]
	if m.From != "wharf@example.com" || strings.Join(m.To, ",") != "security@example.com" ||
		!m.has("Subject: wharf banned 127.0.0.1", "Address:  127.0.0.1", "Protocol: FTP", "Site:     test", "Last command: PASS") {
		t.Errorf("message from %s to %v:\n%s", m.From, m.To, m.Data)
	}
}

// e2eDownloadReceipt: curl downloads /outbox/inv-0042.pdf over FTP; the asynchronous
// AfterFileDownload script moves it to /outbox/done/<time>-inv-0042.pdf and mails a receipt
// to the user and to operations.
func e2eDownloadReceipt(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileDownload", "download-receipt.lua", async)}, nil)
	data := []byte("%PDF-1.7 invoice 42\n")
	must(t, os.MkdirAll(filepath.Join(s.home("alice"), "outbox"), 0o755))
	must(t, os.WriteFile(filepath.Join(s.home("alice"), "outbox", "inv-0042.pdf"), data, 0o644))
	out := mustRun(t, "curl download")(s.curl(t, "-u", "alice:pw", s.ftpURL("/outbox/inv-0042.pdf")))
	if out != string(data) {
		t.Errorf("downloaded %q", out)
	}
	m := s.waitMail(t, 1)[0]
	if strings.Join(m.To, ",") != "alice@example.com,ops@example.com" || !m.has("Subject: Delivered: inv-0042.pdf",
		"alice downloaded /outbox/inv-0042.pdf (20 bytes) over FTP from 127.0.0.1 at ", "Archived as /outbox/done/") {
		t.Errorf("message to %v:\n%s", m.To, m.Data)
	}
	des, err := os.ReadDir(filepath.Join(s.home("alice"), "outbox", "done"))
	must(t, err)
	if len(des) != 1 || !regexp.MustCompile(`^\d{8}T\d{6}Z-inv-0042\.pdf$`).MatchString(des[0].Name()) {
		t.Fatalf("done holds %v", des)
	}
	if b, err := os.ReadFile(filepath.Join(s.home("alice"), "outbox", "done", des[0].Name())); err != nil || !bytes.Equal(b, data) {
		t.Errorf("archived file %q %v", b, err)
	}
	onlyFiles(t, filepath.Join(s.home("alice"), "outbox"), "done")
}

// e2eExitCodes: an lftp session fires OnNewConnection (no Session: Exit(1)), OnAuthRequest (no
// user yet: Exit(2)) and OnAuthSuccess (logs the user); the codes are logged, the session
// goes on.
func e2eExitCodes(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("OnNewConnection", "exit-codes.js"), h("OnAuthRequest", "exit-codes.js"),
		h("OnAuthSuccess", "exit-codes.js")}, nil)
	mustRun(t, "lftp")(s.lftp(t, "alice", "pw", "ls"))
	codes := map[string]int{}
	for _, r := range s.records("event script exited with code") {
		codes[r.Attrs["event"]+"="+r.Attrs["exit_code"]]++
	}
	if codes["OnNewConnection=1"] == 0 || codes["OnAuthRequest=2"] == 0 || len(codes) != 2 {
		s.logs.dump(t)
		t.Errorf("exit codes logged: %v", codes)
	}
	if len(s.records("user alice")) == 0 {
		t.Errorf("no line from OnAuthSuccess")
	}
}

// e2eListRootByTime: curl lists the root over SFTP; the OnDirList script logs the root sorted
// by time, newest first (the times set on disk).
func e2eListRootByTime(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("OnDirList", "list-root-by-time.js")}, nil)
	s.needCurlSFTP(t)
	home := s.home("alice")
	must(t, os.WriteFile(filepath.Join(home, "old.txt"), []byte("12345"), 0o644))
	must(t, os.WriteFile(filepath.Join(home, "new.txt"), []byte("123"), 0o644))
	must(t, os.Mkdir(filepath.Join(home, "sub"), 0o755))
	for name, year := range map[string]int{"old.txt": 2020, "sub": 2022, "new.txt": 2024} {
		ts := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
		must(t, os.Chtimes(filepath.Join(home, name), ts, ts))
	}
	out := mustRun(t, "curl list")(s.curl(t, "-u", "alice:pw", s.sftpURL("/")))
	for _, n := range []string{"old.txt", "new.txt", "sub"} {
		if !strings.Contains(out, n) {
			t.Errorf("listing lacks %s:\n%s", n, out)
		}
	}
	got := s.logs.scriptLines()
	if len(got) != 1 || !regexp.MustCompile(`^root of alice: new.txt 3, sub/ \d+, old.txt 5$`).MatchString(got[0]) {
		t.Errorf("lines %q", got)
	}
}

// e2eMailUploadAttached: OpenSSH sftp uploads a small file and one over 1 MiB; the
// asynchronous script mails the first attached and announces the second without it.
func e2eMailUploadAttached(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "mail-upload-attached.js", async)}, nil)
	small := []byte("id,amount\n1,42\n2,17\n")
	big := bytes.Repeat([]byte("0123456789abcdef"), 96<<10) // 1.5 MiB
	mustRun(t, "sftp put")(s.sftpBatch(t, "put "+s.local(t, "report.csv", small)+" /report.csv",
		"put "+s.local(t, "big.bin", big)+" /big.bin"))
	msgs := s.waitMail(t, 2)
	var sawSmall, sawBig bool
	for _, m := range msgs {
		if strings.Join(m.To, ",") != "team@example.com" || m.From != "wharf@example.com" {
			t.Errorf("message from %s to %v", m.From, m.To)
		}
		switch {
		case m.has("Subject: New file: report.csv", "User alice uploaded /report.csv (20 bytes) over SFTP from 127.0.0.1.",
			`filename="report.csv"`, strings.TrimRight(base64.StdEncoding.EncodeToString(small), "=")): // unfold drops a "=" at a line's end
			sawSmall = true
		case m.has("Subject: New file: big.bin", "(1572864 bytes)", "too large to attach") && !m.has("filename="):
			sawBig = true
		default:
			t.Errorf("message:\n%.2000s", m.Data)
		}
	}
	if !sawSmall || !sawBig {
		t.Errorf("small %v big %v", sawSmall, sawBig)
	}
	onlyFiles(t, s.home("alice"), "big.bin", "report.csv")
}

// e2eMailUploadsOnClose: the knowledge base's first article as the folder ships it: OpenSSH
// sftp uploads two files, and when its session ends the list is mailed.
func e2eMailUploadsOnClose(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "mail-uploads-on-close.js"),
		h("OnConnectionClose", "mail-uploads-on-close.js", async)}, nil)
	mustRun(t, "sftp put")(s.sftpBatch(t, "put "+s.local(t, "a.txt", []byte("alpha"))+" /a.txt",
		"mkdir /in", "put "+s.local(t, "b.txt", []byte("beta"))+" /in/b.txt"))
	m := s.waitMail(t, 1)[0]
	want := filepath.Join(s.home("alice"), "a.txt") + "," + filepath.Join(s.home("alice"), "in", "b.txt")
	if m.From != "wharf@example.com" || strings.Join(m.To, ",") != "ops@example.com,audit@example.com" ||
		!m.has("Subject: Files uploaded by alice", `"Audit Team" <audit@example.com>`, want) {
		t.Errorf("message from %s to %v:\n%s\nwant body %q", m.From, m.To, m.Data, want)
	}
}

// e2eNormalizeNames: lftp uploads "Q3 Report (FINAL).PDF" twice and OpenSSH sftp a name with
// umlauts; the script gives each a tidy name, numbering the second rather than replacing the
// first.
func e2eNormalizeNames(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "normalize-names.js")}, nil)
	for _, data := range []string{"first", "second"} {
		local := s.local(t, "report-"+data+".pdf", []byte(data))
		mustRun(t, "lftp put")(s.lftp(t, "alice", "pw", fmt.Sprintf(`put %s -o "Q3 Report (FINAL).PDF"`, local)))
	}
	mustRun(t, "sftp put")(s.sftpBatch(t, `put `+s.local(t, "u.txt", []byte("umlauts"))+` "/Größe_Übersicht  März.TXT"`))
	home := s.home("alice")
	onlyFiles(t, home, "groesse-uebersicht-maerz.txt", "q3-report-final-2.pdf", "q3-report-final.pdf")
	for name, want := range map[string]string{"q3-report-final.pdf": "first", "q3-report-final-2.pdf": "second"} {
		if b, err := os.ReadFile(filepath.Join(home, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
}

// e2eRefuseByRegex: curl's upload of Setup.EXE (SFTP) and lftp's of an Office lock file
// (FTP) are refused by case-insensitive patterns; OpenSSH sftp's rename of notes.txt to
// "notes.Exe." is refused too; the other upload is stored.
func e2eRefuseByRegex(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("BeforeFileUpload", "refuse-by-regex.js"),
		h("BeforeFileRename", "refuse-by-regex.js")}, nil)
	s.needCurlSFTP(t)
	mustFail(t, "curl put Setup.EXE")(s.curl(t, "-u", "alice:pw", "-T", s.local(t, "setup.bin", []byte("MZ")), s.sftpURL("/Setup.EXE")))
	mustFail(t, "lftp put ~$budget.xlsx")(s.lftp(t, "alice", "pw", "put "+s.local(t, "lock.bin", []byte("lock"))+` -o "~$budget.xlsx"`))
	mustRun(t, "sftp put notes.txt")(s.sftpBatch(t, "put "+s.local(t, "notes.txt", []byte("notes"))+" /notes.txt"))
	mustFail(t, "sftp rename to notes.Exe.")(s.sftpBatch(t, `rename /notes.txt "/notes.Exe."`))
	onlyFiles(t, s.home("alice"), "notes.txt")
	if n := len(s.records("refused an executable: /Setup.EXE from 127.0.0.1")); n != 1 {
		t.Errorf("%d refusal lines for Setup.EXE", n)
	}
	if n := len(s.records("refused a temporary file: /~$budget.xlsx")); n != 1 {
		t.Errorf("%d refusal lines for the lock file", n)
	}
}

// e2eRestRegisterUpload: OpenSSH sftp uploads a PDF, which the document API accepts and the
// script files under /filed/acme; lftp uploads a non-PDF, which the API refuses, so the
// upload fails and nothing is stored. The API sees a POST with the key and the file's
// description.
func e2eRestRegisterUpload(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "rest-register-upload.js")}, nil)
	pdf := []byte("%PDF-1.7\ncontract\n")
	defer func() {
		if t.Failed() {
			s.logs.dump(t)
		}
	}()
	mustRun(t, "sftp put")(s.sftpBatch(t, "put "+s.local(t, "contract.pdf", pdf)+" /contract.pdf"))
	mustFail(t, "lftp put junk.bin")(s.lftp(t, "alice", "pw", "put "+s.local(t, "junk.bin", []byte("MZ junk"))+" -o junk.bin"))
	home := s.home("alice")
	onlyFiles(t, home, "filed")
	if b, err := os.ReadFile(filepath.Join(home, "filed", "acme", "contract.pdf")); err != nil || !bytes.Equal(b, pdf) {
		t.Errorf("filed contract: %q %v", b, err)
	}
	onlyFiles(t, filepath.Join(home, "filed", "acme"), "contract.pdf")
	reqs := s.hook.requests()
	if len(reqs) != 2 {
		t.Fatalf("requests %+v", reqs)
	}
	for i, want := range []string{`"path":"/contract.pdf","size":18,"magic":"255044462D312E37","protocol":"SFTP"`,
		`"path":"/junk.bin","size":7,"magic":"4D5A206A756E6B"`} {
		r := reqs[i]
		if r.Method != "POST" || r.Path != "/v1/documents" || r.Header.Get("X-Api-Key") != dmsKey ||
			r.Header.Get("Content-Type") != "application/json" || !strings.Contains(r.Body, want) || !strings.Contains(r.Body, `"user":"alice"`) {
			t.Errorf("request %d: %+v, want body with %s", i, r, want)
		}
	}
	if len(s.records("registered /filed/acme/contract.pdf as DOC-17")) != 1 || len(s.records("document API refused /junk.bin: not a PDF")) != 1 {
		s.logs.dump(t)
		t.Errorf("log lines missing")
	}
}

// e2eRouteByName: curl uploads over SFTP; names that follow the convention are filed by kind,
// party, year and month, others stay with a warning.
func e2eRouteByName(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "route-by-name.js")}, nil)
	s.needCurlSFTP(t)
	for _, name := range []string{"INV_2024-05_ACME.pdf", "ord_2023-12_Globex.XML", "INV_2024-13_ACME.pdf"} {
		mustRun(t, "curl put "+name)(s.curl(t, "-u", "alice:pw", "-T", s.local(t, name, []byte(name)), s.sftpURL("/"+name)))
	}
	home := s.home("alice")
	for _, p := range []string{"invoices/acme/2024/05/INV_2024-05_ACME.pdf", "orders/globex/2023/12/ord_2023-12_Globex.XML",
		"INV_2024-13_ACME.pdf"} {
		if b, err := os.ReadFile(filepath.Join(home, p)); err != nil || string(b) != filepath.Base(p) {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	onlyFiles(t, home, "INV_2024-13_ACME.pdf", "invoices", "orders")
	if len(s.records("not routed, the name does not follow the convention: /INV_2024-13_ACME.pdf")) != 1 {
		t.Errorf("no warning for the month 13")
	}
}

// e2eUploadReport: lftp uploads two files in one session, one large enough to pass 80% of the
// allowance; when the session ends the user and operations get the report, with "Quota
// warning" in the subject.
func e2eUploadReport(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "upload-report.lua"),
		h("OnConnectionClose", "upload-report.lua", async)}, nil)
	big := bytes.Repeat([]byte("x"), 900<<10)
	mustRun(t, "lftp put")(s.lftp(t, "alice", "pw", "put "+s.local(t, "a.csv", []byte("1,2\n"))+" -o a.csv",
		"mkdir data", "put "+s.local(t, "big.bin", big)+" -o data/big.bin"))
	m := s.waitMail(t, 1)[0]
	if strings.Join(m.To, ",") != "alice@example.com,ops@example.com" ||
		!m.has("Subject: Quota warning: 2 file(s), 900.0 KiB uploaded by alice", "4 bytes  /a.csv", "900.0 KiB  /data/big.bin",
			"Uploaded: 900.0 KiB", "Home folder: ") ||
		!regexp.MustCompile(`Home folder: 90\d\.\d KiB of 1\.0 MiB \(8\d%\)`).MatchString(m.Data) {
		t.Errorf("message to %v:\n%s", m.To, m.Data)
	}
}

// e2eWebhookBearer: curl uploads over FTP; the asynchronous script calls the web hook with
// the file and user in the query and the bearer token from the secret store.
func e2eWebhookBearer(t *testing.T) {
	s := newSyncplifyStack(t, []config.EventHandler{h("AfterFileUpload", "webhook-bearer.js", async)}, nil)
	mustRun(t, "curl put")(s.curl(t, "-u", "alice:pw", "--ftp-create-dirs", "-T", s.local(t, "a.txt", []byte("a")), s.ftpURL("/in/a%20b.txt")))
	r := s.waitRequests(t, 1)[0]
	if r.Method != "GET" || r.Path != "/hook" || r.Query != "file=%2Fin%2Fa%20b.txt&user=alice" ||
		r.Header.Get("Authorization") != "Bearer "+hookToken || r.Body != "" {
		t.Errorf("request %+v", r)
	}
	s.waitRecords(t, "web hook told of /in/a b.txt: 200", 1)
	onlyFiles(t, filepath.Join(s.home("alice"), "in"), "a b.txt")
	for _, rec := range s.logs.find("") {
		if strings.Contains(fmt.Sprint(rec), hookToken) {
			t.Errorf("the token is in the log: %v", rec)
		}
	}
}
