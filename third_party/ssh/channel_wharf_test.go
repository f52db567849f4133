package ssh

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// remoteWindow is the window the peer granted to ch.
func remoteWindow(ch *channel) uint32 {
	ch.remoteWin.L.Lock()
	defer ch.remoteWin.L.Unlock()
	return ch.remoteWin.win
}

// buffered is the number of bytes in b that Read has not returned.
func buffered(b *buffer) int {
	b.L.Lock()
	defer b.L.Unlock()
	n := 0
	for _, c := range b.chunks[b.head:] {
		n += len(c.data)
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// windowPair opens a channel whose accepting side grants an initial window of size; it
// returns the accepting side, the opening side and the opener's mux.
func windowPair(t *testing.T, size uint32) (acc, opener *channel, m *mux) {
	t.Helper()
	c, s := muxPair()
	res := make(chan *channel, 1)
	go func() {
		nc, ok := <-s.incomingChannels
		if !ok {
			close(res)
			return
		}
		ch, _, err := nc.(*channel).AcceptWindow(size)
		if err != nil {
			t.Errorf("AcceptWindow: %v", err)
			close(res)
			return
		}
		res <- ch.(*channel)
	}()
	ch, err := c.openChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	acc = <-res
	if acc == nil {
		t.Fatal("no accepted channel")
	}
	t.Cleanup(func() {
		acc.Close()
		ch.Close()
		c.Close()
		s.Close()
	})
	return acc, ch, c
}

// TestAcceptWindowAndGrow: a channel accepted with a small window lets the peer send only
// that much until GrowWindow, which grants the default window; data then flows as usual.
func TestAcceptWindowAndGrow(t *testing.T) {
	const small = 4096
	acc, opener, _ := windowPair(t, small)
	if w := remoteWindow(opener); w != small {
		t.Fatalf("the opener was granted %d bytes, want %d", w, small)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096/16+1) // small + 16 bytes
	wrote := make(chan error, 1)
	go func() {
		_, err := opener.Write(data)
		wrote <- err
	}()
	// The first small bytes arrive; the rest waits for window.
	waitUntil(t, "the first window's data", func() bool { return buffered(acc.pending) == small })
	if w := remoteWindow(opener); w != 0 {
		t.Fatalf("opener window %d after sending %d bytes, want 0", w, small)
	}
	select {
	case err := <-wrote:
		t.Fatalf("the write of %d bytes into a %d-byte window returned (%v) before the window grew", len(data), small, err)
	default:
	}
	if err := acc.GrowWindow(); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write after GrowWindow: %v", err)
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(acc, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; want the data written", len(got), err)
	}
	// The peer was granted the default window (less what it sent since, which is returned
	// lazily, as upstream does, once enough was read).
	if w := remoteWindow(opener); w != channelWindowSize-uint32(len(data)) {
		t.Fatalf("opener window %d after GrowWindow, want %d", w, channelWindowSize-len(data))
	}
	acc.windowMu.Lock()
	size := acc.windowSize
	acc.windowMu.Unlock()
	if size != channelWindowSize {
		t.Fatalf("window size %d after GrowWindow, want %d", size, channelWindowSize)
	}
	// A second GrowWindow changes nothing.
	if err := acc.GrowWindow(); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{7}, 3*channelWindowSize)
	go func() {
		_, err := opener.Write(big)
		wrote <- err
	}()
	got = make([]byte, len(big))
	if _, err := io.ReadFull(acc, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if w := remoteWindow(opener); w > channelWindowSize {
		t.Fatalf("opener window %d, more than the default %d", w, channelWindowSize)
	}
}

// TestAcceptWindowStaysSmall: without GrowWindow, data still flows through the small window
// as it is read, and the peer is never granted more than it.
func TestAcceptWindowStaysSmall(t *testing.T) {
	const small = 4096
	acc, opener, _ := windowPair(t, small)
	data := bytes.Repeat([]byte("wharf"), 20000)
	wrote := make(chan error, 1)
	go func() {
		_, err := opener.Write(data)
		wrote <- err
	}()
	got := make([]byte, 0, len(data))
	buf := make([]byte, 1000)
	for len(got) < len(data) {
		if w := remoteWindow(opener); w > small {
			t.Fatalf("opener granted %d bytes, more than the %d-byte window", w, small)
		}
		if n := buffered(acc.pending); n > small {
			t.Fatalf("%d bytes buffered, more than the %d-byte window", n, small)
		}
		n, err := acc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-wrote; err != nil || !bytes.Equal(got, data) {
		t.Fatalf("write %v; read back equal: %v", err, bytes.Equal(got, data))
	}
}

// TestChannelClosed: Closed reports the peer's close, and a channel the peer closed before
// opening another is already Closed when the new one is received.
func TestChannelClosed(t *testing.T) {
	c, s := muxPair()
	defer c.Close()
	defer s.Close()
	var prev *channel
	for i := range 50 {
		res := make(chan *channel, 1)
		go func() {
			nc, ok := <-s.incomingChannels
			if !ok {
				close(res)
				return
			}
			if prev != nil && !prev.Closed() {
				t.Errorf("round %d: the channel closed before this one was opened is not Closed", i)
			}
			ch, _, err := nc.Accept()
			if err != nil {
				t.Errorf("accept: %v", err)
				close(res)
				return
			}
			res <- ch.(*channel)
		}()
		ch, err := c.openChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		acc := <-res
		if acc == nil {
			t.Fatal("no channel")
		}
		if acc.Closed() {
			t.Fatal("a channel is Closed before either side closed it")
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		prev = acc
	}
	waitUntil(t, "the last channel to be closed", prev.Closed)
}
