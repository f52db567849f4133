package sftp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
)

// TestSCPScenarios runs the scenario kit over legacy SCP: every row that only copies whole
// files (uploads, downloads, quota, limits, blocked uploads, escapes). SCP has no listing,
// stat, mkdir, delete, rename or resume, so rows needing those are skipped and others check
// the host folder instead.
func TestSCPScenarios(t *testing.T) { coretest.Run(t, scpKitProtocol()) }

// TestSCPScenariosS3 runs the same rows with the files in object storage.
func TestSCPScenariosS3(t *testing.T) { s3kit.Run(t, scpKitProtocol()) }

func scpKitProtocol() coretest.Protocol {
	return coretest.Protocol{
		Name: "SCP",
		Serve: func(t *testing.T, site *core.Site) coretest.Dial {
			srv, addr := startServer(t, site)
			return func(user, password string) (coretest.Client, error) {
				c, err := dialKit(srv, addr, user, password)
				if err != nil {
					return nil, err
				}
				return &scpClient{c: c}, nil
			}
		},
		Lacks: map[string]bool{
			coretest.CapList: true, coretest.CapStat: true, coretest.CapMkdir: true, coretest.CapRmdir: true,
			coretest.CapRemove: true, coretest.CapRename: true, coretest.CapResume: true,
		},
	}
}

// scpClient implements the copying half of coretest.Client the way OpenSSH's scp does with
// "-O" (the legacy protocol): one "scp -t" or "scp -f" exec per file on one SSH connection.
type scpClient struct{ c *ssh.Client }

var errSCPUnsupported = errors.New("scp: " + core.ErrUnsupported.Error())

// scpError is an error line from the server ("\x01scp: open /a: permission denied").
type scpError struct{ msg string }

func (e *scpError) Error() string { return e.msg }

// scpExec is one running scp command.
type scpExec struct {
	s   *ssh.Session
	in  io.WriteCloser
	out *bufio.Reader
}

func (k *scpClient) start(command string) (*scpExec, error) {
	s, err := k.c.NewSession()
	if err != nil {
		return nil, err
	}
	in, err := s.StdinPipe()
	if err == nil {
		var out io.Reader
		if out, err = s.StdoutPipe(); err == nil {
			if err = s.Start(command); err == nil {
				return &scpExec{s: s, in: in, out: bufio.NewReader(out)}, nil
			}
		}
	}
	_ = s.Close()
	return nil, err
}

// response reads the server's answer to one step.
func (x *scpExec) response() error {
	b, err := x.out.ReadByte()
	if err != nil {
		return fmt.Errorf("scp: reading response: %w", err)
	}
	switch b {
	case 0:
		return nil
	case 1, 2:
		line, err := x.out.ReadString('\n')
		if err != nil {
			return fmt.Errorf("scp: reading error line: %w", err)
		}
		return &scpError{msg: strings.TrimSpace(line)}
	}
	return fmt.Errorf("scp: unexpected response byte %#x", b)
}

// finish closes stdin and waits for the exit status; first is the error to report, if any.
func (x *scpExec) finish(first error) error {
	_ = x.in.Close()
	werr := x.s.Wait()
	_ = x.s.Close()
	if first != nil {
		return first
	}
	if werr != nil {
		return fmt.Errorf("scp: %w", werr)
	}
	return nil
}

// quote makes p one word for the server's command-line parser.
func quote(p string) string { return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'" }

func (k *scpClient) Upload(p string, data []byte) error {
	x, err := k.start("scp -t -- " + quote(p))
	if err != nil {
		return err
	}
	if err := x.response(); err != nil {
		return x.finish(err)
	}
	if _, err := fmt.Fprintf(x.in, "C0644 %d %s\n", len(data), path.Base(p)); err != nil {
		return x.finish(err)
	}
	if err := x.response(); err != nil {
		return x.finish(err)
	}
	if _, err := x.in.Write(append(data[:len(data):len(data)], 0)); err != nil {
		return x.finish(err)
	}
	return x.finish(x.response())
}

func (k *scpClient) Download(p string) ([]byte, error) {
	x, err := k.start("scp -f -- " + quote(p))
	if err != nil {
		return nil, err
	}
	if _, err := x.in.Write([]byte{0}); err != nil {
		return nil, x.finish(err)
	}
	// The server answers with a C line, or an error line instead.
	b, err := x.out.Peek(1)
	if err != nil {
		return nil, x.finish(err)
	}
	if b[0] != 'C' {
		return nil, x.finish(x.response())
	}
	line, err := x.out.ReadString('\n')
	if err != nil {
		return nil, x.finish(err)
	}
	f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
	if len(f) != 3 {
		return nil, x.finish(fmt.Errorf("scp: bad file line %q", line))
	}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || size < 0 {
		return nil, x.finish(fmt.Errorf("scp: bad size in %q", line))
	}
	if _, err := x.in.Write([]byte{0}); err != nil {
		return nil, x.finish(err)
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, x.out, size); err != nil {
		return nil, x.finish(fmt.Errorf("scp: reading data: %w", err))
	}
	if err := x.response(); err != nil {
		return nil, x.finish(err)
	}
	if _, err := x.in.Write([]byte{0}); err != nil {
		return nil, x.finish(err)
	}
	return buf.Bytes(), x.finish(nil)
}

func (k *scpClient) UploadAt(string, []byte, int64) error       { return errSCPUnsupported }
func (k *scpClient) DownloadFrom(string, int64) ([]byte, error) { return nil, errSCPUnsupported }
func (k *scpClient) List(string) ([]coretest.Entry, error)      { return nil, errSCPUnsupported }
func (k *scpClient) Stat(string) (coretest.Entry, error)        { return coretest.Entry{}, errSCPUnsupported }
func (k *scpClient) Mkdir(string) error                         { return errSCPUnsupported }
func (k *scpClient) Rmdir(string) error                         { return errSCPUnsupported }
func (k *scpClient) Remove(string) error                        { return errSCPUnsupported }
func (k *scpClient) Rename(string, string) error                { return errSCPUnsupported }
func (k *scpClient) Close() error                               { return k.c.Close() }
