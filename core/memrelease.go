package core

import (
	"sync"
	"time"
)

// memReleaseQuiet is how long no password-hash check may have been waiting or running before
// the memory that memory-hard checks freed is returned to the OS. It is far longer than the
// gaps inside a login burst (a check takes 30–80 ms, and clients of a burst queue for the
// hash slots), so a burst ends in one release, not one per login; and it is short enough that
// the memory is back before anyone looks. It also caps the cost of releasing, at most once
// per quiet period: a forced GC and a scavenge (3–11 ms in a test harness), then page faults
// when the next check touches its 19 MiB again (that check took 70–77 ms instead of 30–45).
// It is a constant, not a config key: neither side of the trade-off depends much on the
// deployment, and GOGC and GOMEMLIMIT remain for tuning the runtime itself.
const memReleaseQuiet = 2 * time.Second

// memReleaser returns memory to the OS after bursts of memory-hard password checks. argon2id
// allocates 19 MiB per check and drops it at the end; the Go runtime keeps freed heap mapped
// until its periodic GC (every 2 minutes when idle) and its background scavenger get to it,
// so after a login burst the process would hold hundreds of MB for minutes.
//
// Every check is bracketed by begin and end (the site does it around its hash slots). A
// memory-hard end marks a release as due. When the last check in flight ends, one timer is
// (re)armed for the quiet period; when it fires with no check in flight, none ended within the
// quiet period and a release due, it calls release (debug.FreeOSMemory) once. The release runs
// with the mutex held, so a check that starts meanwhile waits for it (a few ms, at most once
// per quiet period) and no check ever runs during a release. No goroutine per check: the
// steady-state cost is a mutex, a clock read and a timer reset per check.
//
// Only a burst is released: checks that overlapped (two or more in flight at once since the
// last release, waiting ones included). Checks that come one at a time never hold more than
// about two checks' worth of heap (the next check's allocation makes the collector free the
// previous one's), and that memory is exactly what the next check needs: releasing it made
// that check fault its 19 MiB in again, 80 ms instead of 33 ms of CPU for a lone argon2id
// login, which a server with one login every few seconds paid on every login.
type memReleaser struct {
	quiet   time.Duration
	release func()

	mu       sync.Mutex
	timer    *time.Timer // created on the first arm
	inFlight int         // checks between begin and end
	peak     int         // the most checks in flight at once since the last release
	due      bool        // a memory-hard check ended since the last release
	lastEnd  time.Time   // when the last check ended
	stopped  bool
}

// begin records a check that is about to wait for a hash slot or run.
func (m *memReleaser) begin() {
	m.mu.Lock()
	m.inFlight++
	m.peak = max(m.peak, m.inFlight)
	m.mu.Unlock()
}

// end records the end of a check begun with begin; memoryHard tells whether it ran a
// memory-hard hash (argon2id).
func (m *memReleaser) end(memoryHard bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight--
	m.lastEnd = time.Now()
	if memoryHard {
		m.due = true
	}
	if m.inFlight > 0 || !m.due || m.peak < 2 || m.stopped {
		return
	}
	if m.timer == nil {
		m.timer = time.AfterFunc(m.quiet, m.fire)
	} else {
		m.timer.Reset(m.quiet)
	}
}

// fire runs when the timer expires.
func (m *memReleaser) fire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || m.inFlight > 0 || !m.due {
		return // the end of the last check in flight arms the timer again
	}
	// A callback that had already started when end re-armed the timer comes here early.
	if wait := m.quiet - time.Since(m.lastEnd); wait > 0 {
		m.timer.Reset(wait)
		return
	}
	m.due = false
	m.peak = 0
	m.release()
}

// stop cancels a pending release and waits for one in progress; later checks arm nothing.
func (m *memReleaser) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.timer != nil {
		m.timer.Stop()
	}
}
