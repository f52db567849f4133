package sftp

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// The data path over loopback with pkg/sftp's client (concurrent reads and writes, AES-GCM
// as Go's client prefers it), on a disk home. Run with -benchtime=10x and -cpuprofile to
// profile the adapter; compare with OpenSSH's sftp-server for the same file.

const benchSize = 32 << 20

func benchClient(b *testing.B) *sftpSession {
	b.Helper()
	srv, addr := startServer(b, newTestSite(b, testSiteConfig(b.TempDir(), testUser("alice")), nil))
	return mustSFTP(b, srv, addr, "alice")
}

func BenchmarkSFTPUpload(b *testing.B) {
	c := benchClient(b)
	data := randomBytes(b, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		f, err := c.OpenFile("/bench.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSFTPDownload(b *testing.B) {
	c := benchClient(b)
	f, err := c.OpenFile("/bench.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(randomBytes(b, benchSize))); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		f, err := c.Open("/bench.bin")
		if err != nil {
			b.Fatal(err)
		}
		n, err := f.WriteTo(io.Discard)
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		_ = f.Close()
	}
}

// Server allocations per request. The server runs in this process and pkg/sftp's client in a
// child process (this test binary again, running TestSFTPAllocClient), so every allocation
// runtime.MemStats counts here is the server's: the SSH channel read and decryption, the SFTP
// packet decode, the request server, the handlers, the core's write or read, the response and
// its encryption. A warm-up transfer first fills the request server's page allocator, so the
// measured phase counts the garbage of each request and not its page.
//
// TestSFTPServerAllocs logs the figures for 32 KiB WRITEs, 32 KiB READs and small files and
// fails when they exceed a bound. WHARF_ALLOC_MIB (default 32) sets the size transferred;
// WHARF_ALLOC_CIPHER (default chacha20-poly1305@openssh.com) the cipher.

const allocClientEnv = "WHARF_ALLOC_CLIENT"

// serverAllocs is what the server allocated during one measured phase.
type serverAllocs struct {
	mallocs, bytes, gcs uint64
	liveMax             uint64 // the largest live heap the collector reported during the phase
	// small and smallBytes count the objects of at most 32 KiB, the garbage a request makes;
	// large ones are pages of the request server's allocator (taken when a phase has more
	// requests in flight than its warm-up had) and pool misses.
	small, smallBytes, large uint64
}

// sizeCounts reads the runtime's histogram of allocations by size: the count and bytes of
// objects of at most 32 KiB (bytes by their size class) and the count of larger ones.
func sizeCounts() (small, smallBytes, large uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs-by-size:bytes"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	last := len(h.Counts) - 1 // [32769, +Inf)
	for i, n := range h.Counts[:last] {
		small += n
		smallBytes += n * uint64(h.Buckets[i+1]-1)
	}
	return small, smallBytes, h.Counts[last]
}

// allocPhase runs a child client in mode ("up", "down", "small-up", "small-down") against
// a server on a disk home and returns what the server allocated while the child did the
// measured part. n is the bytes to move (up, down) or the number of files (small-*).
func allocPhase(t *testing.T, mode string, n int64) serverAllocs {
	t.Helper()
	root := t.TempDir()
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, testUser("alice")), nil))
	home := filepath.Join(root, "home", "alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "down":
		writeRepeated(t, filepath.Join(home, "down.bin"), n)
	case "small-down":
		chunk := randomBytes(t, 4<<10)
		for i := range n {
			if err := os.WriteFile(filepath.Join(home, fmt.Sprintf("s%05d", i)), chunk, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var keys []string
	for _, k := range srv.HostKeys() {
		keys = append(keys, base64.StdEncoding.EncodeToString(k.Marshal()))
	}
	cipher := cmp.Or(os.Getenv("WHARF_ALLOC_CIPHER"), "chacha20-poly1305@openssh.com")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSFTPAllocClient$")
	cmd.Env = append(os.Environ(), allocClientEnv+"="+strings.Join([]string{addr, mode, strconv.FormatInt(n, 10), cipher, strings.Join(keys, ",")}, " "))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "alloc-client: "); ok {
				lines <- s
			}
		}
	}()
	defer func() {
		_ = stdin.Close()
		for range lines {
		}
		_ = cmd.Wait()
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case s, ok := <-lines:
			if !ok || s != want {
				t.Fatalf("client said %q (open %v), want %q", s, ok, want)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("client did not say %q within 2 minutes", want)
		}
	}
	expect("ready")

	// The live heap the collector finds, sampled while the client works.
	stop := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var hi uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			hi = max(hi, s[0].Value.Uint64())
			select {
			case <-stop:
				sampled <- hi
				return
			case <-tick.C:
			}
		}
	}()
	var before, after runtime.MemStats
	profile(t, mode+".before")
	runtime.GC()
	runtime.ReadMemStats(&before)
	small0, smallBytes0, large0 := sizeCounts()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	expect("done")
	runtime.ReadMemStats(&after)
	small1, smallBytes1, large1 := sizeCounts()
	profile(t, mode+".after")
	close(stop)
	return serverAllocs{
		mallocs: after.Mallocs - before.Mallocs, bytes: after.TotalAlloc - before.TotalAlloc,
		gcs: uint64(after.NumGC - before.NumGC), liveMax: <-sampled,
		small: small1 - small0, smallBytes: smallBytes1 - smallBytes0, large: large1 - large0,
	}
}

