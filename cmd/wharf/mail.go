package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/ops/mailq"
	"github.com/wharf-project/wharf/scripting"
)

// What the server gives scripts besides the sites: the mail spool and the settings of
// asynchronous handlers (scripting.Options).
type scriptDeps struct {
	settings config.Scripting
	mail     scripting.Mailer
	async    scripting.AsyncMetrics // nil: not counted
}

// options are the engine options for the deps.
func (d scriptDeps) options(o *scripting.Options) {
	o.AsyncWorkers, o.AsyncQueue = d.settings.AsyncWorkers, d.settings.AsyncQueue
	o.Mail, o.AsyncMetrics = d.mail, d.async
}

// queueMailer hands scripts' SendMail to the mail spool. scripting.Mail and mailq.Message
// have the same fields, so one converts to the other.
type queueMailer struct{ q *mailq.Queue }

func (m queueMailer) Enqueue(site string, msg *scripting.Mail) (string, error) {
	return m.q.Enqueue(site, (*mailq.Message)(msg))
}

// relays are the sites' SMTP relays as configured now: the mail spool asks at each delivery,
// and a reload replaces them.
type relays struct {
	m atomic.Pointer[map[string]*config.SMTP]
}

func (r *relays) set(cfg *config.Config) {
	m := make(map[string]*config.SMTP, len(cfg.Sites))
	for i := range cfg.Sites {
		m[cfg.Sites[i].Name] = cfg.Sites[i].SMTP
	}
	r.m.Store(&m)
}

func (r *relays) get(site string) *config.SMTP {
	if m := r.m.Load(); m != nil {
		return (*m)[site]
	}
	return nil
}

// openMailQueue opens the mail spool in state_dir/mail and starts delivering.
func (s *server) openMailQueue(cfg *config.Config) (*mailq.Queue, error) {
	s.relays.set(cfg)
	opts := mailq.Options{Dir: filepath.Join(cfg.StateDir, "mail"), Relay: s.relays.get, Logger: s.log,
		MaxSpool: int64(cfg.Scripting.MailSpool)}
	if s.metrics != nil {
		opts.Observer = s.metrics
		s.metrics.WatchMailSpool(func() int { return s.mail.Len() })
	}
	q, err := mailq.Open(opts)
	if err != nil {
		return nil, err
	}
	q.Start()
	return q, nil
}

// drainScripts lets the sites' queued asynchronous handlers run, for up to grace, then stops
// the mail spool (what it has not delivered stays for the next start).
func (s *server) drainScripts(ctx context.Context, grace time.Duration) []error {
	var errs []error
	dctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, d := range s.dispatchers {
		eng, ok := d.(*scripting.Engine)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := eng.Drain(dctx); err != nil {
				s.log.Error("asynchronous event handlers dropped at shutdown", "site", name, "err", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("site %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if s.mail != nil {
		if n := s.mail.Len(); n > 0 {
			s.log.Info("mail spool: messages kept for the next start", "messages", n)
		}
		errs = append(errs, s.mail.Close(ctx))
	}
	return errs
}
