package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
	"github.com/wharf-project/wharf/internal/s3test"
)

// TestS3Clients drives an S3 mount with real clients: OpenSSH sftp (pipelined out-of-order
// writes of a multipart upload, reput, rename, chmod accepted and ignored), scp in both
// modes with -p (the modification time kept as object metadata), curl, and rclone (copy and
// check of a tree). One store and one server serve every client.
func TestS3Clients(t *testing.T) {
	store := s3test.Start(t)
	e := newE2EOn(t, store)

	t.Run("sftp", func(t *testing.T) {
		sftpBin := coretest.NeedBinary(t, "sftp")
		data := randomBytes(t, 12<<20+17) // three parts of 5 MiB
		putFile(t, e.local("a.bin"), data)
		writeTree(t, e.local("tree"), 30)
		putFile(t, e.local("got/partial.bin"), data[:1<<20])
		out := e.sftpBatch(t, sftpBin,
			"mkdir /up",
			"mkdir /up/new",
			"cd /up",
			"put a.bin a.bin",
			"put -r tree tree",
			"get a.bin got/a.bin",
			"reget a.bin got/partial.bin",
			"put tree/d00/e0/f0000.bin half.bin",
			"reput a.bin half.bin",
			"rename a.bin b.bin",
			"chmod 600 b.bin",
			"ls -l",
			"rmdir /up/new",
			"-rmdir /up/tree",
			"bye",
		)
		e.wantBatchCopies(t)
		// reput of a.bin onto the first tree file resumes at its size: its bytes, then a.bin's rest.
		first, _ := os.ReadFile(e.local("tree/d00/e0/f0000.bin"))
		if got, _ := os.ReadFile(e.remote("/up/half.bin")); !bytes.Equal(got, append(first, data[len(first):]...)) {
			want := append(first, data[len(first):]...)
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Errorf("reput did not append at the object's size (%d bytes, first %d): differs at %d", len(got), len(first), i)
		}
		for _, gone := range []string{"/up/a.bin", "/up/new"} {
			if _, err := os.Stat(e.remote(gone)); err == nil {
				t.Errorf("%s still exists", gone)
			}
		}
		if !strings.Contains(out, "b.bin") || (!strings.Contains(out, "directory not empty") && !strings.Contains(out, "Failure")) {
			t.Errorf("ls -l lacks b.bin or rmdir of a non-empty directory was not refused:\n%s", out)
		}
	})

	t.Run("scp", func(t *testing.T) {
		scpBin := coretest.NeedBinary(t, "scp")
		for _, mode := range []string{"", "-O"} {
			data := randomBytes(t, 6<<20+1)
			local := e.local("scp" + mode + "/one.bin")
			putFile(t, local, data)
			old := time.Date(2020, 5, 17, 10, 20, 30, 0, time.UTC)
			if err := os.Chtimes(local, old, old); err != nil {
				t.Fatal(err)
			}
			args := append(e.sshOptions(), "-P", e.port)
			if mode != "" {
				args = append(args, mode)
			}
			name := "/scp" + mode + ".bin"
			e.run(t, scpBin, append(args, "-p", local, "alice@127.0.0.1:"+name)...)
			sameFile(t, local, e.remote(name))
			back := e.local("scp" + mode + "/back.bin")
			e.run(t, scpBin, append(args, "-p", "alice@127.0.0.1:"+name, back)...)
			sameFile(t, local, back)
			if fi, err := os.Stat(back); err != nil || !fi.ModTime().Equal(old) {
				t.Errorf("scp %s -p round trip: mtime %v, want %v (%v)", mode, fi.ModTime(), old, err)
			}
		}
	})

	t.Run("curl", func(t *testing.T) {
		e.curlRoundTrip(t, e.needCurlSFTP(t), "/c.bin")
	})

	t.Run("rclone", func(t *testing.T) {
		rc, remote := e.rclone(t)
		tree := e.local("rtree")
		writeTree(t, tree, 60)
		rc("copy", tree, remote+"/r/tree")
		sameTree(t, tree, e.remote("/r/tree"))
		rc("check", tree, remote+"/r/tree") // sizes and modification times
		rc("check", "--download", tree, remote+"/r/tree")
		back := e.local("rback")
		rc("copy", remote+"/r/tree", back)
		sameTree(t, tree, back)
	})

	if ups := store.Uploads(t, s3kit.Bucket, ""); len(ups) != 0 {
		t.Errorf("incomplete uploads left: %v", ups)
	}
}

