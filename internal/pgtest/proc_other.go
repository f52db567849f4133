//go:build !linux

package pgtest

import (
	"errors"
	"syscall"
)

func (s *Server) procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: s.owner}
}

func childrenOf(int) ([]int, error) { return nil, errors.New("pgtest: Pause needs Linux's /proc") }
