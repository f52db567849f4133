package jscompat

import (
	"unicode/utf8"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/js"
)

// The parser's syntax tree carries no positions, so the translator finds them in a token
// list of the same source: literals (whose bytes are slices of the same buffer) exactly, and
// keywords and names by searching forward from the last position found, which follows the
// source order the translator walks the tree in.

type token struct {
	tt        js.TokenType
	text      []byte
	line, col int
}

// tokens lexes src (which must be the buffer the parser reads, so that slices compare
// equal), deciding between division and regular expression like the parser does.
func tokens(buf []byte) []token {
	l := js.NewLexer(parse.NewInputBytes(buf))
	var out []token
	line, col := 1, 1
	prevSignificant := js.TokenType(js.ErrorToken)
	var prevText []byte
	for {
		tt, text := l.Next()
		if tt == js.ErrorToken {
			return out
		}
		if (tt == js.DivToken || tt == js.DivEqToken) && regexpAllowed(prevSignificant, prevText) {
			tt, text = l.RegExp()
			if tt == js.ErrorToken {
				return out
			}
		}
		out = append(out, token{tt: tt, text: text, line: line, col: col})
		for len(text) > 0 {
			r, n := utf8.DecodeRune(text)
			text = text[n:]
			if r == '\n' || r == 0x2028 || r == 0x2029 || r == '\r' && (len(text) == 0 || text[0] != '\n') {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		switch tt {
		case js.WhitespaceToken, js.LineTerminatorToken, js.CommentToken, js.CommentLineTerminatorToken:
		default:
			prevSignificant, prevText = tt, out[len(out)-1].text
		}
	}
}

func regexpAllowed(prev js.TokenType, text []byte) bool {
	switch prev {
	case js.ErrorToken:
		return true
	case js.CloseParenToken, js.CloseBracketToken, js.CloseBraceToken, js.IdentifierToken,
		js.StringToken, js.DecimalToken, js.BinaryToken, js.OctalToken, js.HexadecimalToken,
		js.IntegerToken, js.RegExpToken, js.TemplateToken, js.TemplateEndToken, js.ThisToken,
		js.TrueToken, js.FalseToken, js.NullToken, js.IncrToken, js.DecrToken:
		return false
	}
	if js.IsPunctuator(prev) || js.IsOperator(prev) {
		return true
	}
	switch string(text) {
	case "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await":
		return true
	}
	return false
}

// positions finds source positions for the translator.
type positions struct {
	toks  []token
	byPtr map[*byte]int
	cur   int // index of the token after the last one found
}

func newPositions(buf []byte) *positions {
	p := &positions{toks: tokens(buf), byPtr: map[*byte]int{}}
	for i, t := range p.toks {
		if len(t.text) > 0 {
			p.byPtr[&t.text[0]] = i
		}
	}
	return p
}

// at returns the position of a slice of the source (a literal's bytes) and moves the cursor
// past it; ok is false for a slice that is not a token of the source.
func (p *positions) at(b []byte) (line, col int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	i, ok := p.byPtr[&b[0]]
	if !ok {
		return 0, 0, false
	}
	if i >= p.cur {
		p.cur = i + 1
	}
	return p.toks[i].line, p.toks[i].col, true
}

// find returns the position of the next token spelled text and moves the cursor past it; when
// there is none it returns the cursor's position and leaves the cursor.
func (p *positions) find(text string) (line, col int) {
	if line, ok := p.seek(text); ok {
		p.cur++
		return line, p.toks[p.cur-1].col
	}
	return p.here()
}

// seek moves the cursor to (not past) the next token spelled text and returns its line.
func (p *positions) seek(text string) (line int, ok bool) {
	for i := p.cur; i < len(p.toks); i++ {
		if string(p.toks[i].text) == text {
			p.cur = i
			return p.toks[i].line, true
		}
	}
	return 0, false
}

// here is the position of the next significant token.
func (p *positions) here() (line, col int) {
	for i := p.cur; i < len(p.toks); i++ {
		switch p.toks[i].tt {
		case js.WhitespaceToken, js.LineTerminatorToken, js.CommentToken, js.CommentLineTerminatorToken:
			continue
		}
		return p.toks[i].line, p.toks[i].col
	}
	if n := len(p.toks); n > 0 {
		return p.toks[n-1].line, p.toks[n-1].col
	}
	return 1, 1
}

// stmtStart moves the cursor to the next token that can start a statement (closing brackets
// and semicolons of the statement before are skipped) and returns its line.
func (p *positions) stmtStart() int {
	for i := p.cur; i < len(p.toks); i++ {
		switch p.toks[i].tt {
		case js.WhitespaceToken, js.LineTerminatorToken, js.CommentToken, js.CommentLineTerminatorToken,
			js.CloseBraceToken, js.CloseParenToken, js.CloseBracketToken, js.SemicolonToken:
			continue
		}
		p.cur = i
		return p.toks[i].line
	}
	return 0
}
