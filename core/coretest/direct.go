package coretest

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/wharf-project/wharf/core"
)

// Direct is the protocol that calls the core session API without any wire protocol: the
// reference every adapter is compared with.
func Direct() Protocol {
	return Protocol{
		Name: "core",
		Serve: func(t *testing.T, site *core.Site) Dial {
			return func(user, password string) (Client, error) {
				return DialDirect(context.Background(), site, user, password)
			}
		},
		Kind: core.Kind,
	}
}

// DialDirect opens and authenticates a session on site as if from 127.0.0.1.
func DialDirect(ctx context.Context, site *core.Site, user, password string) (*DirectClient, error) {
	s, err := site.Connect(ctx, core.ConnInfo{
		Remote:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		Local:    &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2022},
		Protocol: core.ProtoSFTP,
	})
	if err != nil {
		return nil, err
	}
	if err := s.AuthPassword(ctx, user, password); err != nil {
		s.Close()
		return nil, err
	}
	return &DirectClient{S: s, ctx: ctx}, nil
}

// DirectClient implements Client on a core session.
type DirectClient struct {
	S   *core.Session
	ctx context.Context
}

func (c *DirectClient) Upload(p string, data []byte) error {
	h, err := c.S.OpenWrite(c.ctx, p, core.WriteMode{Truncate: true}, 0)
	if err != nil {
		return err
	}
	if _, err := h.Write(data); err != nil {
		h.Abort(err)
		_ = h.Close()
		return err
	}
	return h.Close()
}

func (c *DirectClient) UploadAt(p string, data []byte, offset int64) error {
	h, err := c.S.OpenWrite(c.ctx, p, core.WriteMode{}, offset)
	if err != nil {
		return err
	}
	if _, err := h.Write(data); err != nil {
		h.Abort(err)
		_ = h.Close()
		return err
	}
	return h.Close()
}

func (c *DirectClient) Download(p string) ([]byte, error) { return c.DownloadFrom(p, 0) }

func (c *DirectClient) DownloadFrom(p string, offset int64) ([]byte, error) {
	h, err := c.S.OpenRead(c.ctx, p, offset)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(h)
	if err != nil {
		h.Abort(err)
	}
	return data, errors.Join(err, h.Close())
}

func (c *DirectClient) List(dir string) ([]Entry, error) {
	fis, err := c.S.List(c.ctx, dir)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(fis))
	for _, fi := range fis {
		out = append(out, Entry{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir()})
	}
	return out, nil
}

func (c *DirectClient) Stat(p string) (Entry, error) {
	fi, err := c.S.Stat(c.ctx, p)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

func (c *DirectClient) Mkdir(p string) error         { return c.S.Mkdir(c.ctx, p) }
func (c *DirectClient) Rmdir(p string) error         { return c.S.Rmdir(c.ctx, p) }
func (c *DirectClient) Remove(p string) error        { return c.S.Remove(c.ctx, p) }
func (c *DirectClient) Rename(from, to string) error { return c.S.Rename(c.ctx, from, to, true) }
func (c *DirectClient) Close() error                 { c.S.Close(); return nil }
