package core_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
	"github.com/wharf-project/wharf/internal/s3test"
)

// TestS3HashAndLocation: on an s3 vfs, GetAbsPath is s3://bucket/key, an MD5 of a whole
// object uploaded in one PUT is its ETag (not read), and other digests read the object.
func TestS3HashAndLocation(t *testing.T) {
	store := s3test.Start(t)
	dir := store.Bucket(t, s3kit.Bucket)
	d := &coretest.Dispatcher{}
	var abs string
	d.On(core.AfterFileUpload, func(ev *core.Event) { abs = ev.Session.AbsPath() })
	site := testSite(t, []config.User{user("u", func(u *config.User) { u.Home.VFS = "s3" })}, d, func(c *config.Site) {
		c.VFS = append(c.VFS, s3kit.VFS(store, "s3", "home/{user}"))
	})
	s := login(t, site, "u")
	ctx := context.Background()
	if err := upload(ctx, s, "/f.txt", "hello"); err != nil {
		t.Fatal(err)
	}
	if want := "s3://" + s3kit.Bucket + "/home/u/f.txt"; abs != want {
		t.Errorf("AbsPath = %q, want %q", abs, want)
	}
	// Change the bytes behind the store's back (its posix backend keeps the ETag apart):
	// the MD5 comes from the ETag, SHA-256 from the bytes.
	if err := os.WriteFile(filepath.Join(dir, "home", "u", "f.txt"), []byte("HELLO"), 0o644); err != nil {
		t.Fatal(err)
	}
	hexOf := func(b []byte) string { return hex.EncodeToString(b) }
	sumMD5, sumSHA := md5.Sum([]byte("hello")), sha256.Sum256([]byte("HELLO"))
	if got, err := s.Hash(ctx, "/f.txt", "md5", 0, 0); err != nil || got != hexOf(sumMD5[:]) {
		t.Errorf("md5 = %q, %v; want the ETag %s", got, err, hexOf(sumMD5[:]))
	}
	if got, err := s.Hash(ctx, "/f.txt", "sha256", 0, 0); err != nil || got != hexOf(sumSHA[:]) {
		t.Errorf("sha256 = %q, %v; want the bytes' %s", got, err, hexOf(sumSHA[:]))
	}
	// A multipart object's ETag is no MD5: the digest is read.
	big := make([]byte, 6<<20)
	_, _ = rand.Read(big)
	if err := upload(ctx, s, "/big.bin", string(big)); err != nil {
		t.Fatal(err)
	}
	sumBig := md5.Sum(big)
	if got, err := s.Hash(ctx, "/big.bin", "md5", 0, 0); err != nil || got != hexOf(sumBig[:]) {
		t.Errorf("md5 of a multipart object = %q, %v", got, err)
	}
}

// TestS3MissingBucket: a login to a missing bucket fails without telling the client the
// endpoint or the bucket.
func TestS3MissingBucket(t *testing.T) {
	store := s3test.Start(t)
	site := testSite(t, []config.User{user("u", func(u *config.User) { u.Home.VFS = "s3" })}, nil, func(c *config.Site) {
		v := s3kit.VFS(store, "s3", "home/{user}")
		v.Bucket = "no-such-bucket"
		c.VFS = append(c.VFS, v)
	})
	s := connect(t, site, "127.0.0.1", core.ProtoSFTP)
	err := s.AuthPassword(context.Background(), "u", "pw")
	if err == nil {
		t.Fatal("login to a missing bucket succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, "no-such-bucket") || strings.Contains(msg, strings.TrimPrefix(store.Endpoint, "http://")) {
		t.Errorf("the client's error names the store: %v", err)
	}
}

// TestS3UsersShareOneClient: the backends of every user prefix on one store and credentials
// share one S3 client, loaded at start; other credentials get a client of their own. Each
// user still sees only their own prefix.
func TestS3UsersShareOneClient(t *testing.T) {
	store := s3test.Start(t)
	dir := store.Bucket(t, s3kit.Bucket)
	site := testSite(t, []config.User{
		user("u1", func(u *config.User) { u.Home.VFS = "s3" }),
		user("u2", func(u *config.User) { u.Home.VFS = "s3" }),
		user("u3", func(u *config.User) { u.Home.VFS = "other" }),
	}, nil, func(c *config.Site) {
		c.VFS = append(c.VFS, s3kit.VFS(store, "s3", "home/{user}"), s3kit.VFS(store, "other", "other/{user}"))
		wrong := s3kit.VFS(store, "wrong", "wrong/{user}")
		wrong.AccessKey = config.InlineSecret("someone-else")
		c.VFS = append(c.VFS, wrong)
	})
	if n := core.S3Clients(site); n != 2 {
		t.Fatalf("after start: %d S3 clients, want 2 (one per store and credentials)", n)
	}
	ctx := context.Background()
	for _, id := range []string{"u1", "u2", "u3"} {
		s := login(t, site, id)
		if err := upload(ctx, s, "/mine.txt", id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		fis, err := s.List(ctx, "/")
		if err != nil || len(fis) != 1 || fis[0].Name() != "mine.txt" {
			t.Fatalf("%s lists %v, %v; want only mine.txt", id, fis, err)
		}
	}
	for _, p := range []string{"home/u1/mine.txt", "home/u2/mine.txt", "other/u3/mine.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || string(b) != strings.Split(p, "/")[1] {
			t.Errorf("%s holds %q, %v", p, b, err)
		}
	}
	if n := core.S3Clients(site); n != 2 {
		t.Errorf("after three users' logins: %d S3 clients, want 2", n)
	}
}
