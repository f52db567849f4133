package logbuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records each write to it separately.
type sink struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

func (s *sink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.writes, "")
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes)
}

func TestBuffersUntilFlushInOneWrite(t *testing.T) {
	var out sink
	w := New(&out, time.Hour)
	defer w.Close()
	line := []byte("one\n")
	if n, err := w.Write(line); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	copy(line, "XXX\n") // the caller reuses its buffer, as slog's handlers do
	w.Write([]byte("two\n"))
	if out.count() != 0 {
		t.Fatalf("written before the interval or a flush: %q", out.writes)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.writes; len(got) != 1 || got[0] != "one\ntwo\n" {
		t.Fatalf("writes = %q, want one write of both lines", got)
	}
	if err := w.Flush(); err != nil || out.count() != 1 {
		t.Fatalf("an empty flush wrote or failed: %v, %q", err, out.writes)
	}
}

func TestTimerWritesWithinTheInterval(t *testing.T) {
	var out sink
	w := New(&out, 10*time.Millisecond)
	defer w.Close()
	for round := range 3 { // the timer re-arms after each batch
		want := fmt.Sprintf("line %d\n", round)
		w.Write([]byte(want))
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.text(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %q not written by the timer", round, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestFullBufferIsWrittenByTheCaller(t *testing.T) {
	var out sink
	w := New(&out, time.Hour)
	defer w.Close()
	line := bytes.Repeat([]byte("x"), 1000)
	line[len(line)-1] = '\n'
	n := MaxBuffered/len(line) + 1
	for range n {
		w.Write(line)
	}
	if out.count() != 1 || len(out.text()) != n*len(line) {
		t.Fatalf("after %d lines: %d writes of %d bytes, want one of %d", n, out.count(), len(out.text()), n*len(line))
	}
}

func TestConcurrentLinesStayWholeAndInOrder(t *testing.T) {
	var out sink
	w := New(&out, time.Millisecond)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "g%d %05d %s\n", g, i, strings.Repeat("y", i%300))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.text(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		f := strings.Split(l, " ")
		var g, i int
		if len(f) != 3 {
			t.Fatalf("torn line %q", l)
		}
		fmt.Sscanf(f[0], "g%d", &g)
		fmt.Sscanf(f[1], "%d", &i)
		if g < 0 || g >= writers || i != next[g] || len(f[2]) != i%300 {
			t.Fatalf("line %q out of order or torn (want g%d %05d next)", l, g, next[g])
		}
		next[g]++
	}
}

func TestCloseFlushesAndLaterWritesGoStraightThrough(t *testing.T) {
	var out sink
	w := New(&out, time.Hour)
	w.Write([]byte("before\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.text() != "before\n" {
		t.Fatalf("Close wrote %q", out.text())
	}
	w.Write([]byte("after\n"))
	if out.text() != "before\nafter\n" {
		t.Fatalf("a write after Close was not written at once: %q", out.text())
	}
}

func TestZeroIntervalWritesEachLine(t *testing.T) {
	var out sink
	w := New(&out, 0)
	w.Write([]byte("a\n"))
	w.Write([]byte("b\n"))
	if got := out.writes; len(got) != 2 {
		t.Fatalf("writes = %q, want two", got)
	}
}

func TestErrorsAreReported(t *testing.T) {
	broken := errors.New("disk full")
	out := sink{err: broken}
	w := New(&out, time.Millisecond)
	w.Write([]byte("lost\n"))
	deadline := time.Now().Add(5 * time.Second)
	for { // the timer's flush fails; the next Flush reports it
		w.mu.Lock()
		pending := w.armed || len(w.buf) > 0
		w.mu.Unlock()
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timer did not flush")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Fatalf("Flush after a failed timer write = %v, want %v", err, broken)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("an error was reported twice: %v", err)
	}
	w.Write([]byte("again\n"))
	if err := w.Close(); !errors.Is(err, broken) {
		t.Fatalf("Close = %v, want %v", err, broken)
	}
}

func TestFlushOnWritesWarningsAtOnce(t *testing.T) {
	var out sink
	w := New(&out, time.Hour)
	defer w.Close()
	log := slog.New(FlushOn(slog.NewTextHandler(w, nil), w, slog.LevelWarn)).With("site", "s1").WithGroup("g")
	log.Info("first")
	if out.count() != 0 {
		t.Fatalf("an info line was written at once: %q", out.writes)
	}
	log.Warn("second", "k", "v")
	text := out.text()
	if !strings.Contains(text, "msg=first") || !strings.Contains(text, "msg=second site=s1 g.k=v") ||
		strings.Index(text, "first") > strings.Index(text, "second") {
		t.Fatalf("after a warning: %q, want both lines in order with the logger's attributes", text)
	}
	if !log.Handler().Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("the wrapper changed the level")
	}
}

func BenchmarkWriteLine(b *testing.B) {
	line := []byte(`time=2026-11-26T06:57:44.072Z level=INFO msg=audit event=operation site=bench session=01M8BAAMW5ZHHH5YFWVN3WF4R8 user=bench protocol=SFTP ip=127.0.0.1 operation=upload path=/k1/f0001 bytes=1024 duration_ms=0 result=ok` + "\n")
	w := New(io.Discard, 50*time.Millisecond)
	defer w.Close()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		w.Write(line)
	}
}

// Lines written while Close runs are neither lost (a buffer no timer would write) nor put
// out of order.
func TestWritesDuringCloseAreKept(t *testing.T) {
	for range 50 {
		var out sink
		w := New(&out, time.Hour)
		const writers, lines = 4, 200
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range writers {
			wg.Go(func() {
				<-start
				for i := range lines {
					fmt.Fprintf(w, "g%d %d\n", g, i)
				}
			})
		}
		close(start)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		next := make([]int, writers)
		got := strings.Split(strings.TrimSuffix(out.text(), "\n"), "\n")
		for _, l := range got {
			var g, i int
			if _, err := fmt.Sscanf(l, "g%d %d", &g, &i); err != nil || i != next[g] {
				t.Fatalf("line %q: torn or out of order (want g%d %d)", l, g, next[g])
			}
			next[g]++
		}
		if len(got) != writers*lines {
			t.Fatalf("%d lines after Close, want %d", len(got), writers*lines)
		}
	}
}

// gatedSink blocks its first Write until released.
type gatedSink struct {
	sink
	entered, release chan struct{}
	once             sync.Once
}

func (s *gatedSink) Write(p []byte) (int, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.sink.Write(p)
}

// A line written while Close is writing the buffer must not stay behind in a buffer whose
// timer Close has stopped.
func TestLineWrittenDuringCloseFlushIsWritten(t *testing.T) {
	out := &gatedSink{entered: make(chan struct{}), release: make(chan struct{})}
	w := New(out, time.Hour)
	w.Write([]byte("a\n"))
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	<-out.entered // Close is writing "a"
	wrote := make(chan struct{})
	go func() {
		w.Write([]byte("b\n"))
		close(wrote)
	}()
	select {
	case <-wrote:
		// Returned at once: buffered. Close must still write it.
	case <-time.After(50 * time.Millisecond):
		// Waiting to write through: fine either way.
	}
	close(out.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	<-wrote
	if got := out.text(); got != "a\nb\n" {
		t.Fatalf("after Close: %q, want %q", got, "a\nb\n")
	}
}
