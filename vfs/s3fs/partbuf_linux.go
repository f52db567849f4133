package s3fs

import "golang.org/x/sys/unix"

func systemAllocator() bufferAllocator { return mmapAllocator{} }

// mmapAllocator maps buffers as private anonymous memory: untouched pages cost nothing, and
// released pages read as zeros until written again.
type mmapAllocator struct{}

func (mmapAllocator) alloc(size int) ([]byte, error) {
	return unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

func (mmapAllocator) release(b []byte) {
	// Cannot fail on a mapping of ours; if it did, the pages would merely stay resident.
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
}
