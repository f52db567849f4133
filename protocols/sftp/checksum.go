package sftp

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	pkgsftp "github.com/pkg/sftp"
	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
)

// The checksum commands answer as GNU coreutils' md5sum, sha1sum, sha256sum and sha512sum do
// on a shell-backed OpenSSH server, so clients that hash files that way (rclone, SFTPGo's
// clients, scripts) get hashes from wharf too. Files are hashed by the core (core.Session.Hash:
// the user's jail and download permission, audit); nothing runs a program or a shell.

// checksumCommand is one of the commands and how it names its algorithm.
type checksumCommand struct {
	algo string           // for core.Session.Hash
	tag  string           // for --tag lines ("SHA256 (name) = …")
	new  func() hash.Hash // for standard input
}

var checksumCommands = map[string]checksumCommand{
	"md5sum":    {"md5", "MD5", md5.New},
	"sha1sum":   {"sha1", "SHA1", sha1.New},
	"sha256sum": {"sha256", "SHA256", sha256.New},
	"sha512sum": {"sha512", "SHA512", sha512.New},
}

// checksumJob is a parsed checksum command line.
type checksumJob struct {
	prog  string
	cmd   checksumCommand
	names []string // "-" is standard input; none means standard input
	// As coreutils: binary is -1 (unset), 0 (-t) or 1 (-b, --tag); the last one given wins.
	binary int
	bsdTag bool // --tag
	zero   bool // -z: NUL-terminated lines, names unescaped
}

// checksumLongOptions are coreutils' long options, for prefix matching as getopt_long does;
// those wharf does not implement are refused with a message that says so.
var checksumLongOptions = []string{"binary", "check", "help", "ignore-missing", "quiet", "status", "strict", "tag", "text", "version", "warn", "zero"}

// usageError is a command line coreutils would refuse; its text is printed after "prog: ".
type usageError struct {
	msg  string
	hint bool // add coreutils' "Try '… --help'" line
}

func (e *usageError) Error() string { return e.msg }

// parseChecksum reads the words of a checksum command line: options anywhere before "--"
// (GNU getopt permutes), then file names.
func parseChecksum(words []string) (*checksumJob, error) {
	j := &checksumJob{prog: words[0], cmd: checksumCommands[words[0]], binary: -1}
	opts := true
	for _, w := range words[1:] {
		switch {
		case !opts || w == "-" || !strings.HasPrefix(w, "-"):
			j.names = append(j.names, w)
		case w == "--":
			opts = false
		case strings.HasPrefix(w, "--"):
			name, _, _ := strings.Cut(w[2:], "=")
			var matches []string
			for _, o := range checksumLongOptions {
				if o == name {
					matches = []string{o}
					break
				}
				if strings.HasPrefix(o, name) {
					matches = append(matches, o)
				}
			}
			switch {
			case len(matches) == 0:
				return nil, &usageError{msg: fmt.Sprintf("unrecognized option '%s'", w), hint: true}
			case len(matches) > 1:
				return nil, &usageError{msg: fmt.Sprintf("option '%s' is ambiguous; possibilities: '--%s'", w, strings.Join(matches, "' '--")), hint: true}
			}
			if err := j.option(matches[0], "--"+matches[0]); err != nil {
				return nil, err
			}
		default:
			for _, f := range w[1:] {
				long := map[rune]string{'b': "binary", 't': "text", 'z': "zero", 'c': "check", 'w': "warn"}[f]
				if long == "" {
					return nil, &usageError{msg: fmt.Sprintf("invalid option -- '%c'", f), hint: true}
				}
				if err := j.option(long, "-"+string(f)); err != nil {
					return nil, err
				}
			}
		}
	}
	if j.bsdTag && j.binary == 0 {
		return nil, &usageError{msg: "--tag does not support --text mode", hint: true}
	}
	if len(j.names) == 0 {
		j.names = []string{"-"}
	}
	return j, nil
}

func (j *checksumJob) option(long, given string) error {
	switch long {
	case "binary":
		j.binary = 1
	case "text":
		j.binary = 0
	case "tag":
		j.bsdTag, j.binary = true, 1
	case "zero":
		j.zero = true
	default:
		return &usageError{msg: fmt.Sprintf("option '%s' is not supported on this server (it computes checksums; it does not verify them)", given)}
	}
	return nil
}

