package sftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-project/wharf/core"
)

// The legacy SCP protocol ("scp -O", and every scp before OpenSSH 9.0), served over an
// "exec" request without any shell: the command line is parsed here, and every file is read
// or written through the core session like SFTP requests are.
//
// Wire format (one direction sends, the other answers each step with a response byte):
//
//	T<mtime> 0 <atime> 0\n     times of the next file or directory (-p)
//	C<mode> <size> <name>\n    a file; <size> bytes and a response byte follow
//	D<mode> 0 <name>\n         enter a directory (-r)
//	E\n                        leave it
//
// A response is \x00 (ok), \x01<message>\n (error, the transfer goes on) or
// \x02<message>\n (fatal).

const (
	scpBufSize   = 128 << 10 // bigger than the line reader's buffer, so data bypasses it
	scpLineLimit = 4096
	scpMaxDepth  = 256
)

var (
	errNotSCP     = errors.New("not an scp command")
	errBadSCPArgs = errors.New("invalid arguments")
)

// scpOptions is a parsed "scp -t|-f [-r] [-p] [-d] [-v] [--] path..." command.
type scpOptions struct {
	sink      bool // -t: the client uploads
	source    bool // -f: the client downloads
	recursive bool // -r
	preserve  bool // -p: times and modes
	targetDir bool // -d: the target must be a directory
	paths     []string
}

func parseSCPCommand(cmd string) (*scpOptions, error) {
	args, err := splitWords(cmd)
	if err != nil || len(args) == 0 || path.Base(args[0]) != "scp" {
		return nil, errNotSCP
	}
	o := &scpOptions{}
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for _, f := range a[1:] {
			switch f {
			case 't':
				o.sink = true
			case 'f':
				o.source = true
			case 'r':
				o.recursive = true
			case 'p':
				o.preserve = true
			case 'd':
				o.targetDir = true
			case 'v':
			default:
				return nil, fmt.Errorf("%w: unknown option -%c", errBadSCPArgs, f)
			}
		}
	}
	o.paths = args[i:]
	switch {
	case o.sink == o.source:
		return nil, fmt.Errorf("%w: exactly one of -t and -f is required", errBadSCPArgs)
	case len(o.paths) == 0:
		return nil, fmt.Errorf("%w: no path", errBadSCPArgs)
	case o.sink && len(o.paths) != 1:
		return nil, fmt.Errorf("%w: ambiguous target", errBadSCPArgs)
	}
	return o, nil
}

// splitWords splits a command line the way a POSIX shell would split words, with quotes
// and backslashes, but without any expansion: nothing here is ever given to a shell.
func splitWords(s string) ([]string, error) { return shellWords(s, false) }

// scpPath maps the home shorthand a shell would have expanded: the home is "/".
func scpPath(p string) string {
	switch {
	case p == "~":
		return "/"
	case strings.HasPrefix(p, "~/"):
		return p[1:]
	}
	return p
}

// scp runs one SCP transfer on a channel.
type scp struct {
	ctx  context.Context
	sess *core.Session
	opts *scpOptions
	r    *bufio.Reader
	w    io.Writer
	log  *slog.Logger
	buf  []byte
	errs int // errors reported to the client; the exit status is 1 when any
}

func newSCP(ctx context.Context, sess *core.Session, opts *scpOptions, ch io.ReadWriter, log *slog.Logger) *scp {
	return &scp{ctx: ctx, sess: sess, opts: opts, r: bufio.NewReaderSize(ch, scpLineLimit), w: ch, log: log,
		buf: make([]byte, scpBufSize)}
}

func (x *scp) run() error {
	if x.opts.sink {
		return x.runSink()
	}
	return x.runSource()
}

// remoteError is an error line the client sent.
type remoteError struct {
	msg   string
	fatal bool
}

func (e *remoteError) Error() string { return "client reported: " + e.msg }

func (x *scp) ack() error {
	_, err := x.w.Write([]byte{0})
	return err
}

