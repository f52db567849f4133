package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one finding about a configuration file, positioned so a person can fix it
// without guessing: the file, the line and the key path ("sites[0].users[1].allow_from[0]").
// Line is 0 when the key does not appear in the file (e.g. a required section is missing).
type Problem struct {
	File string
	Line int
	Key  string
	Msg  string
}

// String formats the problem like a compiler message:
// `wharf.yaml:12: sites[0].users[1].allow_from[0]: invalid CIDR "10.0.0.300/8"`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is returned by Load and Parse when a configuration is invalid. It carries every
// problem found in one pass, so a person fixes a file in one round trip, not one per error.
type Error struct {
	Problems []Problem
	// Warnings are the non-fatal findings of the same pass, kept so that a caller that
	// prints the errors can print these too.
	Warnings []Problem
}

// Error lists all problems, one per line.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid configuration"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems top-down through the file (stable, so problems on one line
// keep the order in which they were found); problems without a line go last.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
}
