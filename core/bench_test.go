package core_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// Benchmarks of the core's hot paths, each next to its baseline: the data path (ReadAt and
// WriteAt through a handle against the same calls on a raw *os.File), the operation pipeline
// (Stat: record, resolve, permission, backend), and event dispatch (an operation whose gate
// event nobody handles against one with a Go handler). The disk cases use a temporary
// directory; run them with -benchtime and compare the pairs, e.g.
//
//	go test -run='^$' -bench=. -benchmem ./core

// benchChunk is the SFTP packet payload OpenSSH and pkg/sftp clients send.
const (
	benchChunk = 32 << 10
	benchFile  = 64 << 20
)

func benchSession(b *testing.B, d core.Dispatcher, disk bool) (*core.Session, string) {
	b.Helper()
	root := b.TempDir()
	yes := true
	c := &config.Site{
		Name:   "bench",
		Limits: config.Limits{MaxConnections: 0, MaxConnectionsPerIP: 0, MaxSessionsPerUser: 0},
		VFS: []config.VFS{
			{Name: "mem", Type: "memory"},
			{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AtomicUploads: &yes},
		},
		Users: []config.User{{ID: "u", Password: "plain:pw", Home: config.Mount{VFS: "mem", Permissions: []string{"all"}}}},
	}
	if disk {
		c.Users[0].Home.VFS = "disk"
	}
	if d == nil {
		d = core.NopDispatcher{}
	}
	site, err := core.NewSite(c, core.Options{Events: d, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	s, err := site.Connect(context.Background(), core.ConnInfo{
		Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, Protocol: core.ProtoSFTP})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	if err := s.AuthPassword(context.Background(), "u", "pw"); err != nil {
		b.Fatal(err)
	}
	return s, filepath.Join(root, "u")
}

// BenchmarkWriteAt: 32 KiB writes at increasing offsets into a 64 MiB upload (then the next
// upload), through a core WriteHandle ("core") and straight to an *os.File ("raw"); the
// difference is the core's per-write overhead (closed check, quota and high-water mark,
// bandwidth check, activity stamp, byte count, error mapping).
func BenchmarkWriteAt(b *testing.B) {
	buf := bytes.Repeat([]byte{'x'}, benchChunk)
	b.Run("core", func(b *testing.B) {
		s, _ := benchSession(b, nil, true)
		ctx := context.Background()
		var h *core.WriteHandle
		var off int64
		b.SetBytes(benchChunk)
		b.ReportAllocs()
		for b.Loop() {
			if h == nil || off >= benchFile {
				if h != nil {
					if err := h.Close(); err != nil {
						b.Fatal(err)
					}
				}
				var err error
				if h, err = s.OpenWrite(ctx, "/w.bin", core.WriteMode{Truncate: true}, 0); err != nil {
					b.Fatal(err)
				}
				off = 0
			}
			if _, err := h.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
			off += benchChunk
		}
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("raw", func(b *testing.B) {
		dir := b.TempDir()
		var f *os.File
		var off int64
		b.SetBytes(benchChunk)
		b.ReportAllocs()
		for b.Loop() {
			if f == nil || off >= benchFile {
				if f != nil {
					_ = f.Close()
				}
				var err error
				if f, err = os.OpenFile(filepath.Join(dir, "w.bin"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
					b.Fatal(err)
				}
				off = 0
			}
			if _, err := f.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
			off += benchChunk
		}
		_ = f.Close()
	})
}

// BenchmarkReadAt: 32 KiB reads cycling over a 64 MiB file, through a core ReadHandle by 8
// goroutines as pkg/sftp's workers call it ("core"), and by the same goroutines on an
// *os.File ("raw").
func BenchmarkReadAt(b *testing.B) {
	s, dir := benchSession(b, nil, true)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	name := filepath.Join(dir, "r.bin")
	if err := os.WriteFile(name, bytes.Repeat([]byte{'r'}, benchFile), 0o644); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, r interface {
		ReadAt([]byte, int64) (int, error)
	}) {
		var next atomic.Int64
		b.SetBytes(benchChunk)
		b.ReportAllocs()
		b.SetParallelism(4) // 8 goroutines on 2 cores, like pkg/sftp's 8 workers
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, benchChunk)
			for pb.Next() {
				off := (next.Add(1) * benchChunk) % benchFile
				if _, err := r.ReadAt(buf, off); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("core", func(b *testing.B) {
		h, err := s.OpenRead(context.Background(), "/r.bin", 0)
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		run(b, h)
	})
	b.Run("raw", func(b *testing.B) {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		run(b, f)
	})
}

// BenchmarkStat is the operation pipeline without events: record the command, clean and
// resolve the path through the mount table, check the permission, stat the backend (memory).
func BenchmarkStat(b *testing.B) {
	s, _ := benchSession(b, nil, false)
	ctx := context.Background()
	if err := s.Mkdir(ctx, "/docs"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Stat(ctx, "/docs"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventDispatch lists an empty directory, which fires the OnDirList gate event:
// "none" with the NopDispatcher (the core skips building the event), "nop" with
// coretest.Dispatcher and no handler for it (Handles is asked and says no), "handler" with
// a Go handler that does nothing (the event is built and fired under the session's event
// lock). The difference to "none" is the cost of dispatch.
func BenchmarkEventDispatch(b *testing.B) {
	for _, tc := range []struct {
		name string
		d    func() core.Dispatcher
	}{
		{"none", func() core.Dispatcher { return core.NopDispatcher{} }},
		{"nop", func() core.Dispatcher { return &coretest.Dispatcher{} }},
		{"handler", func() core.Dispatcher {
			d := &coretest.Dispatcher{}
			d.On(core.OnDirList, func(*core.Event) {})
			return d
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := benchSession(b, tc.d(), false)
			ctx := context.Background()
			if err := s.Mkdir(ctx, "/empty"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.List(ctx, "/empty"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSmallUpload is one small file uploaded as lftp's mirror -R does it over FTP (issue
// #24): open a new name in a folder for writing (an atomic upload on a disk), write 4 KiB,
// close (publish), then SITE CHMOD 644 (a path SetStat). Run it under strace -c -f for the
// system calls per file, or with -benchmem for the allocations.
func BenchmarkSmallUpload(b *testing.B) {
	s, _ := benchSession(b, nil, true)
	ctx := context.Background()
	if err := s.Mkdir(ctx, "/up"); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte{'s'}, 4096)
	mode := os.FileMode(0o644)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		name := "/up/f" + strconv.Itoa(n)
		h, err := s.OpenWrite(ctx, name, core.WriteMode{Truncate: true}, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
		if err := s.SetStat(ctx, name, core.Attrs{Mode: &mode}); err != nil {
			b.Fatal(err)
		}
	}
}
