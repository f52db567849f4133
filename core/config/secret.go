package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secret says where the value of a script secret (GetSecret) comes from: an environment
// variable ({env: NAME}) or a file ({file: path}, its content less a final newline). The
// value itself is never written in the config, which is printed, copied and kept in version
// control; the config only names where it is.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"` // absolute after loading
}

// UnmarshalYAML implements yaml.Unmarshaler. It decodes the mapping itself so that no
// message can quote what is written there: a value in the wrong place may be the secret.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("a secret's value cannot be written in the config: give {env: NAME} or {file: path}")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			return fmt.Errorf("a secret is {env: NAME} or {file: path}")
		}
		var dst *string
		switch k.Value {
		case "env":
			dst = &s.Env
		case "file":
			dst = &s.File
		default:
			return fmt.Errorf("unknown key %q in a secret (valid keys: env, file)", truncate(k.Value))
		}
		if *dst != "" {
			return fmt.Errorf("duplicate key %q in a secret", k.Value)
		}
		*dst = v.Value
	}
	switch {
	case s.Env == "" && s.File == "":
		return fmt.Errorf("a secret needs env: NAME or file: path")
	case s.Env != "" && s.File != "":
		return fmt.Errorf("a secret takes env or file, not both")
	case s.Env != "" && !validEnvName(s.Env):
		return fmt.Errorf("invalid environment variable name %q (letters, digits and _, not starting with a digit)", truncate(s.Env))
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler: a secret prints as where it comes from.
func (s Secret) MarshalYAML() (any, error) {
	if s.Env != "" {
		return map[string]string{"env": s.Env}, nil
	}
	return map[string]string{"file": s.File}, nil
}

func validEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != "" && !strings.ContainsRune(s, '=')
}

// checkScripting validates scripting.allowed_roots and secrets. A secret's file must exist
// (a typo is reported at start); the script engine reads the values, and warns of a variable
// that is not set.
func (c *checker) checkScripting(key string, s *Site) {
	for i, r := range s.Scripting.AllowedRoots {
		rk := key + ".scripting.allowed_roots[" + strconv.Itoa(i) + "]"
		if r == "" {
			c.errorf(rk, "empty folder name")
			continue
		}
		r = c.abs(r)
		s.Scripting.AllowedRoots[i] = r
		fi, err := os.Stat(r)
		switch {
		case err != nil:
			c.errorf(rk, "folder not found: %s", r)
		case !fi.IsDir():
			c.errorf(rk, "not a folder: %s", r)
		case filepath.Dir(r) == r:
			c.warnf(rk, "scripts may reach every file of the host: %s is the root of the file system", r)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
		sk := mapKey(key+".secrets", name)
		sec := s.Secrets[name]
		if name == "" {
			c.errorf(sk, "a secret needs a name")
		}
		if c.bad(sk) {
			continue
		}
		if sec.File != "" {
			sec.File = c.abs(sec.File)
			s.Secrets[name] = sec
			c.mustExist(sk+".file", sec.File)
		}
	}
}
