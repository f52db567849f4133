package core

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
)

const testQuiet = 100 * time.Millisecond

// releaseLog records the calls of an injected release function.
type releaseLog struct {
	mu       sync.Mutex
	at       []time.Time
	problems []string
}

func (l *releaseLog) record(problem string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, time.Now())
	if problem != "" {
		l.problems = append(l.problems, problem)
	}
}

func (l *releaseLog) snapshot() ([]time.Time, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...), append([]string(nil), l.problems...)
}

// waitFor waits until n releases happened (failing after 10 s), then for 3 quiet periods
// more, and checks that no other release came and that none saw a check in flight.
func (l *releaseLog) waitFor(t *testing.T, n int, quiet time.Duration) []time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		at, _ := l.snapshot()
		if len(at) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(quiet / 10)
	}
	time.Sleep(3 * quiet)
	at, problems := l.snapshot()
	if len(at) != n {
		t.Fatalf("%d releases, want %d", len(at), n)
	}
	for _, p := range problems {
		t.Error(p)
	}
	return at
}

// burst runs two overlapping checks, the smallest burst that is released.
func burst(m *memReleaser, memoryHard bool) {
	m.begin()
	m.begin()
	m.end(memoryHard)
	m.end(memoryHard)
}

// newTestReleaser returns a releaser whose release records whether a check was in flight.
func newTestReleaser(quiet time.Duration) (*memReleaser, *releaseLog) {
	l := &releaseLog{}
	m := &memReleaser{quiet: quiet}
	m.release = func() {
		// fire holds m.mu while it calls release.
		if m.inFlight != 0 {
			l.record("release with a check in flight")
			return
		}
		l.record("")
	}
	return m, l
}

