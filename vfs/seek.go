package vfs

import "io"

// SeekPosition is where Seek(offset, whence) lands on a handle at pos of a file of size
// bytes. ok is false for an unknown whence or a position before the start, which Seek
// refuses (fs.ErrInvalid) leaving the position at pos.
func SeekPosition(pos, size, offset int64, whence int) (_ int64, ok bool) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += pos
	case io.SeekEnd:
		offset += size
	default:
		return pos, false
	}
	if offset < 0 {
		return pos, false
	}
	return offset, true
}
