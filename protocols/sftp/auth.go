package sftp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
)

// errAuthFailed is the one failure every method returns, whatever the reason (unknown user,
// wrong secret, refused protocol, blocked by a script), so clients cannot enumerate users.
// The core logs the real reason.
var errAuthFailed = errors.New("authentication failed")

// authenticator connects x/crypto/ssh's authentication callbacks to one session.
type authenticator struct {
	sess    *core.Session
	ctx     context.Context
	version sync.Once
}

// seen records the client's identification at the first callback, so authentication
// events can already read Session.GetClientVersion().
func (a *authenticator) seen(c ssh.ConnMetadata) {
	a.version.Do(func() { a.sess.SetClientVersion(string(c.ClientVersion())) })
}

func (a *authenticator) password(c ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
	a.seen(c)
	return a.result(a.sess.AuthPassword(a.ctx, c.User(), string(password)))
}

// publicKeyQuery answers "would this key do?" before the client proves it owns the key.
// Nothing is recorded here: the client may not own the key (CVE-2024-45337); the login
// happens in verifiedPublicKey.
func (a *authenticator) publicKeyQuery(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	a.seen(c)
	if a.sess.AcceptsKey(c.User(), key) {
		return nil, nil
	}
	return nil, errAuthFailed
}

// verifiedPublicKey runs after the signature checked out.
func (a *authenticator) verifiedPublicKey(c ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	return a.result(a.sess.AuthPublicKey(a.ctx, c.User(), key))
}

// interactive asks all the session's questions (scripts may add several) in one challenge.
func (a *authenticator) interactive(c ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	a.seen(c)
	qs, err := a.sess.InteractiveQuestions(a.ctx, c.User())
	if err != nil {
		return a.result(err)
	}
	prompts := make([]string, len(qs))
	echos := make([]bool, len(qs))
	for i, q := range qs {
		prompts[i], echos[i] = q.Prompt, q.Echo
	}
	answers, err := challenge("", "", prompts, echos)
	if err != nil {
		return nil, fmt.Errorf("keyboard-interactive: %w", err)
	}
	return a.result(a.sess.AuthInteractive(a.ctx, c.User(), answers))
}

// result turns the core's answer into what x/crypto/ssh expects.
func (a *authenticator) result(err error) (*ssh.Permissions, error) {
	if err == nil {
		return &ssh.Permissions{}, nil
	}
	var partial *core.PartialAuthError
	if errors.As(err, &partial) {
		return nil, &ssh.PartialSuccessError{Next: a.callbacks(partial.Next)}
	}
	if core.IsStoreDown(err) {
		return nil, &ssh.BannerError{Err: errAuthFailed, Message: msgStoreDown}
	}
	if errors.Is(err, core.ErrLimit) {
		// The credentials were right, so saying why is safe, and the user needs to know that
		// closing another session helps. An SSH failure carries no text: send a banner, which
		// OpenSSH prints and Go clients get in their BannerCallback.
		return nil, &ssh.BannerError{Err: errAuthFailed, Message: msgSessionLimit}
	}
	return nil, errAuthFailed
}

// msgSessionLimit tells a client why a correct login was refused; it ends with the core's
// ErrLimit text so tools that match error texts recognise it.
const msgSessionLimit = "Login refused: this user already has the maximum number of sessions open; " +
	"close one and retry (too many connections).\r\n"

// msgStoreDown tells a client with correct credentials that the node refuses logins while
// the cluster store cannot be reached (cluster.on_store_down: refuse).
const msgStoreDown = "Login refused: the cluster store cannot be reached; new logins are refused, retry later.\r\n"

// callbacks offers only the methods that may continue the user's chain.
func (a *authenticator) callbacks(methods []string) ssh.ServerAuthCallbacks {
	var cb ssh.ServerAuthCallbacks
	for _, m := range methods {
		switch m {
		case core.MethodPassword:
			cb.PasswordCallback = a.password
		case core.MethodPublicKey:
			// The signature is then checked by ServerConfig.VerifiedPublicKeyCallback.
			cb.PublicKeyCallback = a.publicKeyQuery
		case core.MethodInteractive:
			cb.KeyboardInteractiveCallback = a.interactive
		}
	}
	return cb
}