func TestMemReleaserOneReleaseAfterBurst(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lastEnds time.Time // latest time just before an end call
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				m.begin()
				time.Sleep(time.Duration(5+(g+i)%4*5) * time.Millisecond) // the hash
				mu.Lock()
				lastEnds = time.Now()
				mu.Unlock()
				m.end(true)
				time.Sleep(time.Duration(g%3) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	at := l.waitFor(t, 1, testQuiet)
	if d := at[0].Sub(lastEnds); d < testQuiet {
		t.Errorf("released %v after the last check ended, want at least the quiet period %v", d, testQuiet)
	}
}

func TestMemReleaserWaitsForChecksInFlight(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	m.begin() // a slow check (or one waiting for a hash slot) that outlives the quiet period
	m.begin()
	m.end(true) // a memory-hard check ends meanwhile
	time.Sleep(3 * testQuiet)
	if at, _ := l.snapshot(); len(at) != 0 {
		t.Fatalf("released while a check was in flight")
	}
	ended := time.Now()
	m.end(false)
	at := l.waitFor(t, 1, testQuiet)
	if d := at[0].Sub(ended); d < testQuiet {
		t.Errorf("released %v after the last check ended, want at least %v", d, testQuiet)
	}

	// The timer is armed when a slow check starts: it expires while the check runs.
	burst(m, true)
	m.begin()
	time.Sleep(3 * testQuiet)
	if at, _ := l.snapshot(); len(at) != 1 {
		t.Fatalf("released while a check was in flight")
	}
	m.end(false)
	l.waitFor(t, 2, testQuiet)
}

func TestMemReleaserIgnoresCheapChecks(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	for range 20 {
		burst(m, false) // bcrypt, plain, public key
	}
	l.waitFor(t, 0, testQuiet)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil {
		t.Error("cheap checks armed the timer")
	}
}

// Memory-hard checks that come one at a time keep the memory the next one needs: no release,
// however many there are, until two overlap.
func TestMemReleaserKeepsLoneChecksWarm(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	for range 3 {
		m.begin()
		m.end(true)
		time.Sleep(2 * testQuiet)
	}
	l.waitFor(t, 0, testQuiet)
	m.begin()
	m.begin() // a second login arrives while the first one's check runs
	m.end(true)
	m.end(true)
	l.waitFor(t, 1, testQuiet)
	// The count starts again after a release: a lone check brings none.
	m.begin()
	m.end(true)
	l.waitFor(t, 1, testQuiet)
}

func TestMemReleaserOncePerQuietPeriod(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	// Memory-hard bursts closer together than the quiet period: never quiet, no release.
	for range 8 {
		burst(m, true)
		time.Sleep(testQuiet / 4)
	}
	if at, _ := l.snapshot(); len(at) != 0 {
		t.Fatalf("%d releases during a run of checks %v apart", len(at), testQuiet/4)
	}
	at := l.waitFor(t, 1, testQuiet)
	// Nothing new to release: cheap checks after it do not bring another.
	burst(m, false)
	l.waitFor(t, 1, testQuiet)
	// A new memory-hard burst does, a quiet period after it.
	burst(m, true)
	at2 := l.waitFor(t, 2, testQuiet)
	if d := at2[1].Sub(at[0]); d < testQuiet {
		t.Errorf("releases %v apart, want at least %v", d, testQuiet)
	}
}

// TestMemReleaserEarlyCallback covers a timer callback that had already started when a check
// re-armed the timer: it must not release before the quiet period has passed.
func TestMemReleaserEarlyCallback(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	burst(m, true) // arms the timer
	m.fire()       // as if the previous expiry's callback ran just now
	if at, _ := l.snapshot(); len(at) != 0 {
		t.Fatal("a callback released right after a check ended")
	}
	l.waitFor(t, 1, testQuiet)
}

func TestMemReleaserStop(t *testing.T) {
	m, l := newTestReleaser(testQuiet)
	burst(m, true)
	m.stop()
	burst(m, true)
	l.waitFor(t, 0, testQuiet)
}

// memTestSite is a site with argon2id, bcrypt and plain users whose memory release is
// recorded instead of done; a release also records a hash slot that is taken.
func memTestSite(t *testing.T, quiet time.Duration) (*Site, *releaseLog) {
	t.Helper()
	argon, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := HashPasswordBcrypt("pw")
	if err != nil {
		t.Fatal(err)
	}
	no := false
	home := config.Mount{VFS: "mem", Permissions: []string{"all"}}
	c := &config.Site{
		Name:      "t",
		Protector: config.Protector{Enabled: &no},
		VFS:       []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{
			{ID: "argon", Password: argon, Home: home},
			{ID: "bcrypt", Password: bc, Home: home},
			{ID: "plain", Password: "plain:pw", Home: home},
		},
	}
	s, err := NewSite(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	l := &releaseLog{}
	s.mem.quiet = quiet
	s.mem.release = func() {
		if len(s.hashSlots) != 0 || s.mem.inFlight != 0 {
			l.record("release with a check in flight")
			return
		}
		l.record("")
	}
	return s, l
}

func memTestLogin(t *testing.T, s *Site, name, password string, interactive bool) error {
	t.Helper()
	ctx := context.Background()
	sess, err := s.Connect(ctx, ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, Protocol: ProtoFTP})
	if err != nil {
		t.Error(err)
		return err
	}
	defer sess.Close()
	if interactive {
		if _, err := sess.InteractiveQuestions(ctx, name); err != nil {
			return err
		}
		return sess.AuthInteractive(ctx, name, []string{password})
	}
	return sess.AuthPassword(ctx, name, password)
}

func TestSiteReleasesMemoryAfterArgon2Logins(t *testing.T) {
	site, l := memTestSite(t, testQuiet)

	// Cheap checks only: bcrypt and plain.
	for _, c := range [][2]string{{"bcrypt", "pw"}, {"plain", "pw"}} {
		_ = memTestLogin(t, site, c[0], c[1], false)
	}
	_ = memTestLogin(t, site, "plain", "pw", true)
	l.waitFor(t, 0, testQuiet)

	// A failed attempt, here an unknown user, runs every hash class of the site, argon2id
	// among them, so that it costs what any wrong password costs. Alone, it keeps its memory
	// for the next check; two at once are a burst.
	if err := memTestLogin(t, site, "nobody", "pw", false); err == nil {
		t.Fatal("unknown user logged in")
	}
	l.waitFor(t, 0, testQuiet)
	concurrently(t, 2, func(int) {
		if err := memTestLogin(t, site, "nobody", "pw", false); err == nil {
			t.Error("unknown user logged in")
		}
	})
	l.waitFor(t, 1, testQuiet)

	// A burst of argon2id logins, right and wrong, more than there are hash slots.
	concurrently(t, 2*cap(site.hashSlots)+2, func(i int) {
		pw := "pw"
		if i%3 == 0 {
			pw = "wrong"
		}
		if err := memTestLogin(t, site, "argon", pw, false); (err == nil) != (pw == "pw") {
			t.Errorf("argon login with %q: %v", pw, err)
		}
	})
	l.waitFor(t, 2, testQuiet)

	// Keyboard-interactive with an argon2id password counts too.
	concurrently(t, 2, func(int) {
		if err := memTestLogin(t, site, "argon", "pw", true); err != nil {
			t.Error(err)
		}
	})
	l.waitFor(t, 3, testQuiet)
}

// concurrently runs n calls of f at once, so that their password checks overlap (the
// ones that find no hash slot wait for one, in flight too), and waits for them.
func concurrently(t *testing.T, n int, f func(i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

func TestSiteShutdownCancelsMemoryRelease(t *testing.T) {
	quiet := 500 * time.Millisecond
	site, l := memTestSite(t, quiet)
	concurrently(t, 2, func(int) {
		if err := memTestLogin(t, site, "argon", "pw", false); err != nil {
			t.Error(err)
		}
	})
	if err := site.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, 0, quiet)
}

// A failed check is padded with one configured hash of each class (algorithm and cost) that
// the check did not run.
func TestHashClassesAndPadding(t *testing.T) {
	argonA, argonB := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$a2V5"
	bcA, bcB := "$2a$10$gk67jnghsP2FbV59AMbg/eE8udJECZWuxdBik48JDnyS4.IDEyZeC", "$2a$12$gk67jnghsP2FbV59AMbg/eE8udJECZWuxdBik48JDnyS4.IDEyZeC"
	classes := func(ds []dummy) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.class)
		}
		return out
	}
	for _, tc := range []struct {
		hashes []string
		want   []string
	}{
		{nil, nil},
		{[]string{"", "plain:pw"}, nil},
		{[]string{argonA, argonA}, []string{"argon2id/m=19456,t=2,p=1"}},
		{[]string{"plain:x", bcB, argonA, bcA, argonB}, []string{"bcrypt/12", "argon2id/m=19456,t=2,p=1", "bcrypt/10", "argon2id/m=65536,t=3,p=2"}},
	} {
		if got := classes(dummiesFor(tc.hashes)); !slices.Equal(got, tc.want) {
			t.Errorf("dummiesFor(%q) classes %q, want %q", tc.hashes, got, tc.want)
		}
	}
	bc, err := HashPasswordBcrypt("pw")
	if err != nil {
		t.Fatal(err)
	}
	argon, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	ds := dummiesFor([]string{bc, argon})
	for _, tc := range []struct {
		name, hash string
	}{{"bcrypt user", bc}, {"argon2id user", argon}, {"plain user", "plain:pw"}, {"no password", ""}} {
		w := &hashWork{}
		if w.check(tc.hash, "wrong") {
			t.Fatalf("%s: wrong password matched", tc.name)
		}
		w.pad(ds)
		slices.Sort(w.ran)
		if want := []string{"argon2id/m=19456,t=2,p=1", "bcrypt/10"}; !slices.Equal(w.ran, want) || !w.memoryHard {
			t.Errorf("%s: padded work %q (memory-hard %v), want %q", tc.name, w.ran, w.memoryHard, want)
		}
	}
}

