package childproc

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFreePortIsUsable(t *testing.T) {
	port, err := FreePort()
	if err != nil || port <= 0 {
		t.Fatalf("FreePort: %d, %v", port, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("listen on the free port: %v", err)
	}
	_ = ln.Close()
}

func TestOutputKeepsTheFirst64KiB(t *testing.T) {
	var o Output
	line := strings.Repeat("x", 1023) + "\n"
	for range 200 {
		if n, err := o.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if got := len(o.String()); got < maxOutput || got > maxOutput+len(line) {
		t.Fatalf("kept %d bytes, want about %d", got, maxOutput)
	}
}

// A child that ignores the signal is killed after the grace period.
func TestStopKillsAfterGrace(t *testing.T) {
	cmd := exec.Command("sh", "-c", "trap '' TERM; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sh: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	time.Sleep(100 * time.Millisecond) // the trap is set
	start := time.Now()
	Stop(cmd.Process, syscall.SIGTERM, done, 300*time.Millisecond)
	if took := time.Since(start); took < 300*time.Millisecond || took > 10*time.Second {
		t.Fatalf("Stop took %v, want the grace period then a kill", took)
	}
	select {
	case <-done:
	default:
		t.Fatal("the child is still running")
	}
}
