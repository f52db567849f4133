//go:build !unix

package vfs

import "io/fs"

func osFileKey(fs.FileInfo) (any, bool) { return nil, false }

func osLinkCount(fs.FileInfo) (uint64, bool) { return 0, false }