// report sends a non-fatal error line; the transfer goes on.
func (x *scp) report(err error) error {
	x.errs++
	x.log.Debug("scp error reported", "err", err)
	_, werr := fmt.Fprintf(x.w, "\x01scp: %s\n", oneLine(err.Error()))
	return werr
}

// abuse ends the transfer on a protocol violation and strikes the client: no scp program
// sends malformed lines or names that leave the target folder.
func (x *scp) abuse(err error) error {
	x.sess.Strike("scp protocol error: " + err.Error())
	return x.fatal(err)
}

// fatal sends a fatal error line and returns err, which ends the transfer.
func (x *scp) fatal(err error) error {
	x.errs++
	_, _ = fmt.Fprintf(x.w, "\x02scp: %s\n", oneLine(err.Error()))
	return err
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// readLine reads one protocol line without its newline, refusing overlong lines.
func (x *scp) readLine() (string, error) {
	var sb strings.Builder
	for {
		b, err := x.r.ReadByte()
		if err != nil {
			if err == io.EOF && sb.Len() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if b == '\n' {
			return sb.String(), nil
		}
		if sb.Len() >= scpLineLimit {
			return "", errors.New("protocol line too long")
		}
		sb.WriteByte(b)
	}
}

// readResponse reads the other side's answer to one step.
func (x *scp) readResponse() error {
	b, err := x.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	switch b {
	case 0:
		return nil
	case 1, 2:
		msg, err := x.readLine()
		if err != nil {
			return err
		}
		return &remoteError{msg: msg, fatal: b == 2}
	}
	return fmt.Errorf("protocol error: unexpected response byte %#x", b)
}

// isFatal reports whether a response error ends the transfer (anything but a client's
// non-fatal error line).
func isFatal(err error) bool {
	var re *remoteError
	return !errors.As(err, &re) || re.fatal
}

// ---- sink: the client uploads ("scp -t") ----

type scpTimes struct{ atime, mtime time.Time }

func (x *scp) runSink() error {
	target := scpPath(x.opts.paths[0])
	fi, err := x.sess.Stat(x.ctx, target)
	isDir := err == nil && fi.IsDir()
	if x.opts.targetDir && !isDir {
		return x.fatal(fmt.Errorf("%s: %w", target, core.ErrNotDir))
	}
	if err := x.ack(); err != nil {
		return err
	}
	return x.sinkLoop(target, isDir, 0)
}

func (x *scp) sinkLoop(dir string, dirIsDir bool, depth int) error {
	var times *scpTimes
	for {
		raw, err := x.readLine()
		if err == io.EOF && depth == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		line, err := parseSCPLine(raw)
		if err != nil {
			return x.abuse(err)
		}
		switch line.kind {
		case 1, 2:
			x.log.Info("scp client reported an error", "msg", line.msg)
			x.errs++
			if line.kind == 2 {
				return &remoteError{msg: line.msg, fatal: true}
			}
			continue
		case 'E':
			if depth == 0 {
				return x.abuse(errors.New("protocol error: unexpected E"))
			}
			return x.ack()
		case 'T':
			times = line.times
			if err := x.ack(); err != nil {
				return err
			}
			continue
		}
		np := dir
		if dirIsDir {
			np = path.Join(dir, line.name)
		}
		if line.kind == 'C' {
			if err := x.sinkFile(np, line.mode, line.size, times); err != nil {
				return err
			}
		} else {
			if err := x.sinkDir(np, line.mode, times, depth); err != nil {
				return err
			}
		}
		times = nil
	}
}

// scpLine is one parsed line of the sink direction.
type scpLine struct {
	kind  byte // 'C', 'D', 'E', 'T', or 1 / 2 for the client's error lines
	mode  fs.FileMode
	size  int64
	name  string    // C and D: one path element
	times *scpTimes // T
	msg   string    // 1 and 2
}

// parseSCPLine parses a protocol line (without its newline) the client sends to the sink.
// It is pure, for fuzzing: every error it returns is a protocol violation no scp client
// makes, so the sink strikes the client for it.
func parseSCPLine(line string) (scpLine, error) {
	if line == "" {
		return scpLine{}, errors.New("protocol error: empty line")
	}
	l := scpLine{kind: line[0]}
	switch l.kind {
	case 1, 2:
		l.msg = line[1:]
	case 'E':
		if len(line) != 1 {
			return scpLine{}, fmt.Errorf("protocol error: unexpected line %q", truncateLine(line))
		}
	case 'T':
		t, err := parseTimes(line[1:])
		if err != nil {
			return scpLine{}, err
		}
		l.times = t
	case 'C', 'D':
		mode, size, name, err := parseEntry(line[1:])
		if err != nil {
			return scpLine{}, err
		}
		if l.kind == 'D' && size != 0 {
			return scpLine{}, errors.New("protocol error: bad directory line")
		}
		l.mode, l.size, l.name = mode, size, name
	default:
		return scpLine{}, fmt.Errorf("protocol error: unexpected line %q", truncateLine(line))
	}
	return l, nil
}

func (x *scp) sinkDir(p string, mode fs.FileMode, times *scpTimes, depth int) error {
	if !x.opts.recursive {
		return x.fatal(errors.New("received a directory without -r"))
	}
	if depth >= scpMaxDepth {
		return x.fatal(errors.New("directories nested too deeply"))
	}
	if fi, err := x.sess.Stat(x.ctx, p); err == nil {
		if !fi.IsDir() {
			return x.report(fmt.Errorf("%s: %w", p, core.ErrNotDir))
		}
	} else if err := x.sess.Mkdir(x.ctx, p); err != nil {
		// The client skips the whole directory when its D line is refused.
		return x.report(err)
	}
	if err := x.ack(); err != nil {
		return err
	}
	// The E line that ends the directory is answered by the nested loop.
	if err := x.sinkLoop(p, true, depth+1); err != nil {
		return err
	}
	if x.opts.preserve {
		// Set after the contents were written, which would have changed the times.
		if err := x.sess.SetStat(x.ctx, p, preserveAttrs(mode, times)); err != nil {
			x.errs++
			x.log.Info("scp: cannot preserve directory attributes", "path", p, "err", err)
		}
	}
	return nil
}

func (x *scp) sinkFile(p string, mode fs.FileMode, size int64, times *scpTimes) error {
	h, err := x.sess.OpenWrite(x.ctx, p, core.WriteMode{Truncate: true}, 0)
	if err != nil {
		return x.report(err) // the client then sends no data
	}
	if err := x.ack(); err != nil {
		h.Abort(err)
		_ = h.Close()
		return err
	}
	var werr error
	for left := size; left > 0; {
		b := x.buf[:min(int64(len(x.buf)), left)]
		n, err := io.ReadFull(x.r, b)
		if n > 0 && werr == nil {
			// After a write error the data is still read, to stay in step with the client.
			_, werr = h.Write(b[:n])
		}
		left -= int64(n)
		if err != nil {
			h.Abort(err)
			_ = h.Close()
			return fmt.Errorf("reading file data: %w", err)
		}
	}
	if err := x.readResponse(); err != nil {
		h.Abort(err)
		_ = h.Close()
		if isFatal(err) {
			return err
		}
		x.errs++
		return x.ack()
	}
	if werr != nil {
		h.Abort(werr)
		_ = h.Close()
		return x.report(werr)
	}
	if err := h.Close(); err != nil {
		return x.report(err)
	}
	if x.opts.preserve {
		if err := x.sess.SetStat(x.ctx, p, preserveAttrs(mode, times)); err != nil {
			return x.report(err)
		}
	}
	return x.ack()
}

func preserveAttrs(mode fs.FileMode, t *scpTimes) core.Attrs {
	a := core.Attrs{Mode: &mode}
	if t != nil {
		a.Atime, a.Mtime = &t.atime, &t.mtime
	}
	return a
}

// parseTimes parses "<mtime> <usec> <atime> <usec>".
func parseTimes(s string) (*scpTimes, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return nil, errors.New("protocol error: bad T line")
	}
	var v [4]int64
	for i, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil || n < 0 {
			return nil, errors.New("protocol error: bad T line")
		}
		v[i] = n
	}
	if v[1] >= 1e6 || v[3] >= 1e6 {
		return nil, errors.New("protocol error: bad T line")
	}
	return &scpTimes{mtime: time.Unix(v[0], v[1]*1000), atime: time.Unix(v[2], v[3]*1000)}, nil
}

