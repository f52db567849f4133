package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The config is decoded by walking the yaml.Node tree ourselves instead of yaml.Unmarshal with
// KnownFields: the library stops at the first unknown key, while we must report every problem
// in one pass, each with its line, and we need to know which keys were present (an absent key
// gets its default, a present one is validated as written).

const (
	// aliasNodes bounds the work done on one document beyond its own size. Aliases let a small
	// file describe an exponentially large tree ("billion laughs"). Every node takes at least
	// one byte of the file, so a document of n bytes without aliases never needs more than n
	// visits: large alias-free configs are never refused, alias expansion is bounded.
	aliasNodes = 1 << 18
	// maxDepth bounds recursion through merge keys, which can be cyclic in the node graph.
	maxDepth = 64
)

// decoder fills the Config structs from a node tree and records where each key was.
type decoder struct {
	file     string
	problems []Problem
	lines    map[string]int  // key path -> line of the key (or of the list item)
	set      map[string]bool // key path -> present with a non-null value
	failed   map[string]bool // key path -> its value could not be decoded
	nodes    int
	limit    int // node visits allowed
	// exhausted is set when the limit was reached; the decoded config is then incomplete and
	// must not be validated (it would produce noise about missing parts).
	exhausted bool
}

func newDecoder(file string, size int) *decoder {
	return &decoder{
		file:   file,
		limit:  size + aliasNodes,
		lines:  map[string]int{},
		set:    map[string]bool{},
		failed: map[string]bool{},
	}
}

// problem records an error at node n.
func (d *decoder) problem(n *yaml.Node, key, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fail records an error and marks key as undecodable, so that validation does not add a
// second, confusing message about the same value.
func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.failed[key] = true
	d.problem(n, key, format, args...)
}

// spend accounts for one visited node and enforces the size and depth limits.
func (d *decoder) spend(n *yaml.Node, key string, depth int) bool {
	if d.exhausted {
		return false
	}
	d.nodes++
	if d.nodes > d.limit {
		d.exhausted = true
		d.fail(n, key, "document too large once aliases are expanded (more than %d values)", d.limit)
		return false
	}
	if depth > maxDepth {
		d.fail(n, key, "nested too deeply (more than %d levels; is a merge key or alias cyclic?)", maxDepth)
		return false
	}
	return true
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	// The parser only creates aliases to anchored non-alias nodes; the bound is a safety net.
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// join builds the key path of a struct field.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapKey builds the key path of a map entry; the key is quoted because folder keys are paths
// that contain dots and slashes.
func mapKey(path, key string) string {
	return path + "[" + strconv.Quote(key) + "]"
}

// record notes the position of a key and whether it carries a value.
func (d *decoder) record(path string, line int, val *yaml.Node) {
	d.lines[path] = line
	if !isNull(resolve(val)) {
		d.set[path] = true
	}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode stores node n into v, reporting problems under key path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if !d.spend(n, path, depth) {
		return
	}
	at := n // the place to point at: an alias use, not the anchor far away
	n = resolve(n)
	if n.Kind == yaml.AliasNode {
		d.fail(at, path, "unresolvable alias")
		return
	}
	if isNull(n) {
		return // null means "not set": the default applies
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(at, path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(at, p.Elem(), path, depth)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(at, n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(at, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			child := path + "[" + strconv.Itoa(i) + "]"
			d.record(child, item.Line, item)
			d.decode(item, s.Index(i), child, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(at, path, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, p := range d.pairs(n, path, depth, func(k string) string { return mapKey(path, k) }) {
			child := mapKey(path, p.key.Value)
			d.record(child, p.key.Line, p.val)
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(p.val, elem, child, depth+1)
			m.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), elem)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(at, path, "expected a string, got %s", describe(n))
			return
		}
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			// Plain scalars that YAML would type otherwise (ids like 1234) are fine as text.
			v.SetString(n.Value)
		default:
			d.fail(at, path, "expected a string, got a value tagged %s", n.ShortTag())
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(at, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(at, path, "expected an integer, got %s", describe(n))
			return
		}
		if n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(at, path, "integer %s is out of range", truncate(n.Value))
			return
		}
		v.SetInt(i)
	default:
		// Only reachable if a field of an unsupported type is added to the structs.
		panic(fmt.Sprintf("config: decoder does not support %s (key %s)", v.Type(), path))
	}
}

// decodeStruct fills the fields of struct v from mapping n by their yaml tags.
func (d *decoder) decodeStruct(at, n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	for _, p := range d.pairs(n, path, depth, func(k string) string { return join(path, k) }) {
		child := join(path, p.key.Value)
		idx, ok := fields[p.key.Value]
		if !ok {
			msg := "unknown key"
			if s := closest(p.key.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += " (valid keys: " + strings.Join(names, ", ") + ")"
			}
			d.problem(p.key, child, "%s", msg)
			continue
		}
		d.record(child, p.key.Line, p.val)
		d.decode(p.val, v.Field(idx), child, depth+1)
	}
}

type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n, with YAML merge keys ("<<: *defaults") expanded:
// explicit keys win over merged ones, and earlier merge sources win over later ones, as the
// merge-key spec says. Duplicate explicit keys are reported (the first one is kept).
func (d *decoder) pairs(n *yaml.Node, path string, depth int, keyPath func(string) string) []pair {
	var out []pair
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problem(n.Content[i], path, "mapping keys must be plain strings, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(n.Content[i], keyPath(k.Value), "duplicate key (first defined at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, val})
	}
	for _, m := range merges {
		if !d.spend(m, path, depth+1) {
			return out
		}
		src := resolve(m)
		var srcs []*yaml.Node
		switch src.Kind {
		case yaml.MappingNode:
			srcs = append(srcs, src)
		case yaml.SequenceNode:
			for _, item := range src.Content {
				if r := resolve(item); r.Kind == yaml.MappingNode {
					srcs = append(srcs, r)
				} else {
					d.fail(item, path, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(r))
				}
			}
		default:
			d.fail(m, path, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(src))
		}
		for _, s := range srcs {
			for _, p := range d.pairs(s, path, depth+1, keyPath) {
				if _, dup := seen[p.key.Value]; dup {
					continue
				}
				seen[p.key.Value] = p.key.Line
				out = append(out, p)
			}
		}
	}
	return out
}

// yamlLineRE extracts the position from the parser's "yaml: line N: msg" errors.
var yamlLineRE = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// parseDocument parses data into its root node. It returns (nil, nil) for an empty document,
// and a single Problem for a syntax error (the parser cannot continue past one).
func parseDocument(data []byte, file string) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxProblem(err, data, file)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err, data, file)
	case len(next.Content) > 0 && !isNull(next.Content[0]):
		// A second document would be silently ignored by the loader; refuse it instead.
		return nil, &Problem{File: file, Line: next.Content[0].Line, Msg: "a second YAML document (after ---) is not allowed; put everything in one document"}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, nil
	}
	return doc.Content[0], nil
}

