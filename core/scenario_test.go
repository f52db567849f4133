package core_test

import (
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/core/coretest/s3kit"
)

// TestScenarios runs the cross-protocol scenario kit straight against the core.
func TestScenarios(t *testing.T) {
	coretest.Run(t, coretest.Direct())
}

// TestScenariosS3 runs the kit straight against the core with the files in object storage.
func TestScenariosS3(t *testing.T) {
	s3kit.Run(t, coretest.Direct())
}
