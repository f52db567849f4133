// Package accept keeps a listener serving through accept errors that pass.
//
// accept(2) fails for reasons that say nothing about the listening socket: the process or the
// system is out of file descriptors (EMFILE, ENFILE) or buffers (ENOBUFS, ENOMEM), or a
// client gave up before it was accepted (ECONNABORTED). A server loop that returns on such an
// error stops a protocol for good while the process keeps running. Wrap retries every error
// but a closed listener's, waiting between attempts as net/http does, and logs the errors at
// most once per interval so that a long shortage cannot flood the log. Throttle is that rate
// limit on its own, for other events of accepting (connections a policy refuses).
package accept

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Defaults of the retry and log rates.
const (
	// MinDelay is the first wait after a failed accept; it doubles with each failure in a
	// row, up to MaxDelay (net/http's numbers).
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
	// LogInterval is the least time between two warnings of one Reporter.
	LogInterval = 10 * time.Second
)

// Throttle lets a recurring event be logged at most once per interval: a flood of them
// (accept errors in a shortage, connections refused at accept) cannot flood the log, and the
// line that is logged says how many were not.
type Throttle struct {
	every time.Duration
	now   func() time.Time // time.Now; tests replace it

	mu         sync.Mutex
	last       time.Time // when the last line was logged; zero before the first
	suppressed int       // events not logged since then
}

// NewThrottle returns a Throttle of one line per every (LogInterval when not positive).
func NewThrottle(every time.Duration) *Throttle {
	if every <= 0 {
		every = LogInterval
	}
	return &Throttle{every: every, now: time.Now}
}

// Allow reports whether an event that happens now may be logged and, if so, how many events
// were not logged since the last one that was.
func (t *Throttle) Allow() (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.suppressed++
		return false, 0
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	return true, n
}

// Reporter logs accept errors at most once per interval; a warning says how many errors were
// not logged since the last one. One Reporter may serve several listeners (a server's
// passive data listeners, which come and go with each transfer).
type Reporter struct {
	log      *slog.Logger
	throttle *Throttle
}

// NewReporter returns a Reporter that logs to log (slog.Default() when nil) at most once
// per every (LogInterval when not positive).
func NewReporter(log *slog.Logger, every time.Duration) *Reporter {
	if log == nil {
		log = slog.Default()
	}
	return &Reporter{log: log, throttle: NewThrottle(every)}
}

func (r *Reporter) report(addr net.Addr, err error, wait time.Duration) {
	ok, n := r.throttle.Allow()
	if !ok {
		return
	}
	attrs := []any{"address", addr.String(), "err", err, "retry_in", wait.String()}
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	r.log.Warn("accept failed; retrying", attrs...)
}

// Listener is a net.Listener whose Accept retries failed attempts (see Wrap).
type Listener struct {
	net.Listener
	rep                *Reporter
	minDelay, maxDelay time.Duration

	done      chan struct{} // closed by Close: ends a wait between attempts
	closeOnce sync.Once
}

// Wrap returns l with an Accept that retries every error except a closed listener's and an
// expired deadline's (a passive FTP listener has one; the deadline is its caller's). Between
// attempts it waits MinDelay, doubling up to MaxDelay; Close ends the wait. Errors go to r.
func Wrap(l net.Listener, r *Reporter) *Listener {
	if r == nil {
		r = NewReporter(nil, 0)
	}
	return &Listener{Listener: l, rep: r, minDelay: MinDelay, maxDelay: MaxDelay, done: make(chan struct{})}
}

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		select {
		case <-l.done:
			return nil, l.closedError()
		default:
		}
		if errors.Is(err, net.ErrClosed) || isDeadline(err) {
			return nil, err
		}
		delay = min(max(2*delay, l.minDelay), l.maxDelay)
		l.rep.report(l.Addr(), err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, l.closedError()
		}
	}
}

// Close closes the listener and ends a wait between attempts.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// closedError is what Accept returns after Close, shaped like the net package's own (callers
// such as ftpserverlib look for a *net.OpError around net.ErrClosed).
func (l *Listener) closedError() error {
	return &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
}

// isDeadline reports whether err is an expired deadline rather than a failure: the net
// package's os.ErrDeadlineExceeded, or a timeout that is not a system error (ETIMEDOUT from
// accept(2) is a failed connection, to be retried like the others).
func isDeadline(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
