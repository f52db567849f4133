package sftp

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// scpDownload is what a receiving scp saw of one "scp -f" run: the records in order
// ("D name", "C name size data", "E"), the error lines, and the exit status.
type scpDownload struct {
	records []string
	errors  []string
	exit    int
}

// maxRecords bounds a download in these tests: a server that followed symbolic links to
// directories would send an unbounded tree.
const maxRecords = 5000

// receiveSCP runs command ("scp -f ...") and plays the receiving side the way OpenSSH's scp
// does, acknowledging every record.
func receiveSCP(t *testing.T, r *scpRun) scpDownload {
	t.Helper()
	var d scpDownload
	r.send(t, "\x00")
	for {
		b, err := r.out.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading a record: %v", err)
		}
		line, err := r.out.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a %q record: %v", b, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch b {
		case 1, 2:
			d.errors = append(d.errors, line)
			if b == 2 {
				break
			}
			continue
		case 'T':
			r.send(t, "\x00")
			continue
		case 'E':
			d.records = append(d.records, "E")
			r.send(t, "\x00")
		case 'D':
			f := strings.SplitN(line, " ", 3)
			d.records = append(d.records, "D "+f[2])
			r.send(t, "\x00")
		case 'C':
			f := strings.SplitN(line, " ", 3)
			size, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("C record %q", line)
			}
			r.send(t, "\x00")
			data := make([]byte, size+1)
			if _, err := io.ReadFull(r.out, data); err != nil || data[size] != 0 {
				t.Fatalf("data of %q: %v", line, err)
			}
			d.records = append(d.records, fmt.Sprintf("C %s %d %s", f[2], size, data[:size]))
			r.send(t, "\x00")
		default:
			t.Fatalf("unexpected record %q%s", b, line)
		}
		if len(d.records) > maxRecords {
			_ = r.s.Close()
			t.Fatalf("more than %d records; the first ones: %q", maxRecords, d.records[:20])
		}
	}
	d.exit = r.exit()
	return d
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestSCPRecursiveSourceSymlinks downloads with "scp -r -f" a folder holding links to "."
// (on main three of them cost seconds of CPU and an exponential tree), to "..", to a sibling
// folder, to a file and to nothing. As OpenSSH's scp does since it speaks SFTP, a link to a
// file is sent as the file, and a link to a folder is not followed: it gets an error line
// and the transfer goes on (exit status 1).
func TestSCPRecursiveSourceSymlinks(t *testing.T) {
	root := t.TempDir()
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, testUser("alice")), nil))
	d := filepath.Join(root, "home", "alice", "d")
	putFile(t, filepath.Join(d, "file.txt"), []byte("top"))
	putFile(t, filepath.Join(d, "sub", "inner.txt"), []byte("inner"))
	for _, l := range []string{"l1", "l2", "l3"} {
		symlink(t, ".", filepath.Join(d, l))
	}
	symlink(t, "..", filepath.Join(d, "up"))
	symlink(t, "sub", filepath.Join(d, "sublink"))
	symlink(t, "file.txt", filepath.Join(d, "flink"))
	symlink(t, "nowhere", filepath.Join(d, "dangling"))
	c, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	start := time.Now()
	got := receiveSCP(t, startSCP(t, c, "scp -r -f /d"))
	t.Logf("scp -r -f took %v: %q, errors %q", time.Since(start), got.records, got.errors)
	want := []string{"D d", "C file.txt 3 top", "C flink 3 top", "D sub", "C inner.txt 5 inner", "E", "E"}
	if !slices.Equal(canonicalSCP(got.records), want) {
		t.Fatalf("records %q, want %q", got.records, want)
	}
	for _, name := range []string{"l1", "l2", "l3", "up", "sublink"} {
		if !slices.ContainsFunc(got.errors, func(e string) bool {
			return strings.Contains(e, "/d/"+name+": not a regular file") && strings.Contains(e, "link to a directory")
		}) {
			t.Errorf("no error line for the link %s: %q", name, got.errors)
		}
	}
	if !slices.ContainsFunc(got.errors, func(e string) bool { return strings.Contains(e, "/d/dangling") }) {
		t.Errorf("no error line for the dangling link: %q", got.errors)
	}
	if len(got.errors) != 6 {
		t.Errorf("%d error lines, want 6: %q", len(got.errors), got.errors)
	}
	if got.exit != 1 {
		t.Errorf("exit status %d, want 1", got.exit)
	}

	// A link named on the command line is followed, as a path given to OpenSSH's scp is.
	got = receiveSCP(t, startSCP(t, c, "scp -r -f /d/sublink /d/flink"))
	want = []string{"D sublink", "C inner.txt 5 inner", "E", "C flink 3 top"}
	if !slices.Equal(got.records, want) || len(got.errors) != 0 || got.exit != 0 {
		t.Fatalf("named links: records %q, errors %q, exit %d; want %q", got.records, got.errors, got.exit, want)
	}
}

