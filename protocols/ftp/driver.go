package ftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/core"
)

// clientDriver is an authenticated user's file system as the library sees it. Each method is
// one core session call; names from the library are untrusted (HASH and "LIST -la" pass the
// client's raw text), so relative names are joined with the client's cwd here and the core
// cleans and resolves them.
type clientDriver struct {
	st *connState
}

var (
	_ ftpserver.ClientDriver                        = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionDirLister      = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer   = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionRemoveDir      = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionHasher         = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionAvailableSpace = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionAllocate       = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionSite           = (*clientDriver)(nil)
)

// abs makes a library name absolute against the client's cwd.
func (d *clientDriver) abs(name string) string {
	if !path.IsAbs(name) {
		name = path.Join(d.st.cc.Path(), name)
	}
	return name
}

// op prepares one core call: it syncs CLNT/TLS state and attaches the FTP command text the
// session records as its last command ("STOR report.csv").
func (d *clientDriver) op(verb, p string) context.Context {
	d.st.sync()
	if v := d.st.cc.GetLastCommand(); v != "" {
		verb = v
	}
	return core.WithCommand(d.st.sess.Context(), verb+" "+d.display(p))
}

// display shows a path as the client most likely typed it: relative to the cwd when inside it.
func (d *clientDriver) display(p string) string {
	cwd := d.st.cc.Path()
	prefix := strings.TrimSuffix(cwd, "/") + "/"
	if rel, ok := strings.CutPrefix(p, prefix); ok && rel != "" {
		return rel
	}
	return p
}

func (d *clientDriver) sess() *core.Session { return d.st.sess }

// Name implements afero.Fs.
func (d *clientDriver) Name() string { return "wharf" }

// Stat serves CWD, SIZE, MDTM, MLST, RNFR, STAT, LIST and HASH.
func (d *clientDriver) Stat(name string) (os.FileInfo, error) {
	p := d.abs(name)
	fi, err := d.sess().Stat(d.op("STAT", p), p)
	return fi, reply(err)
}

// ListDir serves LIST, NLST, MLSD and STAT <dir>: the library pages through the core's
// listing and writes each batch as it comes, so a listing holds one batch of entries
// whatever the directory's size (third_party/ftpserverlib/WHARF.md).
func (d *clientDriver) ListDir(name string) (ftpserver.DirLister, error) {
	p := d.abs(name)
	l, err := d.sess().OpenList(d.op("LIST", p), p)
	if err != nil {
		return nil, reply(err)
	}
	return dirLister{l}, nil
}

// dirLister hands the core's errors to the library as every other driver call does.
type dirLister struct{ l *core.Lister }

func (l dirLister) Next(limit int) ([]os.FileInfo, error) {
	fis, err := l.l.Next(limit)
	return fis, reply(err)
}

func (l dirLister) Close() error { return reply(l.l.Close()) }

// Mkdir serves MKD.
func (d *clientDriver) Mkdir(name string, _ os.FileMode) error {
	p := d.abs(name)
	return reply(d.sess().Mkdir(d.op("MKD", p), p))
}

// RemoveDir serves RMD.
func (d *clientDriver) RemoveDir(name string) error {
	p := d.abs(name)
	return reply(d.sess().Rmdir(d.op("RMD", p), p))
}

// Remove serves DELE.
func (d *clientDriver) Remove(name string) error {
	p := d.abs(name)
	return reply(d.sess().Remove(d.op("DELE", p), p))
}

// Rename serves RNFR/RNTO; FTP replaces an existing target file.
func (d *clientDriver) Rename(oldname, newname string) error {
	from, to := d.abs(oldname), d.abs(newname)
	d.st.sync()
	ctx := core.WithCommand(d.sess().Context(), "RNTO "+d.display(to))
	return reply(d.sess().Rename(ctx, from, to, true))
}

