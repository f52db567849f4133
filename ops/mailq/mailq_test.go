package mailq

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/smtptest"
)

// relayOf returns the relay config of a test server.
func relayOf(s *smtptest.Server, tlsMode, user, pw string) *config.SMTP {
	r := &config.SMTP{Host: s.Host, Port: s.Port, TLS: tlsMode, CAFile: s.CAFile, From: "wharf@example.com",
		Timeout: config.Duration{Duration: 10 * time.Second}, GiveUpAfter: config.Duration{Duration: time.Hour}, MaxMessageSize: 1 << 20}
	if user != "" {
		r.Username, r.Password = user, config.InlineSecret(pw)
	}
	return r
}

type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) MailQueued(site string) { c.add("queued") }
func (c *counts) MailAttempt(site, result string) {
	c.add(result)
}
func (c *counts) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}
func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// logBuf collects the queue's log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openQueue(t *testing.T, dir string, relay func() *config.SMTP, obs Observer, lb *logBuf) *Queue {
	t.Helper()
	return openQueueMode(t, dir, relay, obs, lb, false)
}

// deliveryModes are the two ways a worker delivers: a batch in one pipelined exchange
// (a relay with PIPELINING and CHUNKING, as the test relay is), or message by message.
var deliveryModes = []struct {
	name  string
	plain bool
}{{"pipelined", false}, {"plain", true}}

func openQueueMode(t *testing.T, dir string, relay func() *config.SMTP, obs Observer, lb *logBuf, plain bool) *Queue {
	t.Helper()
	var w = &logBuf{}
	if lb != nil {
		w = lb
	}
	q, err := Open(Options{Dir: dir, Relay: func(string) *config.SMTP { return relay() }, Observer: obs,
		Logger: slog.New(slog.NewTextHandler(w, nil)), RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		BatchDelay: 10 * time.Millisecond, noPipelining: plain})
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

func TestDeliverStartTLSAuthAttachment(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "wharf", Password: "s3cret-pw"})
	relay := relayOf(srv, "starttls", "wharf", "s3cret-pw")
	obs, lb := &counts{}, &logBuf{}
	q := openQueue(t, t.TempDir(), func() *config.SMTP { return relay }, obs, lb)
	payload := bytes.Repeat([]byte("MZ\x90\x00binary"), 100)
	id, err := q.Enqueue("main", &Message{To: []string{"ops@example.com", "Jane Doe <jane@example.org>"},
		Subject: "Uploads\r\nBcc: evil@example.com", Body: "/in/a.txt\n/in/b.txt\n",
		Attachment: bytes.NewReader(payload), AttachmentName: "report.bin"})
	if err != nil || id == "" {
		t.Fatalf("Enqueue: %q, %v", id, err)
	}
	msgs := srv.Wait(1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("received %d messages; log:\n%s", len(msgs), lb)
	}
	m := msgs[0]
	if !m.TLS || m.User != "wharf" || m.From != "wharf@example.com" ||
		strings.Join(m.To, ",") != "ops@example.com,jane@example.org" {
		t.Errorf("message envelope = TLS %v user %q from %q to %v", m.TLS, m.User, m.From, m.To)
	}
	data := string(m.Data)
	for _, want := range []string{"Subject: Uploads Bcc: evil@example.com", "/in/a.txt", "report.bin",
		base64.StdEncoding.EncodeToString(payload)[:60], "Message-ID:", "Date:"} {
		if !strings.Contains(strings.ReplaceAll(data, "\r\n", "\n"), want) && !strings.Contains(strings.ReplaceAll(data, "\r\n", ""), want) {
			t.Errorf("message lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(data, "\nBcc:") {
		t.Errorf("a line break in the subject made a header:\n%s", data)
	}
	coretest.Eventually(t, 5*time.Second, "the delivery to be recorded", func() bool { return q.Len() == 0 && obs.get("sent") == 1 })
	if obs.get("queued") != 1 {
		t.Errorf("queued = %d", obs.get("queued"))
	}
	if ents, _ := os.ReadDir(q.opts.Dir); len(ents) != 0 {
		t.Errorf("spool not empty after delivery: %v", ents)
	}
	if strings.Contains(lb.String(), "s3cret-pw") {
		t.Errorf("the password is in the log:\n%s", lb)
	}
}

func TestDeliverImplicitTLSAndPlain(t *testing.T) {
	for _, mode := range []string{"implicit", "none"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{TLS: mode})
			relay := relayOf(srv, mode, "", "")
			q := openQueue(t, t.TempDir(), func() *config.SMTP { return relay }, nil, nil)
			if _, err := q.Enqueue("main", &Message{From: "robot@example.com", To: []string{"a@example.com"}, Subject: "hi", Body: "x"}); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Wait(1, 10*time.Second)
			if len(msgs) != 1 || msgs[0].TLS != (mode == "implicit") || msgs[0].From != "robot@example.com" {
				t.Fatalf("messages = %+v", msgs)
			}
		})
	}
}

