// Package mailq is the mail spool of scripts' SendMail: messages are rendered and written to a
// folder under state_dir when a script sends them, and delivered from there through the site's
// SMTP relay by background workers, retried with backoff, so that a script never waits for a
// relay and no message is lost by a restart.
//
// A message is one file in the spool, <id>.mail: a line with its envelope in JSON (site,
// sender, the recipients still to deliver to, attempts, next attempt), then the message as it
// will be sent (headers, body and attachment, rendered once by github.com/wneessen/go-mail).
// It is written and synced before SendMail returns; the envelope records the message's size,
// so a file cut short by a crash is recognised (and dropped) at start. A small message is
// also kept in memory, so that its delivery reads no file.
//
// Messages go in batches: a due message waits up to BatchDelay for others (or until a batch
// is full), and a worker sends a batch over one connection, kept open for a few seconds after.
// To a relay that offers PIPELINING and CHUNKING (Postfix, Exim, Exchange, go-smtp) a batch
// is written in one go, MAIL FROM, RCPT TO and BDAT with the message for each, and the replies
// are read as they come: a round trip per batch instead of four per message. Other relays
// get the messages one transaction at a time. Delivery is at least once: a crash, or a
// connection lost, after the relay accepted a message and before its reply was read or its
// file removed sends it again.
package mailq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/mail"
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

// maxRecipients bounds the recipients of one message.
const maxRecipients = 100

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
	// Workers is how many SMTP connections deliver at once; default 2.
	Workers int
	// BatchDelay is how long a message that is due may wait for others to go with it (a
	// batch of maxBatch goes at once); default 250ms. Delivering a burst as a few batches,
	// each in one pipelined exchange, costs a fraction of delivering it message by message.
	BatchDelay time.Duration
	Observer   Observer

	// noPipelining makes workers deliver message by message even to a relay that takes
	// batches (tests of that path).
	noPipelining bool
}

