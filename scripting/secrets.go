package scripting

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core/config"
)

// secrets are the values of a site's secrets (config secrets:), read when the scripts are
// loaded: from the environment, or from a file (less a final line break). A secret that
// cannot be read is "" and a warning names it, never its value.
type secrets struct {
	values map[string]string
	// redactable are the values that log lines and errors have replaced, longest first (so
	// that a secret containing another is replaced whole).
	redactable []string
}

// minRedact is the shortest secret value that is replaced in logs: replacing every "ab"
// would make logs unreadable and tell which two letters a secret is.
const minRedact = 4

// redacted replaces a secret in logs and errors.
const redacted = "[secret]"

// loadSecrets reads a site's secrets; warnings name those that could not be read.
func loadSecrets(site *config.Site) (*secrets, []string) {
	s := &secrets{values: make(map[string]string, len(site.Secrets))}
	var warnings []string
	for _, name := range slices.Sorted(maps.Keys(site.Secrets)) {
		src := site.Secrets[name]
		var val string
		switch {
		case src.Env != "":
			v, ok := os.LookupEnv(src.Env)
			if !ok {
				warnings = append(warnings, fmt.Sprintf("secret %q: environment variable %s is not set", name, src.Env))
			}
			val = v
		case src.File != "":
			b, err := os.ReadFile(src.File)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("secret %q: cannot read %s: %v", name, src.File, unwrapPath(err)))
			}
			val = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		}
		s.values[name] = val
		if len(val) >= minRedact {
			s.redactable = append(s.redactable, val)
		}
	}
	slices.SortFunc(s.redactable, func(a, b string) int { return len(b) - len(a) })
	return s, warnings
}

// RedactedValues returns the values of secrets that the engine replaces in logs and errors,
// longest first, read as a load reads them (one that cannot be read is left out), so that a
// tool printing what a script did can hide the same values.
func RedactedValues(secrets map[string]config.Secret) []string {
	s, _ := loadSecrets(&config.Site{Secrets: secrets})
	return s.redactable
}

// redact replaces the values of the current load's secrets in a text bound for a log or an
// error message.
func (e *Engine) redact(text string) string {
	set := e.set.Load()
	if set == nil || set.secrets == nil {
		return text
	}
	for _, v := range set.secrets.redactable {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, redacted)
		}
	}
	return text
}

// getSecret is GetSecret(name): the secret's value, "" for a name the config does not define.
func (v *vm) getSecret(L *lua.LState) int {
	name := L.CheckString(1)
	set := v.e.set.Load()
	val := ""
	if set != nil && set.secrets != nil {
		val = set.secrets.values[name]
	}
	L.Push(lua.LString(val))
	return 1
}
