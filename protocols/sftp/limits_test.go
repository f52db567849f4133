package sftp

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/coretest"
)

// TestHandleCapPerSession opens one file again and again on one session: beyond
// limits.max_handles_per_session the open fails with SSH_FX_FAILURE naming the limit (before,
// one session could hold the file open 20,000 times, each a host file descriptor); closing a
// handle frees a place, and another session has its own count.
func TestHandleCapPerSession(t *testing.T) {
	const limit = 512
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	cfg.Limits.MaxHandlesPerSession = limit
	site := newTestSite(t, cfg, nil)
	srv, addr := startServer(t, site)
	c := mustSFTP(t, srv, addr, "alice")
	f, err := c.Create("/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "data"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var open []*pkgsftp.File
	defer func() {
		for _, f := range open {
			_ = f.Close()
		}
	}()
	for i := 0; i < limit+10; i++ {
		f, err := c.Open("/f.txt")
		if err != nil {
			if i != limit {
				t.Fatalf("open %d failed (%v), want the first failure at %d", i+1, err, limit+1)
			}
			wantCapError(t, "open", err, limit)
			break
		}
		open = append(open, f)
	}
	if len(open) != limit {
		t.Fatalf("%d handles open on one session, want at most %d", len(open), limit)
	}
	_, err = c.ReadDir("/")
	wantCapError(t, "a directory listing", err, limit)
	if _, err := c.Stat("/f.txt"); err != nil {
		t.Fatalf("stat at the limit: %v", err)
	}

	other := mustSFTP(t, srv, addr, "alice")
	g, err := other.Open("/f.txt")
	if err != nil {
		t.Fatalf("another session at the first one's limit: %v", err)
	}
	_ = g.Close()

	if err := open[0].Close(); err != nil {
		t.Fatal(err)
	}
	if open[0], err = c.Open("/f.txt"); err != nil {
		t.Fatalf("open after closing a handle: %v", err)
	}
	b := make([]byte, 4)
	if _, err := open[0].Read(b); err != nil || string(b) != "data" {
		t.Fatalf("read %q, %v", b, err)
	}
}

func wantCapError(t *testing.T, what string, err error, limit int) {
	t.Helper()
	var se *pkgsftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != pkgsftp.ErrSSHFxFailure ||
		!strings.Contains(err.Error(), fmt.Sprintf("too many open handles (limit %d)", limit)) {
		t.Fatalf("%s beyond %d handles: %v, want SSH_FX_FAILURE \"too many open handles (limit %d)\"", what, limit, err, limit)
	}
}

// TestSessionChannelFlood opens 150 session channels on one connection and pushes data into
// each without a request, as the attack did (150 channels held 300 MB of unread
// data). Beyond ssh.max_sessions (default 10) channels are refused with "resource
// shortage"; the accepted ones let the client send only channelStartWindow bytes; once the
// client closes them, new sessions (SFTP) open on the same connection.
func TestSessionChannelFlood(t *testing.T) {
	const channels, push = 150, 256 << 10
	site := newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), nil)
	srv, addr := startServer(t, site)
	client, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	base := coretest.MeasureFootprint()

	var accepted []ssh.Channel
	refused := 0
	for range channels {
		ch, reqs, err := client.OpenChannel("session", nil)
		if err != nil {
			var oe *ssh.OpenChannelError
			if !errors.As(err, &oe) || oe.Reason != ssh.ResourceShortage || !strings.Contains(oe.Message, "limit 10") {
				t.Fatalf("channel refused with %v, want resource shortage naming the limit", err)
			}
			refused++
			continue
		}
		go ssh.DiscardRequests(reqs)
		accepted = append(accepted, ch)
	}
	if len(accepted) != defaultMaxSessions || refused != channels-defaultMaxSessions {
		t.Fatalf("%d channels accepted, %d refused; want %d and %d", len(accepted), refused, defaultMaxSessions, channels-defaultMaxSessions)
	}

	data := make([]byte, push)
	done := make(chan error, len(accepted))
	for _, ch := range accepted {
		go func() {
			_, err := ch.Write(data)
			done <- err
		}()
	}
	// On a server that grants the default 2 MiB window every write completes at once and
	// the server holds all the data; here each stops after channelStartWindow bytes. Wait for
	// the writes to complete, or long enough for them to have pushed what they could.
	completed := 0
	timeout := time.After(2 * time.Second)
wait:
	for completed < len(accepted) {
		select {
		case err := <-done:
			if err == nil {
				completed++
			}
		case <-timeout:
			break wait
		}
	}
	grown := coretest.MeasureFootprint()
	t.Logf("heap: %d KiB before the channels, %d KiB with %d channels pushed to (%d writes of %d KiB completed)",
		base.HeapInuse>>10, grown.HeapInuse>>10, len(accepted), completed, push>>10)
	if completed > 0 {
		t.Fatalf("%d writes of %d KiB completed on channels without a subsystem or command; want none past %d bytes", completed, push>>10, channelStartWindow)
	}
	if grown.HeapInuse > base.HeapInuse+8<<20 {
		t.Fatalf("heap grew by %d KiB, want under 8 MiB", (grown.HeapInuse-base.HeapInuse)>>10)
	}

	// Closed channels free their places at once: an SFTP session opens on the connection.
	for _, ch := range accepted {
		_ = ch.Close()
	}
	c, err := pkgsftp.NewClient(client)
	if err != nil {
		t.Fatalf("SFTP after closing the channels: %v", err)
	}
	defer c.Close()
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
}
