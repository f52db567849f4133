// Command tool is the benchmark helper used by bench/run where shell clients fall short.
//
//	tool ports N                     print N free TCP ports on 127.0.0.1, one per line
//	tool pasv N                      print the first port of N consecutive free ports
//	tool idle   -proto sftp|ftp ...  open -n authenticated sessions, print "ready", hold them
//	                                 until SIGTERM/SIGINT (or -hold passes)
//	tool logins -proto sftp|ftp ...  run -n logins (-parallel at a time, default 1), print
//	                                 logins per second
//	tool banprop -a URL -b URL ...   ban on node A, poll node B's bans until listed (and the
//	                                 lift until gone); print p50/p99/max in ms (cluster case)
//	tool pgturns -to HOST:PORT       relay to PostgreSQL counting round trips; print them on
//	                                 SIGUSR1 (cluster case: database round trips per login)
//	tool bcrypt                      read a password line on stdin, print its bcrypt hash
//	                                 (cost 10): the S3 cases' user, whose password checks
//	                                 must not add argon2id's 19 MiB to an upload's peak RSS
//
// It talks to wharf and to the reference servers with the same client code, so the numbers
// compare the servers. Everything is bounded: -n, -timeout and -parallel.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ports":
		err = cmdPorts(os.Args[2:])
	case "pasv":
		err = cmdPasv(os.Args[2:])
	case "idle":
		err = cmdIdle(os.Args[2:])
	case "logins":
		err = cmdLogins(os.Args[2:])
	case "bcrypt":
		err = cmdBcrypt(os.Args[2:])
	case "banprop":
		err = cmdBanprop(os.Args[2:])
	case "pgturns":
		err = cmdPgturns(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tool ports N | pasv N | idle [flags] | logins [flags] | bcrypt | banprop [flags] | pgturns [flags]")
	os.Exit(2)
}

