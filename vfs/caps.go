package vfs

import (
	"context"
	"os"

	"github.com/spf13/afero"
)

// Optional backend capabilities. The session core discovers them with type
// assertions, so a backend implements only what it can do honestly.
// Symbolic links use afero's own optional interfaces: afero.Linker
// (SymlinkIfPossible), afero.LinkReader (ReadlinkIfPossible) and
// afero.Lstater (LstatIfPossible).

// Locator reports where a name lives in the backend, for administrators and
// scripts (Session.GetAbsPath): an absolute host path for disk, "mem:/a/b" for
// memory. It is never sent to clients.
type Locator interface {
	Locate(name string) string
}

// SpaceStater reports file system usage, for SFTP statvfs@openssh.com and
// quota displays.
type SpaceStater interface {
	StatFS(name string) (*StatFS, error)
}

// StatFS is file system usage in the shape of statvfs(3). Block counts are in
// units of BlockSize.
type StatFS struct {
	BlockSize, Blocks, BlocksFree, BlocksAvail, Files, FilesFree, NameMax uint64
}

// HardLinker creates hard links. Both names are inside the same backend.
type HardLinker interface {
	Link(oldname, newname string) error
}

// UploadCreator is a backend whose uploads are atomic by nature: an object store, where an
// object appears only when its upload completes. CreateAtomic hands the upload to it instead
// of writing a temporary file and renaming it over the final name.
type UploadCreator interface {
	CreateUpload(name string, perm os.FileMode) (PendingUpload, error)
}

// PendingUpload is an upload that becomes visible under its name only when published.
type PendingUpload interface {
	afero.File // Close finishes sending the data but does not publish it
	// TempName is a hidden name under which the backend's Stat (and Open, where it can)
	// see the upload until it is published or discarded.
	TempName() string
	Publish() error // the upload appears under its name, replacing what was there
	Discard() error // the upload is dropped; the name is left as it was
}

// UsageCounter is a backend that counts its files and bytes, as quotas count them (regular
// files, uploads in progress not at all), faster than a walk of its directories.
type UsageCounter interface {
	Usage(ctx context.Context) (bytes, files int64, err error)
}

// KnownHasher is a backend that may know a file's digest without reading it (an object
// store's MD5 ETag). ok is false when it does not know it; the caller then reads the file.
type KnownHasher interface {
	KnownHash(ctx context.Context, name, algo string) (sum string, ok bool, err error)
}
