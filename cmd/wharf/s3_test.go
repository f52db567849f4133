package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/s3test"
)

// s3ChildEnv tells the test binary, started again by TestS3ServerKilledMidUpload, to run
// `wharf serve -c <its value>` instead of the tests.
const s3ChildEnv = "WHARF_TEST_S3_CHILD"

// TestS3ChildServe is the child process's body; it is skipped in a normal test run.
func TestS3ChildServe(t *testing.T) {
	cfg := os.Getenv(s3ChildEnv)
	if cfg == "" {
		t.Skip("runs only as the child of TestS3ServerKilledMidUpload")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, []string{"serve", "-c", cfg}, strings.NewReader(""), os.Stdout, os.Stderr))
}

// TestS3ServerKilledMidUpload kills the server (SIGKILL) in the middle of an SFTP upload to
// an s3 vfs: nothing is visible, the crash leaves an incomplete multipart upload, and the
// restarted server aborts it when it opens the vfs again (cleanup_incomplete_uploads_after).
func TestS3ServerKilledMidUpload(t *testing.T) {
	store := s3test.Start(t)
	const bucket = "wharf-crash"
	store.Bucket(t, bucket)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wharf.yaml")
	cfg := fmt.Sprintf(`state_dir: ./state
log: {flush_interval: 0s}
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
    vfs:
      - name: home
        type: s3
        bucket: %s
        prefix: home/{user}
        endpoint: %s
        region: %s
        path_style: true
        access_key: %s
        secret_key: {env: WHARF_TEST_S3_SECRET}
        part_size: 5MiB
        cleanup_incomplete_uploads_after: 1ns
    users:
      - id: alice
        password: "plain:pw"
        home: { vfs: home, permissions: [all] }
`, bucket, store.Endpoint, s3test.Region, store.AccessKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() (addr string, cmd *exec.Cmd, exited chan struct{}) {
		t.Helper()
		cmd = exec.Command(os.Args[0], "-test.run=^TestS3ChildServe$")
		cmd.Env = append(os.Environ(), s3ChildEnv+"="+cfgPath, "WHARF_TEST_S3_SECRET="+store.SecretKey)
		stdout, stderr := &syncBuffer{}, &syncBuffer{}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("child stdout:\n%s\nchild stderr:\n%s", stdout.String(), stderr.String())
			}
		})
		coretest.Eventually(t, 30*time.Second, "the child to start serving", func() bool {
			return strings.Contains(stdout.String(), "is running")
		})
		m := childListenLine.FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("no listener printed:\n%s", stdout.String())
		}
		return m[2], cmd, exited
	}

	addr, cmd, exited := start()
	c := sftpClient(t, addr, "alice", "pw")
	f, err := c.Create("/crash.bin")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 11<<20)
	_, _ = rand.Read(data)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "parts of the upload on the store", func() bool {
		return len(store.Uploads(t, bucket, "home/alice/")) == 1
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	if _, ok := store.Object(t, bucket, "home/alice/crash.bin"); ok {
		t.Fatal("the upload of a killed server is visible")
	}
	if ups := store.Uploads(t, bucket, "home/alice/"); len(ups) != 1 {
		t.Fatalf("after the crash: incomplete uploads %v, want the one that was in flight", ups)
	}

	addr, _, _ = start()
	c = sftpClient(t, addr, "alice", "pw") // the first login opens the vfs, which cleans up
	if _, err := c.Stat("/crash.bin"); err == nil {
		t.Fatal("the upload of a killed server is visible after the restart")
	}
	if ups := store.Uploads(t, bucket, "home/alice/"); len(ups) != 0 {
		t.Fatalf("after the restart: incomplete uploads %v left", ups)
	}
}
