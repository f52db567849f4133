package ftpserver

// Tests of wharf's changes (WHARF.md).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secsy/goftp"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"
)

// pagingDriver implements ClientDriverExtensionDirLister over the test file system and
// records how it is used.
type pagingDriver struct {
	*TestClientDriver

	mu        sync.Mutex
	maxLimit  int // the largest batch asked for
	batches   int
	opened    int
	closed    int
	failAfter int // > 0: Next fails once this many entries were handed out
}

var errListingFailed = errors.New("listing failed midway")

func (d *pagingDriver) ListDir(name string) (DirLister, error) {
	f, err := d.Open(name)
	if err != nil {
		return nil, err
	}

	d.mu.Lock()
	d.opened++
	d.mu.Unlock()

	return &pagingLister{d: d, f: f}, nil
}

type pagingLister struct {
	d      *pagingDriver
	f      afero.File
	handed int
}

func (l *pagingLister) Next(limit int) ([]os.FileInfo, error) {
	l.d.mu.Lock()
	l.d.maxLimit = max(l.d.maxLimit, limit)
	l.d.batches++
	failAfter := l.d.failAfter
	l.d.mu.Unlock()

	if failAfter > 0 && l.handed >= failAfter {
		return nil, errListingFailed
	}

	fis, err := l.f.Readdir(limit)
	l.handed += len(fis)

	return fis, err //nolint:wrapcheck
}

func (l *pagingLister) Close() error {
	l.d.mu.Lock()
	l.d.closed++
	l.d.mu.Unlock()

	return l.f.Close() //nolint:wrapcheck
}

func (d *pagingDriver) counts() (maxLimit, batches, opened, closed int) {
	d.mu.Lock()
	defer d.mu.Unlock()

	return d.maxLimit, d.batches, d.opened, d.closed
}

// recordingHandler keeps the messages of log records.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder

	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)

		return true
	})
	h.mu.Lock()
	h.msgs = append(h.msgs, b.String())
	h.mu.Unlock()

	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()

	n := 0

	for _, m := range h.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}

	return n
}

// listingServer serves the test file system; with paging, through a pagingDriver.
func listingServer(t *testing.T, paging bool) (*FtpServer, *TestServerDriver, *pagingDriver, *recordingHandler) {
	t.Helper()

	driver := &TestServerDriver{}
	driver.Init()
	t.Cleanup(func() { _ = os.RemoveAll(driver.serverDir) })

	pd := &pagingDriver{TestClientDriver: NewTestClientDriver(driver)}
	if paging {
		driver.AuthProvider = func(user, pass string) (ClientDriver, error) {
			if user != authUser || pass != authPass {
				return nil, errBadUserNameOrPassword
			}

			return pd, nil
		}
	}

	rec := &recordingHandler{}
	server := NewTestServerWithDriverAndLogger(t, driver, slog.New(rec))

	return server, driver, pd, rec
}

// rawListing runs a listing command and returns the data and the final reply.
func rawListing(t *testing.T, raw goftp.RawConn, command string) (string, int, string) {
	t.Helper()

	dcGetter, err := raw.PrepareDataConn()
	require.NoError(t, err)

	code, msg, err := raw.SendCommand(command)
	require.NoError(t, err)
	require.Equal(t, StatusFileStatusOK, code, msg)

	dc, err := dcGetter()
	require.NoError(t, err)

	data, err := io.ReadAll(dc)
	require.NoError(t, err)
	require.NoError(t, dc.Close())

	code, msg, err = raw.ReadResponse()
	require.NoError(t, err)

	return string(data), code, msg
}

func dialListing(t *testing.T, server *FtpServer) (*goftp.Client, goftp.RawConn) {
	t.Helper()

	client, err := goftp.DialConfig(goftp.Config{User: authUser, Password: authPass}, server.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })

	raw, err := client.OpenRawConn()
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.Close() })

	return client, raw
}