// parseEntry parses "<mode> <size> <name>" of a C or D line.
func parseEntry(s string) (fs.FileMode, int64, string, error) {
	bad := errors.New("protocol error: bad file line")
	m, rest, ok := strings.Cut(s, " ")
	if !ok {
		return 0, 0, "", bad
	}
	sz, name, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, 0, "", bad
	}
	mode, err := strconv.ParseUint(m, 8, 32)
	if err != nil || mode > 0o7777 {
		return 0, 0, "", bad
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 {
		return 0, 0, "", bad
	}
	// A name is one path element: the client cannot steer a file elsewhere.
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return 0, 0, "", fmt.Errorf("protocol error: unexpected file name %q", truncateLine(name))
	}
	return fs.FileMode(mode) & fs.ModePerm, size, name, nil
}

func truncateLine(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ---- source: the client downloads ("scp -f") ----

func (x *scp) runSource() error {
	// The client starts by saying it is ready.
	if err := x.readResponse(); err != nil {
		return err
	}
	for _, p := range x.opts.paths {
		if err := x.sendPath(scpPath(p)); err != nil {
			return err
		}
	}
	return nil
}

// sendPath sends a path the client named. A symbolic link there is followed, to a folder
// too, as OpenSSH's scp follows the paths it is given.
func (x *scp) sendPath(p string) error {
	fi, err := x.sess.Stat(x.ctx, p)
	if err != nil {
		return x.report(err)
	}
	switch {
	case fi.IsDir():
		if !x.opts.recursive {
			return x.report(fmt.Errorf("%s: %w", p, core.ErrIsDir))
		}
		return x.sendDir(p, fi.Name(), fi, 0)
	case fi.Mode().IsRegular():
		return x.sendFile(p, fi.Name(), fi)
	}
	return x.report(fmt.Errorf("%s: not a regular file", p))
}

// sendEntry sends an entry of a folder being sent with -r. It is looked at with Lstat: a
// symbolic link to a file is sent as the file, but a link to a folder is not followed (links
// to "." or ".." would make the tree endless), it gets an error line and the transfer goes
// on. That is what OpenSSH's scp does since it speaks SFTP (9.0); the legacy one followed.
func (x *scp) sendEntry(p string, depth int) error {
	fi, err := x.sess.Lstat(x.ctx, p)
	if err != nil {
		return x.report(err)
	}
	name := path.Base(p)
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = x.sess.Stat(x.ctx, p); err != nil {
			return x.report(err)
		}
		if fi.IsDir() {
			return x.report(fmt.Errorf("%s: not a regular file (a symbolic link to a directory is not followed)", p))
		}
	}
	switch {
	case fi.IsDir():
		return x.sendDir(p, name, fi, depth)
	case fi.Mode().IsRegular():
		return x.sendFile(p, name, fi)
	}
	return x.report(fmt.Errorf("%s: not a regular file", p))
}

