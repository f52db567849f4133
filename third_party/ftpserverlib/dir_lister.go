package ftpserver

import (
	"io"
	"os"
	"strconv"
)

// ClientDriverExtensionDirLister is implemented by drivers that page through a directory
// listing instead of returning it whole (a wharf addition, see WHARF.md). LIST, NLST, MLSD
// and STAT <dir> then hold one batch of entries at a time, whatever the size of the
// directory, and write each batch as it comes. It takes precedence over
// ClientDriverExtensionFileList.
type ClientDriverExtensionDirLister interface {
	// ListDir opens the listing of the directory named by name, a clean absolute path. An
	// error is reported to the client as ReadDir's would be.
	ListDir(name string) (DirLister, error)
}

// DirLister pages through a directory listing. The library calls Next and Close from one
// goroutine at a time, and always calls Close.
type DirLister interface {
	// Next returns up to limit entries. At the end of the listing it returns io.EOF, with
	// or without entries. Another error ends the listing; the entries returned with it are
	// written first.
	Next(limit int) ([]os.FileInfo, error)
	// Close releases the listing.
	Close() error
}

// listingBatch is how many entries a listing asks its DirLister for at a time.
const listingBatch = 256

// listingBufferSize is the buffer between a listing and its data connection: lines go out
// in writes of this size rather than one write (and, with TLS, one record) per line.
const listingBufferSize = 32 << 10

// sliceLister is a DirLister over entries already in memory: a driver's ReadDir or
// Readdir(-1), or the one file a LIST or NLST names.
type sliceLister struct {
	files []os.FileInfo
}

func (l *sliceLister) Next(limit int) ([]os.FileInfo, error) {
	if len(l.files) == 0 {
		return nil, io.EOF
	}

	n := min(max(limit, 1), len(l.files))
	out := l.files[:n]
	l.files = l.files[n:]

	return out, nil
}

func (l *sliceLister) Close() error { return nil }

// hasControlChar reports whether s holds an ASCII control character (0x00-0x1F, 0x7F). Such
// a name cannot be written on a listing's line: a CR or LF would end the line and start a
// forged one, and escaping it would show another name.
func hasControlChar(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}

	return false
}

// listingOmissions counts the entries a listing left out, for one log line at its end.
type listingOmissions struct {
	count int
	first string
}

func (o *listingOmissions) add(name string) {
	if o.count == 0 {
		o.first = name
	}

	o.count++
}

// logOmissions logs, once per listing, the entries it left out.
func (c *clientHandler) logOmissions(command, directory string, o *listingOmissions) {
	if o.count == 0 {
		return
	}

	c.logger.Info(
		"Listing entries omitted: their names hold control characters",
		"command", command,
		"directory", strconv.Quote(directory),
		"omitted", o.count,
		"first", strconv.Quote(o.first),
	)
}
