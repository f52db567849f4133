package vfs

import (
	"io/fs"

	"github.com/spf13/afero/mem"
)

// File identity, for accounting that must count a file once however many names it has (hard
// links) and must tell when an open file lost its last name.

// InfoUnwrapper is a FileInfo that wraps another to change its name; identity looks through it.
type InfoUnwrapper interface {
	UnwrapInfo() fs.FileInfo
}

// UnwrapInfo implements InfoUnwrapper.
func (n namedInfo) UnwrapInfo() fs.FileInfo { return n.FileInfo }

func unwrapInfo(fi fs.FileInfo) fs.FileInfo {
	for {
		u, ok := fi.(InfoUnwrapper)
		if !ok {
			return fi
		}
		fi = u.UnwrapInfo()
	}
}

// FileKey returns a comparable identity of the file fi describes: the device and inode of a
// disk file, the in-memory file of a memory backend. ok is false when the backend gives none.
func FileKey(fi fs.FileInfo) (key any, ok bool) {
	fi = unwrapInfo(fi)
	if mi, isMem := fi.(*mem.FileInfo); isMem && mi.FileData != nil {
		return mi.FileData, true
	}
	return osFileKey(fi)
}

// SameFile reports whether a and b describe the same file (two names of one inode). Without
// an identity from the backend it reports false.
func SameFile(a, b fs.FileInfo) bool {
	ka, ok1 := FileKey(a)
	kb, ok2 := FileKey(b)
	return ok1 && ok2 && ka == kb
}

// LinkCount returns the number of names of the file fi describes; 1 when the backend does not
// say (backends without hard links), 0 for a file that was unlinked while open.
func LinkCount(fi fs.FileInfo) uint64 {
	if n, ok := osLinkCount(unwrapInfo(fi)); ok {
		return n
	}
	return 1
}
