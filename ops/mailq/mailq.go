// Package mailq is the mail spool of scripts' SendMail: messages are rendered and written to a
// folder under state_dir when a script sends them, and delivered from there through the site's
// SMTP relay by background workers, retried with backoff, so that a script never waits for a
// relay and no message is lost by a restart.
//
// A message is two files in the spool: <id>.eml, the message as it will be sent (headers,
// body and attachment, rendered once by github.com/wneessen/go-mail), and <id>.json, its
// envelope (site, sender, the recipients still to deliver to, attempts, next attempt). Both
// are written to a temporary name, synced and renamed, the message first: an envelope always
// has its message, and a message without an envelope (a crash between the two renames) is
// removed at start. Delivery is at least once: a crash after the relay accepted a message
// and before its files were removed sends it again.
package mailq

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	gomail "github.com/wneessen/go-mail"

	"github.com/wharf-project/wharf/core/config"
)

// Errors of Enqueue, for callers that tell them apart.
var (
	ErrNoRelay  = errors.New("no SMTP relay is configured (smtp: at the top level or on the site)")
	ErrTooLarge = errors.New("message too large")
	ErrFull     = errors.New("mail spool full")
	ErrClosed   = errors.New("mail queue is closed")
)

// Message is a mail to queue.
type Message struct {
	From    string   // "" = the relay's from
	To      []string // at least one address (each "a@b" or "Name <a@b>")
	Subject string
	Body    string // text/plain, UTF-8
	// Attachment, when set, is read when the message is queued; AttachmentName is its file
	// name in the message.
	Attachment     io.ReadSeeker
	AttachmentName string
}

// Observer learns what happens to messages (ops/metrics implements it).
type Observer interface {
	MailQueued(site string)
	// MailAttempt reports a delivery attempt: "sent", "deferred" (it will be retried) or
	// "failed" (given up: a permanent refusal or too old).
	MailAttempt(site, result string)
}

// Options configure a Queue.
type Options struct {
	Dir string // the spool folder, created (0700) if missing
	// Relay returns the SMTP relay of a site as configured now (nil: none). It is asked when
	// a message is queued and again at each attempt, so that a reload's relay applies to
	// the mail already waiting.
	Relay  func(site string) *config.SMTP
	Logger *slog.Logger
	// MaxSpool bounds the bytes of the messages in the spool (scripting.mail_spool);
	// default 256 MiB.
	MaxSpool int64
	// RetryMin and RetryMax bound the delay between attempts, which doubles from RetryMin;
	// defaults 30s and 30m.
	RetryMin, RetryMax time.Duration
	// Workers is how many deliveries run at once; default 2.
	Workers  int
	Observer Observer
}

