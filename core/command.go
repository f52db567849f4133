package core

import (
	"context"
	"errors"
)

// OpenCommand is called by an adapter before it runs a command that a client sent over SSH
// exec and that is no protocol of its own (the checksum commands: md5sum and the like). It
// records command as the last command, needs a logged-in user who may use SFTP or SCP (the
// SSH login already did), and fires BeforeOpenCmd, which a script may use to refuse. A
// refusal is of kind ErrDenied. What the command then does goes through the session's
// operations (Hash), with their own checks.
func (s *Session) OpenCommand(ctx context.Context, command string) error {
	const op = "open command"
	s.RecordCommand(command)
	if s.Closed() {
		return opErr(op, "", ErrClosed, nil)
	}
	u := s.User()
	if u == nil {
		return s.fail(opErr(op, "", ErrDenied, errors.New("not authenticated")))
	}
	if !u.mayUseFamily(sshProtocols) {
		return s.fail(opErr(op, "", ErrDenied, errors.New("neither SFTP nor SCP is in the user's subsystems")))
	}
	if s.gate(ctx, BeforeOpenCmd, "", "") {
		return s.fail(opErr(op, "", ErrDenied, errors.New("blocked by "+string(BeforeOpenCmd)+" script")))
	}
	return nil
}
