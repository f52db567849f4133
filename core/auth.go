package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core/config"
)

// sshProtocols are the protocols an SSH login may go on to use.
var sshProtocols = []string{ProtoSFTP, ProtoSCP}

// AuthPassword checks a password attempt (SSH password, FTP PASS). It returns nil when the
// user is authenticated, a *PartialAuthError when the user's auth_methods need another step,
// and an error of kind ErrAuth otherwise (the same for an unknown user, a wrong password and a
// refused protocol, so users cannot be enumerated).
func (s *Session) AuthPassword(ctx context.Context, name, password string) error {
	return s.authenticate(ctx, name, MethodPassword, OnAuthPassword, passwordCheck(password))
}

// passwordCheck is AuthPassword's check.
func passwordCheck(password string) func(*User, *hashWork) bool {
	return func(u *User, w *hashWork) bool {
		if u == nil {
			w.password = password // padded like a wrong password
			return false
		}
		return w.check(u.passwordHash, password)
	}
}

// AuthPublicKey checks a public key (or a certificate) whose signature the adapter verified.
func (s *Session) AuthPublicKey(ctx context.Context, name string, key ssh.PublicKey) error {
	return s.authenticate(ctx, name, MethodPublicKey, OnAuthPKI, func(u *User, _ *hashWork) bool {
		if u == nil {
			return false
		}
		if err := s.keyAllowed(u, key); err != nil {
			s.Logger().Info("public key refused", "login", name, "key", ssh.FingerprintSHA256(key), "reason", err.Error())
			return false
		}
		return true
	})
}

// AcceptsKey reports whether a public-key query (before any signature) should be answered
// "go ahead": the key is the user's, a trusted authority's certificate for the user, or a
// script may authenticate keys. A refused certificate from a trusted authority is logged
// with why (expired, wrong principal, …): clients ask before they sign, so the login itself
// never gets to say it.
func (s *Session) AcceptsKey(name string, key ssh.PublicKey) bool {
	if u, ok := s.site.LookupUser(name); ok {
		err := s.keyAllowed(u, key)
		if err == nil {
			return true
		}
		if _, isCert := key.(*ssh.Certificate); isCert {
			// Anyone can make a certificate; only a trusted authority's is worth a line.
			level := slog.LevelInfo
			if errors.Is(err, errUntrustedCert) {
				level = slog.LevelDebug
			}
			s.Logger().Log(context.Background(), level, "certificate refused", "login", name, "reason", err.Error())
		}
	}
	return s.site.events.Handles(OnAuthPKI, s.site.namedUser(name))
}

// keyAllowed says whether key logs in as u from the session's address: one of the user's keys
// whose from= allows the address, or a certificate that a trusted authority issued for u.
func (s *Session) keyAllowed(u *User, key ssh.PublicKey) error {
	if cert, ok := key.(*ssh.Certificate); ok {
		cas := s.site.cfg.Load().userCAs
		if cas == nil {
			return errors.New("certificates are not accepted (ssh.trusted_user_ca_keys is not set)")
		}
		return cas.check(cert, u.ID, s.ip, s.site.now())
	}
	want := key.Marshal()
	refused := errors.New("not one of the user's keys")
	for _, k := range u.keys(s.Logger()) {
		if !bytes.Equal(k.Key.Marshal(), want) {
			continue
		}
		if k.Allows(s.ip) {
			return nil
		}
		// As sshd, go on: the key may be listed again with other options.
		refused = fmt.Errorf("from=%q does not allow %s", k.From, s.ip)
	}
	return refused
}

// InteractiveQuestions returns the keyboard-interactive prompts for a user: those that
// OnAuthInteractiveSetQuestions scripts added, in ascending pos, or one password prompt.
func (s *Session) InteractiveQuestions(ctx context.Context, name string) ([]Question, error) {
	if err := s.authRequest(ctx, name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.questions = nil
	s.mu.Unlock()
	s.fire(ctx, OnAuthInteractiveSetQuestions, "", "")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.questions) == 0 {
		s.questions = []Question{{Pos: 0, Prompt: "Password: ", kind: questionPassword}}
	}
	return append([]Question(nil), s.questions...), nil
}

// AuthInteractive checks the answers to the questions InteractiveQuestions returned.
func (s *Session) AuthInteractive(ctx context.Context, name string, answers []string) error {
	s.mu.Lock()
	qs := s.questions
	s.questions = nil
	s.mu.Unlock()
	return s.authenticate(ctx, name, MethodInteractive, OnAuthInteractive, s.answersCheck(qs, answers))
}