// Chmod serves SITE CHMOD (through Site below).
func (d *clientDriver) Chmod(name string, mode os.FileMode) error {
	p := d.abs(name)
	return reply(d.sess().SetStat(d.op("SITE CHMOD", p), p, core.Attrs{Mode: &mode}))
}

// Chtimes serves MFMT.
func (d *clientDriver) Chtimes(name string, _, mtime time.Time) error {
	p := d.abs(name)
	return reply(d.sess().SetStat(d.op("MFMT", p), p, core.Attrs{Mtime: &mtime}))
}

// Chown is refused: ownership is the server's business.
func (d *clientDriver) Chown(name string, _, _ int) error {
	return d.refuse("chown", name, core.ErrDenied)
}

// Create, MkdirAll, Open, OpenFile and RemoveAll are not reached through the extensions this
// driver implements (MkdirAll and RemoveAll only by the built-in SITE MKDIR/RMDIR, which Site
// refuses). They refuse rather than bypass the core.
func (d *clientDriver) Create(name string) (afero.File, error) {
	return nil, d.refuse("create", name, core.ErrUnsupported)
}
func (d *clientDriver) MkdirAll(name string, _ os.FileMode) error {
	return d.refuse("mkdir", name, core.ErrDenied)
}
func (d *clientDriver) Open(name string) (afero.File, error) {
	return nil, d.refuse("open", name, core.ErrUnsupported)
}
func (d *clientDriver) OpenFile(name string, _ int, _ os.FileMode) (afero.File, error) {
	return nil, d.refuse("open", name, core.ErrUnsupported)
}
func (d *clientDriver) RemoveAll(name string) error {
	return d.refuse("rmdir", name, core.ErrDenied)
}

func (d *clientDriver) refuse(op, name string, kind error) error {
	p := path.Clean(d.abs(name))
	err := &core.OpError{Op: op, Path: p, Kind: kind}
	d.sess().RecordError(err)
	return err
}

// GetHandle serves RETR, STOR and APPE: flags and the REST offset become the core's write
// mode (STOR = O_TRUNC → truncate, REST n → offset n, APPE = O_APPEND → append).
func (d *clientDriver) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	p := d.abs(name)
	if flags&(os.O_WRONLY|os.O_RDWR) == 0 {
		h, err := d.sess().OpenRead(d.op("RETR", p), p, offset)
		if err != nil {
			return nil, reply(err)
		}
		return &readFile{h: h, ctx: d.sess().Context()}, nil
	}
	mode := core.WriteMode{Truncate: flags&os.O_TRUNC != 0, Append: flags&os.O_APPEND != 0}
	h, err := d.sess().OpenWrite(d.op("STOR", p), p, mode, offset)
	if err != nil {
		return nil, reply(err)
	}
	return &writeFile{h: h, ctx: d.sess().Context(), offset: offset}, nil
}

// ComputeHash serves HASH and the XCRC/XMD5/XSHA* commands.
func (d *clientDriver) ComputeHash(name string, algo ftpserver.HASHAlgo, start, end int64) (string, error) {
	p := d.abs(name)
	var a string
	switch algo {
	case ftpserver.HASHAlgoCRC32:
		a = "crc32"
	case ftpserver.HASHAlgoMD5:
		a = "md5"
	case ftpserver.HASHAlgoSHA1:
		a = "sha1"
	case ftpserver.HASHAlgoSHA256:
		a = "sha256"
	case ftpserver.HASHAlgoSHA512:
		a = "sha512"
	default:
		return "", d.refuse("hash", name, core.ErrUnsupported)
	}
	sum, err := d.sess().Hash(d.op("HASH", p), p, a, start, end)
	return sum, reply(err)
}

// GetAvailableSpace serves AVBL: the quota's room when the user has one, else the backend's.
func (d *clientDriver) GetAvailableSpace(dir string) (int64, error) {
	p := d.abs(dir)
	st, err := d.sess().StatFS(d.op("AVBL", p), p)
	if err != nil {
		return 0, reply(err)
	}
	return int64(min(st.BlocksAvail*st.BlockSize, 1<<62)), nil
}