// The relay's certificate is verified: a relay whose certificate the queue does not trust
// gets nothing.
func TestDeliverVerifiesTheRelay(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: "starttls"})
	relay := relayOf(srv, "starttls", "", "")
	relay.CAFile = ""
	obs, lb := &counts{}, &logBuf{}
	q := openQueue(t, t.TempDir(), func() *config.SMTP { return relay }, obs, lb)
	if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 5*time.Second, "a deferred attempt", func() bool { return obs.get("deferred") >= 1 })
	if len(srv.Messages()) != 0 || q.Len() != 1 || !strings.Contains(lb.String(), "certificate") {
		t.Errorf("delivered to an unverified relay, or no reason logged; log:\n%s", lb)
	}
}

// A message queued while the relay is down stays in the spool across a restart of the
// queue (a server restart) and is delivered once the relay is back.
func TestRestartWithMailQueued(t *testing.T) {
	certDir, spool := t.TempDir(), t.TempDir()
	first := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "u", Password: "p", CertDir: certDir})
	addr := first.Addr()
	relay := relayOf(first, "starttls", "u", "p")
	first.Close() // the relay is down

	obs := &counts{}
	q, err := Open(Options{Dir: spool, Relay: func(string) *config.SMTP { return relay }, Observer: obs,
		Logger: slog.New(slog.NewTextHandler(&logBuf{}, nil)), RetryMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	id, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: "kept", Body: "across restarts",
		Attachment: strings.NewReader("attached"), AttachmentName: "a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 5*time.Second, "a deferred attempt", func() bool { return obs.get("deferred") == 1 })
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spool, id+".mail")); err != nil {
		t.Fatalf("spool lost the message: %v", err)
	}

	second := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "u", Password: "p", CertDir: certDir, Addr: addr})
	// The envelope says "retry in an hour"; a restart tries again at once instead.
	q2 := openQueue(t, spool, func() *config.SMTP { return relay }, nil, nil)
	if q2.Len() != 1 {
		t.Fatalf("the restarted queue has %d messages, want 1", q2.Len())
	}
	msgs := second.Wait(1, 10*time.Second)
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "across restarts") {
		t.Fatalf("after the restart: %d messages", len(msgs))
	}
	coretest.Eventually(t, 5*time.Second, "an empty spool", func() bool { return q2.Len() == 0 })
}

// A refused recipient (5xx) is dropped and logged; the others get the message. A
// temporary refusal (4xx) is retried.
func TestRecipientRefusals(t *testing.T) {
	for _, mode := range deliveryModes {
		t.Run(mode.name, func(t *testing.T) { testRecipientRefusals(t, mode.plain) })
	}
}

