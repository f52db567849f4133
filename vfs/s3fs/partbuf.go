package s3fs

import (
	"sync"
	"unsafe"
)

// PartBuffers hands out the part buffers of uploads. One pool can serve every backend of a
// process (a site opens one backend per user prefix), so memory that one user's upload used
// serves the next user's.
//
// Where the system allows it (Linux), buffers are mapped outside the Go heap. A part buffer
// is the bulk of an upload's memory, and on the heap it counted towards the garbage
// collector's goal: the heap was let grow to twice the live part buffers before a collection
// ran, so an upload's peak RSS was about twice what it buffered. Off the heap, RSS follows
// the buffers themselves (only the pages written are resident), and the heap goal is set by
// the small rest.
//
// A buffer is never unmapped: the HTTP transport may still be reading a part's body for a
// moment after the request returned (net/http's RoundTripper contract), and reading a buffer
// given to another upload, or whose pages were released, is harmless where reading unmapped
// memory is not. Pages are given back (the mapping stays, for reuse) when no buffer is in
// use, and a returned buffer's pages when more buffers are warm than in use.
type PartBuffers struct {
	mu    sync.Mutex
	free  map[int]*freeBufs // by size
	inUse int
	warm  int             // free buffers whose pages may be resident
	ours  map[*byte]int   // every buffer mapped, by its first byte: its size
	sys   bufferAllocator // the memory buffers come from
}

type freeBufs struct {
	warm, cold [][]byte // each a stack: the last one returned is the first taken
}

// bufferAllocator maps and releases buffer memory: mmap on Linux, the Go heap elsewhere.
type bufferAllocator interface {
	alloc(size int) ([]byte, error)
	release(b []byte) // gives the pages back; b stays usable (reads as zeros)
}

// NewPartBuffers returns an empty pool.
func NewPartBuffers() *PartBuffers {
	return &PartBuffers{free: map[int]*freeBufs{}, ours: map[*byte]int{}, sys: systemAllocator()}
}

// get returns an empty buffer of capacity size.
func (p *PartBuffers) get(size int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse++
	if fb := p.free[size]; fb != nil {
		if n := len(fb.warm); n > 0 {
			b := fb.warm[n-1]
			fb.warm = fb.warm[:n-1]
			p.warm--
			return b[:0]
		}
		if n := len(fb.cold); n > 0 {
			b := fb.cold[n-1]
			fb.cold = fb.cold[:n-1]
			return b[:0]
		}
	}
	b, err := p.sys.alloc(size)
	if err != nil {
		// Out of address space or mappings: the heap still works, and put leaves the
		// buffer to the garbage collector.
		return make([]byte, 0, size)
	}
	p.ours[unsafe.SliceData(b)] = size
	return b[:0]
}

// put takes back a buffer from get. A slice that is not one of the pool's buffers (one
// that append moved to the heap, or the heap fallback of get) is left to the collector.
func (p *PartBuffers) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse--
	size, ok := p.ours[unsafe.SliceData(b)]
	if !ok || size != len(b) {
		return
	}
	fb := p.free[size]
	if fb == nil {
		fb = &freeBufs{}
		p.free[size] = fb
	}
	switch {
	case p.inUse == 0:
		// Idle: every page goes back, the warm buffers' and this one's (the last
		// returned, first taken again).
		for _, f := range p.free {
			for _, w := range f.warm {
				p.sys.release(w)
			}
			f.cold = append(f.cold, f.warm...)
			f.warm = f.warm[:0]
		}
		p.warm = 0
		p.sys.release(b)
		fb.cold = append(fb.cold, b)
	case p.warm >= p.inUse:
		p.sys.release(b)
		fb.cold = append(fb.cold, b)
	default:
		fb.warm = append(fb.warm, b)
		p.warm++
	}
}

// counts returns the number of buffers the pool mapped and of those in use (tests).
func (p *PartBuffers) counts() (mapped, inUse int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ours), p.inUse
}