// envelope is the first line of a message's file.
type envelope struct {
	ID        string    `json:"id"`
	Site      string    `json:"site"`
	From      string    `json:"from"`
	To        []string  `json:"to"` // the recipients not delivered to yet
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`
	Size      int64     `json:"size"` // of the message, without the envelope

	busy bool   // a worker has it
	data []byte // the message, kept in memory when it is small and there is room (the file is the durable copy)
}

// A message of at most maxKeptMessage bytes is also kept in memory, up to maxKept bytes in
// all, so that delivering it reads no file.
const (
	maxKeptMessage = 64 << 10
	maxKept        = 16 << 20
)

// Queue is the spool and its delivery workers.
type Queue struct {
	opts Options
	log  *slog.Logger
	host string // the domain of Message-IDs

	mu     sync.Mutex
	msgs   map[string]*envelope
	bytes  int64
	kept   int64 // bytes of messages kept in memory
	closed bool
	// wakeAt is when dispatch will look at the spool again (zero: it is looking now) and
	// fresh how many messages were queued since it last did: Enqueue wakes it only when a
	// new message must go sooner, or a batch is full.
	wakeAt time.Time
	fresh  int
	wake   chan struct{}
	jobs   chan []*envelope // batches of one site's due messages, for the workers

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
	if opts.BatchDelay <= 0 {
		opts.BatchDelay = 250 * time.Millisecond
	}
	if opts.Relay == nil {
		opts.Relay = func(string) *config.SMTP { return nil }
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail spool: %w", err)
	}
	q := &Queue{opts: opts, log: opts.Logger.With("component", "mail"), msgs: map[string]*envelope{},
		wake: make(chan struct{}, 1), jobs: make(chan []*envelope)}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	q.host, _ = os.Hostname()
	if q.host == "" || strings.ContainsAny(q.host, "<> @") {
		q.host = "wharf.invalid"
	}
	if err := q.load(); err != nil {
		return nil, err
	}
	return q, nil
}

// load reads the spool. A temporary file of an interrupted write is removed, a file whose
// envelope cannot be read is dropped (and logged).
func (q *Queue) load() error {
	entries, err := os.ReadDir(q.opts.Dir)
	if err != nil {
		return fmt.Errorf("mail spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(q.opts.Dir, name)
		switch {
		case strings.HasPrefix(name, "."):
			_ = os.Remove(path)
		case strings.HasSuffix(name, ".mail"):
			id := strings.TrimSuffix(name, ".mail")
			env, err := readEnvelope(path)
			if err == nil && (env.ID != id || len(env.To) == 0) {
				err = errors.New("incomplete envelope")
			}
			if err != nil {
				q.log.Error("mail spool: dropping a damaged message", "id", id, "err", err.Error())
				_ = os.Remove(path)
				continue
			}
			// Tried again at once: a restart is often what fixed the relay's settings.
			env.Next = time.Now()
			q.msgs[id] = env
			q.bytes += env.Size
		}
	}
	if n := len(q.msgs); n > 0 {
		q.log.Info("mail spool: messages waiting from before", "messages", n, "bytes", q.bytes)
	}
	return nil
}

// Len returns the number of messages in the spool.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Start starts the delivery workers.
func (q *Queue) Start() {
	q.wg.Add(1 + q.opts.Workers)
	go q.dispatch()
	for range q.opts.Workers {
		go q.work()
	}
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
	switch {
	case len(m.To) == 0:
		return "", errors.New("no recipient")
	case len(m.To) > maxRecipients:
		return "", fmt.Errorf("more than %d recipients", maxRecipients)
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
	id := ulid.Make().String()
	msg.SetMessageIDWithValue(strings.ToLower(id) + "@" + q.host) // the spool id: a log line leads to the message
	msg.SetDate()
	if m.Attachment != nil {
		msg.AttachReadSeeker(cmp.Or(m.AttachmentName, "attachment"), m.Attachment)
	}

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
	env := &envelope{ID: id, Site: site, From: sender.Address, To: rcpts, Created: time.Now().UTC()}
	env.Next = env.Created
	data, err := q.write(env, func(w io.Writer) error {
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
	size := int64(len(data))
	q.mu.Lock()
	if q.closed || q.bytes+size > q.opts.MaxSpool {
		full := !q.closed
		q.mu.Unlock()
		_ = os.Remove(q.path(env.ID))
		if full {
			return "", ErrFull
		}
		return "", ErrClosed
	}
	q.bytes += size
	if size <= maxKeptMessage && q.kept+size <= maxKept {
		env.data = data
		q.kept += size
	}
	q.msgs[env.ID] = env
	q.fresh++
	wake := q.wakeAt.IsZero() || q.fresh >= maxBatch || env.Next.Add(q.opts.BatchDelay).Before(q.wakeAt)
	q.mu.Unlock()
	if wake {
		q.poke()
	}
	q.log.Info("mail queued", "id", env.ID, "site", site, "from", env.From, "to", strings.Join(rcpts, ","), "bytes", size)
	if q.opts.Observer != nil {
		q.opts.Observer.MailQueued(site)
	}
	return env.ID, nil
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

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// maxBatch bounds the messages a worker takes at once (over one connection).
const maxBatch = 100

// dispatch hands the due messages to the workers in batches of a site's, and sleeps until
// the next is due or a message is queued or delivered. A site's due messages wait until
// they make a full batch or the oldest has waited BatchDelay.
func (q *Queue) dispatch() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		bySite := map[string][]*envelope{}
		next := now.Add(time.Hour)
		q.mu.Lock()
		for _, env := range q.msgs {
			switch {
			case env.busy:
			case !env.Next.After(now):
				bySite[env.Site] = append(bySite[env.Site], env)
			case env.Next.Before(next):
				next = env.Next
			}
		}
		for site, due := range bySite {
			if len(due) >= maxBatch {
				continue
			}
			oldest := slices.MinFunc(due, func(a, b *envelope) int { return a.Next.Compare(b.Next) }).Next
			if release := oldest.Add(q.opts.BatchDelay); release.After(now) {
				delete(bySite, site)
				if release.Before(next) {
					next = release
				}
			}
		}
		q.wakeAt, q.fresh = next, 0
		q.mu.Unlock()
		for _, due := range bySite {
			slices.SortFunc(due, func(a, b *envelope) int { return cmp.Or(a.Next.Compare(b.Next), strings.Compare(a.ID, b.ID)) })
			for len(due) > 0 {
				batch := due[:min(len(due), maxBatch)]
				due = due[len(batch):]
				q.mu.Lock()
				for _, env := range batch {
					env.busy = true
				}
				q.mu.Unlock()
				select {
				case q.jobs <- batch:
				case <-q.ctx.Done():
					return
				}
			}
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

// finish records the outcome of an attempt: the recipients the relay accepted the message
// for and those it refused for good; err is why the others failed.
func (q *Queue) finish(env *envelope, relay *config.SMTP, sent, refused []string, err error) {
	if q.ctx.Err() != nil && err != nil {
		// Stopped by Close: not an attempt; the message stays as it was.
		q.mu.Lock()
		env.busy = false
		q.mu.Unlock()
		return
	}
	lg := q.log.With("id", env.ID, "site", env.Site)
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
	if serr := q.rewrite(&saved); serr != nil {
		lg.Error("mail spool: cannot record the attempt", "err", serr.Error())
	}
	q.mu.Lock()
	env.busy = false // only now: a second attempt must not rewrite the file with this one
	q.mu.Unlock()
}

func errText(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
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

// release hands a message back to dispatch as it was: it was not attempted.
func (q *Queue) release(env *envelope) {
	q.mu.Lock()
	env.busy = false
	q.mu.Unlock()
}

func (q *Queue) drop(env *envelope) {
	_ = os.Remove(q.path(env.ID))
	q.mu.Lock()
	delete(q.msgs, env.ID)
	q.bytes -= env.Size
	q.kept -= int64(len(env.data))
	env.data = nil
	q.mu.Unlock()
}
