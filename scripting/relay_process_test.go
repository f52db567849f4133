package scripting_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/smtptest"
)

// mailRelay is the SMTP relay of the mail benchmarks: a smtptest server in this process, or
// one in a process of its own (so that its CPU time is not charged to the server's).
type mailRelay interface {
	Endpoint() (host string, port int, caFile string)
	// WaitCount waits until n messages arrived or the timeout passed and returns how many did.
	WaitCount(n int, timeout time.Duration) int
	// CPU is the CPU time the relay's own process used so far; 0 for a relay in this process
	// (its time is in the process's).
	CPU() time.Duration
}

type inProcessRelay struct{ *smtptest.Server }

func (r inProcessRelay) Endpoint() (string, int, string) { return r.Host, r.Port, r.CAFile }
func (inProcessRelay) CPU() time.Duration                { return 0 }

// relayProcessEnv makes the test binary run TestSMTPRelayProcess as a relay for its parent.
const relayProcessEnv = "WHARF_TEST_SMTP_RELAY_PROCESS"

// TestSMTPRelayProcess is not a test: it is the relay process of startRelayProcess. It prints
// "relay <host> <port> <ca file>", then "received <n>" as messages arrive, and stops when its
// standard input is closed.
func TestSMTPRelayProcess(t *testing.T) {
	if os.Getenv(relayProcessEnv) != "1" {
		t.Skip("the relay process of the mail benchmarks (started by them)")
	}
	srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "wharf", Password: "pw"})
	fmt.Printf("relay %s %d %s\n", srv.Host, srv.Port, srv.CAFile)
	stop := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString(0) // until EOF
		close(stop)
	}()
	seen := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		if n := srv.WaitCount(seen+1, 100*time.Millisecond); n > seen {
			seen = n
			fmt.Printf("received %d\n", n)
		}
	}
}

// relayProcess is a relay run by this test binary in a process of its own.
type relayProcess struct {
	host, caFile string
	port, pid    int

	mu       sync.Mutex
	received int
	changed  chan struct{}
}

// startRelayProcess starts the relay process; it is stopped when the test ends.
func startRelayProcess(tb testing.TB) *relayProcess {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestSMTPRelayProcess$")
	cmd.Env = append(os.Environ(), relayProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r := &relayProcess{pid: cmd.Process.Pid, changed: make(chan struct{}, 1)}
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 4 && f[0] == "relay":
				port, perr := strconv.Atoi(f[2])
				r.host, r.port, r.caFile = f[1], port, f[3]
				ready <- perr
			case len(f) == 2 && f[0] == "received":
				n, _ := strconv.Atoi(f[1])
				r.mu.Lock()
				r.received = n
				r.mu.Unlock()
				select {
				case r.changed <- struct{}{}:
				default:
				}
			}
		}
		ready <- fmt.Errorf("the relay process ended: %v", sc.Err())
	}()
	tb.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		_ = cmd.Wait()
		cancel()
	})
	select {
	case err := <-ready:
		if err != nil {
			tb.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		tb.Fatal("the relay process did not start")
	}
	return r
}

func (r *relayProcess) Endpoint() (string, int, string) { return r.host, r.port, r.caFile }

func (r *relayProcess) WaitCount(n int, timeout time.Duration) int {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := r.received
		r.mu.Unlock()
		if got >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			return got
		}
	}
}

// CPU reads the relay process's user and system time from /proc (in clock ticks of 10 ms).
func (r *relayProcess) CPU() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the command name may hold spaces
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// processCPU is this process's user and system time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
