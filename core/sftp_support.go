package core

import (
	"context"
	"strings"
)

// OpenSubsystem is called by an adapter when an authenticated client asks to start a
// protocol inside its connection (SSH: the "sftp" subsystem, or an "scp" exec). It records
// command as the last command, checks that the user may use protocol, and fires the gate event
// (BeforeOpenSFTP for SFTP, BeforeOpenCmd for anything else). A refusal is of kind ErrDenied.
func (s *Session) OpenSubsystem(ctx context.Context, protocol, command string) error {
	op := "open " + strings.ToLower(protocol)
	s.RecordCommand(command)
	if s.Closed() {
		return opErr(op, "", ErrClosed, nil)
	}
	u := s.User()
	if u == nil {
		return s.fail(opErr(op, "", ErrDenied, refusal(ByAuth, "not authenticated")))
	}
	if !u.MayUse(protocol) {
		return s.fail(opErr(op, "", ErrDenied, refusal(BySubsystems, "protocol "+protocol+" not in the user's subsystems")))
	}
	ev := BeforeOpenCmd
	if protocol == ProtoSFTP {
		ev = BeforeOpenSFTP
	}
	if s.gate(ctx, ev, "", "") {
		return s.fail(opErr(op, "", ErrDenied, s.scriptRefusal(ev)))
	}
	return nil
}
