package coretest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedBinary returns the path of an external client (sftp, lftp, curl, …). The test is
// skipped when it is missing, and fails instead when WHARF_E2E=1 says the environment must
// have it (as CI does after installing the clients).
func NeedBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("WHARF_E2E=1 but %s is not installed: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}
