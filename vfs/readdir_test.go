package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/spf13/afero"
)

// TestBackendReaddirPages: Readdir(n) and Readdirnames(n) page through a directory, sharing
// one position, return every entry exactly once, and end with io.EOF and no entries, again
// and again, as os.File does. The core's listings rely on it.
func TestBackendReaddirPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
		const n = 1000
		if err := fsys.Mkdir("/d", 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			writeFile(t, fsys, fmt.Sprintf("/d/f%04d", i), "")
		}
		for _, wrap := range []struct {
			name string
			fs   afero.Fs
		}{{"plain", fsys}, {"read-only", NewReadOnly(fsys)}} {
			t.Run(wrap.name, func(t *testing.T) {
				f, err := wrap.fs.Open("/d")
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				seen := map[string]bool{}
				add := func(name string) {
					if seen[name] {
						t.Fatalf("%s returned twice", name)
					}
					seen[name] = true
				}
				for i := 0; ; i++ {
					var got int
					var err error
					if i%2 == 0 {
						var fis []os.FileInfo
						fis, err = f.Readdir(7)
						for _, fi := range fis {
							add(fi.Name())
						}
						got = len(fis)
					} else {
						var names []string
						names, err = f.Readdirnames(7)
						for _, name := range names {
							add(name)
						}
						got = len(names)
					}
					if got > 7 {
						t.Fatalf("asked for 7 entries, got %d", got)
					}
					if errors.Is(err, io.EOF) {
						if got != 0 {
							t.Fatalf("io.EOF with %d entries", got)
						}
						break
					}
					if err != nil || got == 0 {
						t.Fatalf("batch %d: %d entries, %v", i, got, err)
					}
				}
				if len(seen) != n {
					t.Fatalf("listed %d entries, want %d", len(seen), n)
				}
				if fis, err := f.Readdir(7); len(fis) != 0 || !errors.Is(err, io.EOF) {
					t.Fatalf("Readdir after the end: %d entries, %v", len(fis), err)
				}
			})
		}
	})
}

// TestMemoryReaddirIsNotQuadratic: paging through a memory directory allocates per batch
// what the batch needs, not a sorted copy of the whole directory (MemMapFs's own Readdir
// does that on every call: 200 batches of 100 in a directory of 20,000 allocated 32 MiB).
func TestMemoryReaddirIsNotQuadratic(t *testing.T) {
	const n, batch = 20_000, 100
	m := NewMemory()
	if err := m.Mkdir("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		writeFile(t, m, fmt.Sprintf("/d/f%05d", i), "")
	}
	f, err := m.Open("/d")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fis, err := f.Readdir(batch); err != nil || len(fis) != batch {
		t.Fatalf("first batch: %d entries, %v", len(fis), err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	count := batch
	for {
		fis, err := f.Readdir(batch)
		count += len(fis)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if count != n {
		t.Fatalf("listed %d entries, want %d", count, n)
	}
	perBatch := (after.TotalAlloc - before.TotalAlloc) / (n/batch - 1)
	t.Logf("%d bytes allocated per batch of %d", perBatch, batch)
	if perBatch > 64*batch {
		t.Fatalf("%d bytes allocated per batch of %d entries in a directory of %d: the directory is copied for every batch",
			perBatch, batch, n)
	}
}
