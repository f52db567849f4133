package coretest

import (
	"runtime"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
)

// Eventually polls cond every 10 ms until it holds, and fails the test if it still does not
// after d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Footprint is the process's goroutine count and heap in use, after a garbage collection.
type Footprint struct {
	Goroutines int
	HeapInuse  uint64
}

// MeasureFootprint collects garbage and returns the process's footprint.
func MeasureFootprint() Footprint {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Footprint{Goroutines: runtime.NumGoroutine(), HeapInuse: m.HeapInuse}
}

// WaitFootprint waits up to 20 s for site to have no session left and for the process to be
// back within 10 goroutines and 16 MiB of heap of base (taken before a flood of
// connections), and logs both footprints.
func WaitFootprint(t testing.TB, site *core.Site, base Footprint) {
	t.Helper()
	var now Footprint
	Eventually(t, 20*time.Second, "goroutines and heap back to baseline", func() bool {
		now = MeasureFootprint()
		return now.Goroutines <= base.Goroutines+10 && now.HeapInuse <= base.HeapInuse+16<<20 && len(site.Sessions()) == 0
	})
	t.Logf("baseline: %d goroutines, %.1f MiB heap in use; after the flood: %d goroutines, %.1f MiB",
		base.Goroutines, float64(base.HeapInuse)/(1<<20), now.Goroutines, float64(now.HeapInuse)/(1<<20))
}
