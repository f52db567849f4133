// Package audit writes the audit log: one structured line per login attempt, per completed
// file operation, per session end, per refused connection and per ban and lifted ban, with
// who (session, site, user, protocol, IP), what (operation, virtual paths, bytes), how long,
// with what result and, for a refusal, what refused it (refused_by). It implements
// core.Observer.
//
// Lines go to the server log (message "audit") or to a file of their own, as text or JSON
// like the server log. Facts carry no credentials, so no password or token can reach it.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/ops/logbuf"
)

// Message is the msg of every audit line, so lines can be picked out of the server log.
const Message = "audit"

// Log is an audit log. Its methods are safe for concurrent use.
type Log struct {
	log  *slog.Logger
	file *reopener      // nil when writing to the server log
	buf  *logbuf.Writer // in front of file
}

var _ core.Observer = (*Log)(nil)

// New returns an audit log writing to file ("" = into server, the server's logger) in the
// given format ("json" or "text"). Lines for the file are written in batches at most flush
// later (0: each at once), as the server log's are.
func New(server *slog.Logger, file, format string, flush time.Duration) (*Log, error) {
	if file == "" {
		return &Log{log: server}, nil
	}
	r := &reopener{path: file}
	if err := r.Reopen(); err != nil {
		return nil, err
	}
	b := logbuf.New(r, flush)
	var h slog.Handler = slog.NewTextHandler(b, nil)
	if format == "json" {
		h = slog.NewJSONHandler(b, nil)
	}
	return &Log{log: slog.New(h), file: r, buf: b}, nil
}

// Reopen reopens the audit file (after logrotate moved it); a no-op for the server log. The
// lines buffered so far go to the old file.
func (l *Log) Reopen() error {
	if l.file == nil {
		return nil
	}
	return errors.Join(l.buf.Flush(), l.file.Reopen())
}

// Close writes what is buffered and closes the audit file.
func (l *Log) Close() error {
	if l.file == nil {
		return nil
	}
	return errors.Join(l.buf.Close(), l.file.Close())
}

// Observe implements core.Observer: logins, operations, session ends, refused connections,
// bans and lifted bans become lines; accepted connections and strikes are in the server log.
func (l *Log) Observe(f *core.Fact) {
	// Into a server log whose level is above info, nothing is written: skip building the
	// record (a dozen attributes per file operation).
	if !l.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	var event string
	switch f.Kind {
	case core.FactLogin:
		event = "login"
	case core.FactOperation:
		event = "operation"
	case core.FactSessionEnd:
		event = "session_end"
	case core.FactConnect:
		if f.Err == nil {
			return
		}
		event = "connection_refused"
	case core.FactBan:
		event = "ban"
	case core.FactUnban:
		event = "unban"
	default:
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("event", event),
		slog.String("site", f.Site),
	)
	if f.Kind == core.FactBan || f.Kind == core.FactUnban {
		// Who, why and until when: by is "protector", "admin@<address>" or "script".
		attrs = append(attrs, slog.String("ip", f.IP), slog.String("by", f.By), slog.String("reason", f.Reason))
		if f.Kind == core.FactBan {
			attrs = append(attrs, slog.String("until", f.Until.UTC().Format(time.RFC3339)),
				slog.Int64("duration_ms", f.Duration.Milliseconds()))
		}
		l.log.LogAttrs(context.Background(), slog.LevelInfo, Message, attrs...)
		return
	}
	if f.Session != nil {
		attrs = append(attrs, slog.String("session", f.Session.ID()))
	}
	attrs = append(attrs,
		slog.String("user", f.User),
		slog.String("protocol", f.Protocol),
		slog.String("ip", f.IP),
	)
	switch f.Kind {
	case core.FactLogin:
		attrs = append(attrs, slog.String("method", f.Method))
		if f.Err != nil && f.Reason != "" {
			attrs = append(attrs, slog.String("reason", f.Reason))
		}
	case core.FactOperation:
		if f.Actor != "" {
			attrs = append(attrs, slog.String("actor", f.Actor)) // an event script acted, not the client
		}
		attrs = append(attrs, slog.String("operation", f.Op), slog.String("path", f.Path))
		if f.Target != "" {
			attrs = append(attrs, slog.String("target", f.Target))
		}
		attrs = append(attrs, slog.Int64("bytes", f.Bytes))
	}
	if f.Kind == core.FactOperation || f.Kind == core.FactSessionEnd {
		attrs = append(attrs, slog.Int64("duration_ms", f.Duration.Milliseconds()))
	}
	attrs = append(attrs, slog.String("result", f.Result()))
	if f.Err != nil {
		if by := f.RefusedBy(); by != "" {
			attrs = append(attrs, slog.String("refused_by", by))
		}
		msg := f.Err.Error()
		if f.Kind == core.FactConnect && f.Reason != "" {
			msg = f.Reason
		}
		attrs = append(attrs, slog.String("error", msg))
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, Message, attrs...)
}

// reopener is an append-only file that can be reopened under its name.
type reopener struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (r *reopener) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fmt.Errorf("audit log %s: %w", r.path, os.ErrClosed)
	}
	return r.f.Write(p)
}

func (r *reopener) Reopen() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o750); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (r *reopener) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

var _ io.Writer = (*reopener)(nil)