// TestWharfListingPaged: with ClientDriverExtensionDirLister, LIST, NLST, MLSD and
// STAT <dir> read the directory in batches of at most listingBatch entries, list every entry
// once, and always close the lister.
func TestWharfListingPaged(t *testing.T) {
	const files = 1000

	server, driver, pd, _ := listingServer(t, true)
	dir := filepath.Join(driver.serverDir, "big")
	require.NoError(t, os.MkdirAll(dir, 0o750))

	for i := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), nil, 0o600))
	}

	client, raw := dialListing(t, server)

	entries, err := client.ReadDir("/big") // MLSD
	require.NoError(t, err)
	require.Len(t, entries, files)

	for _, command := range []string{"LIST /big", "NLST /big"} {
		data, code, msg := rawListing(t, raw, command)
		require.Equal(t, StatusClosingDataConn, code, msg)
		require.Equal(t, files, strings.Count(data, "\r\n"), command)
	}

	code, msg, err := raw.SendCommand("STAT /big")
	require.NoError(t, err)
	require.Equal(t, StatusDirectoryStatus, code)
	require.Equal(t, files+2, strings.Count(msg, "\n")+1, "STAT lines")
	require.NotContains(t, msg, "%s")

	maxLimit, batches, opened, closed := pd.counts()
	require.Equal(t, listingBatch, maxLimit)
	require.GreaterOrEqual(t, batches, 4*(files/listingBatch+1))
	require.GreaterOrEqual(t, opened, 4)
	require.Equal(t, opened, closed)

	// A listing whose data connection cannot be opened still closes its lister (after its
	// reply: the listing runs on the transfer goroutine).
	code, _, err = raw.SendCommand("LIST /big")
	require.NoError(t, err)
	require.NotEqual(t, StatusFileStatusOK, code)
	require.Eventually(t, func() bool {
		_, _, opened, closed = pd.counts()

		return opened == 5 && closed == 5
	}, 10*time.Second, 10*time.Millisecond)
}

// TestWharfListingControlCharacters: names holding control characters are left out of LIST,
// NLST and MLSD and logged once per listing; STAT escapes a CR as CR NUL and leaves out
// other control characters; its multi-line reply ends where the server ends it. With and
// without the paging extension.
func TestWharfListingControlCharacters(t *testing.T) {
	for _, paging := range []bool{false, true} {
		t.Run(fmt.Sprintf("paging=%v", paging), func(t *testing.T) {
			server, driver, _, rec := listingServer(t, paging)
			dir := filepath.Join(driver.serverDir, "evil")
			require.NoError(t, os.MkdirAll(dir, 0o750))

			for _, name := range []string{
				"a\r\n-rw-r--r-- 1 ftp ftp 1 Jan 01 00:00 forged.txt",
				"b\r\n212 End\r\n530 forged",
				"lf\nonly", "tab\there", "bare\rcr", "good",
			} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600))
			}

			_, raw := dialListing(t, server)

			for _, command := range []string{"LIST /evil", "NLST /evil", "MLSD /evil"} {
				data, code, msg := rawListing(t, raw, command)
				require.Equal(t, StatusClosingDataConn, code, msg)
				require.Equal(t, 1, strings.Count(data, "\n"), "%s: %q", command, data)
				require.True(t, strings.HasSuffix(data, "good\r\n"), "%s: %q", command, data)
			}

			require.Equal(t, 3, rec.count("Listing entries omitted"), "one log line per listing")
			require.Equal(t, 3, rec.count("omitted=5"))

			code, msg, err := raw.SendCommand("STAT /evil")
			require.NoError(t, err)
			require.Equal(t, StatusDirectoryStatus, code)
			require.NotContains(t, msg, "%s")
			require.NotContains(t, msg, "forged")
			require.Contains(t, msg, " good")
			require.Contains(t, msg, "bare\r\x00cr")

			code, _, err = raw.SendCommand("NOOP")
			require.NoError(t, err)
			require.Equal(t, StatusOK, code, "a reply was left queued behind STAT")

			// The argument echoed by STAT <file> is escaped too.
			code, msg, err = raw.SendCommand("STAT /evil/bare\rcr")
			require.NoError(t, err)
			require.Equal(t, StatusFileStatus, code)
			require.Contains(t, msg, "STAT /evil/bare\r\x00cr")
		})
	}
}

