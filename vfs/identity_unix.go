//go:build unix

package vfs

import (
	"io/fs"
	"syscall"
)

type inode struct{ dev, ino uint64 }

func osFileKey(fi fs.FileInfo) (any, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, false
	}
	return inode{dev: uint64(st.Dev), ino: st.Ino}, true // Dev is a narrower type on some platforms
}

func osLinkCount(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true // Nlink is uint16 on some platforms
}