// checkName refuses a name that cannot go into a C or D record: a newline would end the
// record, and the client would read the rest of the name as records of its own (files the
// server never sent). OpenSSH's scp skipped such a file with an error line too.
func (x *scp) checkName(p, name string) error {
	if strings.ContainsRune(name, '\n') {
		x.log.Info("scp: not sending a name that contains a newline", "path", p)
		return fmt.Errorf("%q: skipping, the name contains a newline", p)
	}
	return nil
}

// sendTimes sends a T line when -p asks for it; it reports whether to go on with the entry.
func (x *scp) sendTimes(fi fs.FileInfo) (bool, error) {
	if !x.opts.preserve {
		return true, nil
	}
	mt := fi.ModTime().Unix()
	if _, err := fmt.Fprintf(x.w, "T%d 0 %d 0\n", mt, mt); err != nil {
		return false, err
	}
	if err := x.readResponse(); err != nil {
		if isFatal(err) {
			return false, err
		}
		x.errs++
		return false, nil
	}
	return true, nil
}

func (x *scp) sendDir(p, name string, fi fs.FileInfo, depth int) error {
	if err := x.checkName(p, name); err != nil {
		return x.report(err)
	}
	if depth >= scpMaxDepth {
		return x.report(fmt.Errorf("%s: directories nested too deeply", p))
	}
	// The directory is read in batches while its entries are sent, so a huge directory
	// costs one batch per level of recursion, not its whole listing.
	l, err := x.sess.OpenList(x.ctx, p)
	if err != nil {
		return x.report(err)
	}
	defer l.Close()
	if ok, err := x.sendTimes(fi); !ok {
		return err
	}
	if _, err := fmt.Fprintf(x.w, "D%04o 0 %s\n", fi.Mode().Perm(), name); err != nil {
		return err
	}
	if err := x.readResponse(); err != nil {
		if isFatal(err) {
			return err
		}
		x.errs++ // the client refused the directory: skip it
		return nil
	}
	for {
		entries, lerr := l.Next(core.ListBatch)
		for _, e := range entries {
			if err := x.sendEntry(path.Join(p, e.Name()), depth+1); err != nil {
				return err
			}
		}
		if errors.Is(lerr, io.EOF) {
			break
		}
		if lerr != nil {
			// What was sent stays; the client is told the directory is incomplete.
			if err := x.report(lerr); err != nil {
				return err
			}
			break
		}
	}
	if _, err := io.WriteString(x.w, "E\n"); err != nil {
		return err
	}
	if err := x.readResponse(); err != nil {
		if isFatal(err) {
			return err
		}
		x.errs++
	}
	return nil
}

