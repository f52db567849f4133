package ftp

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
)

// Issue #19, item 10, over FTP: a STOR that replaces a file is in progress on one connection
// while another connection deletes that file. The file's size must be released once: after
// the attack, a file that fits only if the quota was fooled is refused.
func TestFTPQuotaDeleteDuringStor(t *testing.T) {
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	a, err := ts.dial(modePlain, coretest.UserBob, coretest.Password)
	must(t, err)
	defer a.Quit()
	b, err := ts.dial(modePlain, coretest.UserBob, coretest.Password)
	must(t, err)
	defer b.Quit()
	must(t, b.Stor("/f", bytes.NewReader(bytes.Repeat([]byte("f"), 600<<10))))
	must(t, b.Stor("/g", bytes.NewReader(bytes.Repeat([]byte("g"), 400<<10))))

	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() { stored <- a.Stor("/f", pr) }()
	if _, err := pw.Write(bytes.Repeat([]byte("n"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	// The upload is open on the server once the client sends data.
	must(t, b.Delete("/f"))
	_, _ = pw.Write([]byte("late data"))
	_ = pw.Close()
	<-stored // refused or not, its file was deleted

	if err := b.Stor("/overflow", bytes.NewReader(bytes.Repeat([]byte("o"), 700<<10))); err == nil {
		t.Fatal("a 700 KiB upload after the attack succeeded: the quota was bypassed")
	}
	home := filepath.Join(root, "home", coretest.UserBob)
	if _, err := os.Stat(filepath.Join(home, "overflow")); !os.IsNotExist(err) {
		t.Fatalf("the refused upload left a file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "f")); !os.IsNotExist(err) {
		t.Fatalf("the deleted file came back: %v", err)
	}
}
