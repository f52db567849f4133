package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"

	pkgsftp "github.com/pkg/sftp"
	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
)

// Exit statuses sent with "exit-status".
const (
	exitOK      = 0
	exitFailure = 1
)

// Messages for requests the gateway does not serve. They name no host detail.
const (
	msgNoShell   = "This service allows SFTP and SCP only; shell access is not available.\n"
	msgNoCommand = "This service allows SFTP and SCP only; commands are not available (except md5sum, sha1sum, sha256sum and sha512sum).\n"
	msgNoSCP     = "SCP is disabled on this server; use SFTP.\n"
)

// channelStartWindow is the data a client may send on a session channel before it asks
// for a subsystem or a command: a channel that never asks must not make the server buffer
// the default window (2 MiB) of unread data. Once SFTP or SCP starts, the window grows to the
// default (RFC 4254 5.2 lets a server adjust the window at any time).
const channelStartWindow = 4 << 10

// channel is one accepted "session" channel: at most one subsystem or command runs on it.
// Its requests keep being answered while that runs (clients send e.g. keepalives on the
// channel).
type channel struct {
	ch      ssh.Channel
	reqs    <-chan *ssh.Request
	started bool
	done    atomic.Bool // its requests ended: the channel is closed
}

// closed reports whether the channel is closed. third_party/ssh says so as soon as the
// client's close has arrived, before any later channel open, so a client that closes a
// session and opens another at the limit is not refused.
func (sc *channel) closed() bool {
	if c, ok := sc.ch.(interface{ Closed() bool }); ok && c.Closed() {
		return true
	}
	return sc.done.Load()
}

// acceptWithWindow accepts a channel granting the client an initial window of window bytes
// (third_party/ssh's AcceptWindow; the default window where it is missing).
func acceptWithWindow(nch ssh.NewChannel, window uint32) (ssh.Channel, <-chan *ssh.Request, error) {
	if a, ok := nch.(interface {
		AcceptWindow(uint32) (ssh.Channel, <-chan *ssh.Request, error)
	}); ok {
		return a.AcceptWindow(window)
	}
	return nch.Accept()
}

// growWindow grants the client the default window, now that a subsystem or command will
// read what it sends.
func (c *conn) growWindow(ch ssh.Channel) {
	if g, ok := ch.(interface{ GrowWindow() error }); ok {
		if err := g.GrowWindow(); err != nil {
			c.log.Debug("grow channel window", "err", err)
		}
	}
}

// channelRequest answers one request on a session channel. A subsystem or command it
// starts runs on a goroutine counted in wg. A panic closes the channel, not the connection.
func (c *conn) channelRequest(ctx context.Context, sc *channel, req *ssh.Request, wg *sync.WaitGroup) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in ssh channel", "panic", r, "stack", string(debug.Stack()))
			_ = sc.ch.Close()
		}
	}()
	ch := sc.ch
	start := func(run func() uint32) {
		sc.started = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := uint32(exitFailure)
			defer func() {
				if r := recover(); r != nil {
					c.log.Error("panic in ssh subsystem", "panic", r, "stack", string(debug.Stack()))
				}
				c.finish(ch, code)
			}()
			code = run()
		}()
	}
	switch req.Type {
	case "subsystem":
		var p struct{ Name string }
		if sc.started || ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
			_ = req.Reply(false, nil)
			return
		}
		if err := c.sess.OpenSubsystem(ctx, core.ProtoSFTP, "subsystem sftp"); err != nil {
			c.log.Info("sftp subsystem refused", "err", err)
			_ = req.Reply(false, nil)
			_ = ch.Close()
			return
		}
		_ = req.Reply(true, nil)
		start(func() uint32 { return c.serveSFTP(ctx, ch) })
	case "exec":
		var p struct{ Command string }
		if sc.started || ssh.Unmarshal(req.Payload, &p) != nil {
			_ = req.Reply(false, nil)
			return
		}
		// The request is accepted in every case so the client shows our message
		// (stderr or an SCP error line) instead of a bare "exec request failed".
		_ = req.Reply(true, nil)
		start(func() uint32 { return c.exec(ctx, ch, p.Command) })
	case "shell":
		if sc.started {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		start(func() uint32 {
			_, _ = io.WriteString(ch.Stderr(), msgNoShell)
			return exitFailure
		})
	default:
		// pty-req, env, x11-req, auth-agent-req@openssh.com, signal, window-change, ...
		_ = req.Reply(false, nil)
	}
}