func syntaxProblem(err error, data []byte, file string) *Problem {
	reported, msg := splitYAMLError(err)
	line := pinpoint(data, msg, reported)
	// The most common cause of tab complaints is a tab used for indentation; say so plainly.
	if line > 0 && (strings.Contains(msg, "tab") || strings.Contains(msg, "cannot start any token")) {
		if l := lineAt(data, line); bytes.IndexByte(l[:len(l)-len(bytes.TrimLeft(l, " \t"))], '\t') >= 0 {
			msg += " (tabs are not allowed for indentation; use spaces)"
		}
	}
	return &Problem{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// splitYAMLError separates the parser's "yaml: line N: msg" into N (0 if absent) and msg.
func splitYAMLError(err error) (int, string) {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(err.Error(), "yaml: ")
}

// pinpoint finds the line of a syntax error. The parser's own line is where the enclosing
// construct started (and is 0-based for some errors), which can be far above the mistake. A
// block-style document cut after any line is still valid YAML up to the mistake, and fails
// with the same message from the mistake on, so a binary search over prefixes (from just
// before the reported line) finds the offending line in a logarithmic number of parses.
func pinpoint(data []byte, msg string, reported int) int {
	var ends []int // ends[i] = length of the prefix holding lines 1..i+1
	for off := 0; off < len(data); {
		next := bytes.IndexByte(data[off:], '\n')
		if next < 0 {
			off = len(data)
		} else {
			off += next + 1
		}
		ends = append(ends, off)
	}
	fails := func(line int) bool {
		err := parseAll(data[:ends[line-1]])
		if err == nil {
			return false
		}
		_, m := splitYAMLError(err)
		return m == msg
	}
	lo, hi := max(reported-1, 1), len(ends)
	if lo > hi || !fails(hi) {
		return reported // not the kind of error this search understands
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// parseAll parses every document of data, returning the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// lineAt returns line n (1-based) of data without its newline, or nil.
func lineAt(data []byte, n int) []byte {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return nil
		}
		data = data[j+1:]
	}
	if j := bytes.IndexByte(data, '\n'); j >= 0 {
		data = data[:j]
	}
	return data
}

// closest returns the candidate nearest to s by edit distance, if it is near enough to be a
// plausible typo, else "".
func closest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
		dist := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestDist < 0 || dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if bestDist < 0 || bestDist > max(2, len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes; keys are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // too long to be a typo of a key; skip the quadratic work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
