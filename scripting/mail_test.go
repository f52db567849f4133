package scripting_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/scripting"
)

func async(h *config.EventHandler) { h.Mode = "async" }

// unfold joins a message's lines so that base64 and folded headers can be searched.
func unfold(b []byte) string {
	return strings.ReplaceAll(strings.ReplaceAll(string(b), "=\r\n", ""), "\r\n", "")
}

// The first article of Syncplify's scripting knowledge base, as a .js script: each upload's
// path is kept in the session's custom data, and the list is mailed when the session ends.
// Uploads by OpenSSH's sftp; the mail goes through a real SMTP server (STARTTLS, AUTH).
func TestE2EMailUploadListOnClose(t *testing.T) {
	m := newMailSetup(t)
	scripts := map[string]string{
		"collect.js": "{\n  if (Session) { Session.AddCustomData(Session.GetAbsPath()); }\n}\n",
		"mail-list.js": strings.Join([]string{
			"{",
			"  if (Session) {",
			"    var files = Session.GetAllCustomData();",
			"    if (files.length > 0) {",
			"      SendMail('wharf@example.com', 'ops@example.com, Audit Team <audit@example.com>',",
			"        'Files uploaded by ' + Session.GetUserID(), files.toString(), '');",
			"    }",
			"  }",
			"}",
		}, "\n"),
	}
	s := newSSHStack(t, scripts, []config.EventHandler{h("AfterFileUpload", "collect.js"),
		h("OnConnectionClose", "mail-list.js", async)}, func(o *scripting.Options) { o.Mail = queueMailer{m.queue} })
	a, b := s.local(t, "a.txt", []byte("alpha")), s.local(t, "b.txt", []byte("beta"))
	if out, err := s.sftpBatch(t, "put "+a, "put "+b); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	msgs := m.srv.Wait(1, 10*time.Second)
	if len(msgs) != 1 {
		s.logs.dump(t)
		t.Fatalf("received %d messages", len(msgs))
	}
	msg := msgs[0]
	body := unfold(msg.Data)
	want := filepath.Join(s.home("alice"), "a.txt") + "," + filepath.Join(s.home("alice"), "b.txt")
	if !msg.TLS || msg.User != "wharf" || strings.Join(msg.To, " ") != "ops@example.com audit@example.com" ||
		!strings.Contains(body, "Subject: Files uploaded by alice") || !strings.Contains(body, want) {
		t.Errorf("message: TLS %v user %q to %v\n%s\nwant body %q", msg.TLS, msg.User, msg.To, msg.Data, want)
	}
}

// An asynchronous AfterFileUpload handler mails the upload itself as an attachment: it runs
// once the atomic upload is published, so it reads the new data.
func TestE2EMailUploadAsAttachment(t *testing.T) {
	m := newMailSetup(t)
	script := lines(
		"local ok, err = SendMail('', 'ops@example.com', 'New file ' .. CtxRelPath(), 'from ' .. Session.GetUserID(), CtxRelPath())",
		"Log('queued=' .. tostring(ok) .. ' ' .. tostring(err))",
	)
	s := newSSHStack(t, map[string]string{"mail.lua": script}, []config.EventHandler{h("AfterFileUpload", "mail.lua", async)},
		func(o *scripting.Options) { o.Mail = queueMailer{m.queue} })
	c := s.pkgSFTP(t, "alice", "pw")
	must(t, c.upload("/report.csv", []byte("old")))
	data := bytes.Repeat([]byte("id,amount\n1,42\n"), 200)
	must(t, c.upload("/report.csv", data))
	msgs := m.srv.Wait(2, 10*time.Second)
	if len(msgs) != 2 {
		s.logs.dump(t)
		t.Fatalf("received %d messages", len(msgs))
	}
	seenNew := false
	for _, msg := range msgs {
		body := unfold(msg.Data)
		if !strings.Contains(body, "Subject: New file /report.csv") || !strings.Contains(body, `filename="report.csv"`) {
			t.Errorf("message:\n%s", msg.Data)
		}
		if strings.Contains(body, base64.StdEncoding.EncodeToString(data)[:200]) {
			seenNew = true
		}
	}
	if !seenNew {
		t.Errorf("no message carries the second upload's data")
	}
	if got := s.logs.scriptLines(); len(got) != 2 || got[0] != "queued=true nil" {
		t.Errorf("script lines = %q", got)
	}
}