// TestS3VetoedUpload: an AfterFileUpload script that blocks an upload of several parts
// (OpenSSH sftp) leaves no object and no incomplete multipart upload, and an older object of
// that name as it was.
func TestS3VetoedUpload(t *testing.T) {
	sftpBin := coretest.NeedBinary(t, "sftp")
	store := s3test.Start(t)
	e := newE2EOn(t, store)
	e.d.On(core.AfterFileUpload, func(ev *core.Event) {
		if strings.HasSuffix(ev.RelPath, ".veto") {
			ev.Session.BlockOperation()
		}
	})
	putFile(t, e.local("x.veto"), randomBytes(t, 11<<20))
	putFile(t, e.local("old.veto"), []byte("old"))
	putFile(t, e.remote("/kept.veto"), []byte("old"))
	out := e.sftpBatch(t, sftpBin, "-put x.veto x.veto", "-put x.veto kept.veto", "bye")
	if !strings.Contains(out, "denied") {
		t.Errorf("the client was not told the upload was refused:\n%s", out)
	}
	if _, err := os.Stat(e.remote("/x.veto")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a vetoed upload is visible: %v", err)
	}
	if got, _ := os.ReadFile(e.remote("/kept.veto")); string(got) != "old" {
		t.Errorf("a vetoed upload replaced the old object: %d bytes", len(got))
	}
	if ups := store.Uploads(t, s3kit.Bucket, ""); len(ups) != 0 {
		t.Errorf("a vetoed upload left incomplete uploads: %v", ups)
	}
}

// concurrentClient logs alice in over pkg/sftp with concurrent writes, which sends writes
// out of order. Both close at the test's end; closing the connection before drops it.
func (e *e2e) concurrentClient(t *testing.T) (*ssh.Client, *pkgsftp.Client) {
	t.Helper()
	sc, err := dialKit(e.srv, e.addr, "alice", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	c, err := pkgsftp.NewClient(sc, pkgsftp.UseConcurrentWrites(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return sc, c
}

// TestS3KilledUpload drops the client's connection in the middle of an upload of several
// parts: the object never appears and the multipart upload is aborted.
func TestS3KilledUpload(t *testing.T) {
	store := s3test.Start(t)
	e := newE2EOn(t, store)
	sc, c := e.concurrentClient(t)
	f, err := c.Create("/killed.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(t, 11<<20)); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "a multipart upload in progress", func() bool {
		return len(store.Uploads(t, s3kit.Bucket, "")) == 1
	})
	_ = sc.Close() // the connection drops; the file was never closed
	coretest.Eventually(t, 20*time.Second, "the multipart upload to be aborted", func() bool {
		return len(store.Uploads(t, s3kit.Bucket, "")) == 0
	})
	if _, ok := store.Object(t, s3kit.Bucket, "home/alice/killed.bin"); ok {
		t.Error("the killed upload is visible")
	}
	if _, err := os.Stat(e.remote("/killed.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed upload is on the store's disk: %v", err)
	}
}

// TestS3PipelinedUpload sends files with pkg/sftp's concurrent ReadFrom, which keeps 64
// writes in flight and more: the writes arrive out of order while parts are being sent, and
// all of them must fit the backend's window.
func TestS3PipelinedUpload(t *testing.T) {
	store := s3test.Start(t)
	e := newE2EOn(t, store)
	_, c := e.concurrentClient(t)
	data := randomBytes(t, 64<<20)
	for i := range 2 {
		name := fmt.Sprintf("/piped%d.bin", i)
		f, err := c.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
			t.Fatalf("pipelined upload: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(e.remote(name)); !bytes.Equal(got, data) {
			t.Fatalf("%s differs (%d bytes)", name, len(got))
		}
	}
}