// TestWharfListingErrorMidway: an error from Next after entries were sent ends LIST with an
// error reply, and STAT <dir> with a last line that says the listing is incomplete.
func TestWharfListingErrorMidway(t *testing.T) {
	server, driver, pd, _ := listingServer(t, true)
	pd.failAfter = 300
	dir := filepath.Join(driver.serverDir, "big")
	require.NoError(t, os.MkdirAll(dir, 0o750))

	for i := range 1000 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), nil, 0o600))
	}

	_, raw := dialListing(t, server)

	data, code, msg := rawListing(t, raw, "LIST /big")
	require.Equal(t, StatusActionNotTaken, code, msg)
	require.Contains(t, msg, errListingFailed.Error())
	require.GreaterOrEqual(t, strings.Count(data, "\r\n"), 300)

	code, msg, err := raw.SendCommand("STAT /big")
	require.NoError(t, err)
	require.Equal(t, StatusDirectoryStatus, code)
	require.Contains(t, msg, "End of an incomplete listing: "+errListingFailed.Error())

	code, _, err = raw.SendCommand("NOOP")
	require.NoError(t, err)
	require.Equal(t, StatusOK, code)

	_, _, opened, closed := pd.counts()
	require.Equal(t, opened, closed)
}

// TestWharfListingGlob: LIST and NLST take a wildcard in their last element (Windows ftp's
// mget sends NLST *.txt), a leading dot is matched only by a leading dot, a name that exists
// as written is listed as itself, and MLSD takes no pattern (11).
func TestWharfListingGlob(t *testing.T) {
	for _, paging := range []bool{false, true} {
		t.Run(fmt.Sprint("paging=", paging), func(t *testing.T) {
			server, driver, _, _ := listingServer(t, paging)
			for _, name := range []string{"a.txt", "b.txt", "c.log", ".hidden.txt", "lit*.txt", "sub/x.txt", "sub/y.log"} {
				p := filepath.Join(driver.serverDir, name)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o750))
				require.NoError(t, os.WriteFile(p, nil, 0o600))
			}

			_, raw := dialListing(t, server)
			names := func(command string) []string {
				data, code, msg := rawListing(t, raw, command)
				require.Equal(t, StatusClosingDataConn, code, msg)
				lines := strings.Fields(data)
				sort.Strings(lines)

				return lines
			}
			require.Equal(t, []string{"a.txt", "b.txt"}, names("NLST ?.txt"))
			require.Equal(t, []string{"a.txt", "b.txt", "lit*.txt"}, names("NLST *.txt"))
			require.Equal(t, []string{".hidden.txt"}, names("NLST .*.txt"))
			require.Equal(t, []string{"sub/x.txt"}, names("NLST sub/*.txt"))
			require.Equal(t, []string{"a.txt", "b.txt"}, names("NLST [ab].txt"))
			require.Equal(t, []string{"lit*.txt"}, names("NLST lit*.txt")) // exists as written
			require.Empty(t, names("NLST *.none"))

			data, code, msg := rawListing(t, raw, "LIST -la /*.log")
			require.Equal(t, StatusClosingDataConn, code, msg)
			require.Equal(t, 1, strings.Count(data, "\r\n"), data)
			require.Contains(t, data, " c.log\r\n")

			for _, command := range []string{"NLST [", "NLST nodir/*.txt", "NLST a.txt/*"} {
				code, msg, err := raw.SendCommand(command)
				require.NoError(t, err)
				require.Equal(t, StatusFileActionNotTaken, code, command+": "+msg)
			}

			code, msg, err := raw.SendCommand("MLSD *.txt")
			require.NoError(t, err)
			require.Equal(t, StatusActionNotTaken, code, msg)
		})
	}
}
