package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// handler is a valid site handler entry for head (lines 7-9); cases append keys at line 10.
const handler = `    event_handlers:
      - event: AfterFileUpload
        script: log-session.lua
`

func TestSMTPDefaultsAndInheritance(t *testing.T) {
	t.Setenv("WHARF_TEST_SMTP_PW", "env-pw")
	data := "smtp: {host: mail.example.com, username: wharf, password: {env: WHARF_TEST_SMTP_PW}, from: wharf@example.com}\n" +
		head + "  - name: other\n    listeners:\n      - {protocol: ftp, address: \"127.0.0.1:0\"}\n" +
		"    smtp: {host: relay.local, tls: none}\n"
	cfg := mustParse(t, data, testDir)
	top := cfg.SMTP
	if top.Port != 587 || top.TLS != "starttls" || top.Timeout.Duration != time.Minute ||
		top.GiveUpAfter.Duration != 24*time.Hour || top.MaxMessageSize != 10<<20 || top.Password.Value() != "env-pw" {
		t.Errorf("top-level smtp = %+v", *top)
	}
	if cfg.Sites[0].SMTP != top {
		t.Errorf("a site without smtp does not use the top-level relay: %+v", cfg.Sites[0].SMTP)
	}
	if o := cfg.Sites[1].SMTP; o == nil || o.Host != "relay.local" || o.Port != 25 {
		t.Errorf("the site's own relay = %+v", o)
	}
	implicit := mustParse(t, "smtp: {host: h, tls: implicit}\n"+head, testDir)
	if implicit.SMTP.Port != 465 {
		t.Errorf("implicit TLS port = %d, want 465", implicit.SMTP.Port)
	}
	if s := mustParse(t, head, testDir); s.SMTP != nil || s.Sites[0].SMTP != nil {
		t.Errorf("no smtp configured, got %+v", s.SMTP)
	}
	if s := mustParse(t, head, testDir).Scripting; s.AsyncWorkers != 4 || s.AsyncQueue != 1000 || s.MailSpool != 256<<20 {
		t.Errorf("scripting defaults = %+v", s)
	}
}