// TestFailedAttemptsRunEveryHashClass: every way an attempt fails runs each configured hash
// class once (the timing itself is TestFailedLoginTimeDoesNotTellUsersApart), and a success
// runs only the user's own.
func TestFailedAttemptsRunEveryHashClass(t *testing.T) {
	argon, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := HashPasswordBcrypt("pw")
	if err != nil {
		t.Fatal(err)
	}
	no := false
	home := config.Mount{VFS: "mem", Permissions: []string{"all"}}
	site, err := NewSite(&config.Site{Name: "t", Protector: config.Protector{Enabled: &no},
		VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{
			{ID: "argon", Password: argon, Home: home},
			{ID: "bc", Password: bc, Home: home},
			{ID: "plain", Password: "plain:pw", Home: home},
			{ID: "keyonly", Home: home},
			{ID: "fenced", Password: bc, Home: home, AllowFrom: []config.Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}},
		}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"argon2id/m=19456,t=2,p=1", "bcrypt/10"}
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, answer string
		interactive, ok    bool
		want               []string
	}{
		{"unknown user", "nobody", "pw", false, false, all},
		{"argon2id user", "argon", "wrong", false, false, all},
		{"bcrypt user", "bc", "wrong", false, false, all},
		{"plain user", "plain", "wrong", false, false, all},
		{"user without password", "keyonly", "pw", false, false, all},
		{"right password, refused by allow_from", "fenced", "pw", false, false, all},
		{"interactive, unknown user", "nobody", "pw", true, false, all},
		{"interactive, bcrypt user", "bc", "wrong", true, false, all},
		{"interactive, plain user", "plain", "wrong", true, false, all},
		{"success, bcrypt user", "bc", "pw", false, true, []string{"bcrypt/10"}},
		{"success, interactive argon2id user", "argon", "pw", true, true, []string{"argon2id/m=19456,t=2,p=1"}},
		{"success, plain user", "plain", "pw", false, true, nil},
	} {
		sess, err := site.Connect(ctx, ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, Protocol: ProtoFTP})
		if err != nil {
			t.Fatal(err)
		}
		var work *hashWork
		check := passwordCheck(tc.answer)
		method, ev := MethodPassword, OnAuthPassword
		if tc.interactive {
			qs, err := sess.InteractiveQuestions(ctx, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			check, method, ev = sess.answersCheck(qs, []string{tc.answer}), MethodInteractive, OnAuthInteractive
		}
		err = sess.authenticate(ctx, tc.user, method, ev, func(u *User, w *hashWork) bool {
			work = w
			return check(u, w)
		})
		sess.Close()
		if (err == nil) != tc.ok {
			t.Fatalf("%s: %v", tc.name, err)
		}
		slices.Sort(work.ran)
		if !slices.Equal(work.ran, tc.want) {
			t.Errorf("%s: hashed %q, want %q", tc.name, work.ran, tc.want)
		}
	}
}
