package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/core/config"
)

// loaderKeys returns every key the loader accepts, as dotted paths from the top of the file:
// a list of mappings adds nothing to the path ("sites.users.id"), a map with free keys adds
// "*" ("sites.users.folders.*.vfs"). Types with their own YAML form (durations, sizes, CIDRs,
// port ranges) are leaves.
func loaderKeys(t reflect.Type, prefix string, out map[string]bool) {
	unmarshaler := reflect.TypeFor[yaml.Unmarshaler]()
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Map:
		out[prefix+"*"] = true
		loaderKeys(t.Elem(), prefix+"*.", out)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out[prefix+name] = true
			loaderKeys(f.Type, prefix+name+".", out)
		}
	}
}

// docSections maps each heading of docs/configuration.md that has a key table to the paths
// its keys are under. A new section with a key table needs a line here (the test says so).
var docSections = map[string][]string{
	"Top level":                          {""},
	"`log`":                              {"log."},
	"Sites":                              {"sites."},
	"`listeners`":                        {"sites.listeners."},
	"`ssh`":                              {"sites.ssh."},
	"`ftp`":                              {"sites.ftp."},
	"`tls`":                              {"sites.tls."},
	"`limits`":                           {"sites.limits."},
	"`protector`":                        {"sites.protector."},
	"`names`":                            {"sites.names."},
	"`vfs`":                              {"sites.vfs."},
	"`users`":                            {"sites.users."},
	"Mounts: `home` and `folders`":       {"sites.users.home.", "sites.users.folders.*."},
	"`scripts_dir` and `event_handlers`": {"sites.event_handlers.", "sites.users.event_handlers."},
	"`metrics`":                          {"metrics."},
	"`audit`":                            {"audit."},
	"`reload`":                           {"reload."},
	"`scripting` (per site)":             {"sites.scripting."},
	"`scripting`":                        {"scripting."},
	"`smtp`":                             {"smtp.", "sites.smtp."},
	"`secrets`":                          {"sites.secrets."},
	"`cluster`":                          {"cluster."},
}

// docTableKeys returns the keys of the "| key | …" tables of the doc, with their paths.
func docTableKeys(t *testing.T, doc string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	heading := regexp.MustCompile(`^#+ (.*)$`)
	cell := regexp.MustCompile("`([^`]+)`")
	var prefixes []string
	section, inKeyTable := "", false
	for _, line := range strings.Split(doc, "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			section, prefixes, inKeyTable = m[1], docSections[m[1]], false
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inKeyTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		first := strings.TrimSpace(cells[0])
		if first == "key" {
			if prefixes == nil {
				t.Errorf("docs/configuration.md section %q has a key table the test does not know: add it to docSections", section)
			}
			inKeyTable = true
			continue
		}
		if !inKeyTable || strings.HasPrefix(first, "---") {
			continue
		}
		names := cell.FindAllStringSubmatch(first, -1)
		if len(names) == 0 {
			t.Errorf("docs/configuration.md section %q: a key row without a `key`: %s", section, line)
		}
		for _, n := range names {
			for _, p := range prefixes {
				keys[p+n[1]] = true
			}
		}
	}
	return keys
}

// yamlKeys returns the key paths of a YAML document, with the same conventions as
// loaderKeys; the keys of mapKeys' mappings (free-form names) are "*".
func yamlKeys(n *yaml.Node, prefix string, mapKeys map[string]bool, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			yamlKeys(c, prefix, mapKeys, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			yamlKeys(c, prefix, mapKeys, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if mapKeys[strings.TrimSuffix(prefix, ".")] {
				k = "*"
			}
			out[prefix+k] = true
			yamlKeys(n.Content[i+1], prefix+k+".", mapKeys, out)
		}
	}
}

// hasChildren reports whether keys holds a key below p.
func hasChildren(keys map[string]bool, p string) bool {
	for k := range keys {
		if strings.HasPrefix(k, p+".") {
			return true
		}
	}
	return false
}

func diffKeys(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestConfigDocsMatchLoader is issue #23 item 10: docs/configuration.md documents exactly
// the keys the loader accepts, in its tables and in its complete example ("every key is
// shown"), so that neither can drift from the other.
func TestConfigDocsMatchLoader(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	loader := map[string]bool{}
	loaderKeys(reflect.TypeFor[config.Config](), "", loader)
	if !loader["sites.users.folders.*.permissions"] || !loader["sites.protector.max_bans"] {
		t.Fatalf("the loader's keys were not walked right: %v", loader)
	}

	tables := docTableKeys(t, doc)
	// Documented as "bandwidth.upload": the parent mapping is a key too.
	for k := range tables {
		for p := k; strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			if loader[p] && !tables[p] {
				tables[p] = true
			}
		}
	}
	if extra := diffKeys(tables, loader); len(extra) > 0 {
		t.Errorf("docs/configuration.md tables document keys the loader does not accept: %q", extra)
	}
	if missing := diffKeys(loader, tables); len(missing) > 0 {
		t.Errorf("the loader accepts keys docs/configuration.md's tables do not document: %q", missing)
	}

	m := regexp.MustCompile("(?s)## Complete annotated example.*?```yaml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/configuration.md has no complete example")
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(m[1]), &root); err != nil {
		t.Fatalf("the complete example is not YAML: %v", err)
	}
	example := map[string]bool{}
	yamlKeys(&root, "", map[string]bool{"sites.users.folders": true, "sites.secrets": true}, example)
	// A value the loader reads as one (a secret's {env: NAME}) is not keys of its own.
	for k := range example {
		for p := k; strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			if loader[p] && !hasChildren(loader, p) {
				delete(example, k)
				break
			}
		}
	}
	if extra := diffKeys(example, loader); len(extra) > 0 {
		t.Errorf("the complete example uses keys the loader does not accept: %q", extra)
	}
	if missing := diffKeys(loader, example); len(missing) > 0 {
		t.Errorf("the complete example says every key is shown, but lacks: %q", missing)
	}
	// And the loader takes it (its scripts and shared folder aside, which are files; the
	// secrets it names are set here).
	t.Setenv("WHARF_SMTP_PASSWORD", "example")
	t.Setenv("PARTNER_SMTP_PASSWORD", "example")
	t.Setenv("WHARF_S3_ACCESS_KEY", "example")
	t.Setenv("WHARF_S3_SECRET_KEY", "example")
	t.Setenv("WHARF_CLUSTER_DSN", "postgres://wharf@db.example/wharf")
	if _, err := config.Parse([]byte(m[1]), "example.yaml", t.TempDir()); err != nil {
		for _, p := range err.(*config.Error).Problems {
			if !strings.Contains(p.Msg, "not found") {
				t.Errorf("the complete example does not load: %s", p)
			}
		}
	}
}