// checksumLine formats one result as coreutils does.
func (j *checksumJob) checksumLine(sum, name string) string {
	var b strings.Builder
	escaped := !j.zero && strings.ContainsAny(name, "\\\n\r")
	if escaped {
		b.WriteByte('\\')
		name = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
	}
	if j.bsdTag {
		fmt.Fprintf(&b, "%s (%s) = %s", j.cmd.tag, name, sum)
	} else {
		sep := " "
		if j.binary == 1 {
			sep = "*"
		}
		fmt.Fprintf(&b, "%s %s%s", sum, sep, name)
	}
	if j.zero {
		b.WriteByte(0)
	} else {
		b.WriteByte('\n')
	}
	return b.String()
}

// checksumWords splits an exec command line if it is a checksum command. It reports
// isChecksum for a line whose first word names one, with err set if the line cannot be
// taken as plain words (it would mean something else to a shell, which wharf does not run).
func checksumWords(command string) (words []string, isChecksum bool, err error) {
	words, err = shellWords(command, true)
	if err != nil {
		first := strings.Fields(command)
		if loose, lerr := shellWords(command, false); lerr == nil {
			first = loose
		}
		if len(first) > 0 {
			if _, ok := checksumCommands[first[0]]; ok {
				return nil, true, err
			}
		}
		return nil, false, nil
	}
	if len(words) == 0 {
		return nil, false, nil
	}
	_, ok := checksumCommands[words[0]]
	return words, ok, nil
}

// checksum runs a checksum command on ch and returns its exit status: 0, or 1 if any file
// failed or the command line was refused (coreutils' statuses).
func (c *conn) checksum(ctx context.Context, ch ssh.Channel, command string, words []string, syntaxErr error) uint32 {
	prog := "md5sum"
	if len(words) > 0 {
		prog = words[0]
	} else if f := strings.Fields(command); len(f) > 0 {
		prog = f[0]
	}
	stderr := ch.Stderr()
	if syntaxErr != nil {
		c.sess.RecordCommand(command)
		c.log.Info("checksum command refused", "command", command, "err", syntaxErr)
		fmt.Fprintf(stderr, "%s: this server runs no shell: the command line may hold only words, quotes and backslashes (%v)\n", prog, syntaxErr)
		return exitFailure
	}
	if err := c.sess.OpenCommand(ctx, command); err != nil {
		c.log.Info("checksum command refused", "command", command, "err", err)
		fmt.Fprintf(stderr, "%s: %s\n", prog, core.Kind(err))
		return exitFailure
	}
	job, err := parseChecksum(words)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) && ue.hint {
			fmt.Fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, ue.msg, prog)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		}
		return exitFailure
	}
	c.growWindow(ch)
	status := uint32(exitOK)
	for _, name := range job.names {
		sum, err := c.hashOne(ctx, ch, job, name)
		if errors.Is(err, core.ErrClosed) || ctx.Err() != nil {
			return exitFailure
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %s: %s\n", prog, quoteName(name), strerror(err))
			status = exitFailure
			continue
		}
		if _, err := io.WriteString(ch, job.checksumLine(sum, name)); err != nil {
			return exitFailure
		}
	}
	return status
}

// hashOne hashes standard input ("-") or a file of the user's.
func (c *conn) hashOne(ctx context.Context, ch ssh.Channel, job *checksumJob, name string) (string, error) {
	if name == "-" {
		h := job.cmd.new()
		if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: ch}); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	if name == "" {
		return "", core.ErrNotFound // a shell passes '' as an empty name, which names nothing
	}
	return c.sess.Hash(ctx, name, job.cmd.algo, 0, 0)
}

// ctxReader stops reading standard input when the session ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// strerror is the text coreutils prints for an error: the C library's message for the kind.
func strerror(err error) string {
	switch core.Kind(err) {
	case core.ErrNotFound:
		return "No such file or directory"
	case core.ErrIsDir:
		return "Is a directory"
	case core.ErrNotDir:
		return "Not a directory"
	case core.ErrDenied:
		return "Permission denied"
	case core.ErrInvalid:
		return "Invalid argument"
	}
	k := core.Kind(err).Error()
	return strings.ToUpper(k[:1]) + k[1:]
}