func testRecipientRefusals(t *testing.T, plain bool) {
	var mu sync.Mutex
	tries := map[string]int{}
	srv := smtptest.Start(t, smtptest.Options{TLS: "none", Rcpt: func(to string) error {
		mu.Lock()
		defer mu.Unlock()
		tries[to]++
		switch {
		case to == "nobody@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case to == "busy@example.com" && tries[to] < 3:
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		return nil
	}})
	relay := relayOf(srv, "none", "", "")
	obs, lb := &counts{}, &logBuf{}
	q := openQueueMode(t, t.TempDir(), func() *config.SMTP { return relay }, obs, lb, plain)
	if _, err := q.Enqueue("main", &Message{To: []string{"ok@example.com", "nobody@example.com", "busy@example.com"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(2, 10*time.Second)
	if len(msgs) != 2 || strings.Join(msgs[0].To, ",") != "ok@example.com" || strings.Join(msgs[1].To, ",") != "busy@example.com" {
		t.Fatalf("messages: %+v\n%s", msgs, lb)
	}
	coretest.Eventually(t, 5*time.Second, "the delivery", func() bool { return q.Len() == 0 && obs.get("sent") == 1 })
	mu.Lock()
	if tries["nobody@example.com"] != 1 || tries["ok@example.com"] != 1 {
		t.Errorf("tries = %v: a refused or delivered recipient was tried again", tries)
	}
	mu.Unlock()
	if obs.get("deferred") != 2 || !strings.Contains(lb.String(), "nobody@example.com") {
		t.Errorf("deferred = %d; log:\n%s", obs.get("deferred"), lb)
	}
}

// A message that cannot be delivered is retried until give_up_after, then dropped, logged
// and counted as failed.
func TestGiveUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there
	relay := &config.SMTP{Host: "127.0.0.1", Port: port, TLS: "none", From: "w@example.com",
		Timeout: config.Duration{Duration: time.Second}, GiveUpAfter: config.Duration{Duration: 200 * time.Millisecond}}
	obs, lb := &counts{}, &logBuf{}
	q := openQueue(t, t.TempDir(), func() *config.SMTP { return relay }, obs, lb)
	if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "the message given up", func() bool { return obs.get("failed") == 1 && q.Len() == 0 })
	if obs.get("deferred") < 1 || !strings.Contains(lb.String(), "giving up") || !strings.Contains(lb.String(), strconv.Itoa(port)) {
		t.Errorf("deferred %d; log:\n%s", obs.get("deferred"), lb)
	}
}

func TestEnqueueRefusals(t *testing.T) {
	relay := &config.SMTP{Host: "127.0.0.1", Port: 1, TLS: "none", MaxMessageSize: 4 << 10}
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir, Relay: func(site string) *config.SMTP {
		if site == "main" {
			return relay
		}
		return nil
	}, MaxSpool: 10 << 10, Logger: slog.New(slog.NewTextHandler(&logBuf{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: messages stay in the spool.
	cases := []struct {
		site string
		m    Message
		want string
	}{
		{"other", Message{From: "a@b.c", To: []string{"x@y.z"}}, "no SMTP relay is configured"},
		{"main", Message{To: []string{"x@y.z"}}, "no sender"},
		{"main", Message{From: "not an address", To: []string{"x@y.z"}}, `invalid sender "not an address"`},
		{"main", Message{From: "a@b.c"}, "no recipient"},
		{"main", Message{From: "a@b.c", To: []string{"x@y.z", "bad"}}, `invalid recipient "bad"`},
		{"main", Message{From: "a@b.c", To: []string{"x@y.z"}, Attachment: bytes.NewReader(make([]byte, 8<<10)), AttachmentName: "big"},
			"message too large: more than 4KiB (smtp.max_message_size)"},
	}
	for _, c := range cases {
		if _, err := q.Enqueue(c.site, &c.m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Enqueue(%s, %+v) = %v, want %q", c.site, c.m.To, err, c.want)
		}
	}
	// Fill the spool: 10 KiB holds a few small messages, then it is full.
	var full error
	for i := 0; i < 100 && full == nil; i++ {
		_, full = q.Enqueue("main", &Message{From: "a@b.c", To: []string{"x@y.z"}, Body: strings.Repeat("x", 1500)})
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("spool never full: %v", full)
	}
	n := q.Len()
	if ents, _ := os.ReadDir(dir); len(ents) != n {
		t.Errorf("spool has %d files for %d messages (leftovers of refused messages?)", len(ents), n)
	}
	_ = q.Close(context.Background())
}

// What an interrupted write leaves is cleaned up when the spool is opened.
func TestDamagedSpool(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("01A.mail", "no envelope line")
	write("01B.mail", `{"id":"01B","to":[]}`+"\nno recipients\n")
	write("01C.mail", "{not json\nx")
	write(".01D.mail.tmp", "half written")
	write("01E.mail", `{"id":"01X","site":"main","from":"a@b.c","to":["x@y.z"],"size":26}`+"\nanother message's envelope")
	write("01G.mail", `{"id":"01G","site":"main","from":"a@b.c","to":["x@y.z"],"size":100}`+"\ncut short by a crash")
	write("01F.mail", `{"id":"01F","site":"main","from":"a@b.c","to":["x@y.z"],"size":2}`+"\nok")
	lb := &logBuf{}
	q, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if q.Len() != 1 {
		t.Errorf("loaded %d messages, want 1", q.Len())
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "01F.mail" || q.bytes != 2 {
		t.Errorf("spool after opening: %v; log:\n%s", names, lb)
	}
}

// A burst of mail goes over one connection; a connection the relay closed while it was idle
// is opened again without counting a failed attempt.
func TestConnectionReuse(t *testing.T) {
	for _, mode := range deliveryModes {
		t.Run(mode.name, func(t *testing.T) { testConnectionReuse(t, mode.plain) })
	}
}

func testConnectionReuse(t *testing.T, plain bool) {
	certDir := t.TempDir()
	srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "u", Password: "p", CertDir: certDir})
	relay := relayOf(srv, "starttls", "u", "p")
	obs, lb := &counts{}, &logBuf{}
	q, err := Open(Options{Dir: t.TempDir(), Relay: func(string) *config.SMTP { return relay }, Observer: obs, Workers: 1,
		Logger: slog.New(slog.NewTextHandler(lb, nil)), noPipelining: plain})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sent %d, deferred %d; log:\n%s", obs.get("sent"), obs.get("deferred"), lb)
		}
	})
	for i := range 30 {
		if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: "n" + strconv.Itoa(i), Body: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	q.Start()
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	if got := len(srv.Wait(30, 10*time.Second)); got != 30 {
		t.Fatalf("received %d messages", got)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("30 messages took %d connections, want 1", n)
	}
	// The relay stores a message before it replies: wait for the replies, or the restart
	// below could cut the last one off (and that message would rightly be sent again).
	coretest.Eventually(t, 5*time.Second, "30 deliveries counted", func() bool { return obs.get("sent") == 30 })
	// The relay restarts: the worker's idle connection is dead.
	addr := srv.Addr()
	srv.Close()
	srv2 := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "u", Password: "p", CertDir: certDir, Addr: addr})
	if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: "after", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	if got := len(srv2.Wait(1, 10*time.Second)); got != 1 {
		t.Fatalf("after the relay's restart: %d messages", got)
	}
	coretest.Eventually(t, 5*time.Second, "31 deliveries counted", func() bool { return obs.get("sent") == 31 })
	if obs.get("deferred") != 0 {
		t.Errorf("deferred %d", obs.get("deferred"))
	}
}

