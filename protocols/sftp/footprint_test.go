package sftp

import (
	"bufio"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// TestIdleSessionFootprint holds OpenSSH sftp sessions open and idle and checks what each
// one costs the server: at most 5 goroutines (x/crypto's reader, key-exchange loop and mux,
// the connection loop and the SFTP server) and 64 KiB of heap. The clients are separate
// processes, so every goroutine and byte counted is the server's. Before the changes to
// third_party/sftp an idle session ran 17 goroutines and held 512 KiB of packet pages.
func TestIdleSessionFootprint(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	e := newE2E(t)
	const n = 16
	base := coretest.MeasureFootprint()
	for range n {
		cmd := exec.Command(sftpBin, append(e.sshOptions(), "-P", e.port, "alice@127.0.0.1")...)
		cmd.Env = e.env
		cmd.Dir = e.work
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		t.Cleanup(func() {
			_ = stdin.Close() // sftp quits at the end of its input
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		// One command proves the session is logged in and the SFTP server has answered.
		if _, err := io.WriteString(stdin, "pwd\n"); err != nil {
			t.Fatal(err)
		}
		answered := make(chan bool, 1)
		go func() {
			defer close(exited)
			sc := bufio.NewScanner(stdout)
			ok := false
			for sc.Scan() {
				if !ok && strings.Contains(sc.Text(), "Remote working directory: /") {
					ok = true
					answered <- true
				}
			}
			if !ok {
				answered <- false
			}
			_ = cmd.Wait()
		}()
		select {
		case ok := <-answered:
			if !ok {
				t.Fatal("sftp ended without answering pwd")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("sftp did not answer pwd within 30 s")
		}
	}
	// 5 goroutines per session, and this test's reader of each client's output.
	const want = 6 * n
	var now coretest.Footprint
	deadline := time.Now().Add(10 * time.Second)
	for {
		now = coretest.MeasureFootprint()
		if now.Goroutines-base.Goroutines <= want {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d sessions: %d goroutines, want at most %d:\n%s", n,
				now.Goroutines-base.Goroutines, want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	perSession := (int64(now.HeapInuse) - int64(base.HeapInuse)) / n
	t.Logf("%d idle sessions: %d goroutines (with the test's readers), %.1f KiB of heap each", n,
		now.Goroutines-base.Goroutines, float64(perSession)/1024)
	if perSession > 64<<10 {
		t.Errorf("an idle session holds %.1f KiB of heap, want at most 64 KiB", float64(perSession)/1024)
	}
}
