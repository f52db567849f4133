package sftp

import (
	"errors"
	"fmt"
	"strings"
)

// errShellSyntax is returned by shellWords in strict mode for a command line that a shell
// would not take as plain words: an expansion, a glob, a redirection, a second command.
var errShellSyntax = errors.New("shell syntax")

// shellWords splits a command line into words the way a POSIX shell would, with quotes and
// backslashes, but without any expansion: nothing here is ever given to a shell.
//
// Lenient (strict false), every other character is taken literally, which is what SCP has
// always had. Strict, a character that a shell would act on outside quotes ($, `, ;, |, &,
// <, >, (, ), *, ?, [, {, }, a newline, and # or ~ starting a word) or $ and ` inside double
// quotes is refused with errShellSyntax, so a command never means something other than what
// the client's shell-quoting meant.
func shellWords(s string, strict bool) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	special := func(ch byte, wordStart bool) error {
		if !strict {
			return nil
		}
		if strings.IndexByte("$`;|&<>()*?[{}\n", ch) >= 0 || wordStart && (ch == '#' || ch == '~') {
			return fmt.Errorf("%w: unquoted %q", errShellSyntax, ch)
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' && !strict:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					c = s[i]
					if c == '\n' {
						continue
					}
				} else if strict && (c == '$' || c == '`') {
					return nil, fmt.Errorf("%w: %q inside double quotes", errShellSyntax, c)
				}
				cur.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated quote")
			}
		default:
			if err := special(ch, !inWord); err != nil {
				return nil, err
			}
			inWord = true
			cur.WriteByte(ch)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