// In one batch, messages refused in different ways: each gets its own outcome, none is lost
// or sent twice. A message after a failed one in a pipelined group counts when it was
// delivered; when it failed too (perhaps the earlier failure's doing) it goes again in the
// next group without counting an attempt.
func TestBatchWithFailures(t *testing.T) {
	for _, mode := range deliveryModes {
		t.Run(mode.name, func(t *testing.T) {
			var mu sync.Mutex
			tries := map[string]int{}
			try := func(k string) int {
				mu.Lock()
				defer mu.Unlock()
				tries[k]++
				return tries[k]
			}
			temp := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "u", Password: "p",
				Mail: func(from string) error {
					switch n := try("from " + from); {
					case from == "b@example.com" && n == 1:
						return temp
					case from == "x@example.com":
						return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "not you"}
					}
					return nil
				},
				Rcpt: func(to string) error {
					if n := try("to " + to); to == "c@example.com" && n == 1 {
						return temp
					}
					return nil
				}})
			relay := relayOf(srv, "starttls", "u", "p")
			obs, lb := &counts{}, &logBuf{}
			q, err := Open(Options{Dir: t.TempDir(), Relay: func(string) *config.SMTP { return relay }, Observer: obs, Workers: 1,
				Logger: slog.New(slog.NewTextHandler(lb, nil)), RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
				BatchDelay: 10 * time.Millisecond, noPipelining: mode.plain})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []Message{
				{To: []string{"a@example.com"}, Subject: "A"},
				{From: "b@example.com", To: []string{"b@example.com"}, Subject: "B"}, // sender refused once (451)
				{To: []string{"c@example.com"}, Subject: "C"},                        // recipient refused once (451)
				{To: []string{"d@example.com"}, Subject: "D"},
				{From: "x@example.com", To: []string{"e@example.com"}, Subject: "E"}, // sender refused for good (550)
				{To: []string{"f@example.com", "g@example.com"}, Subject: "F"},
			} {
				if _, err := q.Enqueue("main", &m); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond) // distinct queue times: the batch keeps this order
			}
			q.Start() // all six are due: one batch
			t.Cleanup(func() { _ = q.Close(context.Background()) })
			coretest.Eventually(t, 10*time.Second, "every message delivered or given up", func() bool {
				return q.Len() == 0 && obs.get("sent") == 5 && obs.get("failed") == 1
			})
			got := map[string]int{}
			for _, m := range srv.Messages() {
				got[strings.Join(m.To, ",")]++
			}
			want := map[string]int{"a@example.com": 1, "b@example.com": 1, "c@example.com": 1, "d@example.com": 1, "f@example.com,g@example.com": 1}
			if len(got) != len(want) {
				t.Errorf("received %v, want %v", got, want)
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("received %v, want %v", got, want)
				}
			}
			// B's refused attempt counts; C's counts when sent message by message, but in a
			// group after B's failure it is only sent again.
			wantDeferred := 1
			if mode.plain {
				wantDeferred = 2
			}
			if obs.get("deferred") != wantDeferred {
				t.Errorf("deferred = %d, want %d; log:\n%s", obs.get("deferred"), wantDeferred, lb)
			}
			if !strings.Contains(lb.String(), "not you") {
				t.Errorf("the permanent refusal is not logged:\n%s", lb)
			}
		})
	}
}

