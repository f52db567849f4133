package mailq

import (
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"

	"github.com/wneessen/go-mail/smtp"

	"github.com/wharf-project/wharf/core/config"
)

// maxGroupBytes bounds the message bytes of one pipelined exchange (one message at least),
// so that an exchange is bounded by the relay's timeout like a single message.
const maxGroupBytes = 4 << 20

// deliverPipelined delivers a batch over conn, a relay that offers PIPELINING and CHUNKING,
// in groups: each group is written in one go (for each message MAIL FROM, its RCPT TOs and
// BDAT <size> LAST with the message) while the replies are read, so that a group costs one
// round trip instead of four per message. It returns the connection to keep, if any.
func (q *Queue) deliverPipelined(conn *relayConn, relay *config.SMTP, batch []*envelope, buf []byte) *relayConn {
	reused := true // a connection a worker kept, or dialled for this batch: either may be dead when used after a pause
	for len(batch) > 0 {
		n, size := 1, batch[0].Size
		for n < len(batch) && n < maxBatch && size+batch[n].Size <= maxGroupBytes {
			size += batch[n].Size
			n++
		}
		group := batch[:n]
		batch = batch[n:]
		res, err := q.pipeline(conn.sc, relay, group, buf)
		if err != nil { // the connection broke
			conn.close()
			conn = nil
			if reused && res.replies == 0 {
				// The relay closed the idle connection before it read anything: not these
				// messages' fault; once more on a new connection.
				if c, derr := dial(q.ctx, relay); derr == nil {
					conn = c
					res, err = q.pipeline(conn.sc, relay, group, buf)
					if err != nil {
						conn.close()
						conn = nil
					}
				} else {
					err = derr
				}
			}
		}
		reused = false
		for i, env := range group {
			o := res.outcomes[i]
			switch {
			case o.done:
				q.finish(env, relay, o.sent, o.refused, o.err)
			case err != nil:
				q.finish(env, relay, nil, nil, err)
			default: // after another message's failure in the group: sent again, not counted as an attempt
				q.release(env)
			}
		}
		if conn != nil && res.dirty {
			// A transaction that did not end with a delivered message may still be open at
			// the relay: reset it before the next.
			if rerr := conn.sc.Reset(); rerr != nil {
				conn.close()
				conn = nil
			}
		}
		if conn == nil {
			// No connection for the rest of the batch, which was not attempted: dispatch hands
			// it out again (a relay still unreachable then counts an attempt for each).
			for _, env := range batch {
				q.release(env)
			}
			return nil
		}
	}
	return conn
}

// outcome is what became of one message of a pipelined group.
type outcome struct {
	done          bool // the outcome is this message's own (false: unknown, or muddled by an earlier failure)
	sent, refused []string
	err           error
}

type groupResult struct {
	outcomes []outcome
	replies  int  // replies read
	dirty    bool // a message was not delivered: the relay may hold a transaction open
}