// cmdPorts prints n distinct ports the kernel hands out as free.
func cmdPorts(args []string) error {
	if len(args) != 1 {
		return errors.New("ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 100 {
		return errors.New("ports: N must be 1..100")
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// cmdPasv finds n consecutive free ports in 30000-59999 (passive data ranges).
func cmdPasv(args []string) error {
	if len(args) != 1 {
		return errors.New("pasv N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 1000 {
		return errors.New("pasv: N must be 1..1000")
	}
	for range 200 {
		base := 30000 + rand.IntN(30000-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			fmt.Println(base)
			return nil
		}
	}
	return errors.New("pasv: no free range found")
}

// cmdBcrypt prints the bcrypt hash (cost 10) of the first line of stdin. The password is not
// an argument, so it stays out of the process list.
func cmdBcrypt(args []string) error {
	if len(args) != 0 {
		return errors.New("bcrypt takes no arguments (the password is read from stdin)")
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("bcrypt: reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("bcrypt: empty password on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 10)
	if err != nil {
		return fmt.Errorf("bcrypt: %w", err)
	}
	fmt.Println(string(h))
	return nil
}

type target struct {
	proto    string
	addr     string
	user     string
	password string
	signer   ssh.Signer
	cipher   string
	timeout  time.Duration
}

func targetFlags(fs *flag.FlagSet) func() (*target, error) {
	t := &target{}
	fs.StringVar(&t.proto, "proto", "sftp", "sftp or ftp")
	fs.StringVar(&t.addr, "addr", "", "host:port")
	fs.StringVar(&t.user, "user", "", "user name")
	fs.StringVar(&t.password, "password", "", "password (ftp)")
	key := fs.String("key", "", "private key file (sftp)")
	fs.StringVar(&t.cipher, "cipher", "aes128-gcm@openssh.com", "SSH cipher")
	fs.DurationVar(&t.timeout, "timeout", 30*time.Second, "per-login timeout")
	return func() (*target, error) {
		if t.addr == "" || t.user == "" {
			return nil, errors.New("-addr and -user are required")
		}
		switch t.proto {
		case "sftp":
			pem, err := os.ReadFile(*key)
			if err != nil {
				return nil, err
			}
			if t.signer, err = ssh.ParsePrivateKey(pem); err != nil {
				return nil, err
			}
		case "ftp":
			if t.password == "" {
				return nil, errors.New("-password is required for ftp")
			}
		default:
			return nil, fmt.Errorf("unknown -proto %q", t.proto)
		}
		return t, nil
	}
}

// session is one authenticated session.
type session interface{ Close() error }

type sftpSession struct {
	c  *ssh.Client
	sc *sftp.Client
}

func (s *sftpSession) Close() error {
	_ = s.sc.Close()
	return s.c.Close()
}

type ftpSession struct {
	c net.Conn
	r *bufio.Reader
}

func (s *ftpSession) Close() error {
	_ = s.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(s.c, "QUIT\r\n"); err == nil {
		_, _ = readReply(s.r)
	}
	return s.c.Close()
}

// login opens one authenticated session: for SFTP the SSH connection with public-key auth
// and a started sftp subsystem (the INIT/VERSION exchange done); for FTP USER/PASS up to 230.
func (t *target) login() (session, error) {
	switch t.proto {
	case "sftp":
		cfg := &ssh.ClientConfig{
			User:              t.user,
			Auth:              []ssh.AuthMethod{ssh.PublicKeys(t.signer)},
			HostKeyCallback:   ssh.InsecureIgnoreHostKey(), // loopback benchmark against our own servers
			HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
			Timeout:           t.timeout,
			Config: ssh.Config{
				KeyExchanges: []string{ssh.KeyExchangeCurve25519},
				Ciphers:      []string{t.cipher},
			},
		}
		c, err := ssh.Dial("tcp", t.addr, cfg)
		if err != nil {
			return nil, err
		}
		sc, err := sftp.NewClient(c)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		return &sftpSession{c: c, sc: sc}, nil
	default:
		c, err := net.DialTimeout("tcp", t.addr, t.timeout)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(t.timeout))
		r := bufio.NewReader(c)
		fail := func(err error) (session, error) {
			_ = c.Close()
			return nil, err
		}
		if code, err := readReply(r); err != nil || code != 220 {
			return fail(fmt.Errorf("greeting: %d %v", code, err))
		}
		if _, err := fmt.Fprintf(c, "USER %s\r\n", t.user); err != nil {
			return fail(err)
		}
		if code, err := readReply(r); err != nil || code != 331 {
			return fail(fmt.Errorf("USER: %d %v", code, err))
		}
		if _, err := fmt.Fprintf(c, "PASS %s\r\n", t.password); err != nil {
			return fail(err)
		}
		if code, err := readReply(r); err != nil || code != 230 {
			return fail(fmt.Errorf("PASS: %d %v", code, err))
		}
		_ = c.SetDeadline(time.Time{})
		return &ftpSession{c: c, r: r}, nil
	}
}

// readReply reads one (possibly multi-line) FTP reply and returns its code.
func readReply(r *bufio.Reader) (int, error) {
	for range 100 {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 4 {
			continue
		}
		code, err := strconv.Atoi(line[:3])
		if err == nil && line[3] == ' ' {
			return code, nil
		}
	}
	return 0, errors.New("reply too long")
}

// cmdIdle opens n sessions (parallel at a time), prints "ready n", and holds them until a
// signal or until -hold passes.
func cmdIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	get := targetFlags(fs)
	n := fs.Int("n", 500, "sessions")
	parallel := fs.Int("parallel", 4, "logins in flight")
	hold := fs.Duration("hold", 10*time.Minute, "give up holding after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := get()
	if err != nil {
		return err
	}
	if *n < 1 || *n > 5000 || *parallel < 1 {
		return errors.New("-n must be 1..5000, -parallel >= 1")
	}
	sessions := make([]session, *n)
	errs := make([]error, *n)
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A server may drop a login under load (sshd's MaxStartups): retry a few times.
			for attempt := range 5 {
				sessions[i], errs[i] = t.login()
				if errs[i] == nil {
					return
				}
				time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range sessions {
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	fmt.Printf("ready %d\n", *n)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	return nil
}

// cmdLogins runs n logins (each: connect, authenticate, start the subsystem, disconnect),
// -parallel at a time (default 1: one after the other), and prints the rate.
func cmdLogins(args []string) error {
	fs := flag.NewFlagSet("logins", flag.ContinueOnError)
	get := targetFlags(fs)
	n := fs.Int("n", 200, "logins")
	parallel := fs.Int("parallel", 1, "logins in flight")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := get()
	if err != nil {
		return err
	}
	if *n < 1 || *n > 100000 || *parallel < 1 || *parallel > 256 {
		return errors.New("-n must be 1..100000, -parallel 1..256")
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	start := time.Now()
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				s, err := t.login()
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = fmt.Errorf("login %d: %w", i, err)
					}
					errMu.Unlock()
					next.Store(int64(*n)) // stop the others
					return
				}
				_ = s.Close()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	el := time.Since(start)
	fmt.Printf("%.2f\n", float64(*n)/el.Seconds())
	fmt.Fprintf(os.Stderr, "%d logins (%d in parallel) in %s\n", *n, *parallel, strings.TrimSpace(el.Round(time.Millisecond).String()))
	return nil
}
