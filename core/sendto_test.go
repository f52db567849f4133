package core_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// recordingWriter is an io.ReaderFrom that keeps what it is given and counts the calls.
type recordingWriter struct {
	bytes.Buffer
	calls int
}

func (w *recordingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.calls++
	return w.Buffer.ReadFrom(r)
}

// SendTo hands a disk file to the destination from the read position, counts the bytes, and
// stays out of the way where the bytes must pass through the core.
func TestReadHandleSendTo(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk), user("slow", onDisk, func(u *config.User) {
		u.Bandwidth.Download = 1 << 20
	}))
	data := make([]byte, 600<<10+123) // a few chunks and a bit
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"u", "slow"} {
		if err := os.MkdirAll(filepath.Join(root, id), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, id, "f.bin"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()

	s := login(t, site, "u")
	const offset = 1000
	h, err := s.OpenRead(ctx, "/f.bin", offset)
	if err != nil {
		t.Fatal(err)
	}
	var w recordingWriter
	n, ok, err := h.SendTo(ctx, &w)
	if !ok || err != nil || n != int64(len(data)-offset) {
		t.Fatalf("SendTo: %d, %v, %v", n, ok, err)
	}
	if !bytes.Equal(w.Bytes(), data[offset:]) || w.calls < 3 {
		t.Fatalf("sent %d bytes in %d calls; content equal: %v", w.Len(), w.calls, bytes.Equal(w.Bytes(), data[offset:]))
	}
	if h.Bytes() != n {
		t.Errorf("Bytes() = %d, want %d", h.Bytes(), n)
	}
	// The read position moved to the end: a sequential Read finds nothing more.
	if m, err := h.Read(make([]byte, 10)); m != 0 || err != io.EOF {
		t.Errorf("Read after SendTo: %d, %v", m, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	// A download bandwidth limit needs the bytes: no zero-copy path.
	slow := login(t, site, "slow")
	h, err = slow.OpenRead(ctx, "/f.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := h.SendTo(ctx, &w); ok {
		t.Error("SendTo ran under a bandwidth limit")
	}
	_ = h.Close()

	// A memory backend has no operating-system file.
	mem := testSite(t, []config.User{user("m")}, nil)
	ms := login(t, mem, "m")
	wh, err := ms.OpenWrite(ctx, "/f.bin", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = wh.Write(data[:100])
	if err := wh.Close(); err != nil {
		t.Fatal(err)
	}
	h, err = ms.OpenRead(ctx, "/f.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := h.SendTo(ctx, &w); ok {
		t.Error("SendTo ran on a memory file")
	}
	_ = h.Close()

	// A session ended from outside stops the transfer between chunks.
	h, err = s.OpenRead(ctx, "/f.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Terminate(false)
	if _, ok, err := h.SendTo(ctx, &w); !ok || err == nil {
		t.Errorf("SendTo on a terminated session: %v, %v", ok, err)
	}
	_ = h.Close()
}

// Over a TCP socket the file arrives intact (sendfile(2) on Linux).
func TestReadHandleSendToSocket(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk))
	data := make([]byte, 3<<20+7)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "u"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "u", "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	conn, peer := coretest.TCPPair(t)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	s := login(t, site, "u")
	ctx := context.Background()
	h, err := s.OpenRead(ctx, "/big.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	n, ok, err := h.SendTo(ctx, conn.(*net.TCPConn))
	_ = conn.Close()
	if !ok || err != nil || n != int64(len(data)) {
		t.Fatalf("SendTo: %d, %v, %v", n, ok, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("received %d bytes, want %d identical", len(b), len(data))
	}
}
