package ftp

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
)

// BenchmarkFTPCopy isolates the data copy the library runs for RETR and STOR (io.Copy
// between the data connection and the driver's file) over a loopback TCP connection, without
// the FTP control protocol: "io.Copy-32K" hides the file's WriteTo/ReadFrom (the library's
// generic 32 KiB loop), "driver" lets io.Copy use them (copyBufSize chunks).
func BenchmarkFTPCopy(b *testing.B) {
	const size = 64 << 20
	site, root := newSite(b, nil, nil)
	ctx := context.Background()
	sess, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, Protocol: core.ProtoFTP})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sess.Close)
	if err := sess.AuthPassword(ctx, coretest.UserAlice, coretest.Password); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := os.WriteFile(filepath.Join(root, "home", coretest.UserAlice, "src.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, driver := range []bool{false, true} {
		name := "io.Copy-32K"
		if driver {
			name = "driver"
		}
		b.Run("download/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				h, err := sess.OpenRead(ctx, "/src.bin", 0)
				if err != nil {
					b.Fatal(err)
				}
				f := &readFile{h: h, ctx: ctx}
				conn, done := tcpSink(b)
				var src io.Reader = f
				if !driver {
					src = struct{ io.Reader }{f}
				}
				n, err := io.Copy(struct{ io.Writer }{conn}, src)
				_ = conn.Close()
				<-done
				_ = f.Close()
				if err != nil || n != size {
					b.Fatalf("copied %d: %v", n, err)
				}
			}
		})
		b.Run("upload/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				h, err := sess.OpenWrite(ctx, "/dst.bin", core.WriteMode{Truncate: true}, 0)
				if err != nil {
					b.Fatal(err)
				}
				f := &writeFile{h: h, ctx: ctx}
				conn := tcpSource(b, data)
				var dst io.Writer = f
				if !driver {
					dst = struct{ io.Writer }{f}
				}
				n, err := io.Copy(dst, struct{ io.Reader }{conn})
				_ = conn.Close()
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil || n != size {
					b.Fatalf("copied %d: %v", n, err)
				}
			}
		})
	}
}

// tcpSink returns a connection whose peer discards everything; done closes when it saw EOF.
func tcpSink(b *testing.B) (net.Conn, <-chan struct{}) {
	c, s := coretest.TCPPair(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	}()
	return s, done
}

// tcpSource returns a connection whose peer sends data and closes.
func tcpSource(b *testing.B, data []byte) net.Conn {
	c, s := coretest.TCPPair(b)
	go func() {
		_, _ = c.Write(data)
		_ = c.Close()
	}()
	return s
}