// pipeline sends a group of messages over sc in one exchange and reads the replies. The
// error is a broken connection (not an SMTP reply); outcomes read before it hold.
//
// Once a message fails (a refused sender, no recipient accepted, a refused BDAT), the
// replies of the messages after it in the group may be that failure's consequence (a relay
// that keeps the failed transaction open refuses the next MAIL FROM): they count only
// when they delivered, and the others are sent again in the next group, after a RSET,
// without counting an attempt.
func (q *Queue) pipeline(sc *smtp.Client, relay *config.SMTP, group []*envelope, buf []byte) (groupResult, error) {
	res := groupResult{outcomes: make([]outcome, len(group))}
	msgs := make([]io.Reader, len(group))
	defer func() {
		for _, m := range msgs {
			if c, ok := m.(io.Closer); ok {
				_ = c.Close()
			}
		}
	}()
	for i, env := range group {
		// The addresses were parsed when the message was queued; a spool file changed since
		// must not smuggle a command into the stream.
		if bad := slices.IndexFunc(append([]string{env.From}, env.To...), func(a string) bool { return strings.ContainsAny(a, "\r\n") }); bad >= 0 {
			res.outcomes[i] = outcome{done: true, refused: env.To, err: errors.New("a line break in an address of the envelope")}
			continue
		}
		m, closer, err := q.message(env, buf)
		if err != nil {
			res.outcomes[i] = outcome{done: true, err: err}
			continue
		}
		msgs[i] = readCloser{m, closer}
	}
	if err := sc.UpdateDeadline(timeoutOf(relay)); err != nil {
		return res, err
	}
	var params string
	if ok, _ := sc.Extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	if ok, _ := sc.Extension("SMTPUTF8"); ok {
		params += " SMTPUTF8"
	}

	// The writer runs beside the reader: a group's replies never wait for its last byte
	// to be written, so neither side can fill the other's buffers and stall.
	written := make(chan error, 1)
	go func() {
		w := sc.Text.W
		for i, env := range group {
			if msgs[i] == nil {
				continue
			}
			fmt.Fprintf(w, "MAIL FROM:%s%s\r\n", angle(env.From), params)
			for _, to := range env.To {
				fmt.Fprintf(w, "RCPT TO:%s\r\n", angle(to))
			}
			fmt.Fprintf(w, "BDAT %d LAST\r\n", env.Size)
			// Exactly env.Size bytes, or the relay would read what follows as data.
			if n, err := io.CopyN(w, msgs[i], env.Size); err != nil {
				_ = sc.Close() // the reader would wait for replies to a message never sent
				written <- fmt.Errorf("sending message %s (%d of %d bytes): %w", env.ID, n, env.Size, err)
				return
			}
		}
		written <- w.Flush()
	}()
	broken := func(err error) (groupResult, error) {
		_ = sc.Close() // stops the writer, if it still writes
		<-written
		return res, err
	}
	read := func(code int) error {
		_, _, err := sc.Text.ReadResponse(code)
		if err == nil || isReply(err) {
			res.replies++
		}
		return err
	}
	failed := false
	for i, env := range group {
		if msgs[i] == nil {
			continue
		}
		o := &res.outcomes[i]
		var mailErr, rcptErr, dataErr error
		if err := read(250); err != nil {
			if !isReply(err) {
				return broken(fmt.Errorf("MAIL FROM: %w", err))
			}
			mailErr = fmt.Errorf("MAIL FROM: %w", err)
		}
		var accepted []string
		for _, to := range env.To {
			if err := read(25); err != nil {
				if !isReply(err) {
					return broken(fmt.Errorf("RCPT TO %s: %w", to, err))
				}
				rcptErr = fmt.Errorf("RCPT TO %s: %w", to, err)
				if mailErr == nil && permanent(err) {
					o.refused = append(o.refused, to)
				}
				continue
			}
			accepted = append(accepted, to)
		}
		if err := read(250); err != nil {
			if !isReply(err) {
				return broken(fmt.Errorf("BDAT: %w", err))
			}
			dataErr = fmt.Errorf("end of data: %w", err)
		}
		switch {
		case mailErr == nil && len(accepted) > 0 && dataErr == nil:
			o.done, o.sent, o.err = true, accepted, rcptErr
			continue
		case failed: // perhaps the earlier failure's doing: sent again
			o.refused = nil
			continue
		case mailErr != nil:
			o.refused = nil
			if permanent(mailErr) {
				o.refused = env.To
			}
			o.err = mailErr
		case len(accepted) == 0:
			o.err = rcptErr
		default:
			if permanent(dataErr) {
				o.refused = append(o.refused, accepted...)
			}
			o.err = dataErr
		}
		o.done = true
		failed, res.dirty = true, true
	}
	if err := <-written; err != nil {
		_ = sc.Close()
		return res, err
	}
	return res, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// angle is an address as a path of MAIL FROM or RCPT TO: <local@domain>.
func angle(addr string) string {
	return (&mail.Address{Address: addr}).String()
}
