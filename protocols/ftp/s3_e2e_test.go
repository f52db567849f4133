package ftp

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
	"github.com/wharf-project/wharf/internal/s3test"
)

// s3Site is the scenario site with its files in object storage; home is alice's prefix as a
// host folder of the store's posix backend.
func s3Site(t *testing.T, d core.Dispatcher) (site *core.Site, srv *s3test.Server, home string) {
	t.Helper()
	srv = s3test.Start(t)
	root := srv.Bucket(t, s3kit.Bucket)
	_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(s3kit.Bucket),
		Key: aws.String("shared/readme.txt"), Body: strings.NewReader(coretest.SharedData)})
	if err != nil {
		t.Fatal(err)
	}
	site, _ = newSite(t, d, func(c *config.Site) {
		c.VFS = []config.VFS{s3kit.VFS(srv, "home", "home/{user}"), s3kit.VFS(srv, "shared", "shared")}
	})
	return site, srv, filepath.Join(root, "home", coretest.UserAlice)
}

// TestS3LFTP mirrors a tree up and back with lftp through an S3 mount, sends a file of
// several parts, and resumes an interrupted upload (put -c: SIZE, then REST and STOR) of a
// file larger than one part, so the object is copied on the server as the first part.
func TestS3LFTP(t *testing.T) {
	lftp := coretest.NeedBinary(t, "lftp")
	site, srv, home := s3Site(t, nil)
	ts := serve(t, site, modePlain)
	local := t.TempDir()
	src, back := filepath.Join(local, "src"), filepath.Join(local, "back")
	makeTree(t, src, 60)
	big := randomBytes(t, 12<<20+5)
	bigFile := filepath.Join(local, "big.bin")
	if err := os.WriteFile(bigFile, big, 0o644); err != nil {
		t.Fatal(err)
	}
	// The interrupted upload: what reached the server before the connection dropped (an
	// FTP upload ends with its data connection, so a drop publishes what arrived). Its bytes
	// differ from the file's: if lftp resumes (REST), the object keeps them; a full upload
	// would replace them.
	partial := filepath.Join(local, "partial", "big.bin")
	if err := os.MkdirAll(filepath.Dir(partial), 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := bytes.Repeat([]byte{'#'}, 6<<20)
	if err := os.WriteFile(partial, prefix, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runLftp(t, lftp, local, "set ftp:ssl-allow no\n", port(ts), fmt.Sprintf(`mirror -R --no-perms %s /tree
mirror --no-perms /tree %s
put %s -o /whole.bin
get /whole.bin -o %s
put %s -o /resumed.bin
put -c %s -o /resumed.bin
mkdir /newdir
mv /tree/d0/e0/f000.bin /newdir/moved.bin
cls -1 /newdir
rm /newdir/moved.bin
rmdir /newdir
`, src, back, bigFile, filepath.Join(local, "whole.back"), partial, bigFile))
	sameTree(t, src, back)
	if got, _ := os.ReadFile(filepath.Join(local, "whole.back")); !bytes.Equal(got, big) {
		t.Fatalf("multipart round trip differs (%d bytes)", len(got))
	}
	if got, _ := os.ReadFile(filepath.Join(home, "whole.bin")); !bytes.Equal(got, big) {
		t.Fatalf("object differs (%d bytes)", len(got))
	}
	want := append(append([]byte(nil), prefix...), big[len(prefix):]...)
	if got, _ := os.ReadFile(filepath.Join(home, "resumed.bin")); !bytes.Equal(got, want) {
		t.Fatalf("put -c did not resume at the server's size (%d bytes, want %d; prefix kept: %v)",
			len(got), len(want), bytes.HasPrefix(got, prefix))
	}
	if !strings.Contains(out, "moved.bin") {
		t.Errorf("listing after mv does not show moved.bin:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(home, "newdir")); err == nil {
		t.Error("rmdir left the folder in place")
	}
	if ups := srv.Uploads(t, s3kit.Bucket, ""); len(ups) != 0 {
		t.Errorf("incomplete uploads left: %v", ups)
	}
}

// TestS3Curl uploads, downloads, appends and resumes with curl over FTP through an S3 mount.
func TestS3Curl(t *testing.T) {
	curl := coretest.NeedBinary(t, "curl")
	site, _, home := s3Site(t, nil)
	ts := serve(t, site, modePlain)
	local := t.TempDir()
	base := fmt.Sprintf("ftp://127.0.0.1:%s", port(ts))
	args := func(a ...string) []string {
		return append([]string{"-sS", "--fail", "--max-time", "60", "-u", coretest.UserAlice + ":" + coretest.Password}, a...)
	}
	data, up := curlRoundTrip(t, curl, args, base, home, local)
	// Resume an upload that stopped after 1 MiB: curl asks SIZE and sends the rest (the
	// first MiB differs, to tell a resume from a full upload).
	prefix := bytes.Repeat([]byte{'#'}, 1<<20)
	if err := os.WriteFile(filepath.Join(local, "part.bin"), prefix, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, time.Minute, nil, curl, args("-T", filepath.Join(local, "part.bin"), base+"/c/res.bin")...)
	mustRun(t, time.Minute, nil, curl, args("-C", "-", "-T", up, base+"/c/res.bin")...)
	want := append(append([]byte(nil), prefix...), data[len(prefix):]...)
	if got, _ := os.ReadFile(filepath.Join(home, "c", "res.bin")); !bytes.Equal(got, want) {
		t.Fatalf("resumed object differs (%d bytes, want %d; prefix kept: %v)", len(got), len(want), bytes.HasPrefix(got, prefix))
	}
	// Append (APPE).
	tail := filepath.Join(local, "tail.bin")
	if err := os.WriteFile(tail, []byte("tail"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, time.Minute, nil, curl, args("-a", "-T", tail, base+"/c/up.bin")...)
	if got, _ := os.ReadFile(filepath.Join(home, "c", "up.bin")); !bytes.Equal(got, append(append([]byte(nil), data...), "tail"...)) {
		t.Fatalf("appended object differs (%d bytes)", len(got))
	}
}
