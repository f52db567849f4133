package scripting_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// TestGetSecret reads secrets from the environment and from a file; an unknown name is "",
// an unset variable is "" with a warning naming it, and a secret's value never reaches the
// log, even when a script logs it or an error message carries it.
func TestGetSecret(t *testing.T) {
	const token, key = "tok-9f8e7d6c5b4a", "file-secret-0123"
	t.Setenv("WHARF_TEST_TOKEN", token)
	script := lines(
		"Log('token=' .. GetSecret('token'))",
		"Log('len=' .. #GetSecret('token') .. ',' .. #GetSecret('key'))",
		"Log('match=' .. tostring(GetSecret('key') == '"+key+"'))",
		"Log('unknown=[' .. GetSecret('nope') .. ']')",
		"Log('unset=[' .. GetSecret('unset') .. ']')",
		"Log.Warn('bearer ' .. GetSecret('token') .. ' and ' .. GetSecret('key'))",
		"error('failed with ' .. GetSecret('key'))",
	)
	cfg, root := newConfig(t, map[string]string{"s.lua": script}, []config.EventHandler{h("OnAuthSuccess", "s.lua")})
	keyFile := filepath.Join(t.TempDir(), "key")
	must(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))
	cfg.Secrets = map[string]config.Secret{"token": {Env: "WHARF_TEST_TOKEN"}, "key": {File: keyFile},
		"unset": {Env: "WHARF_TEST_UNSET_VARIABLE"}}
	e := buildEnv(t, cfg, root)
	e.login("alice")
	got := e.kv()
	want := map[string]string{"token": "[secret]", "len": "16,16", "match": "true", "unknown": "[]", "unset": "[]"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	e.logs.mu.Lock()
	for _, r := range e.logs.records {
		text := r.Msg
		for _, v := range r.Attrs {
			text += " " + v
		}
		if strings.Contains(text, token) || strings.Contains(text, key) {
			t.Errorf("a secret reached the log: %s %v", r.Msg, r.Attrs)
		}
	}
	e.logs.mu.Unlock()
	if len(e.logs.find("bearer [secret] and [secret]")) != 1 {
		e.logs.dump(t)
		t.Errorf("Log.Warn line not redacted as expected")
	}
	if fails := e.logs.find("event script failed"); len(fails) != 1 || !strings.Contains(fails[0].Attrs["err"], "failed with [secret]") {
		t.Errorf("failure: %v", fails)
	}
	if w := e.engine.Warnings(); !slices.ContainsFunc(w, func(s string) bool {
		return strings.Contains(s, `secret "unset": environment variable WHARF_TEST_UNSET_VARIABLE is not set`)
	}) {
		t.Errorf("warnings %v", w)
	}
	// A reload reads the values again.
	t.Setenv("WHARF_TEST_TOKEN", "rotated-token-value")
	must(t, e.engine.Reload(cfg))
	e.logs.reset()
	e.login("alice")
	if got := e.kv(); got["len"] != "19,16" {
		t.Errorf("after reload: %v", got)
	}
}