// envelope is a message's <id>.json.
type envelope struct {
	ID        string    `json:"id"`
	Site      string    `json:"site"`
	From      string    `json:"from"`
	To        []string  `json:"to"` // the recipients not delivered to yet
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`

	busy bool // a worker is delivering it
}

// Queue is the spool and its delivery workers.
type Queue struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	msgs   map[string]*envelope
	bytes  int64
	closed bool
	wake   chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens (or creates) the spool and loads the messages waiting in it. Start begins
// delivering them.
func Open(opts Options) (*Queue, error) {
	if opts.Dir == "" {
		return nil, errors.New("mailq: no spool folder")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxSpool <= 0 {
		opts.MaxSpool = 256 << 20
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 30 * time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Minute, opts.RetryMin)
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Relay == nil {
		opts.Relay = func(string) *config.SMTP { return nil }
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail spool: %w", err)
	}
	q := &Queue{opts: opts, log: opts.Logger.With("component", "mail"), msgs: map[string]*envelope{},
		wake: make(chan struct{}, 1)}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	if err := q.load(); err != nil {
		return nil, err
	}
	return q, nil
}

// load reads the spool: envelopes with their messages; leftovers of an interrupted write
// are removed.
func (q *Queue) load() error {
	entries, err := os.ReadDir(q.opts.Dir)
	if err != nil {
		return fmt.Errorf("mail spool: %w", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(q.opts.Dir, name)
		switch {
		case strings.HasPrefix(name, "."): // a temporary file of an interrupted write
			_ = os.Remove(path)
		case strings.HasSuffix(name, ".json"):
			id := strings.TrimSuffix(name, ".json")
			env, err := readEnvelope(path)
			if err != nil || env.ID != id || !have[id+".eml"] || len(env.To) == 0 {
				q.log.Error("mail spool: dropping a damaged message", "id", id, "err", errText(err))
				q.remove(id)
				continue
			}
			// Tried again at once: a restart is often what fixed the relay's settings.
			env.Next = time.Now()
			q.msgs[id] = env
			q.bytes += env.Size
		case strings.HasSuffix(name, ".eml"):
			if id := strings.TrimSuffix(name, ".eml"); !have[id+".json"] {
				_ = os.Remove(path) // queued without its envelope: the script was told it failed
			}
		}
	}
	if n := len(q.msgs); n > 0 {
		q.log.Info("mail spool: messages waiting from before", "messages", n, "bytes", q.bytes)
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "incomplete"
	}
	return err.Error()
}

func readEnvelope(path string) (*envelope, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// Len returns the number of messages in the spool.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Start starts the delivery workers.
func (q *Queue) Start() {
	q.wg.Add(1)
	go q.dispatch()
}

// Close stops delivering. Deliveries in progress are given until ctx is done to finish;
// messages not delivered stay in the spool for the next start.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mail queue: deliveries still running: %w", ctx.Err())
	}
}

// Enqueue renders m, writes it to the spool and returns its id. The site names the relay.
func (q *Queue) Enqueue(site string, m *Message) (string, error) {
	relay := q.opts.Relay(site)
	if relay == nil {
		return "", ErrNoRelay
	}
	from := cmp.Or(strings.TrimSpace(m.From), relay.From)
	if from == "" {
		return "", errors.New("no sender: pass one or set smtp.from")
	}
	sender, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("invalid sender %q: %w", from, err)
	}
	if len(m.To) == 0 {
		return "", errors.New("no recipient")
	}
	var rcpts []string
	for _, to := range m.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return "", fmt.Errorf("invalid recipient %q: %w", to, err)
		}
		rcpts = append(rcpts, a.Address)
	}

	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(sender)
	if err := msg.To(m.To...); err != nil {
		return "", fmt.Errorf("recipients: %w", err)
	}
	// A line break in the subject would end the header; a subject is one line.
	msg.Subject(strings.Join(strings.Fields(m.Subject), " "))
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	msg.SetMessageID()
	msg.SetDate()
	if m.Attachment != nil {
		msg.AttachReadSeeker(cmp.Or(m.AttachmentName, "attachment"), m.Attachment)
	}

	id := ulid.Make().String()
	limit := int64(relay.MaxMessageSize)
	if limit <= 0 {
		limit = 10 << 20
	}
	q.mu.Lock()
	closed, used := q.closed, q.bytes
	q.mu.Unlock()
	if closed {
		return "", ErrClosed
	}
	room := min(limit, q.opts.MaxSpool-used)
	if room <= 0 {
		return "", ErrFull
	}
	emlPath := filepath.Join(q.opts.Dir, id+".eml")
	size, err := writeAtomic(emlPath, func(w io.Writer) error {
		lw := &limitWriter{w: w, left: room}
		if _, err := msg.WriteTo(lw); err != nil {
			if lw.over {
				if room < limit {
					return ErrFull
				}
				return fmt.Errorf("%w: more than %s (smtp.max_message_size)", ErrTooLarge, config.ByteSize(limit))
			}
			return err
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	env := &envelope{ID: id, Site: site, From: sender.Address, To: rcpts, Size: size, Created: time.Now().UTC()}
	env.Next = env.Created
	q.mu.Lock()
	if q.closed || q.bytes+size > q.opts.MaxSpool {
		full := !q.closed
		q.mu.Unlock()
		_ = os.Remove(emlPath)
		if full {
			return "", ErrFull
		}
		return "", ErrClosed
	}
	q.bytes += size // reserved before the envelope is written, so that two writers cannot both fit
	q.mu.Unlock()
	if err := q.saveEnvelope(env); err != nil {
		q.mu.Lock()
		q.bytes -= size
		q.mu.Unlock()
		_ = os.Remove(emlPath)
		return "", err
	}
	q.mu.Lock()
	q.msgs[id] = env
	q.mu.Unlock()
	q.poke()
	q.log.Info("mail queued", "id", id, "site", site, "from", env.From, "to", strings.Join(rcpts, ","), "bytes", size)
	if q.opts.Observer != nil {
		q.opts.Observer.MailQueued(site)
	}
	return id, nil
}

// limitWriter fails a write that would pass left bytes.
type limitWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, ErrTooLarge
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// writeAtomic writes a file through a synced temporary file and a rename, and returns its
// size.
func writeAtomic(path string, write func(io.Writer) error) (int64, error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("mail spool: %w", err)
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if fi, serr := f.Stat(); serr == nil {
		size = fi.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	return size, nil
}

func (q *Queue) saveEnvelope(env *envelope) error {
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	_, err = writeAtomic(filepath.Join(q.opts.Dir, env.ID+".json"), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	return err
}

// remove deletes a message's files, the envelope first (a message without its envelope is
// cleaned up at the next start).
func (q *Queue) remove(id string) {
	_ = os.Remove(filepath.Join(q.opts.Dir, id+".json"))
	_ = os.Remove(filepath.Join(q.opts.Dir, id+".eml"))
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dispatch starts a delivery for every message that is due, up to Workers at once, and
// sleeps until the next is due or a message is queued.
func (q *Queue) dispatch() {
	defer q.wg.Done()
	slots := make(chan struct{}, q.opts.Workers)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		var due []*envelope
		next := now.Add(time.Hour)
		q.mu.Lock()
		for _, env := range q.msgs {
			switch {
			case env.busy:
			case !env.Next.After(now):
				due = append(due, env)
			case env.Next.Before(next):
				next = env.Next
			}
		}
		q.mu.Unlock()
		slices.SortFunc(due, func(a, b *envelope) int { return a.Next.Compare(b.Next) })
		for _, env := range due {
			select {
			case slots <- struct{}{}:
			case <-q.ctx.Done():
				return
			}
			q.mu.Lock()
			env.busy = true
			q.mu.Unlock()
			q.wg.Add(1)
			go func() {
				defer q.wg.Done()
				q.attempt(env)
				<-slots
				q.poke()
			}()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-q.ctx.Done():
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// attempt delivers one message and records the outcome.
func (q *Queue) attempt(env *envelope) {
	lg := q.log.With("id", env.ID, "site", env.Site)
	relay := q.opts.Relay(env.Site)
	var sent, refused []string
	var err error
	if relay == nil {
		err = ErrNoRelay
	} else {
		sent, refused, err = deliver(q.ctx, relay, env, filepath.Join(q.opts.Dir, env.ID+".eml"))
	}
	if q.ctx.Err() != nil && err != nil {
		// Stopped by Close: not an attempt; the message stays as it was.
		q.mu.Lock()
		env.busy = false
		q.mu.Unlock()
		return
	}
	observe := func(result string) {
		if q.opts.Observer != nil {
			q.opts.Observer.MailAttempt(env.Site, result)
		}
	}
	if len(refused) > 0 {
		lg.Error("mail refused by the relay for some recipients; they will not get it", "to", strings.Join(refused, ","),
			"err", errText(err))
	}
	pending := slices.DeleteFunc(slices.Clone(env.To), func(a string) bool {
		return slices.Contains(sent, a) || slices.Contains(refused, a)
	})
	env.Attempts++
	switch {
	case len(pending) == 0 && len(sent) > 0:
		lg.Info("mail sent", "to", strings.Join(sent, ","), "attempts", env.Attempts)
		q.drop(env)
		observe("sent")
		return
	case len(pending) == 0:
		lg.Error("mail undeliverable: the relay refused it", "from", env.From, "err", errText(err), "attempts", env.Attempts)
		q.drop(env)
		observe("failed")
		return
	}
	if len(sent) > 0 {
		lg.Info("mail sent to some recipients", "to", strings.Join(sent, ","))
	}
	giveUp := 24 * time.Hour
	if relay != nil && relay.GiveUpAfter.Duration > 0 {
		giveUp = relay.GiveUpAfter.Duration
	}
	if time.Since(env.Created) >= giveUp {
		lg.Error("mail undeliverable: giving up", "to", strings.Join(pending, ","), "err", errText(err),
			"attempts", env.Attempts, "queued", env.Created.Format(time.RFC3339))
		q.drop(env)
		observe("failed")
		return
	}
	delay := q.backoff(env.Attempts)
	lg.Warn("mail delivery failed; will retry", "err", errText(err), "attempts", env.Attempts, "retry_in", delay.Round(time.Second).String())
	observe("deferred")
	q.mu.Lock() // dispatch reads Next
	env.To, env.LastError, env.Next = pending, errText(err), time.Now().Add(delay)
	saved := *env
	q.mu.Unlock()
	if serr := q.saveEnvelope(&saved); serr != nil {
		lg.Error("mail spool: cannot record the attempt", "err", serr.Error())
	}
	q.mu.Lock()
	env.busy = false // only now: a second attempt must not write the envelope with this one
	q.mu.Unlock()
}

// backoff is the delay after the n-th failed attempt: RetryMin doubled each time up to
// RetryMax, less up to a tenth at random so that messages that failed together spread out.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.RetryMin
	for i := 1; i < n && d < q.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, q.opts.RetryMax)
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

func (q *Queue) drop(env *envelope) {
	q.remove(env.ID)
	q.mu.Lock()
	delete(q.msgs, env.ID)
	q.bytes -= env.Size
	q.mu.Unlock()
}

// deliver sends the message at path to the recipients of env through relay. It returns the
// recipients the relay accepted the message for, those it refused for good (a 5xx reply),
// and an error when the others must be tried again (or, with none left, why it failed).
func deliver(ctx context.Context, relay *config.SMTP, env *envelope, path string) (sent, refused []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mail spool: %w", err)
	}
	defer f.Close()
	tlsConf := &tls.Config{ServerName: relay.Host, MinVersion: tls.VersionTLS12}
	if relay.CAFile != "" {
		pem, err := os.ReadFile(relay.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("smtp.ca_file: %w", err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("smtp.ca_file %s: no PEM certificate", relay.CAFile)
		}
	}
	timeout := relay.Timeout.Duration
	if timeout <= 0 {
		timeout = time.Minute
	}
	opts := []gomail.Option{gomail.WithPort(relay.Port), gomail.WithTimeout(timeout), gomail.WithTLSConfig(tlsConf)}
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
		return nil, nil, fmt.Errorf("smtp client: %w", err)
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s:%d: %w", relay.Host, relay.Port, err)
	}
	defer func() { _ = c.CloseWithSMTPClient(sc) }()
	if err := sc.Mail(env.From); err != nil {
		if permanent(err) {
			return nil, slices.Clone(env.To), fmt.Errorf("MAIL FROM: %w", err)
		}
		return nil, nil, fmt.Errorf("MAIL FROM: %w", err)
	}
	var accepted []string
	var rcptErr error
	for _, to := range env.To {
		if err := sc.Rcpt(to); err != nil {
			rcptErr = fmt.Errorf("RCPT TO %s: %w", to, err)
			if permanent(err) {
				refused = append(refused, to)
			}
			continue
		}
		accepted = append(accepted, to)
	}
	if len(accepted) == 0 {
		_ = sc.Reset()
		return nil, refused, rcptErr
	}
	w, err := sc.Data()
	if err != nil {
		if permanent(err) {
			return nil, append(refused, accepted...), fmt.Errorf("DATA: %w", err)
		}
		return nil, refused, fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.Copy(w, f); err != nil {
		_ = w.Close()
		return nil, refused, fmt.Errorf("sending the message: %w", err)
	}
	if err := w.Close(); err != nil {
		if permanent(err) {
			return nil, append(refused, accepted...), fmt.Errorf("end of DATA: %w", err)
		}
		return nil, refused, fmt.Errorf("end of DATA: %w", err)
	}
	return accepted, refused, rcptErr
}

// permanent reports whether the relay refused for good (a 5xx reply): retrying will not
// help. Anything else (4xx, a network or TLS failure) is worth another attempt.
func permanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}
