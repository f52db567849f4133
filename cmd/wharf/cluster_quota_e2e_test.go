package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/pgtest"
)

// TestClusterQuotaAcrossNodes: carol's quota holds across nodes. She already stores 1 MiB of
// her 4 MiB; eight sessions (four SFTP, four FTP, through HAProxy round robin: on all three
// nodes) log in, then upload 512 KiB each at once, 5 MiB in all. Each node alone sees at most
// 2.5 MiB of it, so only the shared usage can refuse anything: some uploads must be refused
// with a quota error and leave nothing, the files on the shared storage must stay within the
// quota and be exactly the accepted uploads, and once everyone has logged out the store's
// usage must equal the storage (every node gave its unused allowance back).
func TestClusterQuotaAcrossNodes(t *testing.T) {
	const (
		quota   = 4 << 20
		initial = 1 << 20
		size    = 512 << 10
		perKind = 4
	)
	user := fmt.Sprintf(`      - { id: carol, password: "plain:pw", quota: { bytes: %d }, home: { vfs: home, permissions: [all] } }`, quota)
	c := startCluster(t, pgtest.NewDB(t), user, "")
	ftpProxy := c.startFTPProxy(t)
	home := filepath.Join(c.shared, "carol")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "old.bin"), randomBytes(t, initial), 0o644); err != nil {
		t.Fatal(err)
	}

	// Everyone logs in before anyone uploads: the first login counts the storage.
	var sftps []*sftpConn
	var ftps []*ftp.ServerConn
	for range perKind {
		s, err := c.sftpLogin("carol", "pw")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sftps = append(sftps, s)
		f, err := ftpLoginVia(ftpProxy.Addr, "carol", "pw")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Quit() }()
		ftps = append(ftps, f)
	}
	coretest.Eventually(t, 5*time.Second, "carol's eight sessions on all three nodes", func() bool {
		nodes := c.nodes[0].sessionNodes(t, "carol")
		slices.Sort(nodes)
		return len(nodes) == 2*perKind && len(slices.Compact(nodes)) == 3
	})

	type result struct {
		name string
		data []byte
		err  error
	}
	results := make([]result, 2*perKind)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * perKind {
		results[i].name = fmt.Sprintf("up%d.bin", i)
		results[i].data = randomBytes(t, size)
		wg.Add(1)
		go func(r *result, i int) {
			defer wg.Done()
			<-start
			if i < perKind {
				r.err = sftpUpload(sftps[i], "/"+r.name, r.data)
			} else {
				r.err = ftps[i-perKind].Stor(r.name, bytes.NewReader(r.data))
			}
		}(&results[i], i)
	}
	close(start)
	wg.Wait()

	var accepted, refused int
	want := int64(initial)
	for i, r := range results {
		path := filepath.Join(home, r.name)
		switch {
		case r.err == nil:
			accepted++
			want += size
			sameFile(t, path, r.data)
		case i < perKind && strings.Contains(r.err.Error(), "quota exceeded"),
			i >= perKind && strings.Contains(r.err.Error(), "552"):
			refused++
			if _, err := os.Stat(path); err == nil {
				t.Errorf("%s: refused (%v) but present under its final name", r.name, r.err)
			}
		default:
			t.Errorf("%s: %v, want success or a quota error", r.name, r.err)
		}
	}
	t.Logf("%d upload(s) accepted, %d refused", accepted, refused)
	if refused == 0 {
		t.Errorf("no upload was refused: %d bytes uploaded on top of %d with a quota of %d", 2*perKind*size, initial, quota)
	}
	if accepted == 0 {
		t.Errorf("every upload was refused, though %d bytes of the quota were free", quota-initial)
	}
	for _, s := range sftps {
		s.Close()
	}
	for _, f := range ftps {
		_ = f.Quit()
	}
	got, files, temps := diskUsage(t, home)
	if got > quota {
		t.Errorf("the storage holds %d bytes, over the quota of %d", got, quota)
	}
	if got != want || len(temps) > 0 {
		t.Errorf("the storage holds %d bytes (temporaries: %v), want %d: the old file and the accepted uploads", got, temps, want)
	}

	// Logged out everywhere: the nodes gave back what they reserved and did not use.
	coretest.Eventually(t, 5*time.Second, "carol's sessions to end", func() bool {
		return len(c.nodes[1].sessionNodes(t, "carol")) == 0
	})
	var sb, sf int64
	ok := pollUntil(5*time.Second, func() bool {
		sb, sf = storedUsage(t, c.dsn, "carol")
		return sb == got && sf == files
	})
	if !ok {
		t.Fatalf("the store counts %d bytes in %d files for carol, the storage holds %d bytes in %d files", sb, sf, got, files)
	}
}

// sftpUpload writes data to path and closes it: the error of either.
func sftpUpload(s *sftpConn, path string, data []byte) error {
	f, err := s.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
