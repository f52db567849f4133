package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/ops/mailq"
	"github.com/wharf-project/wharf/scripting"
)

// What `wharf script run` puts in place of the server's mail relay and records of HTTP.

// errNoMail is SendMail's answer in a trial run without --smtp-sink.
var errNoMail = errors.New("wharf script run sends no mail: pass --smtp-sink to print the messages instead")

// noMail refuses every message, so that a trial run never mails anyone.
type noMail struct{}

func (noMail) Enqueue(string, *scripting.Mail) (string, error) { return "", errNoMail }

// smtpSink is the mail of `wharf script run --smtp-sink`: a mail spool in the run's
// temporary folder that is never delivered. SendMail goes through the server's own code up to
// the relay (addresses checked, the message rendered, its size bounded), and the report
// prints what it queued.
type smtpSink struct{ q *mailq.Queue }

func openSMTPSink(dir, from string) (*smtpSink, error) {
	// The relay is never dialled: it gives the sender of a SendMail('' , …) and the size bound.
	relay := &config.SMTP{Host: "smtp-sink.invalid", Port: 25, From: from, MaxMessageSize: 10 << 20}
	q, err := mailq.Open(mailq.Options{Dir: dir, Relay: func(string) *config.SMTP { return relay },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("smtp sink: %w", err)
	}
	return &smtpSink{q: q}, nil
}

func (s *smtpSink) Enqueue(site string, m *scripting.Mail) (string, error) {
	return queueMailer{s.q}.Enqueue(site, m)
}

// messages describes the queued messages, oldest first.
func (s *smtpSink) messages() ([]string, error) {
	msgs, err := s.q.Spooled()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		d, err := describeMail(m.Message)
		if err != nil {
			return nil, fmt.Errorf("smtp sink: message %s: %w", m.ID, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// describeMail renders a message for the report: its sender, recipients and subject, then
// each attachment's name and size, then the text body.
func describeMail(raw []byte) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	dec := new(mime.WordDecoder)
	header := func(k string) string {
		v, err := dec.DecodeHeader(msg.Header.Get(k))
		if err != nil {
			return msg.Header.Get(k)
		}
		return v
	}
	var body strings.Builder
	var atts []string
	if err := readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"),
		msg.Header.Get("Content-Disposition"), msg.Body, &body, &atts); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from %q to %q subject %q", header("From"), header("To"), header("Subject"))
	for _, a := range atts {
		fmt.Fprintf(&b, "\n    attachment %s", a)
	}
	fmt.Fprintf(&b, "\n%s", indent(body.String()))
	return b.String(), nil
}

// readPart reads one MIME part (recursively for multipart ones): the first text/plain part
// that is not an attachment is the body; every other part is an attachment, described by
// its name and decoded size.
func readPart(ctype, cte, disp string, r io.Reader, body *strings.Builder, atts *[]string) error {
	if ctype == "" {
		ctype = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(r, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := readPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"),
				p.Header.Get("Content-Disposition"), p, body, atts); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(cte) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	dt, dparams, _ := mime.ParseMediaType(disp)
	if dt != "attachment" && mt == "text/plain" && body.Len() == 0 {
		b, err := io.ReadAll(r)
		body.WriteString(strings.ReplaceAll(string(b), "\r\n", "\n")) // the message's CRLF lines
		return err
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	*atts = append(*atts, fmt.Sprintf("%q (%s, %d bytes)", name, mt, n))
	return nil
}

func indent(s string) string {
	return "    | " + strings.ReplaceAll(strings.TrimRight(s, "\r\n"), "\n", "\n    | ")
}

// httpRecorder carries a trial run's HttpCli requests and notes each one for the report.
// Secret values are replaced in what it notes, as in the log: a web hook's URL is often a
// credential.
type httpRecorder struct {
	rt      http.RoundTripper
	secrets []string

	mu   sync.Mutex
	seen []string
}

func (h *httpRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := h.rt.RoundTrip(req)
	line := req.Method + " " + req.URL.Redacted() + ": " // a password in the URL is not shown
	if err != nil {
		line += "error: " + err.Error()
	} else {
		line += res.Status
	}
	line += fmt.Sprintf(" (%s)", time.Since(start).Round(time.Millisecond))
	for _, s := range h.secrets {
		line = strings.ReplaceAll(line, s, "[secret]")
	}
	h.mu.Lock()
	h.seen = append(h.seen, line)
	h.mu.Unlock()
	return res, err
}

func (h *httpRecorder) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}