// Large messages are read from their spool files (not kept in memory) and split a batch into
// several pipelined exchanges; each arrives whole.
func TestLargeMessagesInBatches(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "u", Password: "p"})
	relay := relayOf(srv, "starttls", "u", "p")
	obs := &counts{}
	q, err := Open(Options{Dir: t.TempDir(), Relay: func(string) *config.SMTP { return relay }, Observer: obs, Workers: 1,
		Logger: slog.New(slog.NewTextHandler(&logBuf{}, nil)), BatchDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	payloads := map[string][]byte{}
	for i := range n {
		p := bytes.Repeat([]byte{byte('a' + i)}, 700<<10)
		name := "part" + strconv.Itoa(i)
		payloads[name] = p
		if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: name, Body: "b",
			Attachment: bytes.NewReader(p), AttachmentName: name + ".bin"}); err != nil {
			t.Fatal(err)
		}
	}
	q.mu.Lock()
	kept := q.kept
	q.mu.Unlock()
	if kept != 0 {
		t.Errorf("%d bytes of large messages kept in memory", kept)
	}
	q.Start()
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	msgs := srv.Wait(n, 20*time.Second)
	if len(msgs) != n {
		t.Fatalf("received %d of %d", len(msgs), n)
	}
	for _, m := range msgs {
		data := strings.ReplaceAll(string(m.Data), "\r\n", "")
		found := false
		for name, p := range payloads {
			if strings.Contains(data, "Subject: "+name) {
				found = strings.Contains(data, base64.StdEncoding.EncodeToString(p))
			}
		}
		if !found {
			t.Errorf("a message arrived damaged (%d bytes)", len(m.Data))
		}
	}
	coretest.Eventually(t, 5*time.Second, "6 deliveries counted", func() bool { return obs.get("sent") == n && q.Len() == 0 })
}