// AllocateSpace serves ALLO: accepted unless the space for the cwd is known to be too small.
func (d *clientDriver) AllocateSpace(size int) error {
	if size <= 0 {
		return nil
	}
	p := d.st.cc.Path()
	st, err := d.sess().StatFS(d.op("ALLO", strconv.Itoa(size)), p)
	if err != nil {
		return nil // nothing known about the space: let the upload find out
	}
	if avail := st.BlocksAvail * st.BlockSize; uint64(size) > avail {
		err := &core.OpError{Op: "allocate", Path: p, Kind: core.ErrQuota}
		d.sess().RecordError(err)
		return reply(err)
	}
	return nil
}

// Site answers SITE CHMOD and refuses every other subcommand: the library's built-ins
// include SYMLINK and a recursive RMDIR that would bypass the core.
func (d *clientDriver) Site(param string) *ftpserver.AnswerCommand {
	d.st.sync()
	verb, args, _ := strings.Cut(strings.TrimSpace(param), " ")
	verb = strings.ToUpper(verb)
	if verb != "CHMOD" {
		d.sess().RecordCommand("SITE " + verb)
		err := &core.OpError{Op: "site " + strings.ToLower(verb), Kind: core.ErrUnsupported}
		d.sess().RecordError(err)
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusNotImplementedParam,
			Message: fmt.Sprintf("SITE %s is not supported; only SITE CHMOD is", verb)}
	}
	modeText, name, ok := strings.Cut(strings.TrimSpace(args), " ")
	mode, err := strconv.ParseUint(modeText, 8, 32)
	if !ok || err != nil || strings.TrimSpace(name) == "" || mode > 0o7777 {
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusSyntaxErrorParameters,
			Message: "usage: SITE CHMOD <octal mode> <path>"}
	}
	p := d.abs(strings.TrimSpace(name))
	fm := fs.FileMode(mode)
	ctx := core.WithCommand(d.sess().Context(), "SITE CHMOD "+modeText+" "+d.display(p))
	if err := d.sess().SetStat(ctx, p, core.Attrs{Mode: &fm}); err != nil {
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusActionNotTaken, Message: err.Error()}
	}
	return &ftpserver.AnswerCommand{Code: ftpserver.StatusOK, Message: "SITE CHMOD command successful"}
}

// quotaError is a core quota error that the library maps to 552 (ErrStorageExceeded) while
// the client still reads the core's text.
type quotaError struct{ err error }

func (e *quotaError) Error() string   { return e.err.Error() }
func (e *quotaError) Unwrap() []error { return []error{ftpserver.ErrStorageExceeded, e.err} }

// reply prepares a core error for the library, which sends its text verbatim.
func reply(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	if errors.Is(err, core.ErrQuota) {
		return &quotaError{err: err}
	}
	if errors.Is(err, core.ErrBadName) {
		return &badNameError{err: err}
	}
	return err
}

// badNameError is a core refusal of a file name that the library maps to 553
// (ErrFileNameNotAllowed) on STOR, APPE and RNTO, with the core's text.
type badNameError struct{ err error }

func (e *badNameError) Error() string   { return e.err.Error() }
func (e *badNameError) Unwrap() []error { return []error{ftpserver.ErrFileNameNotAllowed, e.err} }

// readFile is a download.
type readFile struct {
	h   *core.ReadHandle
	ctx context.Context // the session's: a terminated session stops its transfer
}

func (f *readFile) Read(p []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, &core.OpError{Op: "read", Path: f.h.Path(), Kind: core.ErrClosed, Err: err}
	}
	n, err := f.h.Read(p)
	return n, reply(err)
}
func (f *readFile) Write([]byte) (int, error) {
	return 0, &core.OpError{Op: "write", Path: f.h.Path(), Kind: core.ErrInvalid}
}
func (f *readFile) Seek(off int64, whence int) (int64, error) { return f.h.Seek(off, whence) }
func (f *readFile) Close() error                              { return reply(f.h.Close()) }

