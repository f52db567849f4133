package s3fs

import (
	"runtime"
	"testing"
	"unsafe"
)

const testBufSize = 64 << 10

func fill(b []byte, v byte) []byte {
	b = b[:cap(b)]
	for i := range b {
		b[i] = v
	}
	return b
}

func TestPartBuffersReuse(t *testing.T) {
	p := NewPartBuffers()
	a := p.get(testBufSize)
	if len(a) != 0 || cap(a) != testBufSize {
		t.Fatalf("get: len %d cap %d, want 0 and %d", len(a), cap(a), testBufSize)
	}
	p.put(fill(a, 7))
	b := p.get(testBufSize)
	if unsafe.SliceData(a) != unsafe.SliceData(b) {
		t.Error("a returned buffer was not reused")
	}
	if len(b) != 0 {
		t.Errorf("a reused buffer has length %d", len(b))
	}
	other := p.get(2 * testBufSize) // another size: its own buffer
	if cap(other) != 2*testBufSize || unsafe.SliceData(other) == unsafe.SliceData(b) {
		t.Error("a buffer of another size shares memory")
	}
	p.put(other)
	p.put(b)
	if mapped, inUse := p.counts(); mapped != 2 || inUse != 0 {
		t.Errorf("mapped %d, in use %d; want 2 and 0", mapped, inUse)
	}
}

// TestPartBuffersRelease: the pages of free buffers go back when no buffer is in use, and a
// returned buffer's pages when as many buffers are warm as in use. Released pages read as
// zeros (Linux), which is how the test sees them go.
func TestPartBuffersRelease(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("buffers are mapped outside the heap on Linux only")
	}
	p := NewPartBuffers()
	a, b, c := p.get(testBufSize), p.get(testBufSize), p.get(testBufSize)
	a, b, c = fill(a, 1), fill(b, 2), fill(c, 3)
	p.put(a) // 2 in use, none warm: a stays warm
	if a[0] != 1 {
		t.Error("a buffer was released while uploads were in progress and none was warm")
	}
	p.put(b) // 1 in use, 1 warm: b's pages go
	if b[0] != 0 || b[testBufSize-1] != 0 {
		t.Error("a buffer beyond the warm ones kept its pages")
	}
	if a[0] != 1 {
		t.Error("the warm buffer lost its pages")
	}
	p.put(c) // idle: every page goes
	if a[0] != 0 || c[0] != 0 {
		t.Error("free buffers kept their pages with no upload in progress")
	}
	// The warm buffer is handed out first, then the released ones; none is mapped anew.
	d := p.get(testBufSize)
	if unsafe.SliceData(d) != unsafe.SliceData(c) {
		t.Error("the last buffer returned was not the first taken")
	}
	p.put(d)
	if mapped, inUse := p.counts(); mapped != 3 || inUse != 0 {
		t.Errorf("mapped %d, in use %d; want 3 and 0", mapped, inUse)
	}
}

// TestPartBuffersForeign: a slice that is not one of the pool's (an append that outgrew a
// buffer, or the heap fallback) is not taken into the pool.
func TestPartBuffersForeign(t *testing.T) {
	p := NewPartBuffers()
	a := p.get(testBufSize)
	p.put(make([]byte, 0, testBufSize))
	b := p.get(testBufSize)
	if cap(b) != testBufSize || unsafe.SliceData(b) == unsafe.SliceData(a) {
		t.Fatal("get returned a buffer in use")
	}
	if mapped, _ := p.counts(); mapped != 2 {
		t.Errorf("mapped %d, want 2: the foreign slice must not be handed out", mapped)
	}
	p.put(a)
	p.put(b)
}