// quoteName quotes a file name for an error message as coreutils does (gnulib's
// shell-escape style, with ':' quoted too): as it is when no shell would misread it, in single
// quotes otherwise, in double quotes when it holds a single quote and nothing a double-quoted
// shell word would expand, and with control characters as $'\n' pieces between quoted runs.
func quoteName(s string) string {
	if s == "" {
		return "''"
	}
	needs, control, single, doubleOK := false, false, false, true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1 || !unicode.IsPrint(r):
			needs, control, doubleOK = true, true, false
		case r == '\'':
			needs, single = true, true
		case strings.ContainsRune(" !\"$&()*;<=>?[\\^`|:", r):
			needs = true
			if strings.ContainsRune("!\"$\\`", r) {
				doubleOK = false
			}
		case (r == '#' || r == '~') && i == 0:
			needs = true
		}
		i += n
	}
	switch {
	case !needs:
		return s
	case single && !control && doubleOK:
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('\'')
	open := true // inside a single-quoted run
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1 || !unicode.IsPrint(r):
			if open {
				b.WriteByte('\'')
				open = false
			}
			b.WriteString("$'")
			for _, c := range []byte(s[i : i+n]) {
				b.WriteString(cEscape(c))
			}
			b.WriteByte('\'')
		default:
			if !open {
				b.WriteByte('\'')
				open = true
			}
			if r == '\'' {
				b.WriteString(`'\''`)
			} else {
				b.WriteString(s[i : i+n])
			}
		}
		i += n
	}
	if open {
		b.WriteByte('\'')
	}
	return b.String()
}

// cEscape is a byte of a control character or an invalid sequence as $'…' writes it.
func cEscape(c byte) string {
	switch c {
	case '\a':
		return `\a`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	case '\v':
		return `\v`
	}
	return fmt.Sprintf(`\%03o`, c)
}

// checkFileAlgorithms are the hashes the check-file extension computes (core.Session.Hash).
var checkFileAlgorithms = []string{"md5", "sha1", "sha256", "sha512"}

var _ pkgsftp.CheckFileFileCmder = (*handlers)(nil)

// CheckFileAlgorithms is what the server announces with the check-file extension.
func (h *handlers) CheckFileAlgorithms() []string { return checkFileAlgorithms }

// CheckFile answers the check-file extension (check-file-name with a path, check-file-handle,
// and check-file with a handle from paramiko's SFTPFile.check): the hash of a file, or of a
// range of it, in the first of the client's algorithms wharf knows. The core hashes it as
// for FTP's HASH (the user's download permission, audited; an object store's MD5 ETag when
// it is one). Hashes of successive blocks are not computed: a block size smaller than the
// range is refused.
func (h *handlers) CheckFile(r *pkgsftp.Request, algorithms []string, offset, length uint64, blockSize uint32) (_ string, _ []byte, err error) {
	defer h.guard(&err)
	algo := ""
	for _, a := range algorithms {
		if a = strings.ToLower(a); slices.Contains(checkFileAlgorithms, a) {
			algo = a
			break
		}
	}
	switch {
	case algo == "":
		return "", nil, &statusError{code: pkgsftp.ErrSSHFxOpUnsupported,
			err: fmt.Errorf("check-file: none of the algorithms asked is supported (%s are)", strings.Join(checkFileAlgorithms, ","))}
	case offset > math.MaxInt64/2 || length > math.MaxInt64/2:
		return "", nil, &statusError{code: pkgsftp.ErrSSHFxFailure, err: errors.New("check-file: offset or length out of range")}
	case blockSize != 0 && (length == 0 || uint64(blockSize) < length):
		return "", nil, &statusError{code: pkgsftp.ErrSSHFxOpUnsupported,
			err: errors.New("check-file: hashes of blocks are not supported; ask for one hash (block size 0)")}
	}
	start, end := int64(offset), int64(0)
	if length > 0 {
		end = start + int64(length)
	}
	sum, err := h.sess.Hash(h.ctx, r.Filepath, algo, start, end)
	if err != nil {
		return "", nil, toStatus(err)
	}
	raw, err := hex.DecodeString(sum)
	if err != nil {
		return "", nil, toStatus(fmt.Errorf("check-file: %w", err))
	}
	return algo, raw, nil
}