// finish ends a channel the way sshd does: exit-status, EOF, close. The status goes first: a
// client that has sent its own EOF may close the channel as soon as ours arrives, and an
// OpenSSH multiplexing master then reports the session as failed (exit 255) for want of a
// status; scp in SFTP mode over such a master exited 1 after a good copy.
func (c *conn) finish(ch ssh.Channel, code uint32) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(&struct{ Status uint32 }{code}))
	_ = ch.CloseWrite()
	_ = ch.Close()
}

// sshPages lends pkg/sftp its pages from the pools the SSH connections read channel data
// into: the data a pipelined transfer has in flight is then held in one set of buffers,
// where the channel's packets and the SFTP server's pages were two, each pool keeping the
// most it ever held (2 MiB each for OpenSSH's 64 writes of 32 KiB), with the garbage
// collector's slack on top.
type sshPages struct{}

func (sshPages) Get(n int) []byte { return ssh.GetBuffer(n) }
func (sshPages) Put(b []byte)     { ssh.PutBuffer(b) }

func (c *conn) serveSFTP(ctx context.Context, ch ssh.Channel) uint32 {
	c.growWindow(ch)
	rs := pkgsftp.NewRequestServer(ch, newHandlers(ctx, c.sess),
		pkgsftp.WithStartDirectory("/"),
		// Reads requests into pages lent by the SSH layer's packet pools, and gives them
		// back once answered (third_party/sftp and third_party/ssh WHARF.md). Safe because
		// no handler keeps the []byte given to WriteAt, or filled by ReadAt, after
		// returning: the page goes to any session's channel data next.
		pkgsftp.WithRSPageSource(sshPages{}),
		// Each open handle can hold a host file descriptor: without a cap one session
		// could take all of the process's. 0 = unlimited.
		pkgsftp.WithMaxOpenHandles(c.srv.site.Config().Limits.MaxHandlesPerSession),
	)
	err := rs.Serve()
	if err == nil || errors.Is(err, io.EOF) { // io.EOF: the client closed the session
		return exitOK
	}
	c.log.Debug("sftp session ended", "err", err)
	return exitFailure
}

// exec runs a command request: scp and the checksum commands are served, never a shell.
func (c *conn) exec(ctx context.Context, ch ssh.Channel, command string) uint32 {
	if words, ok, err := checksumWords(command); ok {
		return c.checksum(ctx, ch, command, words, err)
	}
	opts, err := parseSCPCommand(command)
	if err != nil {
		c.sess.RecordCommand("exec " + command)
		c.log.Info("exec refused", "command", command, "err", err)
		msg := msgNoCommand
		if errors.Is(err, errBadSCPArgs) {
			msg = fmt.Sprintf("scp: %v\n", err)
		}
		_, _ = io.WriteString(ch.Stderr(), msg)
		return exitFailure
	}
	if !c.srv.site.Config().SSH.SCPEnabled() {
		c.sess.RecordCommand(command)
		c.log.Info("scp refused: disabled in the site's ssh config")
		_, _ = io.WriteString(ch.Stderr(), msgNoSCP)
		return exitFailure
	}
	if err := c.sess.OpenSubsystem(ctx, core.ProtoSCP, command); err != nil {
		c.log.Info("scp refused", "err", err)
		// An SCP error line: both scp directions print it and stop.
		_, _ = fmt.Fprintf(ch, "\x01scp: %v\n", err)
		return exitFailure
	}
	c.sess.SetProtocol(core.ProtoSCP)
	c.growWindow(ch)
	log := c.sess.Logger()
	s := newSCP(ctx, c.sess, opts, ch, log)
	if err := s.run(); err != nil {
		log.Info("scp failed", "err", err)
		return exitFailure
	}
	if s.errs > 0 {
		return exitFailure
	}
	return exitOK
}
