package main

import (
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core/config"
)

// A user whose only credentials are keys in an authorized_keys file, or certificates of a
// trusted authority, can log in: check must not refuse it as it refuses a user with none.
func TestUsersWhoCannotLogInCountsKeyFilesAndCertificates(t *testing.T) {
	cfg := &config.Config{File: "wharf.yaml", Sites: []config.Site{{
		Users: []config.User{{ID: "nothing"}, {ID: "keyfile", AuthorizedKeysFile: "/etc/wharf/keys"}},
	}}}
	got := usersWhoCannotLogIn(cfg)
	if len(got) != 1 || !strings.Contains(got[0], `"nothing"`) {
		t.Fatalf("users who cannot log in: %q, want only \"nothing\"", got)
	}
	cfg.Sites[0].SSH.TrustedUserCAKeys = "/etc/wharf/user_ca.pub"
	if got := usersWhoCannotLogIn(cfg); len(got) != 0 {
		t.Fatalf("with a trusted user CA: %q, want none", got)
	}
}