// answersCheck is AuthInteractive's check.
func (s *Session) answersCheck(qs []Question, answers []string) func(*User, *hashWork) bool {
	return func(u *User, w *hashWork) bool {
		results := make([]bool, len(qs))
		defer func() { s.recordAnswers(qs, results) }()
		if u == nil || len(qs) == 0 || len(answers) != len(qs) {
			return false // padded like a wrong password
		}
		ok := true
		for i, q := range qs {
			// Check every answer even after a failure so timing does not tell which one was wrong.
			results[i] = s.checkAnswer(u, q, answers[i], w)
			ok = results[i] && ok
		}
		if ok {
			s.consumeTOTP(qs, answers)
		}
		return ok
	}
}

// checkAnswer checks one keyboard-interactive answer, recording password hashing in w.
func (s *Session) checkAnswer(u *User, q Question, answer string, w *hashWork) bool {
	switch q.kind {
	case questionPassword:
		return w.check(u.passwordHash, answer)
	case questionTOTP:
		s.mu.Lock()
		used := s.totpUsed[answer]
		s.mu.Unlock()
		return checkTOTP(u.TOTPSecret, answer, s.site.now()) && !used
	default:
		return answer == q.answer
	}
}

// consumeTOTP marks the TOTP codes of a successful attempt as used: a code is accepted once
// per session, and a failed attempt does not burn it.
func (s *Session) consumeTOTP(qs []Question, answers []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range qs {
		if q.kind == questionTOTP {
			if s.totpUsed == nil {
				s.totpUsed = map[string]bool{}
			}
			s.totpUsed[answers[i]] = true
		}
	}
}

// BeginAuth is called when a client names the user it will authenticate as (FTP USER); it
// fires OnAuthRequest, which a script may use to refuse. The SSH adapter need not call it: the
// first attempt for a user does the same.
func (s *Session) BeginAuth(ctx context.Context, name string) error {
	return s.authRequest(ctx, name)
}

// authRequest fires OnAuthRequest once per user name and applies a block. It records the
// command text from WithCommand ("PASS ****"), else "AUTH <user>".
func (s *Session) authRequest(ctx context.Context, name string) error {
	if s.Closed() {
		return opErr("auth", "", ErrClosed, nil)
	}
	cmd := "AUTH " + name
	if c, ok := ctx.Value(commandKey).(string); ok {
		cmd = c
	}
	s.RecordCommand(cmd)
	if name == "" {
		return s.authFailed(ctx, name, "", errors.New("empty user name"))
	}
	s.mu.Lock()
	if s.authName != name {
		// A new user name starts over: no chain steps, and no acceptance a script gave the
		// previous name.
		s.authName, s.authSteps, s.scriptAuth = name, nil, false
	}
	first := s.authRequested != name
	s.authRequested = name
	s.mu.Unlock()
	if first && s.gate(ctx, OnAuthRequest, "", "") {
		s.takeScriptAuth()
		return s.authFailed(ctx, name, "", s.scriptRefusal(OnAuthRequest))
	}
	return nil
}

// authenticate is the pipeline every method shares: request event, built-in check, the
// method's event (which may block or accept), subsystem and address rules, multi-step chains,
// session limits, then OnAuthSuccess or OnAuthFail. check returns whether the credentials
// match, checking passwords through w. Every failure after the check is padded to the same
// hashing work (see hashWork), also one refused for another reason after a right password:
// its time must not say that the password was right.
func (s *Session) authenticate(ctx context.Context, name, method string, ev EventName, check func(u *User, w *hashWork) bool) error {
	if err := s.authRequest(ctx, name); err != nil {
		return err
	}
	if s.User() != nil {
		return opErr("auth", "", ErrAuth, errors.New("already authenticated"))
	}
	sc := s.site.cfg.Load()
	u, known := sc.users[name]
	var candidate *User
	if known {
		candidate = u
	}
	// Password hashes are made to be expensive (argon2id takes 19 MiB): a burst of login
	// attempts must queue for the CPU instead of exhausting memory.
	if err := s.site.acquireHashSlot(ctx); err != nil {
		return s.authFailed(ctx, name, method, err)
	}
	// A public key's check hashes no password, and its time tells nothing about one.
	w := &hashWork{padded: method == MethodPublicKey}
	ok := check(candidate, w)
	if !ok && !w.padded {
		w.pad(sc.dummies)
	}
	s.site.releaseHashSlot(w.memoryHard)
	fail := func(why error) error {
		if !w.padded {
			s.site.padHashes(ctx, w, sc.dummies)
		}
		return s.authFailed(ctx, name, method, why)
	}
	blocked := s.gate(ctx, ev, "", "")
	byScript := s.takeScriptAuth()
	switch {
	case blocked:
		return fail(s.scriptRefusal(ev))
	case byScript && !known:
		if sc.catchAll == nil {
			return fail(errors.New("script accepted an unknown user but the site has no catch-all user"))
		}
		// The id becomes part of host paths ({user} in vfs roots): it must be a plain name.
		if err := config.ValidUserID(name); err != nil || name == "*" {
			return fail(fmt.Errorf("script accepted an invalid user id: %v", err))
		}
		u, known, ok = sc.catchAll.withID(name), true, true
	case byScript:
		ok = true
	}
	if !known || !ok {
		return fail(errors.New("invalid credentials"))
	}
	if !u.allowedFrom(s.ip) {
		return fail(refusal(ByAllowFrom, "address not in the user's allow_from"))
	}
	if !s.protocolAllowed(u) {
		return fail(refusal(BySubsystems, "protocol "+s.Protocol()+" not in the user's subsystems"))
	}
	// Multi-step chains: the method must continue one of the user's chains.
	s.mu.Lock()
	steps := append(append([]string(nil), s.authSteps...), method)
	s.mu.Unlock()
	next, complete := chainProgress(u.chains, steps)
	if !complete && len(next) == 0 {
		return fail(refusal(ByMethods, "method "+method+" not allowed for this user"))
	}
	if !complete {
		s.mu.Lock()
		s.authSteps = steps
		s.mu.Unlock()
		s.Logger().Info("authentication step passed", "login", name, "method", method, "next", next)
		return &PartialAuthError{Next: next}
	}
	return s.authSucceeded(ctx, u, steps)
}