// TestAnsweredQuestions runs Syncplify's example (v7 Terminate page): in OnAuthInteractive,
// ban the client after three wrong keyboard-interactive answers.
func TestAnsweredQuestions(t *testing.T) {
	const ban = `{
  var wrong = Session.GetAnsweredQuestions().filter(function (q) { return !q.OK; }).length;
  var all = Session.GetAnsweredQuestions();
  Log("answers=" + all.length + "," + wrong + "," + all[0].Question + "," + all[0].Pos);
  if (wrong >= 3) {
    Log.Warn("Too many wrong answers, banning " + Session.GetRemoteAddress());
    Terminate(true);
  }
}`
	cfg, root := newConfig(t, map[string]string{"ban.js": ban, "q.lua": "Session.AddQuestion(0, 'Colour?', 'blue', true)\n"},
		[]config.EventHandler{h("OnAuthInteractive", "ban.js"), h("OnAuthInteractiveSetQuestions", "q.lua")})
	e := buildEnv(t, cfg, root)
	s := e.connect("192.0.2.44", core.ProtoSFTP)
	ctx := context.Background()
	for i, answer := range []string{"red", "green", "blue", "pink"} {
		if _, err := s.InteractiveQuestions(ctx, "alice"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		err := s.AuthInteractive(ctx, "alice", []string{answer})
		if i == 2 && err != nil {
			t.Errorf("the right answer after two wrong ones: %v", err)
		}
		if i == 2 {
			break
		}
	}
	got := e.logs.scriptLines()
	if len(got) < 3 || got[0] != "answers=1,1,Colour?,0" || got[1] != "answers=2,2,Colour?,0" {
		e.logs.dump(t)
		t.Fatalf("lines %q", got)
	}
	// The third attempt was right: two wrong answers, no ban.
	if got[2] != "answers=3,2,Colour?,0" {
		t.Errorf("third line %q", got[2])
	}
	// A second client gives three wrong answers: banned.
	e.logs.reset()
	s2 := e.connect("192.0.2.45", core.ProtoSFTP)
	for range 3 {
		if _, err := s2.InteractiveQuestions(ctx, "alice"); err != nil {
			break
		}
		_ = s2.AuthInteractive(ctx, "alice", []string{"wrong"})
	}
	if !e.site.Banned(netip.MustParseAddr("192.0.2.45")) {
		e.logs.dump(t)
		t.Errorf("not banned after three wrong answers")
	}
	if e.site.Banned(netip.MustParseAddr("192.0.2.44")) {
		t.Errorf("the first client was banned")
	}
}

// TestExitSleepLog: Exit(code) logs a non-zero code and ends the run cleanly; Log's levels;
// Sleep pauses and is cut by the handler's timeout.
func TestExitSleepLog(t *testing.T) {
	scripts := map[string]string{
		"exit0.lua": "Exit()\nLog('after')\n",
		"exit2.js":  "{ if (!Session.GetUser()) { Exit(1); } Exit(2); Log('after'); }",
		"levels.lua": lines("Log.Debug('d')", "Log.Info('i')", "Log.Warn('w')", "Log.Error('e')", "Log:Info('self')",
			"local t = os.clock()", "Sleep(30)", "Sleep(-5)", "Sleep(0/0)", "Log('slept')"),
		"long.lua": "Sleep(60000)\nLog('not reached')\n",
	}
	cfg, root := newConfig(t, scripts, []config.EventHandler{
		h("OnAuthSuccess", "exit0.lua"), h("OnAuthSuccess", "exit2.js"), h("OnAuthSuccess", "levels.lua"),
		h("AfterDirCreate", "long.lua", timeout(300*time.Millisecond)),
	})
	e := buildEnv(t, cfg, root)
	s := e.login("alice")
	var levels []slog.Level
	e.logs.mu.Lock()
	for _, r := range e.logs.records {
		if r.Attrs["script"] == "levels.lua" {
			levels = append(levels, r.Level)
		}
	}
	e.logs.mu.Unlock()
	if !slices.Equal(levels, []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo, slog.LevelInfo}) {
		t.Errorf("levels %v", levels)
	}
	exits := e.logs.find("event script exited with code")
	if len(exits) != 1 || exits[0].Msg != "event script exited with code 2" || exits[0].Attrs["exit_code"] != "2" ||
		exits[0].Level != slog.LevelWarn || exits[0].Attrs["script"] != "exit2.js" {
		t.Errorf("exit lines %v", exits)
	}
	if slices.Contains(e.logs.scriptLines(), "after") || len(e.logs.find("event script failed")) != 0 {
		t.Errorf("Exit did not end the run cleanly: %q", e.logs.scriptLines())
	}
	var details []string
	for _, a := range e.actions() {
		if a.Name == "Exit" {
			details = append(details, a.Detail)
		}
	}
	if !slices.Equal(details, []string{"", "code=2"}) {
		t.Errorf("Exit actions %q", details)
	}
	start := time.Now()
	must(t, s.Mkdir(context.Background(), "/x"))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Sleep(60000) ran %v past a 300ms timeout", d)
	}
	if f := e.logs.find("event script timed out"); len(f) != 1 || !strings.Contains(f[0].Attrs["err"], "timed out after 300ms") {
		t.Errorf("timeout: %v", f)
	}
}
