package core

import "context"

// claimClusterSession records sess as a live session of user in the cluster unless the user
// has max there already (an error wrapping ErrLimit); any other error means the store did
// not answer.
func (s *Site) claimClusterSession(ctx context.Context, sess *Session, user string, max int) error {
	cctx, cancel := s.cl.ctx(ctx)
	defer cancel()
	_, err := s.cl.c.ClaimSession(cctx, s.clusterSession(sess, user), max)
	return s.note(err)
}

func (s *Site) clusterSession(sess *Session, user string) ClusterSession {
	return ClusterSession{ID: sess.id, Site: s.name, User: user, Protocol: sess.Protocol(),
		RemoteIP: sess.ip.String(), Start: sess.start}
}

// endClusterSession settles the end of a session counted for user in the cluster (see
// unregister): the last local session of the user gives the node's unused quota allowance
// back first (a login elsewhere that finds no live session rescans the storage, which must
// not count that allowance), then the session's record goes. While the store does not answer
// neither waits: the allowance is remembered as a quota change to push, and the store's
// resync after the outage (from ClusterSessions) drops the record.
func (s *Site) endClusterSession(sess *Session, user string, lastLocal bool) {
	if s.cl == nil || user == "" {
		return
	}
	if lastLocal {
		s.mu.Lock()
		rec := s.usage[user]
		s.mu.Unlock()
		rec.settle()
	}
	if !s.cl.usable() {
		return
	}
	s.mu.Lock()
	limited := sess.limited
	s.mu.Unlock()
	if !limited {
		// No login waits for this slot: the record goes with the next batch of ends.
		s.cl.c.EndSessionLater(s.name, sess.id)
		return
	}
	ctx, cancel := s.cl.ctx(context.Background())
	defer cancel()
	if err := s.note(s.cl.c.EndSession(ctx, s.name, sess.id)); err != nil {
		s.log.Info("cluster store did not answer the end of a session; its resync after the outage drops the record",
			"session", sess.id, "err", err.Error())
	}
}

// ClusterSessions returns this node's logged-in sessions of the site as the cluster records
// them (for the store's resync after an outage: sessions that logged in meanwhile get their
// records, and records of sessions that ended meanwhile go). Node is left to the store.
func (s *Site) ClusterSessions() []ClusterSession {
	type counted struct {
		sess *Session
		user string
	}
	s.mu.Lock()
	list := make([]counted, 0, len(s.sessions))
	for _, x := range s.sessions {
		if x.countedUser != "" {
			list = append(list, counted{x, x.countedUser})
		}
	}
	s.mu.Unlock()
	out := make([]ClusterSession, len(list))
	for i, c := range list {
		out[i] = s.clusterSession(c.sess, c.user) // takes the session's lock: not under s.mu
	}
	return out
}
