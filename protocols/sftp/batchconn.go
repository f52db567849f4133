package sftp

import (
	"errors"
	"net"
	"sync"
	"time"
)

// batchConn is the TCP connection under x/crypto/ssh. x/crypto encrypts and sends every SSH
// packet with one write system call, holding its transport lock through the call, so small
// packets (an SFTP status reply per WRITE, a window adjustment every 96 KiB, the 13-byte tail
// of every 32 KiB READ reply) each cost a system call, and on loopback the call also does the
// receiver's TCP work. batchConn queues small writes and sends them from a flusher goroutine:
// packets written while a send is in progress leave together in one call, and the next packet
// is encrypted while the last one is being sent. A large write waits for the queue to be sent
// and goes straight to the socket, without a copy; so does a small one that does not follow
// another closely.
//
// Write returns before queued bytes reach the socket; an error sending them is returned by a
// later Write and by Close. Close sends what is queued first, for at most closeFlushTimeout.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	drained  sync.Cond // signalled when the queue shrinks or the flusher stops
	queue    []byte    // bytes written and not yet handed to the socket
	spare    []byte    // the flusher's buffer, swapped with queue
	flushing bool      // a flusher goroutine (or a direct write) is sending
	err      error     // the first send error; every later Write fails with it
	closed   bool
	lastSend time.Time // when the last send ended
}

const (
	// batchDirect is the size from which a write with nothing queued goes straight to the
	// socket: a copy would cost more than the system call it could save.
	batchDirect = 16 << 10
	// batchGap: a small write that comes longer than this after the last send is sent at
	// once. One request at a time (small files, a directory listing) then costs no hand-off to
	// the flusher; writes in a burst (replies to pipelined WRITEs) are queued.
	batchGap = 20 * time.Microsecond
	// batchLimit bounds the queue: Write waits while this much is unsent.
	batchLimit = 512 << 10
	// batchKeep is the largest queue buffer an idle connection keeps.
	batchKeep = 1 << 10
	// closeFlushTimeout bounds how long Close waits to send what is queued.
	closeFlushTimeout = 2 * time.Second
)

var errBatchClosed = errors.New("connection closed")

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.drained.L = &b.mu
	return b
}

// Write queues p, or sends it at once when it is large and nothing is queued.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.queue) >= batchLimit {
		b.drained.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	if len(p) >= batchDirect {
		// Sent directly after what is queued: copying it would cost more than the system
		// call it could share.
		for b.err == nil && b.flushing {
			b.drained.Wait()
		}
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
	}
	if !b.flushing && len(b.queue) == 0 && (len(p) >= batchDirect || time.Since(b.lastSend) > batchGap) {
		b.flushing = true
		b.mu.Unlock()
		n, err := b.Conn.Write(p)
		b.mu.Lock()
		b.flushing = false
		b.lastSend = time.Now()
		if err != nil && b.err == nil {
			b.err = err
		}
		b.startFlushLocked() // what was queued during the write
		b.drained.Broadcast()
		b.mu.Unlock()
		return n, err
	}
	b.queue = append(b.queue, p...)
	b.startFlushLocked()
	b.mu.Unlock()
	return len(p), nil
}

// startFlushLocked starts a flusher if bytes are queued and none is running.
func (b *batchConn) startFlushLocked() {
	if b.flushing || len(b.queue) == 0 || b.err != nil {
		return
	}
	b.flushing = true
	go b.flush()
}

// flush sends the queue until it is empty, one system call per round.
func (b *batchConn) flush() {
	b.mu.Lock()
	for len(b.queue) > 0 && b.err == nil {
		out := b.queue
		b.queue, b.spare = b.spare[:0], nil
		b.drained.Broadcast()
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		if err != nil && b.err == nil {
			b.err = err
		}
		if cap(out) <= batchLimit*2 {
			b.spare = out[:0]
		}
	}
	// An idle connection keeps at most a small buffer: there are many idle sessions.
	b.spare = nil
	if b.err != nil || cap(b.queue) > batchKeep {
		b.queue = nil
	}
	b.flushing = false
	b.lastSend = time.Now()
	b.drained.Broadcast()
	b.mu.Unlock()
}

// Close sends what is queued (for at most closeFlushTimeout) and closes the connection.
func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.Conn.Close()
	}
	b.closed = true
	if b.flushing || len(b.queue) > 0 {
		_ = b.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		for b.flushing && b.err == nil {
			b.drained.Wait()
		}
	}
	if b.err == nil {
		b.err = errBatchClosed
	}
	b.mu.Unlock()
	return b.Conn.Close()
}
