package scripting_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// syncplifyEnv builds a site whose scripts_dir is testdata/scripts/syncplify.
func syncplifyEnv(t *testing.T, handlers []config.EventHandler) *env {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "scripts", "syncplify"))
	must(t, err)
	cfg, root := newConfig(t, nil, handlers)
	cfg.ScriptsDir = dir
	return buildEnv(t, cfg, root)
}

func TestSyncplifyListRootByTime(t *testing.T) {
	e := syncplifyEnv(t, []config.EventHandler{h("AfterDirCreate", "list-root-by-time.js")})
	s := e.login("alice")
	must(t, upload(s, "/old.txt", "12345"))
	// An hour older: made within one tick of the kernel's coarse clock, the file and the
	// folder would have the same time.
	hourAgo := time.Now().Add(-time.Hour)
	must(t, s.SetStat(context.Background(), "/old.txt", core.Attrs{Atime: &hourAgo, Mtime: &hourAgo}))
	must(t, s.Mkdir(context.Background(), "/new"))
	// Newest first; a folder's size is the file system's.
	got := e.logs.scriptLines()
	if len(got) != 1 || !regexp.MustCompile(`^root of alice: new/ \d+, old.txt 5$`).MatchString(got[0]) {
		t.Errorf("lines %q", got)
	}
}

func TestSyncplifyBanAfterWrongAnswers(t *testing.T) {
	e := syncplifyEnv(t, []config.EventHandler{h("OnAuthInteractive", "ban-after-wrong-answers.js")})
	s := e.connect("192.0.2.77", core.ProtoSFTP)
	ctx := context.Background()
	for range 3 {
		if _, err := s.InteractiveQuestions(ctx, "alice"); err != nil {
			break
		}
		_ = s.AuthInteractive(ctx, "alice", []string{"not the password"})
	}
	if !e.site.Banned(netip.MustParseAddr("192.0.2.77")) || len(e.logs.find("Too many wrong answers from 192.0.2.77")) != 1 {
		e.logs.dump(t)
		t.Errorf("not banned after three wrong answers")
	}
	// The right password at the first try: no ban.
	s2 := e.connect("192.0.2.78", core.ProtoSFTP)
	_, err := s2.InteractiveQuestions(ctx, "alice")
	must(t, err)
	must(t, s2.AuthInteractive(ctx, "alice", []string{"pw"}))
	if e.site.Banned(netip.MustParseAddr("192.0.2.78")) {
		t.Errorf("banned after a right answer")
	}
}

func TestSyncplifyExitCodes(t *testing.T) {
	e := syncplifyEnv(t, []config.EventHandler{h("OnNewConnection", "exit-codes.js"), h("OnAuthRequest", "exit-codes.js"),
		h("OnAuthSuccess", "exit-codes.js")})
	e.login("alice")
	var codes []string
	for _, r := range e.logs.find("event script exited with code") {
		codes = append(codes, r.Attrs["exit_code"])
	}
	if strings.Join(codes, ",") != "1,2" {
		e.logs.dump(t)
		t.Errorf("exit codes logged: %v", codes)
	}
	e.wantLines("user alice")
}