// profile writes the allocations so far to $WHARF_ALLOC_PROFILE/name.pprof when that is
// set: "go tool pprof -base up.before.pprof up.after.pprof" shows the measured phase's
// (run with -memprofilerate=1 to count every allocation).
func profile(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("WHARF_ALLOC_PROFILE")
	if dir == "" {
		return
	}
	runtime.GC() // the profile shows allocations as of the last GC
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// writeRepeated writes a file of n bytes repeating one random MiB.
func writeRepeated(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.LimitReader(&repeatReader{b: randomBytes(t, 1<<20)}, n)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// repeatReader repeats b forever.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// allocMiB is the size each transfer direction moves (WHARF_ALLOC_MIB, default 32).
func allocMiB(t *testing.T) int64 {
	t.Helper()
	s := os.Getenv("WHARF_ALLOC_MIB")
	if s == "" {
		return 32
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		t.Fatalf("WHARF_ALLOC_MIB=%q: want a positive number of MiB", s)
	}
	return n
}

func TestSFTPServerAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB through the server")
	}
	mib := allocMiB(t)
	const files = 500
	cases := []struct {
		mode     string
		n        int64
		per      string
		requests int64
		// Bounds per request (per file for small files) on the objects of at most 32 KiB,
		// well above what this build allocates and well below what it did before.
		maxMallocs, maxBytes float64
	}{
		// Before the cuts: 22.5 allocations and 44 KB per WRITE, 24 and 0.5-2.6 KB per
		// READ, 116 and 10 KB per small file up, 104 and 5 KB per small file down.
		// After: about 1.2 and 0.3 KB, 3 and 0.15 KB, 72 and 4.4 KB, 55 and 3.8 KB.
		{"up", mib << 20, "32 KiB WRITE", mib << 5, 4, 2 << 10},
		{"down", mib << 20, "32 KiB READ", mib << 5, 6, 2 << 10},
		{"small-up", files, "4 KiB file up (open, write, close, stat)", files, 95, 8 << 10},
		{"small-down", files, "4 KiB file down (stat, open, read, read, close)", files, 85, 8 << 10},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			a := allocPhase(t, c.mode, c.n)
			r := float64(c.requests)
			m, b := float64(a.small)/r, float64(a.smallBytes)/r
			t.Logf("server per %s: %.1f allocations, %.0f bytes of at most 32 KiB (all: %.1f, %.0f bytes); "+
				"%d larger; %d GCs, %.1f MiB allocated in all, live heap at most %.1f MiB",
				c.per, m, b, float64(a.mallocs)/r, float64(a.bytes)/r, a.large,
				a.gcs, float64(a.bytes)/(1<<20), float64(a.liveMax)/(1<<20))
			if m > c.maxMallocs || b > c.maxBytes {
				t.Errorf("server per %s: %.1f allocations and %.0f bytes, want at most %.0f and %.0f",
					c.per, m, b, c.maxMallocs, c.maxBytes)
			}
		})
	}
}

// TestSFTPAllocClient is the client side of TestSFTPServerAllocs, run in a child process.
func TestSFTPAllocClient(t *testing.T) {
	spec := os.Getenv(allocClientEnv)
	if spec == "" {
		t.Skip("the child process of TestSFTPServerAllocs")
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		t.Fatalf("%s=%q", allocClientEnv, spec)
	}
	addr, mode, cipher := f[0], f[1], f[3]
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, k := range strings.Split(f[4], ",") {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b)
	}
	cfg := &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{sshPassword()}, Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range keys {
				if bytes.Equal(k, key.Marshal()) {
					return nil
				}
			}
			return errors.New("unknown host key")
		},
	}
	cfg.Ciphers = []string{cipher}
	sc, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	c, err := pkgsftp.NewClient(sc, pkgsftp.UseConcurrentWrites(true))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	upload := func(name string, size int64) {
		f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		r := io.LimitReader(&repeatReader{b: bytes.Repeat([]byte("wharf!"), 1<<14)}, size)
		if _, err := f.ReadFromWithConcurrency(r, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	download := func(name string, limit int64) {
		f, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var w io.Writer = io.Discard
		if limit > 0 {
			w = &limitWriter{n: limit}
		}
		if _, err := f.WriteTo(w); err != nil && !errors.Is(err, errLimit) {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	smallUp := func(i int64) {
		name := fmt.Sprintf("/s%05d", i)
		f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(bytes.Repeat([]byte("w"), 4<<10)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(name); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 32<<10)
	smallDown := func(i int64) {
		name := fmt.Sprintf("/s%05d", i)
		if _, err := c.Lstat(name); err != nil {
			t.Fatal(err)
		}
		f, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := f.Read(buf); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatal(err)
			}
		}
		_ = f.Close()
	}

	// Warm up: the server's page allocator fills, the window grows.
	switch mode {
	case "up":
		upload("/warm.bin", 8<<20)
	case "down":
		download("/down.bin", 8<<20)
	case "small-up":
		for i := range 20 {
			smallUp(n + int64(i))
		}
	case "small-down":
		for i := range 20 {
			smallDown(int64(i))
		}
	default:
		t.Fatalf("mode %q", mode)
	}
	fmt.Println("alloc-client: ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		t.Fatal("no go from the parent")
	}
	switch mode {
	case "up":
		upload("/up.bin", n)
	case "down":
		download("/down.bin", 0)
	case "small-up":
		for i := range n {
			smallUp(i)
		}
	case "small-down":
		for i := range n {
			smallDown(i)
		}
	}
	fmt.Println("alloc-client: done")
	for in.Scan() { // until the parent closes stdin
	}
}

var errLimit = errors.New("limit reached")

// limitWriter accepts n bytes, then fails.
type limitWriter struct{ n int64 }

func (w *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.n {
		w.n = 0
		return 0, errLimit
	}
	w.n -= int64(len(p))
	return len(p), nil
}
