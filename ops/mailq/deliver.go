package mailq

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/wharf-project/wharf/core/config"
)

// idleConn is how long a worker keeps an SMTP connection open without mail to send.
const idleConn = 3 * time.Second

// relayConn is a worker's open SMTP connection.
type relayConn struct {
	relay  *config.SMTP // the relay config it was opened with: a reload's new one reconnects
	client *gomail.Client
	sc     *smtp.Client
}

// pipelining reports whether the relay takes a batch of messages in one exchange: it
// offers PIPELINING (RFC 2920) and CHUNKING (RFC 3030), as Postfix, Exim and Exchange do.
func (c *relayConn) pipelining() bool {
	p, _ := c.sc.Extension("PIPELINING")
	ch, _ := c.sc.Extension("CHUNKING")
	return p && ch
}

func (c *relayConn) close() {
	if c != nil {
		_ = c.client.CloseWithSMTPClient(c.sc) // QUIT
	}
}

// work delivers the batches dispatch hands it, keeping its connection open between them
// for idleConn.
func (q *Queue) work() {
	defer q.wg.Done()
	var conn *relayConn
	buf := make([]byte, 32<<10) // reused for every message this worker sends
	idle := time.NewTimer(idleConn)
	idle.Stop()
	defer func() { conn.close() }()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-idle.C:
			conn.close()
			conn = nil
		case batch := <-q.jobs:
			idle.Stop()
			conn = q.deliverBatch(conn, batch, buf)
			if conn != nil {
				idle.Reset(idleConn)
			}
			q.poke()
		}
	}
}

// deliverBatch delivers a batch of one site's messages over conn (or a new connection) and
// returns the connection to keep, if any.
func (q *Queue) deliverBatch(conn *relayConn, batch []*envelope, buf []byte) *relayConn {
	relay := q.opts.Relay(batch[0].Site)
	if conn != nil && conn.relay != relay {
		conn.close()
		conn = nil
	}
	if relay != nil && !q.opts.noPipelining {
		if conn == nil {
			c, err := dial(q.ctx, relay)
			if err != nil {
				// The relay is unreachable: the whole batch fails the same way.
				for _, e := range batch {
					q.finish(e, relay, nil, nil, err)
				}
				return nil
			}
			conn = c
		}
		if conn.pipelining() {
			return q.deliverPipelined(conn, relay, batch, buf)
		}
	}
	for i, env := range batch {
		if relay == nil {
			q.finish(env, nil, nil, nil, ErrNoRelay)
			continue
		}
		reused := conn != nil
		if conn == nil {
			c, err := dial(q.ctx, relay)
			if err != nil {
				// The relay is unreachable: the rest of the batch would fail the same way.
				for _, e := range batch[i:] {
					q.finish(e, relay, nil, nil, err)
				}
				return nil
			}
			conn = c
		}
		sent, refused, err, broken := q.transact(conn.sc, relay, env, buf)
		if broken {
			conn.close()
			conn = nil
			if reused && len(sent) == 0 && len(refused) == 0 {
				// The relay closed the idle connection: not this message's fault.
				if c, derr := dial(q.ctx, relay); derr == nil {
					conn = c
					sent, refused, err, broken = q.transact(conn.sc, relay, env, buf)
					if broken {
						conn.close()
						conn = nil
					}
				}
			}
		}
		q.finish(env, relay, sent, refused, err)
	}
	return conn
}

// dial connects to the relay: TLS as configured, verified against the system's roots or
// ca_file, then AUTH when a username is set.
func dial(ctx context.Context, relay *config.SMTP) (*relayConn, error) {
	tlsConf := &tls.Config{ServerName: relay.Host, MinVersion: tls.VersionTLS12}
	if relay.CAFile != "" {
		pem, err := os.ReadFile(relay.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp.ca_file: %w", err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp.ca_file %s: no PEM certificate", relay.CAFile)
		}
	}
	opts := []gomail.Option{gomail.WithPort(relay.Port), gomail.WithTimeout(timeoutOf(relay)), gomail.WithTLSConfig(tlsConf)}
	switch relay.TLS {
	case "implicit":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if relay.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(relay.Username),
			gomail.WithPassword(relay.Password.Value()))
	}
	c, err := gomail.NewClient(relay.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d: %w", relay.Host, relay.Port, err)
	}
	return &relayConn{relay: relay, client: c, sc: sc}, nil
}

func timeoutOf(relay *config.SMTP) time.Duration {
	if relay.Timeout.Duration > 0 {
		return relay.Timeout.Duration
	}
	return time.Minute
}

// transact sends the message of env to its recipients over sc. It returns the
// recipients the relay accepted it for, those it refused for good (a 5xx reply), an error
// when the others must be tried again (or, with none left, why it failed), and whether the
// connection is unusable (anything but an SMTP reply went wrong).
func (q *Queue) transact(sc *smtp.Client, relay *config.SMTP, env *envelope, buf []byte) (sent, refused []string, err error, broken bool) {
	msg, closer, err := q.message(env, buf)
	if err != nil {
		return nil, nil, err, false
	}
	defer closer.Close()
	// One attempt is bounded by the relay's timeout, whatever the connection did before.
	if err := sc.UpdateDeadline(timeoutOf(relay)); err != nil {
		return nil, nil, err, true
	}
	fail := func(stage string, err error, all []string) ([]string, []string, error, bool) {
		err = fmt.Errorf("%s: %w", stage, err)
		if !isReply(err) {
			return nil, refused, err, true
		}
		if permanent(err) {
			refused = append(refused, all...)
		}
		_ = sc.Reset()
		return nil, refused, err, false
	}
	if err := sc.Mail(angle(env.From)); err != nil {
		return fail("MAIL FROM", err, env.To)
	}
	var accepted []string
	var rcptErr error
	for _, to := range env.To {
		if err := sc.Rcpt(angle(to)); err != nil {
			rcptErr = fmt.Errorf("RCPT TO %s: %w", to, err)
			if !isReply(err) {
				return nil, nil, rcptErr, true
			}
			if permanent(err) {
				refused = append(refused, to)
			}
			continue
		}
		accepted = append(accepted, to)
	}
	if len(accepted) == 0 {
		_ = sc.Reset()
		return nil, refused, rcptErr, false
	}
	w, err := sc.Data()
	if err != nil {
		return fail("DATA", err, accepted)
	}
	if _, err := io.CopyBuffer(w, msg, buf); err != nil {
		_ = w.Close()
		return nil, refused, fmt.Errorf("sending the message: %w", err), true
	}
	if err := w.Close(); err != nil {
		return fail("end of DATA", err, accepted)
	}
	// The transaction ended with the reply to DATA: the next MAIL needs no RSET (RFC 5321
	// 4.1.4), one round trip less per message.
	return accepted, refused, rcptErr, false
}

// isReply reports whether err is an SMTP reply (the connection is fine).
func isReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// permanent reports whether the relay refused for good (a 5xx reply): retrying will not
// help. Anything else (4xx, a network or TLS failure) is worth another attempt.
func permanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}