// TransferError marks an aborted download: the core fires OnTransferError instead of
// AfterFileDownload.
func (f *readFile) TransferError(err error) { f.h.Abort(err) }

// WriteTo is the library's io.Copy for a download (it asks the source first): the file goes
// out in copyBufSize chunks instead of io.Copy's 32 KiB, so a GiB takes an eighth of the
// pread, write and deadline calls. Measured (bench/run, docs/performance.md): about 20% less
// server CPU per GiB on plain FTP.
//
// Not sendfile(2): on this kernel's default congestion control (BBR) a socket fed by
// sendfile kept a smaller congestion window and pacing rate, and single downloads ran 9–16%
// slower than with this copy at about the same CPU (docs/performance.md, optimisation 8).
func (f *readFile) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := f.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m < n {
				return total, io.ErrShortWrite
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writeFile is an upload; the core opened it at the REST offset already.
type writeFile struct {
	h      *core.WriteHandle
	ctx    context.Context
	offset int64
}

func (f *writeFile) Write(p []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, &core.OpError{Op: "write", Path: f.h.Path(), Kind: core.ErrClosed, Err: err}
	}
	n, err := f.h.Write(p)
	return n, reply(err)
}
func (f *writeFile) Read([]byte) (int, error) {
	return 0, &core.OpError{Op: "read", Path: f.h.Path(), Kind: core.ErrInvalid}
}

// Seek accepts only the library's seek to the REST offset, which OpenWrite already applied.
func (f *writeFile) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart && off == f.offset {
		return off, nil
	}
	return 0, &core.OpError{Op: "seek", Path: f.h.Path(), Kind: core.ErrUnsupported}
}
func (f *writeFile) Close() error { return reply(f.h.Close()) }

// TransferError marks an aborted upload: the core discards it and fires OnTransferError.
func (f *writeFile) TransferError(err error) { f.h.Abort(err) }

// ReadFrom is the library's io.Copy for an upload: each read from the data connection may
// return up to copyBufSize (a fast sender fills the socket buffer well past 32 KiB), and is
// written with one core write. It writes what each read returned without waiting for more,
// so a slow client's data still reaches the file (and counts as activity) as it arrives.
func (f *writeFile) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := f.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// copyBufSize is the data copy chunk: 256 KiB used less server CPU per GiB than io.Copy's
// 32 KiB, and 1 MiB no less than 256 KiB; buffers are pooled, one per transfer in flight.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// passivePorts picks passive data ports at random from [Start, End]. The library asks for a
// candidate list as long as the range on every PASV/EPSV, and its own PortRange draws each
// one with crypto/rand.Int (big.Int allocations): with a 200-port range that was a quarter of
// the server's CPU time in the small-files benchmark. math/rand/v2's generator (ChaCha8,
// seeded from the OS) keeps the ports unpredictable; data connections are still tied to the
// client's address and, with TLS, to its session.
type passivePorts struct{ Start, End int }

// FetchNext implements ftpserver.PasvPortGetter.
func (r passivePorts) FetchNext() (int, int, bool) {
	p := r.Start + rand.IntN(r.End-r.Start+1)
	return p, p, true
}

// NumberAttempts implements ftpserver.PasvPortGetter. The library draws this many distinct
// candidates (up to four times as many draws, each checked against a map) before it tries the
// first, on every PASV and EPSV: with the whole range of a 200-port setting, building the list
// was 5% of the server's time in the small-files benchmark. 64 random ports are all taken
// with probability f^64 when a fraction f of the range is in use: 0.1% at 90%.
func (r passivePorts) NumberAttempts() int { return min(r.End-r.Start+1, maxPassiveAttempts) }

// maxPassiveAttempts bounds the passive ports tried for one PASV or EPSV.
const maxPassiveAttempts = 64
