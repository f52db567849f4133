package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// TestRcloneSyncOnDefaultLimits is issue #19 item 25: with the default limits (no limits
// section at all), rclone syncs 300 files with 16 transfers and 16 checkers over SFTP and
// over FTPES. The old defaults (10 sessions per user, 20 connections per address) refused
// its logins with "too many connections".
func TestRcloneSyncOnDefaultLimits(t *testing.T) {
	rclone := coretest.NeedBinary(t, "rclone")
	dir := t.TempDir()
	s := serveInProcess(t, "-c", writeSiteConfig(t, dir, ""))
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 300
	for i := range files {
		sub := filepath.Join(src, fmt.Sprintf("d%02d", i%10))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.txt", i)), []byte(strings.Repeat(fmt.Sprint(i), 1+i%50)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	obscured, err := exec.Command(rclone, "obscure", "pw").Output()
	if err != nil {
		t.Fatalf("rclone obscure: %v", err)
	}
	pass := strings.TrimSpace(string(obscured))
	hostPort := func(addr string) (string, string) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return h, p
	}
	sftpHost, sftpPort := hostPort(s.addrs["SFTP"])
	ftpHost, ftpPort := hostPort(s.addrs["FTP"])
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"SFTP", []string{"RCLONE_CONFIG_W_TYPE=sftp", "RCLONE_CONFIG_W_HOST=" + sftpHost, "RCLONE_CONFIG_W_PORT=" + sftpPort,
			"RCLONE_CONFIG_W_USER=alice", "RCLONE_CONFIG_W_PASS=" + pass, "RCLONE_CONFIG_W_SHELL_TYPE=none"}},
		{"FTPES", []string{"RCLONE_CONFIG_W_TYPE=ftp", "RCLONE_CONFIG_W_HOST=" + ftpHost, "RCLONE_CONFIG_W_PORT=" + ftpPort,
			"RCLONE_CONFIG_W_USER=alice", "RCLONE_CONFIG_W_PASS=" + pass, "RCLONE_CONFIG_W_EXPLICIT_TLS=true",
			"RCLONE_CONFIG_W_NO_CHECK_CERTIFICATE=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := "sync-" + strings.ToLower(tc.name)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cfgFile := filepath.Join(t.TempDir(), "rclone.conf")
			if err := os.WriteFile(cfgFile, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, rclone, "sync", src, "W:"+dst, "--config", cfgFile,
				"--transfers", "16", "--checkers", "16", "--low-level-retries", "1", "--retries", "1",
				"--contimeout", "10s", "--timeout", "20s")
			cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, tc.env...)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			t.Logf("rclone sync over %s: %v", tc.name, time.Since(start).Round(time.Millisecond))
			if err != nil {
				t.Fatalf("rclone sync: %v\n%s", err, tail(string(out), 40))
			}
			n := 0
			_ = filepath.Walk(filepath.Join(dir, "data", "alice", dst), func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					n++
				}
				return nil
			})
			if n != files {
				t.Fatalf("%d files arrived, want %d\n%s", n, files, tail(string(out), 40))
			}
		})
	}
	// No connection or login was refused by a limit on the way.
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "too many") || strings.Contains(l, `"login refused"`) {
			t.Errorf("refused by a limit: %s", l)
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestUnauthenticatedFloodIsRefused: with the default limits a flood of connections that do
// not log in is still refused (32 waiting per address), on every protocol of the site, while
// another client logs in.
func TestUnauthenticatedFloodIsRefused(t *testing.T) {
	if _, err := net.Dial("tcp", "127.0.0.2:1"); err != nil && strings.Contains(err.Error(), "assign") {
		t.Skip("127.0.0.2 is not usable as a source address here")
	}
	s := serveInProcess(t, "-c", writeSiteConfig(t, t.TempDir(), ""))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	// firstLine connects from the flooding address and returns what the server says first.
	firstLine := func(addr string) (net.Conn, string) {
		t.Helper()
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return c, line
	}
	for i := range 32 {
		addr := s.addrs["SFTP"]
		if i%2 == 1 {
			addr = s.addrs["FTP"]
		}
		if _, line := firstLine(addr); !strings.HasPrefix(line, "SSH-2.0-") && !strings.HasPrefix(line, "220") {
			t.Fatalf("connection %d waiting to log in was refused: %q", i+1, line)
		}
	}
	for proto, want := range map[string]string{
		"SFTP": "Connection refused: too many connections from your address waiting to log in (too many connections)",
		"FTP":  "421 too many connections from your address waiting to log in",
	} {
		if _, line := firstLine(s.addrs[proto]); !strings.HasPrefix(line, want) {
			t.Errorf("%s: the 33rd connection waiting to log in got %q, want %q", proto, line, want)
		}
	}
	// Another address logs in meanwhile.
	c := sftpClient(t, s.addrs["SFTP"], "alice", "pw")
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
}
