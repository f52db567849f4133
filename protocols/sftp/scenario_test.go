package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
)

// TestScenarios runs the cross-protocol scenario table over SFTP with pkg/sftp's client.
func TestScenarios(t *testing.T) { coretest.Run(t, kitProtocol()) }

// TestScenariosS3 runs the table over SFTP with the files in object storage.
func TestScenariosS3(t *testing.T) { s3kit.Run(t, kitProtocol()) }

func kitProtocol() coretest.Protocol {
	return coretest.Protocol{
		Name: "SFTP",
		Serve: func(t *testing.T, site *core.Site) coretest.Dial {
			srv, addr := startServer(t, site)
			return func(user, password string) (coretest.Client, error) {
				sc, err := dialKit(srv, addr, user, password)
				if err != nil {
					return nil, err
				}
				c, err := pkgsftp.NewClient(sc, pkgsftp.UseConcurrentWrites(true))
				if err != nil {
					_ = sc.Close()
					return nil, err
				}
				return &kitClient{&sftpSession{ssh: sc, Client: c}}, nil
			}
		},
		Kind: sftpKind,
	}
}

// dialKit logs in with a password. SSH reports a refused login without a reason; the
// server explains some refusals (the session limit) in an authentication banner, which is
// added to the error the way OpenSSH prints it next to its own message.
func dialKit(srv *Server, addr, user, password string) (*ssh.Client, error) {
	var mu sync.Mutex
	var banners []string
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.Password(password)}, HostKeyCallback: hostKeyCallback(srv),
		Timeout: 10 * time.Second,
		BannerCallback: func(msg string) error {
			mu.Lock()
			banners = append(banners, strings.TrimSpace(msg))
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		if len(banners) > 0 {
			return nil, fmt.Errorf("%w (server: %s)", err, strings.Join(banners, "; "))
		}
		return nil, err
	}
	return c, nil
}

// sftpKind maps a pkg/sftp client error to a core kind: the status code where it is
// specific, else the core's message carried in the status.
func sftpKind(err error) error {
	var se *pkgsftp.StatusError
	if errors.As(err, &se) {
		switch se.FxCode() {
		case pkgsftp.ErrSSHFxPermissionDenied:
			return core.ErrDenied
		case pkgsftp.ErrSSHFxNoSuchFile:
			return core.ErrNotFound
		}
	}
	// The client turns those two codes into os errors (and drops the message).
	switch {
	case errors.Is(err, os.ErrPermission):
		return core.ErrDenied
	case errors.Is(err, os.ErrNotExist):
		return core.ErrNotFound
	}
	return coretest.KindFromText(err)
}

// kitClient implements coretest.Client with pkg/sftp.
type kitClient struct{ c *sftpSession }

func (k *kitClient) Upload(p string, data []byte) error {
	f, err := k.c.Create(p)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

func (k *kitClient) UploadAt(p string, data []byte, offset int64) error {
	f, err := k.c.OpenFile(p, os.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, offset)
	return errors.Join(err, f.Close())
}

func (k *kitClient) Download(p string) ([]byte, error) { return k.DownloadFrom(p, 0) }

func (k *kitClient) DownloadFrom(p string, offset int64) ([]byte, error) {
	f, err := k.c.Open(p)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), errors.Join(err, f.Close())
}

func (k *kitClient) List(dir string) ([]coretest.Entry, error) {
	fis, err := k.c.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]coretest.Entry, 0, len(fis))
	for _, fi := range fis {
		out = append(out, coretest.Entry{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir()})
	}
	return out, nil
}

func (k *kitClient) Stat(p string) (coretest.Entry, error) {
	fi, err := k.c.Stat(p)
	if err != nil {
		return coretest.Entry{}, err
	}
	return coretest.Entry{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

func (k *kitClient) Mkdir(p string) error         { return k.c.Mkdir(p) }
func (k *kitClient) Rmdir(p string) error         { return k.c.RemoveDirectory(p) }
func (k *kitClient) Remove(p string) error        { return k.c.Remove(p) }
func (k *kitClient) Rename(from, to string) error { return k.c.PosixRename(from, to) }
func (k *kitClient) Close() error                 { return k.c.Close() }
