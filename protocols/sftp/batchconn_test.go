package sftp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// Writes of every size, in bursts and apart, arrive complete and in order, and Close sends
// what is still queued.
func TestBatchConnOrder(t *testing.T) {
	a, b := coretest.TCPPair(t)
	bc := newBatchConn(a)
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(b)
		got <- data
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	for i := range 3000 {
		n := rng.IntN(64)
		switch {
		case i%97 == 0:
			n = batchDirect + rng.IntN(40<<10) // a large write, sent directly when nothing is queued
		case i%13 == 0:
			time.Sleep(50 * time.Microsecond) // a pause: the next small write goes directly
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		want.Write(p)
		if k, err := bc.Write(p); err != nil || k != n {
			t.Fatalf("write %d: %d, %v", i, k, err)
		}
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	data := <-got
	if !bytes.Equal(data, want.Bytes()) {
		t.Fatalf("received %d bytes, want %d (or different content)", len(data), want.Len())
	}
}

// A failed send is reported by a later Write.
func TestBatchConnError(t *testing.T) {
	a, b := coretest.TCPPair(t)
	bc := newBatchConn(a)
	_ = b.Close()
	small := []byte("status reply")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := bc.Write(small)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed peer kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := bc.Write(small); err == nil {
		t.Fatal("a write after a failed send succeeded")
	}
	_ = bc.Close()
}

// Close does not wait forever for a peer that reads nothing, and later writes fail.
func TestBatchConnCloseStuckPeer(t *testing.T) {
	a, b := net.Pipe() // unbuffered: a send blocks until the peer reads
	defer b.Close()
	bc := newBatchConn(a)
	wrote := make(chan error, 1)
	go func() { // blocks: the peer never reads
		_, err := bc.Write([]byte("x"))
		wrote <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	_ = bc.Close()
	if d := time.Since(start); d > closeFlushTimeout+time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked write did not return after Close")
	}
	if _, err := bc.Write([]byte("z")); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

// Small writes in a burst leave in fewer sends than writes.
func TestBatchConnCoalesces(t *testing.T) {
	a, b := coretest.TCPPair(t)
	cc := &countingConn{Conn: a}
	bc := newBatchConn(cc)
	go func() { _, _ = io.Copy(io.Discard, b) }()
	const writes = 2000
	for range writes {
		if _, err := bc.Write(make([]byte, 40)); err != nil {
			t.Fatal(err)
		}
	}
	if err := bc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	if cc.writes >= writes {
		t.Fatalf("%d writes took %d sends", writes, cc.writes)
	}
	t.Logf("%d writes of 40 bytes took %d sends", writes, cc.writes)
}

type countingConn struct {
	net.Conn
	writes int // only the flusher or a direct write sends, never both at once
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}