func (s *Session) protocolAllowed(u *User) bool {
	p := s.Protocol()
	if p == ProtoSFTP || p == ProtoSCP {
		return u.mayUseFamily(sshProtocols)
	}
	return u.MayUse(p)
}

// chainProgress returns which methods may come next and whether a chain is complete.
func chainProgress(chains [][]string, steps []string) (next []string, complete bool) {
	for _, c := range chains {
		if len(steps) > len(c) || !slices.Equal(c[:len(steps)], steps) {
			continue
		}
		if len(c) == len(steps) {
			return nil, true
		}
		if !slices.Contains(next, c[len(steps)]) {
			next = append(next, c[len(steps)])
		}
	}
	return next, false
}

func (s *Session) authSucceeded(ctx context.Context, u *User, steps []string) error {
	err := s.site.claimUserSlot(ctx, s, u)
	if err != nil {
		// The credentials were right: a session limit is no abuse, and the connection that
		// ends now must not count as one that never tried to log in.
		s.judged.Store(true)
		s.Logger().Warn("login refused", "user", u.ID, "reason", err.Error())
		s.RecordError(err)
		lerr := opErr("auth", "", ErrLimit, err)
		s.site.observe(&Fact{Kind: FactLogin, Session: s, User: u.ID, Method: joinSteps(steps), Reason: err.Error(), Err: lerr})
		s.fire(ctx, OnAuthFail, "", "")
		return lerr
	}
	table, pol, err := s.site.mountTable(u)
	if err != nil {
		s.site.unregisterUser(s)
		s.Logger().Error("cannot open the user's file systems", "user", u.ID, "err", err)
		return opErr("auth", "", ErrFailure, err)
	}
	q, err := s.site.quotaUsage(ctx, u, table)
	if err != nil {
		s.site.unregisterUser(s)
		s.Logger().Error("cannot compute quota usage", "user", u.ID, "err", err)
		return opErr("auth", "", ErrFailure, err)
	}
	s.mu.Lock()
	s.user, s.table, s.policy, s.quota = u, table, pol, q
	s.bw = s.site.bandwidthFor(u)
	s.authSteps = nil
	s.log = nil
	s.mu.Unlock()
	s.Logger().Info("login", "method", joinSteps(steps))
	s.site.observe(&Fact{Kind: FactLogin, Session: s, Method: joinSteps(steps)})
	s.fire(ctx, OnAuthSuccess, "", "")
	return nil
}

func (s *Session) authFailed(ctx context.Context, name, method string, why error) error {
	s.Logger().Info("authentication failed", "login", name, "method", method, "reason", why.Error())
	err := opErr("auth", "", ErrAuth, why)
	s.RecordError(err)
	s.site.observe(&Fact{Kind: FactLogin, Session: s, User: name, Method: method, Reason: why.Error(), Err: err})
	s.fire(ctx, OnAuthFail, "", "")
	s.judged.Store(true)
	s.site.Strike(ctx, s.ip, "failed login", s)
	return err
}

func joinSteps(steps []string) string {
	out := ""
	for i, s := range steps {
		if i > 0 {
			out += "+"
		}
		out += s
	}
	return out
}
