package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/vfs"
)

// TestListerPages: OpenList's Lister returns the mount children first, then the backend's
// entries, in batches of at most the size asked for and never an empty batch before io.EOF;
// temporary uploads, entries a script hid and backend entries shadowed by a mount point are
// left out of every batch; OnDirList fires once per listing, not per batch.
func TestListerPages(t *testing.T) {
	const files = 1000
	d := &coretest.Dispatcher{}
	d.On(core.OnDirList, func(ev *core.Event) { ev.Session.RemoveFromListDir("*.tmp") })
	site, root := diskSite(t, d, user("u", onDisk, func(u *config.User) {
		u.Folders = map[string]config.Mount{"/m": {VFS: "mem", Permissions: []string{"list"}}}
	}))
	home := filepath.Join(root, "u")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(home, "m"), 0o755)) // shadowed by the mount point /m
	want := []string{"m"}
	for i := range files {
		name := fmt.Sprintf("f%04d", i)
		must(os.WriteFile(filepath.Join(home, name), nil, 0o644))
		want = append(want, name)
		if i%10 == 0 {
			// hidden by the script, and an upload in progress: neither is listed
			must(os.WriteFile(filepath.Join(home, name+".tmp"), nil, 0o644))
			must(os.WriteFile(filepath.Join(home, vfs.TempPrefix+name), nil, 0o644))
		}
	}
	s := login(t, site, "u")
	ctx := context.Background()

	l, err := s.OpenList(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		fis, err := l.Next(7)
		if errors.Is(err, io.EOF) {
			if len(fis) != 0 {
				t.Fatalf("io.EOF with %d entries", len(fis))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(fis) == 0 || len(fis) > 7 {
			t.Fatalf("a batch of %d entries, asked for 7", len(fis))
		}
		for _, fi := range fis {
			if len(got) == 0 && (fi.Name() != "m" || !fi.IsDir()) {
				t.Fatalf("first entry %q (dir %v), want the mount point m", fi.Name(), fi.IsDir())
			}
			got = append(got, fi.Name())
		}
	}
	if _, err := l.Next(7); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Next(7); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d entries, want %d (first differences: %v)", len(got), len(want), firstDiff(got, want))
	}
	if n := count(d, core.OnDirList); n != 1 {
		t.Fatalf("OnDirList fired %d times for one listing, want 1", n)
	}

	// List is built on the Lister and keeps its promise of a sorted slice.
	fis, err := s.List(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(fis))
	for i, fi := range fis {
		names[i] = fi.Name()
	}
	if !slices.Equal(names, want) {
		t.Fatalf("List: %d entries, want %d sorted (first differences: %v)", len(names), len(want), firstDiff(names, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q and %q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

func count(d *coretest.Dispatcher, name core.EventName) int {
	n := 0
	for _, e := range d.Fired() {
		if e == name {
			n++
		}
	}
	return n
}

// TestListerRefusals: what OpenList refuses, and that a session that ends stops its
// listings.
func TestListerRefusals(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk), user("nolist", onDisk, func(u *config.User) {
		u.Home.Permissions = []string{"download"}
	}))
	for _, u := range []string{"u", "nolist"} {
		if err := os.MkdirAll(filepath.Join(root, u, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(root, "u", "d", fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "u", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := login(t, site, "u")
	for p, kind := range map[string]error{"/missing": core.ErrNotFound, "/file": core.ErrNotDir} {
		if _, err := s.OpenList(ctx, p); !errors.Is(err, kind) {
			t.Errorf("OpenList %s: %v, want %v", p, err, kind)
		}
	}
	if _, err := login(t, site, "nolist").OpenList(ctx, "/d"); !errors.Is(err, core.ErrDenied) {
		t.Errorf("OpenList without the list permission: %v, want denied", err)
	}

	l, err := s.OpenList(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fis, err := l.Next(3); err != nil || len(fis) != 3 {
		t.Fatalf("first batch: %d entries, %v", len(fis), err)
	}
	s.Close()
	if _, err := l.Next(3); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Next after the session closed: %v, want ErrClosed", err)
	}
}
