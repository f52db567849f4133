package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/spf13/afero"
)

func TestMemoryOneSpellingPerName(t *testing.T) {
	m := NewMemory()
	writeFile(t, m, "a", "relative")
	for _, name := range []string{"/a", "a", "./a", "/x/../a", "//a"} {
		if got := readFile(t, m, name); got != "relative" {
			t.Errorf("%q reads %q", name, got)
		}
	}
}

func TestMemoryHandleModes(t *testing.T) {
	m := NewMemory()
	writeFile(t, m, "/f", "data")
	tests := []struct {
		flag              int
		canRead, canWrite bool
	}{
		{os.O_RDONLY, true, false},
		{os.O_RDONLY | os.O_CREATE, true, false},
		{os.O_WRONLY, false, true},
		{os.O_RDWR, true, true},
	}
	for _, tt := range tests {
		f, err := m.OpenFile("/f", tt.flag, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		_, rerr := f.ReadAt(make([]byte, 1), 0)
		_, werr := f.WriteAt([]byte("D"), 0)
		terr := f.Truncate(4)
		if (rerr == nil) != tt.canRead || (werr == nil) != tt.canWrite || (terr == nil) != tt.canWrite {
			t.Errorf("flag %#x: read %v, write %v, truncate %v", tt.flag, rerr, werr, terr)
		}
		_ = f.Close()
		_, err = f.Read(make([]byte, 1))
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("flag %#x: read after close: %v", tt.flag, err)
		}
	}
}

func TestMemoryPositionalIOKeepsOffset(t *testing.T) {
	m := NewMemory()
	f, err := m.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XYZ"), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 2), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("d")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, []byte("abcd\x00\x00\x00\x00\x00\x00XYZ")) {
		t.Errorf("content %q, %v", got, err)
	}
	if _, err := f.Seek(-100, io.SeekCurrent); err == nil {
		t.Error("seek before the start succeeded")
	}
	if _, err := f.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
}

// TestMemoryConcurrentFiles exercises the namespace and many handles at once;
// it is meant to run under -race.
func TestMemoryConcurrentFiles(t *testing.T) {
	m := NewMemory()
	if err := m.Mkdir("/d", 0o750); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := fmt.Sprintf("/d/f%d", i)
			want := bytes.Repeat([]byte{byte(i)}, 4096)
			for round := range 20 {
				if err := afero.WriteFile(m, name, want, 0o600); err != nil {
					t.Error(err)
					return
				}
				got, err := afero.ReadFile(m, name)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s round %d: %d bytes, %v", name, round, len(got), err)
					return
				}
				if _, err := m.Stat(name); err != nil {
					t.Error(err)
				}
				if err := m.Rename(name, name+".old"); err != nil {
					t.Error(err)
				}
				if err := m.Remove(name + ".old"); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			for range 20 {
				if _, err := afero.ReadDir(m, "/d"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// Concurrent exclusive creates of one name: exactly one wins.
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Go(func() {
			f, err := m.OpenFile("/d/once", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err == nil {
				_ = f.Close()
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, fs.ErrExist) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d exclusive creates succeeded", wins)
	}
}

func TestMemoryConcurrentHandlesOfOneFile(t *testing.T) {
	m := NewMemory()
	writeFile(t, m, "/f", string(bytes.Repeat([]byte("x"), 64*100)))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			f, err := m.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for j := range 100 {
				if j%8 == i {
					if _, err := f.WriteAt(bytes.Repeat([]byte{byte('a' + i)}, 64), int64(j*64)); err != nil {
						t.Error(err)
					}
				} else if _, err := f.ReadAt(make([]byte, 64), int64(j*64)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := readFile(t, m, "/f")
	for j := range 100 {
		if want := string(bytes.Repeat([]byte{byte('a' + j%8)}, 64)); got[j*64:(j+1)*64] != want {
			t.Fatalf("block %d = %q", j, got[j*64:(j+1)*64])
		}
	}
}
