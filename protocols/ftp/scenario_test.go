package ftp

import (
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
)

// TestScenarios runs the cross-protocol scenario kit over plain FTP, explicit FTPS and
// implicit FTPS (with tls_session_reuse at its default, required: the test client resumes).
func TestScenarios(t *testing.T) {
	for _, m := range []mode{modePlain, modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) { coretest.Run(t, protocol(m)) })
	}
}

// TestScenariosS3 runs the kit with the files in object storage, over plain FTP, explicit
// and implicit FTPS.
func TestScenariosS3(t *testing.T) {
	for _, m := range []mode{modePlain, modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) { s3kit.Run(t, protocol(m)) })
	}
}