// A relay that drops the connection in the middle of a pipelined group: the messages whose
// replies were read keep their outcome (not sent again), the others count a failed attempt
// and are delivered on the retry, over a new connection.
func TestPipelinedGroupBroken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	received := map[string]int{} // subject → times the relay read the message
	conns := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			first := conns == 1
			mu.Unlock()
			go fakeRelay(c, first, func(subject string) {
				mu.Lock()
				received[subject]++
				mu.Unlock()
			})
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	relay := &config.SMTP{Host: "127.0.0.1", Port: port, TLS: "none", From: "w@example.com",
		Timeout: config.Duration{Duration: 5 * time.Second}, GiveUpAfter: config.Duration{Duration: time.Hour}}
	obs, lb := &counts{}, &logBuf{}
	q, err := Open(Options{Dir: t.TempDir(), Relay: func(string) *config.SMTP { return relay }, Observer: obs, Workers: 1,
		Logger: slog.New(slog.NewTextHandler(lb, nil)), RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		BatchDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one", "two", "three"} {
		if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: s, Body: "b"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	q.Start()
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	coretest.Eventually(t, 10*time.Second, "three deliveries", func() bool { return obs.get("sent") == 3 && q.Len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if received["one"] != 1 || received["two"] != 2 || received["three"] < 1 || conns != 2 {
		t.Errorf("received %v over %d connections; log:\n%s", received, conns, lb)
	}
	if obs.get("deferred") != 2 {
		t.Errorf("deferred = %d, want 2 (two and three); log:\n%s", obs.get("deferred"), lb)
	}
}

// fakeRelay speaks just enough SMTP with PIPELINING and CHUNKING; when broken, it drops the
// connection after reading the second message, without replying to it.
func fakeRelay(c net.Conn, broken bool, got func(subject string)) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
	reply("220 fake ESMTP")
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return
		}
		switch strings.ToUpper(f[0]) {
		case "EHLO":
			reply("250-fake\r\n250-PIPELINING\r\n250 CHUNKING")
		case "MAIL", "RCPT", "RSET", "NOOP":
			reply("250 ok")
		case "BDAT":
			size, _ := strconv.Atoi(f[1])
			data := make([]byte, size)
			if _, err := io.ReadFull(r, data); err != nil {
				return
			}
			n++
			if i := bytes.Index(data, []byte("Subject: ")); i >= 0 {
				got(strings.Fields(string(data[i+9:]))[0])
			}
			if broken && n == 2 {
				return
			}
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown")
		}
	}
}

