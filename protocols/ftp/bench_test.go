package ftp

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
)

const benchSize = 32 << 20

// BenchmarkFTPDownload measures RETR of 32 MiB over loopback with jlaffaye/ftp, per mode.
func BenchmarkFTPDownload(b *testing.B) {
	for _, m := range []mode{modePlain, modeExplicit} {
		b.Run(m.String(), func(b *testing.B) {
			site, root := newSite(b, nil, nil)
			ts := serve(b, site, m)
			data := bytes.Repeat([]byte("0123456789abcdef"), benchSize/16)
			if err := os.WriteFile(filepath.Join(root, "home", coretest.UserAlice, "bench.bin"), data, 0o644); err != nil {
				b.Fatal(err)
			}
			c, err := ts.dial(m, coretest.UserAlice, coretest.Password)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Quit()
			b.SetBytes(benchSize)
			b.ResetTimer()
			for b.Loop() {
				r, err := c.Retr("/bench.bin")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				if cerr := r.Close(); err == nil {
					err = cerr
				}
				if err != nil || n != benchSize {
					b.Fatalf("RETR: %d bytes, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkFTPUpload measures STOR of 32 MiB over loopback with jlaffaye/ftp, per mode.
func BenchmarkFTPUpload(b *testing.B) {
	for _, m := range []mode{modePlain, modeExplicit} {
		b.Run(m.String(), func(b *testing.B) {
			site, _ := newSite(b, nil, nil)
			ts := serve(b, site, m)
			data := bytes.Repeat([]byte("0123456789abcdef"), benchSize/16)
			c, err := ts.dial(m, coretest.UserAlice, coretest.Password)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Quit()
			b.SetBytes(benchSize)
			b.ResetTimer()
			for b.Loop() {
				if err := c.Stor("/bench.bin", bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFTPSmallUpload is STOR of 4 KiB to a new name in a folder, with PASV, as lftp's
// mirror -R sends each file (issue #24); the site has no event handlers, as a server without
// scripts. -benchmem counts the client's allocations too (jlaffaye/ftp, in this process).
func BenchmarkFTPSmallUpload(b *testing.B) {
	site, _ := newSite(b, core.NopDispatcher{}, nil)
	ts := serve(b, site, modePlain)
	c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Quit()
	if err := c.MakeDir("/up"); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte{'s'}, 4096)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		if err := c.Stor("/up/f"+strconv.Itoa(n), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
