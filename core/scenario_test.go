package core_test

import (
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
)

// TestScenarios runs the cross-protocol scenario kit straight against the core.
func TestScenarios(t *testing.T) {
	coretest.Run(t, coretest.Direct())
}
