package lua

// Limits of Lua 5.1 that gopher-lua did not have, and helpers of the library functions that
// honour them. (wharf)

import (
	"strings"

	"github.com/yuin/gopher-lua/pm"
)

// maxResults bounds the values one call of unpack or string.byte returns, as Lua 5.1 does
// (LUAI_MAXCSTACK): upstream pushed them one by one, and unpack({}, 1, 3e8) ran for seconds
// past any deadline before the registry overflowed.
const maxResults = 8000

// findMatches is pm.Find that gives up when the state's context is done (a pattern can
// take time exponential in its length within one call).
func findMatches(L *LState, pattern, str string, offset, limit int) []*pm.MatchData {
	mds, err := pm.FindContext(L.ctx, pattern, unsafeFastStringToReadOnlyBytes(str), offset, limit)
	if err != nil {
		L.RaiseError(err.Error())
	}
	return mds
}

// subString returns str[i:j]. A Go substring shares the bytes of the string it was cut from
// and keeps all of them alive; when the part is less than half of a string longer than 64
// bytes it is copied, so that a short piece of a long string does not pin the long one (a
// host that measures memory by string lengths, as wharf does, would otherwise count a few
// bytes where megabytes are held).
func subString(str string, i, j int) LString {
	s := str[i:j]
	if len(str) > 64 && 2*len(s) < len(str) {
		s = strings.Clone(s)
	}
	return LString(s)
}
