package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/s3test"
)

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
		cmd = exec.Command(os.Args[0], "-test.run=^TestWharfChild$") // runs wharf serve -c cfgPath
		cmd.Env = append(os.Environ(), childArgsEnv+"=serve\x1f-c\x1f"+cfgPath, "WHARF_TEST_S3_SECRET="+store.SecretKey)
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

// TestCheckS3Bucket: `wharf check` reaches each s3 vfs's bucket with its endpoint and keys,
// and names the vfs whose bucket it cannot reach.
func TestCheckS3Bucket(t *testing.T) {
	store := s3test.Start(t)
	store.Bucket(t, "wharf-check")
	t.Setenv("WHARF_TEST_S3_SECRET", store.SecretKey)
	dir := t.TempDir()
	write := func(bucket string) string {
		p := filepath.Join(dir, bucket+".yaml")
		cfg := fmt.Sprintf(`state_dir: ./state
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
    vfs:
      - { name: home, type: s3, bucket: %s, prefix: "{user}", endpoint: %s, path_style: true, access_key: %s, secret_key: {env: WHARF_TEST_S3_SECRET} }
    users:
      - { id: alice, password: "$2a$10$C6UzMDM.H6dfI/f/IKcEeO5lHLcsYF9ch9Jp0dbt9mTJ1VWjR0Nq2", home: { vfs: home } }
`, bucket, store.Endpoint, store.AccessKey)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if code, out, errOut := runCmd(t, "", "check", "-c", write("wharf-check")); code != 0 {
		t.Fatalf("check of a reachable bucket: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut := runCmd(t, "", "check", "-c", write("no-such-bucket"))
	if code != 1 || !strings.Contains(errOut, "sites[0].vfs[0].bucket: bucket no-such-bucket cannot be reached") {
		t.Fatalf("check of a missing bucket: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, store.SecretKey) {
		t.Fatal("check prints the secret key")
	}
}