func (x *scp) sendFile(p, name string, fi fs.FileInfo) error {
	if err := x.checkName(p, name); err != nil {
		return x.report(err)
	}
	h, err := x.sess.OpenRead(x.ctx, p, 0)
	if err != nil {
		return x.report(err)
	}
	ok, err := x.sendTimes(fi)
	if !ok {
		_ = h.Close()
		return err
	}
	size := h.Size()
	if _, err := fmt.Fprintf(x.w, "C%04o %d %s\n", fi.Mode().Perm(), size, name); err != nil {
		h.Abort(err)
		_ = h.Close()
		return err
	}
	if err := x.readResponse(); err != nil {
		h.Abort(err)
		_ = h.Close()
		if isFatal(err) {
			return err
		}
		x.errs++
		return nil
	}
	rerr, err := x.sendData(h, size)
	if err != nil {
		h.Abort(err)
		_ = h.Close()
		return err
	}
	if rerr != nil {
		// The announced size was sent (padded), so the client stays in step; it learns
		// about the failure from the error line instead of the final \0.
		h.Abort(rerr)
		_ = h.Close()
		if err := x.report(rerr); err != nil {
			return err
		}
	} else {
		if err := x.ack(); err != nil {
			h.Abort(err)
			_ = h.Close()
			return err
		}
		if err := h.Close(); err != nil {
			x.log.Info("scp: closing download", "path", p, "err", err)
		}
	}
	if err := x.readResponse(); err != nil {
		if isFatal(err) {
			return err
		}
		x.errs++
	}
	return nil
}

// sendData sends exactly size bytes of h. A read error (rerr) pads the rest with zeros;
// a write error (err) means the channel is gone.
func (x *scp) sendData(h *core.ReadHandle, size int64) (rerr, err error) {
	for off := int64(0); off < size; {
		b := x.buf[:min(int64(len(x.buf)), size-off)]
		if rerr == nil {
			n, e := h.ReadAt(b, off)
			if n < len(b) {
				if e == nil || e == io.EOF {
					e = fmt.Errorf("read %s: file shrank while it was sent", h.Path())
				}
				rerr = e
				clear(b[n:])
			}
		} else {
			clear(b)
		}
		if _, err := x.w.Write(b); err != nil {
			return rerr, err
		}
		off += int64(len(b))
	}
	return rerr, nil
}
