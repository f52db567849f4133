// Command ftpcopy is bench/run's plain-copy control: ftpserverlib (the copy wharf vendors) on
// afero's OS file system, with no wharf core. Uploads are written in place, downloads read
// straight from the file, with the library's own io.Copy; there is no session, policy,
// atomic upload, audit, quota or event. Comparing wharf's FTP rows with it shows what
// wharf's own path costs over the library's.
//
//	ftpcopy -root DIR -listen ADDR -pasv FIRST-LAST -user NAME < password-or-hash
//
// The first line of stdin (never an argument, so it stays out of the process list) is the
// password, or an argon2id hash of it ("$argon2id$…", as `wharf hash-password` prints): then
// each login checks the password as wharf does, so that a login costs both servers the same
// and the per-file figures of a run compare what happens per file. The settings are wharf's
// for a plain FTP listener (protocols/ftp GetSettings):
// passive mode only, data connections from the control connection's address only, binary
// by default, and passive ports drawn as wharf draws them (math/rand, at most 64 candidates)
// rather than with the library's PortRange, whose crypto/rand draws would make the control
// slower than the library has to be. No TLS. Listeners are plain TCP, as wharf's are
// (cmd/wharf: no Multipath TCP).
//
//go:debug multipathtcp=0
package main

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/alexedwards/argon2id"
	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ftpcopy:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", "", "directory served to the user (required)")
	listen := flag.String("listen", "127.0.0.1:0", "control connection address")
	pasv := flag.String("pasv", "", "passive port range FIRST-LAST (required)")
	user := flag.String("user", "", "the one user's name (required)")
	flag.Parse()
	if *root == "" || *pasv == "" || *user == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if fi, err := os.Stat(*root); err != nil || !fi.IsDir() {
		return fmt.Errorf("-root %s: not a directory (%v)", *root, err)
	}
	ports, err := parseRange(*pasv)
	if err != nil {
		return err
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the password from stdin: %w", err)
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		return errors.New("empty password on stdin")
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	d := &driver{
		listener: l, ports: ports, user: *user, secret: secret,
		fs: afero.NewBasePathFs(afero.NewOsFs(), *root),
	}
	srv := ftpserver.NewFtpServer(d)
	srv.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := srv.Listen(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		_ = srv.Stop()
	}()
	err = srv.Serve()
	if err == nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func parseRange(s string) (passivePorts, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || first < 1024 || last < first || last > 65535 {
		return passivePorts{}, fmt.Errorf("-pasv %q: want FIRST-LAST within 1024-65535", s)
	}
	return passivePorts{first: first, last: last}, nil
}

// driver serves one user whose file system is the root directory.
type driver struct {
	listener     net.Listener
	ports        passivePorts
	user, secret string // secret: the password, or its argon2id hash
	fs           afero.Fs
}

func (d *driver) GetSettings() (*ftpserver.Settings, error) {
	return &ftpserver.Settings{
		Listener:                 d.listener,
		Banner:                   "ftpcopy",
		PassiveTransferPortRange: d.ports,
		IdleTimeout:              1800,
		ConnectionTimeout:        30,
		ActiveTransferPortNon20:  true,
		DisableActiveMode:        true,
		EnableHASH:               true,
		DefaultTransferType:      ftpserver.TransferTypeBinary,
		ActiveConnectionsCheck:   ftpserver.IPMatchRequired,
		PasvConnectionsCheck:     ftpserver.IPMatchRequired,
	}, nil
}

func (d *driver) ClientConnected(ftpserver.ClientContext) (string, error) {
	return "ftpcopy ready", nil
}

func (d *driver) ClientDisconnected(ftpserver.ClientContext) {}

func (d *driver) AuthUser(_ ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	ok := subtle.ConstantTimeCompare([]byte(user), []byte(d.user)) == 1
	if strings.HasPrefix(d.secret, "$argon2id$") {
		match, err := argon2id.ComparePasswordAndHash(pass, d.secret)
		ok = ok && err == nil && match
	} else {
		ok = subtle.ConstantTimeCompare([]byte(pass), []byte(d.secret)) == 1 && ok
	}
	if !ok {
		return nil, errors.New("bad user or password")
	}
	return d.fs, nil
}

func (d *driver) GetTLSConfig() (*tls.Config, error) {
	return nil, errors.New("no TLS on the control server")
}

// passivePorts draws passive ports as wharf's protocols/ftp passivePorts does.
type passivePorts struct{ first, last int }

func (r passivePorts) FetchNext() (int, int, bool) {
	p := r.first + rand.IntN(r.last-r.first+1)
	return p, p, true
}

func (r passivePorts) NumberAttempts() int { return min(r.last-r.first+1, 64) }
