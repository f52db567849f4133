package config

import (
	"path/filepath"
	"testing"
)

func TestSecretsAndAllowedRoots(t *testing.T) {
	dir := t.TempDir()
	cfg := mustParse(t, head+`    scripting:
      allowed_roots: [., `+dir+`]
    secrets:
      token: {env: WHARF_TEST_TOKEN}
      key: {file: scripts/log-session.lua}
`, testDir)
	s := cfg.Sites[0]
	abs, _ := filepath.Abs(testDir)
	if got := s.Scripting.AllowedRoots; len(got) != 2 || got[0] != abs || got[1] != dir {
		t.Errorf("allowed_roots = %v", got)
	}
	if got := s.Secrets["key"].File; got != filepath.Join(abs, "scripts", "log-session.lua") {
		t.Errorf("secret file = %q", got)
	}
	if s.Secrets["token"].Env != "WHARF_TEST_TOKEN" {
		t.Errorf("secrets = %+v", s.Secrets)
	}
	out, err := s.Secrets["token"].MarshalYAML()
	if err != nil || out.(map[string]string)["env"] != "WHARF_TEST_TOKEN" {
		t.Errorf("MarshalYAML = %v, %v", out, err)
	}
}
