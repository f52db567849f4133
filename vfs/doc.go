// Package vfs is wharf's only point of contact with file systems: it turns
// client-supplied paths into clean virtual paths, maps them through a per-user
// mount table onto afero backends, and provides backends that are safe to hand
// to untrusted clients (a disk jail built on os.Root, an in-memory store and a
// read-only wrapper), plus an atomic-upload writer. The object-storage backend lives in its
// own package, vfs/s3fs, and plugs in through the optional interfaces of caps.go.
//
// Every name that crosses a backend boundary is a clean absolute slash path
// relative to the backend's own root, and every error a backend returns names
// only such paths, so host paths never reach a client or a script.
package vfs
