package ftpserver

// Tests of patch 8 (see WHARF.md): transfer commands run on one goroutine per client.

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goroutineID is the running goroutine's number, from its stack header ("goroutine N [").
func goroutineID(t *testing.T) int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		t.Fatalf("stack header %q", buf)
	}
	id, err := strconv.Atoi(string(f[1]))
	if err != nil {
		t.Fatalf("stack header %q: %v", buf, err)
	}
	return id
}

// recorder is a transfer command that records the goroutine it ran on.
type recorder struct {
	t   *testing.T
	mu  sync.Mutex
	ids []int
}

func (r *recorder) job() transferJob {
	return transferJob{desc: &CommandDescription{Fn: func(*clientHandler, string) error {
		id := goroutineID(r.t)
		r.mu.Lock()
		r.ids = append(r.ids, id)
		r.mu.Unlock()
		return nil
	}}, command: "STOR"}
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int]bool{}
	for _, id := range r.ids {
		seen[id] = true
	}
	return len(seen)
}

// run starts one transfer command as handleCommand does, and waits for it as the next
// command does.
func run(c *clientHandler, job transferJob) {
	c.transferWg.Wait()
	c.transferWg.Add(1)
	c.startTransfer(job)
	c.transferWg.Wait()
}

// alive reports whether goroutine id exists (other tests' goroutines may come and go, so
// the check names the goroutine instead of counting).
func alive(id int) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Contains(buf, []byte("goroutine "+strconv.Itoa(id)+" ["))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for: " + what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWharfTransfersShareOneGoroutine: back-to-back transfer commands of a client run on one
// goroutine, apart from the caller's, and it exits when the client ends.
func TestWharfTransfersShareOneGoroutine(t *testing.T) {
	c := &clientHandler{}
	// An idle time longer than the test: only the client's end stops the goroutine.
	c.transfers = &transferWorker{jobs: make(chan transferJob, 1), done: make(chan struct{}), idle: time.Hour}
	r := &recorder{t: t}
	for range 50 {
		run(c, r.job())
	}
	if len(r.ids) != 50 || r.distinct() != 1 {
		t.Fatalf("50 commands ran %d times on %d goroutines, want 50 on 1", len(r.ids), r.distinct())
	}
	worker := r.ids[0]
	if worker == goroutineID(t) {
		t.Fatal("a transfer command ran on the goroutine that reads commands")
	}
	if !alive(worker) {
		t.Fatal("the transfer goroutine is gone before the client ended")
	}
	close(c.transfers.done) // what end does
	waitFor(t, "the transfer goroutine to exit", func() bool { return !alive(worker) })
}

// TestWharfTransferGoroutineIdleExit: an idle transfer goroutine exits, and the next command
// starts another.
func TestWharfTransferGoroutineIdleExit(t *testing.T) {
	c := &clientHandler{}
	c.transfers = &transferWorker{jobs: make(chan transferJob, 1), done: make(chan struct{}), idle: 20 * time.Millisecond}
	r := &recorder{t: t}
	run(c, r.job())
	waitFor(t, "the idle goroutine to exit", func() bool {
		c.transfers.mu.Lock()
		defer c.transfers.mu.Unlock()
		return !c.transfers.alive
	})
	run(c, r.job())
	if len(r.ids) != 2 || r.distinct() != 2 {
		t.Fatalf("ids %v, want two commands on two goroutines", r.ids)
	}
	close(c.transfers.done)
}

// TestWharfTransferGoroutineNoLostCommand: commands that arrive just as the goroutine's idle
// time runs out each run exactly once (run with -race).
func TestWharfTransferGoroutineNoLostCommand(t *testing.T) {
	c := &clientHandler{}
	c.transfers = &transferWorker{jobs: make(chan transferJob, 1), done: make(chan struct{}), idle: time.Microsecond}
	var n atomic.Int64
	job := transferJob{desc: &CommandDescription{Fn: func(*clientHandler, string) error {
		n.Add(1)
		return nil
	}}}
	const commands = 2000
	for i := range commands {
		if i%3 == 0 {
			time.Sleep(time.Duration(i%7) * time.Microsecond)
		}
		run(c, job) // a lost command would leave transferWg waiting forever
	}
	if got := n.Load(); got != commands {
		t.Fatalf("%d commands ran, want %d", got, commands)
	}
	close(c.transfers.done)
}
