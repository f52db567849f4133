package scripting_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// exampleEnv builds a site whose scripts_dir is testdata/scripts, the documented examples.
func exampleEnv(t *testing.T, handlers []config.EventHandler, users ...config.User) *env {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "scripts"))
	must(t, err)
	cfg, root := newConfig(t, nil, handlers, users...)
	cfg.ScriptsDir = dir
	return buildEnv(t, cfg, root)
}

func TestExampleLogSession(t *testing.T) {
	e := exampleEnv(t, []config.EventHandler{h("OnAuthSuccess", "log-session.lua"), h("OnNewConnection", "log-session.lua")})
	s := e.login("alice")
	e.wantLines("Session object is not available.", "User alice connected with session ID "+s.ID())
}

func TestExampleDenyExecutables(t *testing.T) {
	e := exampleEnv(t, []config.EventHandler{h("BeforeFileUpload", "deny-executables.lua")})
	s := e.login("alice")
	for _, p := range []string{"/x.exe", "/SETUP.EXE", "/run.ps1"} {
		if err := upload(s, p, "MZ"); !errors.Is(err, core.ErrDenied) {
			t.Errorf("upload %s: %v, want denied", p, err)
		}
	}
	for _, p := range []string{"/x.txt", "/exe", "/report.exe.pdf"} {
		if err := upload(s, p, "ok"); err != nil {
			t.Errorf("upload %s: %v", p, err)
		}
	}
	if n := len(e.logs.find("refused upload of an executable")); n != 3 {
		t.Errorf("%d refusal log lines, want 3", n)
	}
}

func TestExampleHideTempFiles(t *testing.T) {
	e := exampleEnv(t, []config.EventHandler{h("OnDirList", "hide-temp-files.lua")})
	s := e.login("alice")
	ctx := context.Background()
	must(t, s.Mkdir(ctx, "/docs"))
	for _, p := range []string{"/docs/a.docx", "/docs/~$a.docx", "/docs/b.tmp"} {
		must(t, upload(s, p, "x"))
	}
	fis, err := s.List(ctx, "/docs")
	must(t, err)
	if len(fis) != 1 || fis[0].Name() != "a.docx" {
		t.Fatalf("listing: %v", fis)
	}
	if _, err := download(s, "/docs/b.tmp"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("download of a hidden file: %v", err)
	}
}

func TestExampleTOTPSecondFactor(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	e := exampleEnv(t, []config.EventHandler{h("OnAuthInteractiveSetQuestions", "totp-second-factor.lua")},
		testUser("alice", func(u *config.User) { u.TOTPSecret = secret; u.AuthMethods = []string{"keyboard-interactive"} }),
		testUser("bob"))
	ctx := context.Background()
	ask := func(user string) (*core.Session, []core.Question) {
		s := e.connect("192.0.2.10", core.ProtoSFTP)
		qs, err := s.InteractiveQuestions(ctx, user)
		must(t, err)
		return s, qs
	}
	s, qs := ask("alice")
	if len(qs) != 2 || qs[0].Prompt != "Password: " || qs[1].Prompt != "Verification code: " || qs[0].Echo || qs[1].Echo {
		t.Fatalf("questions: %+v", qs)
	}
	code, err := totp.GenerateCode(secret, time.Now())
	must(t, err)
	if err := s.AuthInteractive(ctx, "alice", []string{"wrong", code}); err == nil {
		t.Fatal("wrong password accepted")
	}
	s, _ = ask("alice")
	must(t, s.AuthInteractive(ctx, "alice", []string{"pw", code}))
	// A user without a TOTP secret cannot pass the second question.
	s, _ = ask("bob")
	if err := s.AuthInteractive(ctx, "bob", []string{"pw", "123456"}); err == nil {
		t.Fatal("user without totp_secret accepted")
	}
}

func TestExampleExternalAuth(t *testing.T) {
	e := exampleEnv(t, []config.EventHandler{h("OnAuthRequest", "external-auth.lua"), h("OnAuthPassword", "external-auth.lua")},
		testUser("alice"), testUser("*", func(u *config.User) { u.Password = "" }))
	ctx := context.Background()
	for _, c := range []struct {
		user, ip string
		ok       bool
	}{
		{"acme", "203.0.113.5", true},
		{"acme", "192.0.2.1", false},
		{"globex", "198.51.100.20", true},
		{"initech", "203.0.113.5", false},
	} {
		s := e.connect(c.ip, core.ProtoFTP)
		err := s.AuthPassword(ctx, c.user, "whatever")
		if (err == nil) != c.ok {
			t.Errorf("%s from %s: %v, want ok=%v", c.user, c.ip, err, c.ok)
			continue
		}
		if c.ok {
			if s.UserID() != c.user {
				t.Errorf("authenticated as %q", s.UserID())
			}
			must(t, upload(s, "/hello.txt", "hi")) // the catch-all profile's home
		}
	}
	// Configured users still log in with their password.
	e.login("alice")
}

func TestExampleUploadList(t *testing.T) {
	e := exampleEnv(t, []config.EventHandler{h("AfterFileUpload", "upload-list.lua"), h("OnConnectionClose", "upload-list.lua")})
	s := e.login("alice")
	for _, p := range []string{"/a.csv", "/b.csv"} {
		must(t, upload(s, p, "1,2"))
	}
	s.Close()
	e.login("alice").Close() // nothing uploaded: nothing logged
	e.wantLines("alice uploaded 2 file(s): /a.csv, /b.csv")
}

func TestExampleQuarantine(t *testing.T) {
	e := exampleEnv(t, []config.EventHandler{h("AfterFileUpload", "quarantine.lua")})
	s := e.login("alice")
	if err := upload(s, "/Report.EXE.txt", "x"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("quarantined upload: %v", err)
	}
	must(t, upload(s, "/report.txt", "x"))
	names, err := os.ReadDir(filepath.Join(e.root, "alice"))
	must(t, err)
	var got []string
	for _, n := range names {
		got = append(got, n.Name())
	}
	if strings.Join(got, ",") != "report.txt" {
		t.Fatalf("files on disk: %v (the quarantined upload must be discarded)", got)
	}
}
