// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"io"
	"sync"
)

// buffer provides a queue of byte slices for data exchange between producer and consumer.
// Theoretically the buffer is of unlimited capacity as it does no allocation of its own.
//
// wharf: a slice of chunks instead of upstream's linked list of elements (one allocation per
// packet less), and a chunk may own the packet its data is in, which Read gives back to the
// packet pool once it has copied the last byte out (see packetpool.go and WHARF.md).
type buffer struct {
	// protects concurrent access to chunks, head and closed
	*sync.Cond

	chunks []chunk // chunks[head:] are waiting to be read; each holds at least one byte
	head   int

	closed bool
}

// A chunk is data written to the buffer and not yet read. pkt, if not nil, is the pooled
// packet that data is part of: the buffer owns it.
type chunk struct {
	data []byte
	pkt  []byte
}

// bufferKeepChunks is the largest chunk slice an empty buffer keeps; a larger one (many
// small packets were queued) is dropped when the buffer empties.
const bufferKeepChunks = 256

// newBuffer returns an empty buffer that is not closed.
func newBuffer() *buffer {
	return &buffer{Cond: newCond()}
}

// write makes buf available for Read to receive.
// buf must not be modified after the call to write.
func (b *buffer) write(buf []byte) { b.writePacket(buf, nil) }

// writePacket makes data available for Read to receive. pkt, if not nil, is the pooled
// packet data is part of: the buffer owns it and gives it back to the pool once data is
// read (or drops it if the buffer is closed first).
func (b *buffer) writePacket(data, pkt []byte) {
	if len(data) == 0 {
		putPacketBuffer(pkt)
		return
	}
	b.Cond.L.Lock()
	if b.head > 0 && b.head >= len(b.chunks)/2 && len(b.chunks) == cap(b.chunks) {
		// Reuse the room of the chunks already read rather than growing the slice.
		n := copy(b.chunks, b.chunks[b.head:])
		clear(b.chunks[n:])
		b.chunks, b.head = b.chunks[:n], 0
	}
	b.chunks = append(b.chunks, chunk{data: data, pkt: pkt})
	b.Cond.Signal()
	b.Cond.L.Unlock()
}

// pending reports whether Read has data it can return without waiting (wharf's change, see
// WHARF.md). Every chunk waiting to be read holds data.
func (b *buffer) pending() bool {
	b.Cond.L.Lock()
	defer b.Cond.L.Unlock()
	return b.head < len(b.chunks)
}

// eof closes the buffer. Reads from the buffer once all
// the data has been consumed will receive io.EOF.
func (b *buffer) eof() {
	b.Cond.L.Lock()
	b.closed = true
	b.Cond.Signal()
	b.Cond.L.Unlock()
}

// Read reads data from the internal buffer in buf.  Reads will block
// if no data is available, or until the buffer is closed.
func (b *buffer) Read(buf []byte) (n int, err error) {
	b.Cond.L.Lock()
	defer b.Cond.L.Unlock()

	for len(buf) > 0 {
		// if there is data waiting, copy it
		if b.head < len(b.chunks) {
			c := &b.chunks[b.head]
			r := copy(buf, c.data)
			buf, c.data = buf[r:], c.data[r:]
			n += r
			if len(c.data) == 0 {
				// Nothing refers to the packet any more: the data was copied out.
				putPacketBuffer(c.pkt)
				*c = chunk{}
				b.head++
				if b.head == len(b.chunks) {
					b.head = 0
					b.chunks = b.chunks[:0]
					if cap(b.chunks) > bufferKeepChunks {
						b.chunks = nil
					}
				}
			}
			continue
		}

		// if at least one byte has been copied, return
		if n > 0 {
			break
		}

		// if nothing was read, and there is nothing outstanding
		// check to see if the buffer is closed.
		if b.closed {
			err = io.EOF
			break
		}
		// out of buffers, wait for producer
		b.Cond.Wait()
	}
	return
}
