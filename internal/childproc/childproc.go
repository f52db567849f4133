// Package childproc holds what the test harnesses that run a real server as a child process
// (PostgreSQL, HAProxy, the S3 server) share: a free loopback port, a bounded buffer for the
// child's output, and stopping it with a signal and a deadline.
package childproc

import (
	"bytes"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// maxOutput bounds what an Output keeps: enough to explain a failure, and a chatty child that
// runs for a whole test package cannot fill the memory.
const maxOutput = 64 << 10

// Output collects a child's stdout and stderr; safe to read while the child writes. It keeps
// the first 64 KiB.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer; past the bound it drops what comes.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.b.Len() > maxOutput {
		return len(p), nil
	}
	return o.b.Write(p)
}

// String returns what was kept.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Clone(o.b.String())
}

// Stop sends sig to p and waits until done is closed (the caller's cmd.Wait returned); after
// grace it kills p and waits for done.
func Stop(p *os.Process, sig os.Signal, done <-chan struct{}, grace time.Duration) {
	_ = p.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}
