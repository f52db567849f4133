//go:build !linux

package s3fs

func systemAllocator() bufferAllocator { return heapAllocator{} }

// heapAllocator takes buffers from the Go heap; release drops nothing (the pool keeps the
// buffer for reuse).
type heapAllocator struct{}

func (heapAllocator) alloc(size int) ([]byte, error) { return make([]byte, size), nil }
func (heapAllocator) release([]byte)                 {}
