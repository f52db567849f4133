package coretest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ScratchDir returns a new directory on tmpfs (/dev/shm) when the machine has one, else
// t.TempDir(): tests that create many thousands of files take seconds less there. It is
// removed when the test ends.
func ScratchDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "wharf-test-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// MakeFiles creates dir and n empty files in it, each name nameLen bytes long (at least 8):
// "f0000042" padded with 'x'. Names are unique and their order on disk is the file system's.
func MakeFiles(t testing.TB, dir string, n, nameLen int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", max(0, nameLen-8))
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%07d%s", i, pad)), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// LiveHeap collects garbage and returns the bytes of live heap objects: what the process
// holds at this moment, without the garbage a busy process carries between collections. It
// collects twice: what sync.Pools held survives the first collection.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// MemWatch follows the process's memory from a baseline: peak resident set (VmHWM, reset at
// the start, and VmRSS sampled every 2 ms in case the reset is not allowed) and peak heap in
// use (live and not yet swept objects, sampled with runtime/metrics, which does not stop the
// world).
type MemWatch struct {
	baseRSS, baseHeap uint64
	hwmReset          bool
	stop              chan struct{}
	done              sync.WaitGroup
	peakRSS, peakHeap uint64
}

// MemReport is what a MemWatch saw, as growth over its baseline.
type MemReport struct {
	BaseRSS, BaseHeap   uint64
	ExtraRSS, ExtraHeap uint64 // peak minus baseline (0 when the peak stayed below it)
}

func (r MemReport) String() string {
	return fmt.Sprintf("extra RSS %.1f MiB (peak over a baseline of %.1f MiB), extra heap in use %.1f MiB (baseline %.1f MiB)",
		mib(r.ExtraRSS), mib(r.BaseRSS), mib(r.ExtraHeap), mib(r.BaseHeap))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// WatchMemory collects garbage, returns freed memory to the system, takes the baseline and
// starts sampling.
func WatchMemory() *MemWatch {
	runtime.GC()
	debug.FreeOSMemory()
	w := &MemWatch{stop: make(chan struct{})}
	w.baseRSS = procStatus("VmRSS")
	w.baseHeap = heapObjects()
	// Writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
	w.hwmReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	w.peakRSS, w.peakHeap = w.baseRSS, w.baseHeap
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			w.peakRSS = max(w.peakRSS, procStatus("VmRSS"))
			w.peakHeap = max(w.peakHeap, heapObjects())
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Stop ends sampling and reports the peaks over the baseline.
func (w *MemWatch) Stop() MemReport {
	close(w.stop)
	w.done.Wait()
	peak := w.peakRSS
	if w.hwmReset {
		peak = max(peak, procStatus("VmHWM"))
	}
	sub := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return MemReport{BaseRSS: w.baseRSS, BaseHeap: w.baseHeap,
		ExtraRSS: sub(peak, w.baseRSS), ExtraHeap: sub(w.peakHeap, w.baseHeap)}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// procStatus returns a "kB" field of /proc/self/status in bytes, 0 when it cannot be read.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// ChildEnv is the variable that tells a test binary it runs as a helper process.
const ChildEnv = "WHARF_TEST_CHILD"

// ChildProcess prepares a run of this test binary limited to the test named test, with
// ChildEnv set to arg: the way to run a client in a process of its own, so that whatever it
// holds does not count as the server's. The test checks Child() and skips when it is "".
func ChildProcess(t testing.TB, test, arg string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), ChildEnv+"="+arg)
	return cmd
}

// Child returns the argument ChildProcess gave this process, "" in a normal test run.
func Child() string { return os.Getenv(ChildEnv) }

// Seen records which of MakeFiles's names a listing returned, in one bit of memory per file
// (a test that measures the server's heap must not hold the names it reads).
type Seen struct {
	t    testing.TB
	seen []bool
	N    int // distinct names recorded
}

// NewSeen records the names of n files.
func NewSeen(t testing.TB, n int) *Seen { return &Seen{t: t, seen: make([]bool, n)} }

// Add records a name and fails the test if it is not one of MakeFiles's or was seen before.
func (s *Seen) Add(name string) {
	s.t.Helper()
	i, err := strconv.Atoi(name[1:min(len(name), 8)])
	if err != nil || name[0] != 'f' || i < 0 || i >= len(s.seen) {
		s.t.Fatalf("unexpected name %q in the listing", name)
	}
	if s.seen[i] {
		s.t.Fatalf("%q listed twice", name)
	}
	s.seen[i] = true
	s.N++
}
