package config

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

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

// checkSiteScripting validates a site's scripting.allowed_roots and secrets. A secret's file
// must exist (a typo is reported at start); the script engine reads the values, and warns of
// a variable that is not set.
func (c *checker) checkSiteScripting(key string, s *Site) {
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
		if sec.Inline() {
			// Not quoted: what is written there may be the secret itself.
			c.errorf(sk, "a secret's value cannot be written in the config: give {env: NAME} or {file: path}")
			continue
		}
		if sec.File != "" {
			sec.File = c.abs(sec.File)
			s.Secrets[name] = sec
			c.mustExist(sk+".file", sec.File)
		}
	}
}
