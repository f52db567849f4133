package sftp

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// The data path over loopback with pkg/sftp's client (concurrent reads and writes, AES-GCM
// as Go's client prefers it), on a disk home. Run with -benchtime=10x and -cpuprofile to
// profile the adapter; compare with OpenSSH's sftp-server for the same file.

const benchSize = 32 << 20

func benchClient(b *testing.B) *sftpSession {
	b.Helper()
	srv, addr := startServer(b, newTestSite(b, testSiteConfig(b.TempDir(), testUser("alice")), nil))
	return mustSFTP(b, srv, addr, "alice")
}

func BenchmarkSFTPUpload(b *testing.B) {
	c := benchClient(b)
	data := randomBytes(b, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		f, err := c.OpenFile("/bench.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSFTPDownload(b *testing.B) {
	c := benchClient(b)
	f, err := c.OpenFile("/bench.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(randomBytes(b, benchSize))); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		f, err := c.Open("/bench.bin")
		if err != nil {
			b.Fatal(err)
		}
		n, err := f.WriteTo(io.Discard)
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		_ = f.Close()
	}
}