// TestSCPSourceNewlineNames: a file or folder whose name holds a newline (created on the
// host; clients cannot create one) is never written into a C or D record, where the newline
// would end the record and the rest of the name would be read as another: it is skipped
// with an error line, as OpenSSH's scp once did, and the transfer goes on.
func TestSCPSourceNewlineNames(t *testing.T) {
	root := t.TempDir()
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, testUser("alice")), nil))
	d := filepath.Join(root, "home", "alice", "d")
	putFile(t, filepath.Join(d, "a\nC0644 5 pwned"), []byte("hello"))
	putFile(t, filepath.Join(d, "dir\nD0755 0 evil", "x.txt"), []byte("x"))
	putFile(t, filepath.Join(d, "ok.txt"), []byte("ok"))
	c, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := receiveSCP(t, startSCP(t, c, "scp -r -f /d"))
	want := []string{"D d", "C ok.txt 2 ok", "E"}
	if !slices.Equal(canonicalSCP(got.records), want) {
		t.Fatalf("records %q, want %q (errors %q)", got.records, want, got.errors)
	}
	if len(got.errors) != 2 {
		t.Fatalf("error lines %q, want one per skipped name", got.errors)
	}
	for _, e := range got.errors {
		if !strings.Contains(e, "skipping, the name contains a newline") || !strings.Contains(e, `\n`) {
			t.Errorf("error line %q, want the name quoted and the reason", e)
		}
	}
	if got.exit != 1 {
		t.Errorf("exit status %d, want 1", got.exit)
	}
	// Named directly, it is skipped too.
	got = receiveSCP(t, startSCP(t, c, "scp -f '/d/a\nC0644 5 pwned'"))
	if len(got.records) != 0 || len(got.errors) != 1 || got.exit != 1 {
		t.Fatalf("a named file with a newline: records %q, errors %q, exit %d", got.records, got.errors, got.exit)
	}
}

// TestOpenSSHSCPDownloadNewlineAndLinks downloads with OpenSSH's legacy scp ("scp -O -r"):
// a file whose name holds a newline followed by a record and whose data continues it, which
// on main made scp create a file "pwned" the server never sent; and a folder with a link to
// a file (copied as a file) and a link to a sibling folder (not followed).
func TestOpenSSHSCPDownloadNewlineAndLinks(t *testing.T) {
	scpBin := coretest.NeedBinary(t, "scp")
	e := newE2E(t)
	// The file's C record is "C0644 22 a\n<20 b>\n": scp reads "C0644 22 a", then as its 22
	// bytes of data "<20 b>\n" and the file's first byte; the file's next byte, \0, is the
	// end-of-file response, and the rest is a record of the attacker's choosing.
	putFile(t, e.remote("/inj/a\n"+strings.Repeat("b", 20)), []byte("x\x00C0644 5 pwned\nhello\x00"))
	out, err := e.try(scpBin, append(e.sshOptions(), "-O", "-r", "-P", e.port, "alice@127.0.0.1:/inj", e.local("got"))...)
	t.Logf("scp -O -r of a name with a newline: %v\n%s", err, out)
	if _, err := os.Stat(e.local("got/pwned")); err == nil {
		t.Fatal("the name's newline made scp create a file the server never sent")
	}
	if err == nil || !strings.Contains(out, "skipping, the name contains a newline") {
		t.Fatalf("scp succeeded or did not show why the file was skipped: %v\n%s", err, out)
	}

	putFile(t, e.remote("/links/sub/inner.txt"), []byte("inner"))
	putFile(t, e.remote("/links/file.txt"), []byte("top"))
	symlink(t, "sub", e.remote("/links/sublink"))
	symlink(t, "file.txt", e.remote("/links/flink"))
	out, err = e.try(scpBin, append(e.sshOptions(), "-O", "-r", "-P", e.port, "alice@127.0.0.1:/links", e.local("links"))...)
	t.Logf("scp -O -r of a folder with links: %v\n%s", err, out)
	if err == nil || !strings.Contains(out, "sublink: not a regular file") {
		t.Fatalf("scp succeeded or did not report the link to a folder: %v\n%s", err, out)
	}
	if _, err := os.Stat(e.local("links/sublink")); err == nil {
		t.Fatal("the link to a folder was followed")
	}
	sameFile(t, e.remote("/links/file.txt"), e.local("links/flink"))
	sameFile(t, e.remote("/links/sub/inner.txt"), e.local("links/sub/inner.txt"))
}

// canonicalSCP puts the records of each directory (between its D and E records) in name
// order: the server sends a directory's entries in the backend's own order.
func canonicalSCP(records []string) []string {
	var walk func(i int) (group []string, next int)
	walk = func(i int) ([]string, int) {
		var items [][]string
		for i < len(records) && records[i] != "E" {
			if strings.HasPrefix(records[i], "D ") {
				sub, next := walk(i + 1)
				items = append(items, append(append([]string{records[i]}, sub...), "E"))
				i = next + 1
				continue
			}
			items = append(items, []string{records[i]})
			i++
		}
		slices.SortFunc(items, func(a, b []string) int { return strings.Compare(a[0][2:], b[0][2:]) })
		var out []string
		for _, it := range items {
			out = append(out, it...)
		}
		return out, i
	}
	out, _ := walk(0)
	return out
}