func TestSMTPPasswordForms(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"scripts"} {
		if err := os.MkdirAll(filepath.Join(dir, f), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "smtp.pw"), []byte("file-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, "smtp: {host: h, username: u, password: {file: smtp.pw}}\n"+head, dir)
	if got := cfg.SMTP.Password.Value(); got != "file-pw" {
		t.Errorf("file secret = %q, want file-pw (trailing newline dropped)", got)
	}
	if cfg.SMTP.Password.File != filepath.Join(dir, "smtp.pw") {
		t.Errorf("file = %q, want it absolute", cfg.SMTP.Password.File)
	}

	cfg = mustParse(t, "smtp:\n  host: h\n  username: u\n  password: inline-pw\n"+head, testDir)
	if cfg.SMTP.Password.Value() != "inline-pw" {
		t.Errorf("inline password = %q", cfg.SMTP.Password.Value())
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Key != "smtp.password" || cfg.Warnings[0].Line != 4 ||
		strings.Contains(cfg.Warnings[0].String(), "inline-pw") {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
	// Nothing that prints the config shows the value.
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(out), cfg.SMTP.Password.String(), cfg.SMTP.Password.GoString()} {
		if strings.Contains(s, "inline-pw") {
			t.Errorf("the password leaks: %s", s)
		}
	}
	t.Setenv("WHARF_TEST_SMTP_PW", "env-pw")
	cfg = mustParse(t, "smtp: {host: h, username: u, password: {env: WHARF_TEST_SMTP_PW}}\n"+head, testDir)
	out, _ = yaml.Marshal(cfg.SMTP)
	if strings.Contains(string(out), "env-pw") || !strings.Contains(string(out), "env: WHARF_TEST_SMTP_PW") {
		t.Errorf("marshalled: %s", out)
	}
}

func TestSMTPAndAsyncProblems(t *testing.T) {
	t.Setenv("WHARF_TEST_SMTP_SECRET", "do-not-print")
	tests := []struct {
		name, yaml, key string
		line            int
		msg             string
	}{
		{"no host", "smtp: {port: 25}\n" + head, "smtp.host", 1, "the relay's host name is required"},
		{"host with port", "smtp: {host: \"h:25\"}\n" + head, "smtp.host", 1, `invalid host "h:25"`},
		{"bad tls", "smtp: {host: h, tls: ssl}\n" + head, "smtp.tls", 1, `invalid value "ssl" (allowed: starttls, implicit, none)`},
		{"bad port", "smtp: {host: h, port: 70000}\n" + head, "smtp.port", 1, "invalid port 70000"},
		{"missing env", "smtp:\n  host: h\n  username: u\n  password: {env: WHARF_TEST_NO_SUCH_VAR}\n" + head, "smtp.password", 4, "environment variable WHARF_TEST_NO_SUCH_VAR is not set"},
		{"missing file", "smtp:\n  host: h\n  username: u\n  password: {file: nope.pw}\n" + head, "smtp.password", 4, "cannot read secret file"},
		{"both forms", "smtp:\n  host: h\n  username: u\n  password: {env: A, file: b}\n" + head, "smtp.password", 4, "a secret takes env or file, not both"},
		{"unknown secret key", "smtp:\n  host: h\n  username: u\n  password: {vault: x}\n" + head, "smtp.password", 4, `unknown key "vault" in a secret`},
		{"password without user", "smtp:\n  host: h\n  password: {env: WHARF_TEST_SMTP_SECRET}\n" + head, "smtp.password", 3, "a password needs a username"},
		{"auth in clear", "smtp:\n  host: h\n  tls: none\n  username: u\n  password: {env: WHARF_TEST_SMTP_SECRET}\n" + head, "smtp.username", 4, "would send the password in clear"},
		{"bad from", "smtp: {host: h, from: not an address}\n" + head, "smtp.from", 1, `invalid sender address "not an address"`},
		{"site smtp", head + "    smtp: {tls: starttls}\n", "sites[0].smtp.host", 7, "the relay's host name is required"},
		{"tiny message size", "smtp: {host: h, max_message_size: 10}\n" + head, "smtp.max_message_size", 1, "must be at least 1KiB"},
		{"async gate", head + "    event_handlers:\n      - event: BeforeFileUpload\n        script: log-session.lua\n        mode: async\n", "sites[0].event_handlers[0].mode", 10,
			"BeforeFileUpload cannot be async: its operation waits for what the script decides"},
		{"async auth", head + user + "        event_handlers:\n          - {event: OnAuthPassword, script: log-session.lua, mode: async}\n", "sites[0].users[0].event_handlers[0].mode", 12,
			"OnAuthPassword cannot be async"},
		{"bad mode", head + handler + "        mode: later\n", "sites[0].event_handlers[0].mode", 10, `invalid value "later" (allowed: sync, async)`},
		{"bad on_full", head + handler + "        mode: async\n        on_full: block\n", "sites[0].event_handlers[0].on_full", 11, `invalid value "block" (allowed: drop, wait)`},
		{"on_full of a sync handler", head + handler + "        on_full: wait\n", "sites[0].event_handlers[0].on_full", 10, "on_full applies to async handlers only"},
		{"no workers", "scripting: {async_workers: 0}\n" + head, "scripting.async_workers", 1, "must be at least 1"},
		{"no queue", "scripting: {async_queue: 0}\n" + head, "scripting.async_queue", 1, "must be at least 1"},
		{"small spool", "scripting: {mail_spool: 1KiB}\n" + head, "scripting.mail_spool", 1, "must be at least 1MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "wharf.yaml", testDir)
			if err == nil {
				t.Fatal("want an error")
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Key != tt.key || ps[0].Line != tt.line || !strings.Contains(ps[0].Msg, tt.msg) || ps[0].File != "wharf.yaml" {
				t.Errorf("problems = %v\nwant wharf.yaml:%d: %s: …%s…", ps, tt.line, tt.key, tt.msg)
			}
			if strings.Contains(err.Error(), "do-not-print") {
				t.Errorf("the secret leaks: %v", err)
			}
		})
	}
}

func TestAsyncHandlerKeys(t *testing.T) {
	cfg := mustParse(t, head+handler+"        mode: async\n        on_full: wait\n", testDir)
	h := cfg.Sites[0].EventHandlers[0]
	if h.Mode != "async" || h.OnFull != "wait" {
		t.Errorf("handler = %+v", h)
	}
	h = mustParse(t, head+handler, testDir).Sites[0].EventHandlers[0]
	if h.Mode != "sync" || h.OnFull != "drop" {
		t.Errorf("defaults = mode %q on_full %q, want sync, drop", h.Mode, h.OnFull)
	}
	for _, ev := range AsyncEvents {
		if !containsString(Events, ev) {
			t.Errorf("AsyncEvents names %q, not an event", ev)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
