package ssh

import (
	"sync"
	"unsafe"
)

// wharf: the packets that channel data and window adjustments arrive in are taken from pools
// and given back once handled, instead of a fresh allocation per packet (see WHARF.md).
// Upstream, readPacket copied every packet out of the cipher's buffer into a new slice, so
// an SFTP upload made 33 KiB of garbage per 32 KiB written, and the collector ran for it.
//
// A packet goes back to the pool only where its last user is known to be done with it: a
// channel's buffer once Read has copied its last byte out, or the window adjustment's
// handler once it has parsed it. A pooled packet dropped anywhere else (a closed channel,
// an unknown channel, an error) is simply collected.
//
// Sizes are powers of two from 64 bytes, and the largest channel data packet, so a packet
// holds at most twice its length: a client sending tiny packets costs the server no more
// than twice what it did.

// maxPooledPacket is the size of the largest class: a data packet with channelMaxPacket
// bytes of data fits, and so does a request of an SFTP server that carries that much data,
// the page GetBuffer lends for it (33 KiB, pkg/sftp's page for such requests).
const maxPooledPacket = 33 << 10

// Packets are read into buffers of the largest class.
const _ = uint(maxPooledPacket - (9 + channelMaxPacket))

// packetClasses are the pools' buffer sizes, shortest first.
var packetClasses = [...]int{64, 128, 256, 512, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, maxPooledPacket}

// packetPools hold, for each class, unsafe.Pointers to the first byte of free buffers of
// that size: a pointer goes into an interface without an allocation, where a slice header
// would need one.
var packetPools [len(packetClasses)]sync.Pool

// pooledPacket reports whether packets of type typ are read into pooled buffers: those whose
// handlers give them back.
func pooledPacket(typ byte) bool {
	return typ == msgChannelData || typ == msgChannelExtendedData || typ == msgChannelWindowAdjust
}

// packetClass returns the index of the shortest class holding n bytes, or -1.
func packetClass(n int) int {
	for i, size := range packetClasses {
		if n <= size {
			return i
		}
	}
	return -1
}

// getPacketBuffer returns a buffer of length n, from a pool when n fits one.
func getPacketBuffer(n int) []byte {
	c := packetClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := packetPools[c].Get().(unsafe.Pointer); ok {
		return unsafe.Slice((*byte)(p), packetClasses[c])[:n]
	}
	return make([]byte, n, packetClasses[c])
}

// putPacketBuffer gives b (from getPacketBuffer) back to its pool. The caller must be its
// last user. A nil b, or one no pool holds, is ignored.
func putPacketBuffer(b []byte) {
	c := packetClass(cap(b))
	if c < 0 || cap(b) != packetClasses[c] {
		return
	}
	packetPools[c].Put(unsafe.Pointer(unsafe.SliceData(b)))
}

// GetBuffer lends a buffer of length n from the pools channel data is read into, and
// PutBuffer takes it back (wharf). An SFTP server that reads its requests into these
// buffers holds the data in flight on a connection in one set of buffers: the channel's
// packets and the server's pages were two pools, each keeping the most it ever held, so a
// pipelined upload kept its 2 MiB in flight live twice over, and the garbage collector let
// the heap grow to twice that.
func GetBuffer(n int) []byte { return getPacketBuffer(n) }

// PutBuffer gives back a buffer from GetBuffer once its last user is done with it. A buffer
// of another origin is ignored.
func PutBuffer(b []byte) { putPacketBuffer(b) }