// An envelope changed on disk cannot put a command into a pipelined batch: an address with a
// line break is refused for good, and the relay sees nothing of it.
func TestPipelinedEnvelopeLineBreak(t *testing.T) {
	dir := t.TempDir()
	env := `{"id":"01H","site":"main","from":"a@b.c","to":["x@example.com\r\nRCPT TO:<evil@example.com>"],"size":2}`
	if err := os.WriteFile(filepath.Join(dir, "01H.mail"), []byte(env+"\nok"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, rcpts := recordingRelay(t)
	relay := relayOf(srv, "none", "", "")
	obs, lb := &counts{}, &logBuf{}
	q := openQueue(t, dir, func() *config.SMTP { return relay }, obs, lb)
	coretest.Eventually(t, 5*time.Second, "the message given up", func() bool { return obs.get("failed") == 1 && q.Len() == 0 })
	if _, err := q.Enqueue("main", &Message{To: []string{"ok@example.com"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Wait(1, 5*time.Second)); got != 1 {
		t.Fatalf("received %d messages", got)
	}
	if got := rcpts(); strings.Join(got, ",") != "ok@example.com" || !strings.Contains(lb.String(), "line break") {
		t.Errorf("recipients the relay saw: %q; log:\n%s", got, lb)
	}
}

// SMTP smuggling: a body with an end-of-data sequence (CRLF.CRLF, and its bare-LF forms,
// which some relays accept) followed by a second transaction stays one message, with the
// text in its body, whether it goes by DATA (dot-stuffed) or by BDAT (counted).
func TestBodyCannotEndTheMessage(t *testing.T) {
	for _, mode := range []struct {
		name  string
		plain bool
	}{{"data", true}, {"bdat", false}} {
		t.Run(mode.name, func(t *testing.T) {
			srv, rcpts := recordingRelay(t)
			relay := relayOf(srv, "none", "", "")
			obs, lb := &counts{}, &logBuf{}
			q := openQueueMode(t, t.TempDir(), func() *config.SMTP { return relay }, obs, lb, mode.plain)
			smuggled := "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n"
			for i, end := range []string{"\r\n.\r\n", "\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n"} {
				if _, err := q.Enqueue("main", &Message{To: []string{"ok@example.com"}, Subject: fmt.Sprint("s", i),
					Body: "first line" + end + smuggled + "last line\r\n"}); err != nil {
					t.Fatal(err)
				}
			}
			coretest.Eventually(t, 10*time.Second, "the five messages sent", func() bool { return obs.get("sent") == 5 })
			msgs := srv.Messages()
			if len(msgs) != 5 {
				t.Fatalf("the relay received %d messages, want 5; log:\n%s", len(msgs), lb)
			}
			for _, m := range msgs {
				body := string(m.Data)
				if !mode.plain && (strings.Count(body, "\n") != strings.Count(body, "\r\n") || strings.Count(body, "\r") != strings.Count(body, "\r\n")) {
					// What BDAT carries is the message as written: a bare CR or LF in it
					// could end the data at a relay that forwards it by DATA.
					t.Errorf("the message has a bare CR or LF:\n%q", body)
				}
				if !strings.Contains(body, "last line") || !strings.Contains(body, "smuggled") {
					t.Errorf("a message lost the end of its body:\n%s", body)
				}
			}
			for _, r := range rcpts() {
				if r != "ok@example.com" {
					t.Errorf("the relay saw a recipient from the body: %q", r)
				}
			}
		})
	}
}

// An attachment name with a line break and quotes cannot end its header or add one.
func TestAttachmentNameCannotAddHeaders(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: "none"})
	relay := relayOf(srv, "none", "", "")
	q := openQueue(t, t.TempDir(), func() *config.SMTP { return relay }, nil, nil)
	if _, err := q.Enqueue("main", &Message{To: []string{"a@example.com"}, Subject: "s", Body: "b",
		Attachment: strings.NewReader("data"), AttachmentName: "x.txt\"\r\nBcc: evil@example.com\r\n\r\nbody"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("received %d messages", len(msgs))
	}
	data := strings.ReplaceAll(string(msgs[0].Data), "\r\n", "\n")
	if strings.Contains(data, "\nBcc:") || strings.Count(data, "\n\nbody") > 0 {
		t.Fatalf("the attachment name made a header or a body:\n%s", data)
	}
	if !strings.Contains(data, "filename=") || !strings.Contains(data, "ZGF0YQ==") {
		t.Fatalf("the attachment is missing:\n%s", data)
	}
}

// recordingRelay starts a plain relay that records every recipient it is given.
func recordingRelay(t *testing.T) (*smtptest.Server, func() []string) {
	var mu sync.Mutex
	var rcpts []string
	srv := smtptest.Start(t, smtptest.Options{TLS: "none", Rcpt: func(to string) error {
		mu.Lock()
		defer mu.Unlock()
		rcpts = append(rcpts, to)
		return nil
	}})
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(rcpts)
	}
}
