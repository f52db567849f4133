package ftp

import (
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
)

// TestScenarios runs the cross-protocol scenario kit over plain FTP, explicit FTPS and
// implicit FTPS (with tls_session_reuse at its default, required: the test client resumes).
func TestScenarios(t *testing.T) {
	for _, m := range []mode{modePlain, modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) { coretest.Run(t, protocol(m)) })
	}
}
