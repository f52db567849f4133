package accept

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// fakeListener returns queued results from Accept, then repeats the last error (or blocks
// when the queue ended with a connection) until closed.
type fakeListener struct {
	mu      sync.Mutex
	results []any // net.Conn or error
	calls   int
	closed  chan struct{}
	once    sync.Once
}

func newFake(results ...any) *fakeListener {
	return &fakeListener{results: results, closed: make(chan struct{})}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	f.calls++
	var r any
	switch {
	case len(f.results) > 1:
		r, f.results = f.results[0], f.results[1:]
	case len(f.results) == 1:
		r = f.results[0]
		if _, isConn := r.(net.Conn); isConn {
			f.results = nil
		}
	}
	f.mu.Unlock()
	select {
	case <-f.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	default:
	}
	switch r := r.(type) {
	case net.Conn:
		return r, nil
	case error:
		return nil, r
	}
	<-f.closed
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
}

func (f *fakeListener) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2022} }

func (f *fakeListener) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// acceptErr is an error as the net package returns it from accept4(2).
func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// records collects log records.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) all() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		m := map[string]string{"msg": rec.Message, "level": rec.Level.String()}
		rec.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

func TestRetriesTemporaryErrors(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	fake := newFake(acceptErr(syscall.EMFILE), acceptErr(syscall.ECONNABORTED), acceptErr(syscall.ENOBUFS),
		acceptErr(syscall.ENFILE), acceptErr(syscall.ETIMEDOUT), errors.New("something else"), server)
	var logs records
	rep := NewReporter(slog.New(&logs), time.Hour)
	clock := time.Unix(1000, 0)
	rep.throttle.now = func() time.Time {
		clock = clock.Add(2 * time.Hour) // every error is logged, so each wait can be seen
		return clock
	}
	l := Wrap(fake, rep)
	l.minDelay, l.maxDelay = time.Millisecond, 4*time.Millisecond
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if c != server {
		t.Fatalf("Accept returned %v, want the queued connection", c)
	}
	if n := fake.Calls(); n != 7 {
		t.Fatalf("%d accept calls, want 7 (six errors, then the connection)", n)
	}
	got := logs.all()
	want := []string{"1ms", "2ms", "4ms", "4ms", "4ms", "4ms"}
	if len(got) != len(want) {
		t.Fatalf("%d log lines, want %d: %v", len(got), len(want), got)
	}
	for i, g := range got {
		if g["level"] != "WARN" || g["retry_in"] != want[i] || g["address"] != "127.0.0.1:2022" || g["err"] == "" {
			t.Errorf("line %d = %v, want a warning with retry_in=%s", i, g, want[i])
		}
	}
	if got[0]["err"] != acceptErr(syscall.EMFILE).Error() {
		t.Errorf("first line's error %q", got[0]["err"])
	}
}

func TestWarningsAreRateLimited(t *testing.T) {
	var logs records
	rep := NewReporter(slog.New(&logs), 10*time.Second)
	clock := time.Unix(1000, 0)
	rep.throttle.now = func() time.Time { return clock }
	l := Wrap(newFake(), rep)
	err := acceptErr(syscall.EMFILE)
	for range 100 {
		rep.report(l.Addr(), err, time.Second)
	}
	if n := len(logs.all()); n != 1 {
		t.Fatalf("100 errors within the interval gave %d lines, want 1", n)
	}
	clock = clock.Add(9 * time.Second)
	rep.report(l.Addr(), err, time.Second)
	clock = clock.Add(2 * time.Second)
	rep.report(l.Addr(), err, time.Second)
	got := logs.all()
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2: %v", len(got), got)
	}
	if _, ok := got[0]["suppressed"]; ok {
		t.Errorf("the first line counts suppressed errors: %v", got[0])
	}
	if got[1]["suppressed"] != "100" {
		t.Errorf("second line %v, want suppressed=100 (99 + 1 errors since the first)", got[1])
	}
}

func TestCloseEndsTheWait(t *testing.T) {
	fake := newFake(acceptErr(syscall.EMFILE))
	l := Wrap(fake, NewReporter(slog.New(&records{}), 0))
	l.minDelay, l.maxDelay = time.Hour, time.Hour // only Close can end the wait
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	coretest.Eventually(t, 10*time.Second, "the first accept", func() bool { return fake.Calls() >= 1 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "accept" {
			t.Fatalf("Accept after Close: %#v, want a *net.OpError", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waiting 10s after Close")
	}
	if n := fake.Calls(); n != 1 {
		t.Fatalf("%d accept calls, want 1", n)
	}
}

func TestClosedAndDeadlineErrorsReturn(t *testing.T) {
	for name, err := range map[string]error{
		"closed":   &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed},
		"deadline": &net.OpError{Op: "accept", Net: "tcp", Err: os.ErrDeadlineExceeded},
		"timeout":  &net.OpError{Op: "accept", Net: "tcp", Err: timeoutError{}},
	} {
		t.Run(name, func(t *testing.T) {
			fake := newFake(err)
			var logs records
			l := Wrap(fake, NewReporter(slog.New(&logs), 0))
			l.minDelay, l.maxDelay = time.Hour, time.Hour
			_, got := l.Accept()
			if got != err {
				t.Fatalf("Accept: %v, want %v unchanged", got, err)
			}
			if n := len(logs.all()); n != 0 {
				t.Fatalf("%d warnings, want none", n)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestRealListenerAfterClose: a real TCP listener, closed while Accept waits, ends Accept.
func TestRealListenerAfterClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(ln, nil)
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Accept: %v", err)
	}
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	_ = l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
