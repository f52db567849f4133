package mailq

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Spooled is a message waiting in the spool, as it will be sent.
type Spooled struct {
	ID, Site, From string
	To             []string // the envelope's recipients not delivered to yet
	Created        time.Time
	Message        []byte // headers, body and attachment, as rendered when it was queued
}

// Spooled returns the messages in the spool, oldest first. `wharf script run --smtp-sink`
// queues a script's mail on a queue it never starts and prints these in place of delivering
// them, so that a trial run renders and checks a message exactly as the server would.
func (q *Queue) Spooled() ([]Spooled, error) {
	q.mu.Lock()
	envs := make([]envelope, 0, len(q.msgs))
	for _, env := range q.msgs {
		envs = append(envs, *env)
	}
	q.mu.Unlock()
	slices.SortFunc(envs, func(a, b envelope) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID) // ULIDs of one millisecond
	})
	out := make([]Spooled, 0, len(envs))
	for _, env := range envs {
		f, off, err := openMessage(q.path(env.ID), nil)
		if err != nil {
			return nil, err
		}
		msg := make([]byte, env.Size)
		n, err := f.ReadAt(msg, off)
		f.Close()
		if n != len(msg) {
			return nil, fmt.Errorf("mail spool: message %s: read %d of %d bytes: %w", env.ID, n, len(msg), err)
		}
		out = append(out, Spooled{ID: env.ID, Site: env.Site, From: env.From, To: slices.Clone(env.To),
			Created: env.Created, Message: msg})
	}
	return out, nil
}
