package sftp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/coretest"
)

// rawSFTP speaks SFTP v3 packets on an SSH subsystem channel: it can stop between READDIR
// requests (pkg/sftp's client reads a whole directory in one call) and keeps nothing it
// reads, so the heap the test measures is the server's.
type rawSFTP struct {
	t    *testing.T
	sess *ssh.Session
	w    io.WriteCloser
	r    io.Reader
	id   uint32
}

const (
	fxpInit    = 1
	fxpVersion = 2
	fxpOpendir = 11
	fxpReaddir = 12
	fxpClose   = 4
	fxpStatus  = 101
	fxpHandle  = 102
	fxpName    = 104
	fxEOF      = 1
)

func dialRawSFTP(t *testing.T, srv *Server, addr, user string) *rawSFTP {
	t.Helper()
	sc, err := dialSSH(srv, addr, user, sshPassword())
	if err != nil {
		t.Fatalf("ssh login: %v", err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	c := &rawSFTP{t: t, sess: sess, w: w, r: r}
	c.send(fxpInit, binary.BigEndian.AppendUint32(nil, 3))
	if typ, _ := c.recv(); typ != fxpVersion {
		t.Fatalf("INIT answered with packet type %d", typ)
	}
	return c
}

func (c *rawSFTP) send(typ byte, payload []byte) {
	c.t.Helper()
	pkt := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	pkt = append(pkt, typ)
	if _, err := c.w.Write(append(pkt, payload...)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *rawSFTP) recv() (byte, []byte) {
	c.t.Helper()
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
	if _, err := io.ReadFull(c.r, body); err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return hdr[4], body
}

// request sends a packet with a fresh id and a string argument, and returns the answer's
// type and what follows its id.
func (c *rawSFTP) request(typ byte, arg string) (byte, []byte) {
	c.t.Helper()
	c.id++
	p := binary.BigEndian.AppendUint32(nil, c.id)
	p = binary.BigEndian.AppendUint32(p, uint32(len(arg)))
	c.send(typ, append(p, arg...))
	rt, body := c.recv()
	if len(body) < 4 || binary.BigEndian.Uint32(body) != c.id {
		c.t.Fatalf("answer to request %d has the wrong id", c.id)
	}
	return rt, body[4:]
}

func (c *rawSFTP) opendir(p string) string {
	c.t.Helper()
	typ, body := c.request(fxpOpendir, p)
	if typ != fxpHandle {
		c.t.Fatalf("OPENDIR %s: answer type %d (status %v)", p, typ, statusCode(body))
	}
	h, _ := sshString(body)
	return h
}

// readdir returns the names of the next batch, or nil at the end of the directory.
func (c *rawSFTP) readdir(h string) []string {
	c.t.Helper()
	typ, body := c.request(fxpReaddir, h)
	if typ == fxpStatus {
		if code := statusCode(body); code != fxEOF {
			c.t.Fatalf("READDIR: status %d", code)
		}
		return nil
	}
	if typ != fxpName {
		c.t.Fatalf("READDIR: answer type %d", typ)
	}
	n := binary.BigEndian.Uint32(body)
	body = body[4:]
	if n == 0 {
		c.t.Fatal("READDIR: an empty NAME packet instead of EOF (OpenSSH's client would ask forever)")
	}
	names := make([]string, 0, n)
	for range n {
		var name string
		name, body = sshString(body)
		_, body = sshString(body) // long name
		body = skipAttrs(c.t, body)
		names = append(names, name)
	}
	return names
}

func (c *rawSFTP) close(h string) {
	c.t.Helper()
	if typ, body := c.request(fxpClose, h); typ != fxpStatus || statusCode(body) != 0 {
		c.t.Fatalf("CLOSE: answer type %d", typ)
	}
}

func sshString(b []byte) (string, []byte) {
	n := binary.BigEndian.Uint32(b)
	return string(b[4 : 4+n]), b[4+n:]
}

func statusCode(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func skipAttrs(t *testing.T, b []byte) []byte {
	flags := binary.BigEndian.Uint32(b)
	b = b[4:]
	if flags&0x1 != 0 { // size
		b = b[8:]
	}
	if flags&0x2 != 0 { // uid, gid
		b = b[8:]
	}
	if flags&0x4 != 0 { // permissions
		b = b[4:]
	}
	if flags&0x8 != 0 { // atime, mtime
		b = b[8:]
	}
	if flags&0x80000000 != 0 {
		t.Fatal("extended attributes in a listing")
	}
	return b
}

// TestListingHoldsOnlyABatch lists a directory of 20,000 files with 200-byte names and,
// partway through, checks what the server holds: a listing read into memory whole (a slice
// of 20,000 FileInfo values, about 7 MiB here) would show; one read batch by batch holds a
// few hundred entries. Then it reads on and checks every file was listed exactly once.
func TestListingHoldsOnlyABatch(t *testing.T) {
	const files, nameLen = 20_000, 200
	root := coretest.ScratchDir(t)
	site := newTestSite(t, testSiteConfig(root, testUser("alice")), nil)
	srv, addr := startServer(t, site)
	coretest.MakeFiles(t, filepath.Join(root, "home", "alice", "big"), files, nameLen)
	c := dialRawSFTP(t, srv, addr, "alice")

	seen := coretest.NewSeen(t, files) // allocated before the baseline: it is the test's, not the server's
	base := coretest.LiveHeap()
	h := c.opendir("/big")
	for range 10 {
		for _, n := range c.readdir(h) {
			seen.Add(n)
		}
	}
	held := int64(coretest.LiveHeap()) - int64(base)
	t.Logf("after %d of %d entries the process holds %.0f KiB more than before the listing", seen.N, files, float64(held)/1024)
	if held > 1<<20 {
		t.Errorf("partway through a listing of %d entries the server holds %.1f MiB more than before it: "+
			"the listing is held whole instead of read batch by batch", files, float64(held)/(1<<20))
	}
	for {
		names := c.readdir(h)
		if names == nil {
			break
		}
		for _, n := range names {
			seen.Add(n)
		}
	}
	c.close(h)
	if seen.N != files {
		t.Fatalf("listed %d entries, want %d", seen.N, files)
	}
}

// TestListingEmptyAndMissing: an empty directory answers EOF at once (never an empty NAME
// packet), a missing one NO_SUCH_FILE at OPENDIR, and a file is not a directory.
func TestListingEmptyAndMissing(t *testing.T) {
	root := t.TempDir()
	site := newTestSite(t, testSiteConfig(root, testUser("alice")), nil)
	srv, addr := startServer(t, site)
	home := filepath.Join(root, "home", "alice")
	if err := os.MkdirAll(filepath.Join(home, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "file.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRawSFTP(t, srv, addr, "alice")
	h := c.opendir("/empty")
	if names := c.readdir(h); names != nil {
		t.Fatalf("empty directory listed %q", names)
	}
	if names := c.readdir(h); names != nil {
		t.Fatalf("a READDIR after EOF listed %q", names)
	}
	c.close(h)
	for _, p := range []string{"/missing", "/file.txt"} {
		if typ, body := c.request(fxpOpendir, p); typ != fxpStatus || statusCode(body) == 0 {
			t.Errorf("OPENDIR %s: answer type %d status %d, want an error status", p, typ, statusCode(body))
		}
	}
}

// TestListingMemory200k is the measurement of issue #19 item 5: five SFTP clients (pkg/sftp's
// ReadDir, each in a process of its own so that what they hold is not counted) list a
// directory of 200,000 files at once, and the server's extra resident memory and heap are
// reported. Target: at most 16 MiB of extra RSS. It creates the files on tmpfs when there is
// one and takes about a minute; run it with
//
//	WHARF_BENCH=1 go test ./protocols/sftp -run TestListingMemory200k -v
func TestListingMemory200k(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to measure five concurrent listings of 200,000 entries")
	}
	const files, clients, nameLen = 200_000, 5, 24
	root := coretest.ScratchDir(t)
	site := newTestSite(t, testSiteConfig(root, testUser("alice")), nil)
	srv, addr := startServer(t, site)
	start := time.Now()
	coretest.MakeFiles(t, filepath.Join(root, "home", "alice", "big"), files, nameLen)
	t.Logf("created %d files in %v", files, time.Since(start).Round(time.Millisecond))
	keys := filepath.Join(t.TempDir(), "known")
	var known []string
	for _, k := range srv.HostKeys() {
		known = append(known, hex.EncodeToString(k.Marshal()))
	}
	if err := os.WriteFile(keys, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	w := coretest.WatchMemory()
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			cmd := coretest.ChildProcess(t, "TestListingClientProcess", addr+" "+keys+" /big")
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("client: %v\n%s", err, out)
				return
			}
			if !strings.Contains(string(out), fmt.Sprintf("listed %d entries", files)) {
				errs <- fmt.Errorf("client output:\n%s", out)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	rep := w.Stop()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d concurrent SFTP listings of %d entries in %v: %v", clients, files, took.Round(time.Millisecond), rep)
	if rep.ExtraRSS > 16<<20 {
		t.Errorf("extra RSS %.1f MiB, target at most 16 MiB", float64(rep.ExtraRSS)/(1<<20))
	}
}

// TestListingClientProcess is TestListingMemory200k's client, run in a process of its own:
// it logs in as alice and lists a directory with pkg/sftp's ReadDir.
func TestListingClientProcess(t *testing.T) {
	arg := coretest.Child()
	if arg == "" {
		t.Skip("a helper process of TestListingMemory200k")
	}
	f := strings.Fields(arg)
	addr, keys, dir := f[0], f[1], f[2]
	known, err := os.ReadFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	var hostKeys [][]byte
	for _, line := range strings.Fields(string(known)) {
		k, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		hostKeys = append(hostKeys, k)
	}
	cfg := &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{sshPassword()}, Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range hostKeys {
				if bytes.Equal(k, key.Marshal()) {
					return nil
				}
			}
			return errors.New("unknown host key")
		}}
	sc, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	c, err := pkgsftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fis, err := c.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("listed " + strconv.Itoa(len(fis)) + " entries")
}