// Which files a script may attach: the event's file, files of the user's disk folders, and
// files under the allowed roots; nothing else, and no way out of them through links.
func TestSendMailAttachmentRules(t *testing.T) {
	m := newMailSetup(t)
	allowed := t.TempDir()
	must(t, os.WriteFile(filepath.Join(allowed, "terms.pdf"), []byte("%PDF terms"), 0o600))
	must(t, syscall.Mkfifo(filepath.Join(allowed, "fifo"), 0o600))
	must(t, os.Mkdir(filepath.Join(allowed, "dir"), 0o700))
	outside := filepath.Join(t.TempDir(), "secret.txt")
	must(t, os.WriteFile(outside, []byte("host secret"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(allowed, "link-out")))

	syncScript := lines("local ok, err = SendMail('', 'ops@example.com', 'sync', '', CtxRelPath())", "Log('sync=' .. tostring(ok) .. ' ' .. err)")
	cfg, root := newConfig(t, map[string]string{"att.lua": "", "att-sync.lua": syncScript},
		[]config.EventHandler{h("AfterFileUpload", "att.lua", async), h("AfterFileUpload", "att-sync.lua")},
		testUser("alice"), testUser("bob"), testUser("mem", func(u *config.User) { u.Home.VFS = "mem" }))
	home := filepath.Join(root, "alice")
	must(t, os.MkdirAll(home, 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "bob"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "bob", "b.txt"), []byte("bob's"), 0o600))
	must(t, os.WriteFile(filepath.Join(home, "old.txt"), []byte("older upload"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(home, "escape.txt")))
	cases := []struct{ path, want string }{
		{"CtxRelPath()", "true"},
		{"Session.GetAbsPath()", "true"},
		{q(filepath.Join(home, "old.txt")), "true"},
		{q(filepath.Join(allowed, "terms.pdf")), "true"},
		{q(filepath.Join(allowed, "sub", "..", "terms.pdf")), "true"},
		{q("/etc/passwd"), "false refused"},
		{q(outside), "false refused"},
		{q(filepath.Join(home, "..", "bob", "b.txt")), "false refused"},
		{q(filepath.Join(home, "escape.txt")), "false attachment"},
		{q(filepath.Join(allowed, "link-out")), "false attachment"},
		{q(filepath.Join(allowed, "fifo")), "false attachment " + q(filepath.Join(allowed, "fifo")) + ": not a regular file"},
		{q(filepath.Join(allowed, "dir")), "false attachment " + q(filepath.Join(allowed, "dir")) + ": not a regular file"},
		{q(filepath.Join(home, "missing.txt")), "false attachment " + q(filepath.Join(home, "missing.txt")) + ": no such file"},
		{q("new.txt"), `false attachment "new.txt": not an absolute host path, nor the event's file`},
	}
	var src []string
	for i, c := range cases {
		src = append(src, fmt.Sprintf("local ok%d, err%d = SendMail('', 'ops@example.com', 'case %d', '', %s)", i, i, i, c.path),
			fmt.Sprintf("Log('c%d=' .. tostring(ok%d) .. ' ' .. (err%d or ''))", i, i, i))
	}
	must(t, os.WriteFile(filepath.Join(cfg.ScriptsDir, "att.lua"), []byte(lines(src...)), 0o600))
	e := buildEnvOpts(t, cfg, root, func(o *scripting.Options) {
		o.Mail = queueMailer{m.queue}
		o.AllowedRoots = []string{allowed}
	})
	must(t, upload(e.login("alice"), "/new.txt", "the upload"))
	coretest.Eventually(t, 10*time.Second, "the asynchronous handler", func() bool { return len(e.kv()) == len(cases)+1 })
	kv := e.kv()
	// A synchronous AfterFileUpload runs before an atomic upload is published.
	if got := kv["sync"]; got != `false attachment "/new.txt": the upload is not published yet; attach it from an asynchronous handler (mode: async)` {
		t.Errorf("sync = %q", got)
	}
	good := 0
	for i, c := range cases {
		got := kv[fmt.Sprintf("c%d", i)]
		if !strings.HasPrefix(got, c.want) && !(strings.HasPrefix(got, "false ") && strings.Contains(got, strings.TrimPrefix(c.want, "false "))) {
			t.Errorf("SendMail attaching %s = %q, want %q…", c.path, got, c.want)
		}
		if c.want == "true" {
			good++
		}
	}
	msgs := m.srv.Wait(good, 10*time.Second)
	if len(msgs) != good {
		t.Fatalf("received %d messages, want %d", len(msgs), good)
	}
	for _, msg := range msgs {
		if strings.Contains(string(msg.Data), base64.StdEncoding.EncodeToString([]byte("host secret"))) {
			t.Errorf("a host file outside the allowed folders was attached")
		}
	}
	if errs := e.logs.find("SendMail: message not queued"); len(errs) != len(cases)-good+1 {
		t.Errorf("%d refusals logged, want %d", len(errs), len(cases)-good+1)
	}

	// The event's file on a memory VFS cannot be attached.
	e.logs.reset()
	must(t, upload(e.login("mem"), "/new.txt", "in memory"))
	coretest.Eventually(t, 10*time.Second, "the asynchronous handler", func() bool { return e.kv()["c0"] != "" })
	if got := e.kv()["c0"]; got != `false attachment "/new.txt": the event's file is not on a disk VFS` {
		t.Errorf("memory VFS: %q", got)
	}
}

func q(s string) string { return fmt.Sprintf("%q", s) }

func TestSendMailRefusals(t *testing.T) {
	m := newMailSetup(t)
	script := lines(
		"local ok, err = SendMail('', 'not an address', 's', 'b', '')",
		"Log('bad=' .. tostring(ok) .. ' ' .. err)",
		"ok, err = SendMail('', '', 's', 'b', '')",
		"Log('none=' .. tostring(ok) .. ' ' .. err)",
		"ok, err = SendMail('also bad', 'a@example.com', 's', 'b', '')",
		"Log('from=' .. tostring(ok) .. ' ' .. err)",
		"ok, err = SendMail('', 'a@example.com; b@example.com,', 's', 'b')",
		"Log('semi=' .. tostring(ok))",
		"local n = 0",
		"for i = 1, 150 do if SendMail('', 'a@example.com', 'n' .. i, '', '') then n = n + 1 end end",
		"Log('many=' .. n)",
	)
	cfg, root := newConfig(t, map[string]string{"m.lua": script}, []config.EventHandler{h("OnAuthSuccess", "m.lua")})
	e := buildEnvOpts(t, cfg, root, func(o *scripting.Options) { o.Mail = queueMailer{m.queue} })
	e.login("alice")
	kv := e.kv()
	for k, want := range map[string]string{
		"bad":  `false invalid recipient list "not an address"`,
		"none": "false no recipient",
		"from": `false invalid sender "also bad"`,
		"semi": "true",
		"many": "99", // 100 per run, one of them above
	} {
		if !strings.HasPrefix(kv[k], want) {
			t.Errorf("%s = %q, want %q…", k, kv[k], want)
		}
	}
	msgs := m.srv.Wait(100, 20*time.Second)
	two := 0
	for _, msg := range msgs {
		if strings.Join(msg.To, ",") == "a@example.com,b@example.com" {
			two++
		}
	}
	if len(msgs) != 100 || two != 1 {
		t.Errorf("received %d messages, %d of them to a and b", len(msgs), two)
	}

	// Without a relay SendMail refuses at once, and says why.
	e2 := buildEnvOpts(t, cfg, root, nil)
	e2.login("alice")
	if got := e2.kv()["none"]; got != "false mail is not configured: set smtp (at the top level or on the site)" {
		t.Errorf("without relay, none = %q", got)
	}
	if got := e2.kv()["semi"]; got != "false" {
		t.Errorf("without relay a message was queued: %q", got)
	}
	if errs := e2.logs.find("SendMail: message not queued: mail is not configured"); len(errs) == 0 {
		e2.logs.dump(t)
		t.Error("no log line says that mail is not configured")
	}
	coretest.Eventually(t, 5*time.Second, "an empty spool", func() bool { return m.queue.Len() == 0 })
}
