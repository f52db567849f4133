package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jlaffaye/ftp"
	proxyproto "github.com/pires/go-proxyproto"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/internal/haproxytest"
)

// Helpers of the cluster's failure and quota end-to-end tests (issue #22), on top of
// startCluster in cluster_e2e_test.go.

// startFTPProxy starts a second HAProxy, round robin over the nodes' FTP listeners (PROXY v2,
// health-checked like the SFTP one). Passive data connections go straight to the node that
// answered PASV/EPSV (the nodes' passive ranges differ), as docs/cluster.md describes.
func (c *e2eCluster) startFTPProxy(t *testing.T) *haproxytest.Proxy {
	t.Helper()
	var be []haproxytest.Backend
	for _, n := range c.nodes {
		if n.ftp == "" {
			t.Fatalf("node %s: no FTP address printed", n.name)
		}
		be = append(be, haproxytest.Backend{Name: n.name, Addr: n.ftp, HealthAddr: n.admin})
	}
	return haproxytest.Start(t, haproxytest.Options{Backends: be})
}

// ftpLoginVia logs in over plain FTP at addr (a proxy); it returns the error instead of failing.
func ftpLoginVia(addr, user, pass string) (*ftp.ServerConn, error) {
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass); err != nil {
		_ = c.Quit()
		return nil, err
	}
	return c, nil
}

// sftpDial runs SSH and SFTP over conn. banner receives what the server sends as an SSH
// banner (the reason of a refused login), when not nil.
func sftpDial(conn net.Conn, user, pass string, banner *string) (*sftpConn, error) {
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pass)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		BannerCallback: func(m string) error {
			if banner != nil {
				*banner += m
			}
			return nil
		}}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(conn, conn.RemoteAddr().String(), cfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	cl := ssh.NewClient(sc, chans, reqs)
	s, err := sftp.NewClient(cl)
	if err != nil {
		_ = cl.Close()
		return nil, err
	}
	return &sftpConn{Client: s, conn: cl}, nil
}

// sftpLoginBanner logs in through HAProxy and returns, on failure, the error with the banner
// the server sent.
func (c *e2eCluster) sftpLoginBanner(user, pass string) (*sftpConn, string, error) {
	conn, err := net.DialTimeout("tcp", c.proxy.Addr, 10*time.Second)
	if err != nil {
		return nil, "", err
	}
	var banner string
	s, err := sftpDial(conn, user, pass, &banner)
	return s, banner, err
}

// sftpLoginFrom logs in to node n directly, with a PROXY v2 header that says the client is
// src: what HAProxy would send for a client at that address.
func sftpLoginFrom(n *e2eNode, src, user, pass string) (*sftpConn, error) {
	conn, err := net.DialTimeout("tcp", n.sftp, 10*time.Second)
	if err != nil {
		return nil, err
	}
	srcAddr := &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}
	if _, err := proxyproto.HeaderProxyFromAddrs(2, srcAddr, conn.RemoteAddr()).WriteTo(conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return sftpDial(conn, user, pass, nil)
}

// httpGet returns the body of GET http://addr/path.
func httpGet(addr, path string) (int, string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// health returns node n's /healthz answer ("ok", or the degradation it reports).
func (n *e2eNode) health() string {
	code, body, err := httpGet(n.admin, "/healthz")
	if err != nil || code != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(body)
}

// storeUp returns node n's wharf_cluster_store_up ("0", "1", or "" when unknown).
func (n *e2eNode) storeUp() string {
	_, body, err := httpGet(n.admin, "/metrics")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "wharf_cluster_store_up "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sessionNodes returns, from `wharf sessions` on node n, the node of each session of user.
func (n *e2eNode) sessionNodes(t *testing.T, user string) []string {
	t.Helper()
	code, out, _ := n.wharf(t, "sessions")
	if code != 0 {
		return nil
	}
	var nodes []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == user { // NODE ID SITE PROTOCOL USER …
			nodes = append(nodes, f[0])
		}
	}
	return nodes
}

// clusterStatus is `wharf cluster status -json` run against node n's config (in this
// process: the config's dsn comes from the environment).
func (c *e2eCluster) clusterStatus(t *testing.T, n *e2eNode) (clusterStatusDoc, error) {
	t.Helper()
	t.Setenv("WHARF_TEST_CLUSTER_DSN", c.dsn)
	code, out, errOut := n.wharf(t, "cluster", "status", "-json")
	var doc clusterStatusDoc
	if code != 0 {
		return doc, errors.New(errOut)
	}
	err := json.Unmarshal([]byte(out), &doc)
	return doc, err
}

// storedUsage reads the quota usage the store holds for a user of site main.
func storedUsage(t *testing.T, dsn, user string) (bytes, files int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT bytes, files FROM quota_usage WHERE site = 'main' AND user_name = $1`, user).Scan(&bytes, &files)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0
	}
	if err != nil {
		t.Fatalf("store: quota usage of %s: %v", user, err)
	}
	return bytes, files
}

// diskUsage counts the regular files under dir as a quota does (every file once, by size),
// and returns the names of leftover atomic-upload temporaries separately.
func diskUsage(t *testing.T, dir string) (bytes, files int64, temps []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".wharf-upload-") {
			temps = append(temps, p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		bytes += fi.Size()
		files++
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return bytes, files, temps
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sameFile checks that path holds exactly want.
func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the %d uploaded", path, len(got), len(want))
	}
}

// pollUntil calls cond every 50 ms until it holds (true) or d has passed (false), for a
// failure message that says what was last seen.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
