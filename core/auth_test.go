package core_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

func testSite(t *testing.T, users []config.User, d core.Dispatcher, mutate ...func(*config.Site)) *core.Site {
	t.Helper()
	yes := true
	c := &config.Site{
		Name:   "t",
		Limits: config.Limits{MaxConnections: 50, MaxConnectionsPerIP: 50, MaxSessionsPerUser: 10},
		Protector: config.Protector{Enabled: &yes, Threshold: 10, BanFor: config.Duration{Duration: time.Minute},
			Safe: []config.Prefix{mustPrefix(t, "127.0.0.1/32")}},
		VFS:   []config.VFS{{Name: "mem", Type: "memory"}},
		Users: users,
	}
	for _, m := range mutate {
		m(c)
	}
	if d == nil {
		d = core.NopDispatcher{}
	}
	s, err := core.NewSite(c, core.Options{Events: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func mustPrefix(t *testing.T, s string) (p config.Prefix) {
	t.Helper()
	v, err := config.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	p.Prefix = v
	return p
}

func connect(t *testing.T, s *core.Site, ip, proto string) *core.Session {
	t.Helper()
	sess, err := s.Connect(context.Background(), core.ConnInfo{
		Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 5555}, Protocol: proto})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(sess.Close)
	return sess
}

func user(id string, mut ...func(*config.User)) config.User {
	u := config.User{ID: id, Password: "plain:pw", Home: config.Mount{VFS: "mem", Permissions: []string{"all"}}}
	for _, m := range mut {
		m(&u)
	}
	return u
}

func TestAuthPassword(t *testing.T) {
	argon, err := core.HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := core.HashPasswordBcrypt("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	d := &coretest.Dispatcher{}
	d.On(core.OnAuthFail, func(*core.Event) {})
	d.On(core.OnAuthSuccess, func(*core.Event) {})
	site := testSite(t, []config.User{
		user("argon", func(u *config.User) { u.Password = argon }),
		user("bcrypt", func(u *config.User) { u.Password = bc }),
		user("plain"),
		user("ftponly", func(u *config.User) { u.Subsystems = []string{"FTP"} }),
		user("office", func(u *config.User) { u.AllowFrom = []config.Prefix{mustPrefix(t, "192.0.2.0/24")} }),
		user("nopass", func(u *config.User) { u.Password = "" }),
	}, d)
	cases := []struct {
		user, pass, ip, proto string
		ok                    bool
	}{
		{"argon", "s3cret", "127.0.0.1", core.ProtoSFTP, true},
		{"argon", "wrong", "127.0.0.1", core.ProtoSFTP, false},
		{"bcrypt", "s3cret", "127.0.0.1", core.ProtoFTP, true},
		{"bcrypt", "S3cret", "127.0.0.1", core.ProtoFTP, false},
		{"plain", "pw", "127.0.0.1", core.ProtoSFTP, true},
		{"nobody", "pw", "127.0.0.1", core.ProtoSFTP, false},
		{"ftponly", "pw", "127.0.0.1", core.ProtoSFTP, false},
		{"ftponly", "pw", "127.0.0.1", core.ProtoFTP, true},
		{"office", "pw", "127.0.0.1", core.ProtoSFTP, false},
		{"office", "pw", "192.0.2.10", core.ProtoSFTP, true},
		{"nopass", "", "127.0.0.1", core.ProtoSFTP, false},
		{"", "pw", "127.0.0.1", core.ProtoSFTP, false},
	}
	for _, c := range cases {
		sess := connect(t, site, c.ip, c.proto)
		err := sess.AuthPassword(context.Background(), c.user, c.pass)
		if c.ok != (err == nil) {
			t.Errorf("%s/%q from %s over %s: err=%v, want ok=%v", c.user, c.pass, c.ip, c.proto, err, c.ok)
			continue
		}
		if err != nil {
			// The same message whatever the reason: no user enumeration.
			if !errors.Is(err, core.ErrAuth) || err.Error() != "auth: authentication failed" {
				t.Errorf("%s: error %q, want the generic auth failure", c.user, err)
			}
			if sess.User() != nil || sess.UserID() != "" {
				t.Errorf("%s: user set after failure", c.user)
			}
			if !strings.Contains(sess.LastError(), "authentication failed") {
				t.Errorf("%s: last error %q", c.user, sess.LastError())
			}
		} else if sess.UserID() != c.user {
			t.Errorf("UserID = %q, want %q", sess.UserID(), c.user)
		}
	}
	var fails, oks int
	for _, e := range d.Fired() {
		switch e {
		case core.OnAuthFail:
			fails++
		case core.OnAuthSuccess:
			oks++
		}
	}
	if fails != 7 || oks != 5 {
		t.Errorf("OnAuthFail fired %d times, OnAuthSuccess %d; want 7 and 5", fails, oks)
	}
}

func TestAuthMultiStep(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	_ = priv
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _ := ssh.NewPublicKey(other)
	site := testSite(t, []config.User{user("two", func(u *config.User) {
		u.PublicKeys = []string{string(ssh.MarshalAuthorizedKey(sshPub))}
		u.AuthMethods = []string{"publickey+password"}
	})}, nil)
	ctx := context.Background()

	sess := connect(t, site, "127.0.0.1", core.ProtoSFTP)
	if err := sess.AuthPassword(ctx, "two", "pw"); !errors.Is(err, core.ErrAuth) {
		t.Fatalf("password first: %v, want auth failure (chain starts with publickey)", err)
	}
	if sess.AcceptsKey("two", otherPub) {
		t.Fatal("AcceptsKey accepted a foreign key")
	}
	if !sess.AcceptsKey("two", sshPub) {
		t.Fatal("AcceptsKey refused the user's key")
	}
	err := sess.AuthPublicKey(ctx, "two", sshPub)
	var partial *core.PartialAuthError
	if !errors.As(err, &partial) || !slices.Equal(partial.Next, []string{"password"}) {
		t.Fatalf("key step: %v, want partial success with next [password]", err)
	}
	if sess.User() != nil {
		t.Fatal("user set after the first step")
	}
	if err := sess.AuthPassword(ctx, "two", "wrong"); !errors.Is(err, core.ErrAuth) {
		t.Fatalf("wrong password second: %v", err)
	}
	if err := sess.AuthPassword(ctx, "two", "pw"); err != nil {
		t.Fatalf("password second: %v", err)
	}
	if sess.UserID() != "two" {
		t.Fatalf("UserID = %q", sess.UserID())
	}
}

func TestAuthInteractiveQuestions(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXP"
	d := &coretest.Dispatcher{}
	d.On(core.OnAuthInteractiveSetQuestions, func(ev *core.Event) {
		ev.Session.AddQuestionTOTP(30, "Code: ")
		ev.Session.AddQuestion(10, "Favourite colour? ", "blue", true)
		ev.Session.AddQuestionPassword(20, "Password: ")
		ev.Session.AddQuestion(10, "Pet? ", "42", false)
	})
	site := testSite(t, []config.User{user("kim", func(u *config.User) { u.TOTPSecret = secret })}, d)
	ctx := context.Background()
	code := func() string {
		c, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sess := connect(t, site, "127.0.0.1", core.ProtoSFTP)
	qs, err := sess.InteractiveQuestions(ctx, "kim")
	if err != nil {
		t.Fatal(err)
	}
	var prompts []string
	for _, q := range qs {
		prompts = append(prompts, q.Prompt)
	}
	if !slices.Equal(prompts, []string{"Favourite colour? ", "Pet? ", "Password: ", "Code: "}) {
		t.Fatalf("prompts in order %q", prompts)
	}
	if !qs[0].Echo || qs[1].Echo || qs[2].Echo {
		t.Fatalf("echo flags wrong: %+v", qs)
	}
	if err := sess.AuthInteractive(ctx, "kim", []string{"blue", "42", "pw", "000000"}); err == nil {
		t.Fatal("wrong TOTP accepted")
	}
	_, _ = sess.InteractiveQuestions(ctx, "kim")
	if err := sess.AuthInteractive(ctx, "kim", []string{"red", "42", "pw", code()}); err == nil {
		t.Fatal("wrong literal answer accepted")
	}
	_, _ = sess.InteractiveQuestions(ctx, "kim")
	c := code()
	if err := sess.AuthInteractive(ctx, "kim", []string{"blue", "42", "pw", c}); err != nil {
		t.Fatalf("right answers refused: %v", err)
	}
	// A TOTP code is accepted once per session.
	sess2 := connect(t, site, "127.0.0.1", core.ProtoSFTP)
	_, _ = sess2.InteractiveQuestions(ctx, "kim")
	if err := sess2.AuthInteractive(ctx, "kim", []string{"blue", "42", "pw", c}); err != nil {
		t.Fatalf("same code in another session: %v", err)
	}

	// Without script questions: one password prompt.
	plain := testSite(t, []config.User{user("lee")}, nil)
	s3 := connect(t, plain, "127.0.0.1", core.ProtoSFTP)
	qs, err = s3.InteractiveQuestions(ctx, "lee")
	if err != nil || len(qs) != 1 || qs[0].Echo {
		t.Fatalf("default questions %+v, %v", qs, err)
	}
	if err := s3.AuthInteractive(ctx, "lee", []string{"pw"}); err != nil {
		t.Fatalf("default password prompt: %v", err)
	}
}

func TestAuthFromScript(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.OnAuthPassword, func(ev *core.Event) {
		if ev.Session.User() != nil {
			t.Error("GetUser() set during OnAuthPassword")
		}
		if ev.Session.UserID() != "" {
			t.Error("GetUserID() not empty before authentication")
		}
		if strings.HasPrefix(ev.Session.LastCommand(), "AUTH ext-") {
			ev.Session.AuthenticateFromScript()
		}
		if strings.HasSuffix(ev.Session.LastCommand(), "blocked") {
			ev.Session.BlockOperation()
		}
	})
	catchAll := config.User{ID: "*", Home: config.Mount{VFS: "mem", Permissions: []string{"list", "download"}}}
	site := testSite(t, []config.User{user("blocked"), catchAll}, d)
	ctx := context.Background()
	s := connect(t, site, "127.0.0.1", core.ProtoFTP)
	if err := s.AuthPassword(ctx, "ext-joe", "anything"); err != nil {
		t.Fatalf("script authentication: %v", err)
	}
	if s.UserID() != "ext-joe" {
		t.Fatalf("UserID = %q", s.UserID())
	}
	if err := s.Mkdir(ctx, "/x"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("catch-all profile permissions not applied: mkdir = %v", err)
	}
	// Acceptance given in OnAuthRequest for one name does not carry over to another name.
	d.On(core.OnAuthRequest, func(ev *core.Event) {
		if strings.HasSuffix(ev.Session.LastCommand(), "USER ext-acme") {
			ev.Session.AuthenticateFromScript()
		}
	})
	sw := connect(t, site, "127.0.0.1", core.ProtoFTP)
	if err := sw.BeginAuth(core.WithCommand(ctx, "USER ext-acme"), "ext-acme"); err != nil {
		t.Fatal(err)
	}
	if err := sw.AuthPassword(core.WithCommand(ctx, "PASS ****"), "blocked", "wrong"); !errors.Is(err, core.ErrAuth) {
		t.Fatalf("script acceptance leaked to another user name: %v", err)
	}
	b := connect(t, site, "127.0.0.1", core.ProtoFTP)
	if err := b.AuthPassword(ctx, "blocked", "pw"); !errors.Is(err, core.ErrAuth) {
		t.Fatalf("BlockOperation in OnAuthPassword: %v", err)
	}
	// Ids from scripts end up in {user} paths: anything but a plain name is refused.
	for _, bad := range []string{"ext-../../etc", "ext-a/b", "ext- ", "*"} {
		s := connect(t, site, "127.0.0.1", core.ProtoFTP)
		if err := s.AuthPassword(ctx, bad, "x"); !errors.Is(err, core.ErrAuth) {
			t.Fatalf("script auth of id %q: %v", bad, err)
		}
	}
	// Without a catch-all profile a script cannot invent a user.
	site2 := testSite(t, nil, d)
	s2 := connect(t, site2, "127.0.0.1", core.ProtoFTP)
	if err := s2.AuthPassword(ctx, "ext-joe", "x"); !errors.Is(err, core.ErrAuth) {
		t.Fatalf("script auth without catch-all: %v", err)
	}
}

func TestSessionLimitsAndRegistry(t *testing.T) {
	site := testSite(t, []config.User{user("u", func(u *config.User) { u.MaxSessions = 2 })}, nil,
		func(c *config.Site) { c.Limits.MaxConnectionsPerIP = 3 })
	ctx := context.Background()
	var sessions []*core.Session
	for i := range 3 {
		s := connect(t, site, "127.0.0.1", core.ProtoSFTP)
		sessions = append(sessions, s)
		err := s.AuthPassword(ctx, "u", "pw")
		if i < 2 && err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, core.ErrLimit) {
			t.Fatalf("third session of a user limited to two: %v", err)
		}
	}
	if _, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("fourth connection from one IP: %v", err)
	}
	if n := site.CountByUser("u"); n != 2 {
		t.Fatalf("CountByUser = %d", n)
	}
	ids := map[string]bool{}
	for _, s := range site.Sessions() {
		ids[s.ID()] = true
	}
	if len(ids) != 3 {
		t.Fatalf("registry has %d distinct sessions, want 3", len(ids))
	}
	sessions[0].Close()
	if n := site.CountByUser("u"); n != 1 {
		t.Fatalf("CountByUser after close = %d", n)
	}
	closed := make(chan struct{})
	sessions[1].SetCloser(func() { close(closed) })
	if !site.Kick(sessions[1].ID()) {
		t.Fatal("Kick did not find the session")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Kick did not call the closer")
	}
}

func TestBanAndLists(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.OnBlocklistAdd, func(*core.Event) {})
	d.On(core.OnBlocklistHit, func(*core.Event) {})
	now := time.Now()
	clock := func() time.Time { return now }
	c := &config.Site{Name: "b", VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Protector: config.Protector{BanFor: config.Duration{Duration: time.Minute},
			Safe:  []config.Prefix{mustPrefix(t, "127.0.0.1")},
			Block: []config.Prefix{mustPrefix(t, "198.51.100.0/24")}}}
	site, err := core.NewSite(c, core.Options{Events: d, Now: func() time.Time { return clock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dial := func(ip string) error {
		s, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip)}})
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := dial("198.51.100.7"); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("block-listed address: %v", err)
	}
	s := connect(t, site, "203.0.113.9", core.ProtoFTP)
	s.Terminate(true)
	if err := dial("203.0.113.9"); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("banned address: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if err := dial("203.0.113.9"); err != nil {
		t.Fatalf("ban not lifted after ban_for: %v", err)
	}
	safe := connect(t, site, "127.0.0.1", core.ProtoFTP)
	safe.Terminate(true)
	if err := dial("127.0.0.1"); err != nil {
		t.Fatalf("safe address was banned: %v", err)
	}
	var adds, hits int
	for _, e := range d.Fired() {
		switch e {
		case core.OnBlocklistAdd:
			adds++
		case core.OnBlocklistHit:
			hits++
		}
	}
	if adds != 1 || hits != 2 {
		t.Fatalf("OnBlocklistAdd %d, OnBlocklistHit %d; want 1 and 2", adds, hits)
	}
}

func TestSessionIDs(t *testing.T) {
	site := testSite(t, nil, nil)
	seen := map[string]bool{}
	prev := ""
	for range 200 {
		s := connect(t, site, "127.0.0.1", core.ProtoFTP)
		id := s.ID()
		if seen[id] || len(id) != 26 {
			t.Fatalf("bad or duplicate id %q", id)
		}
		if id < prev[:min(len(prev), 10)] {
			t.Fatalf("ids not time-ordered: %q after %q", id, prev)
		}
		seen[id], prev = true, id
		s.Close()
	}
}

func TestConcurrentLoginsShareHashSlots(t *testing.T) {
	argon, err := core.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	site := testSite(t, []config.User{user("h", func(u *config.User) { u.Password = argon })}, nil,
		func(c *config.Site) { c.Limits.MaxSessionsPerUser = 100 })
	ctx := context.Background()
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			s, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Protocol: core.ProtoFTP})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.AuthPassword(ctx, "h", "pw")
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent login: %v", err)
		}
	}
}
