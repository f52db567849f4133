package vfs

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
