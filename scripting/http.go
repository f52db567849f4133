package scripting

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/net/http/httpguts"

	"github.com/wharf-project/wharf/scripting/jscompat"
)

// HttpCli and HttpRes, the HTTP client of Syncplify's scripts:
//
//	local res = HttpCli().Url('https://api.example.com/hook').Header('Authorization', 'Bearer ' .. key)
//	                     .Timeout(15).ReqBody('{"file":"x"}').Post()
//	if res.IsValid() and res.StatusCode() == 200 then Log(res.BodyAsString()) end
//
// A request is bounded by the run's timeout (the run's context) and by Timeout(seconds) when
// set; a response body by maxResponseBody, and it counts against the run's max_memory.
// Certificates are verified. Every member works with "." and ":" (each access returns a
// function bound to its object), so translated JavaScript, which calls o.m(…) without self,
// works too.

// maxResponseBody bounds the body of one response read by HttpCli.
const maxResponseBody = 4 << 20

// httpUserAgent is sent unless the script sets one.
const httpUserAgent = "wharf-script"

// newHTTPClient returns HttpCli's client: rt when given, else a transport of its own that
// verifies certificates against the system's roots and honours HTTPS_PROXY and friends.
func newHTTPClient(rt http.RoundTripper) *http.Client {
	if rt == nil {
		rt = &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    10 * time.Second,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           32,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 256 << 10,
		}
	}
	return &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}}
}

// httpCli is an HttpCli object's Go state; its strings (URL, headers, body) are in the
// userdata's environment table, where the memory measure sees them.
type httpCli struct {
	timeout time.Duration
}

// httpRes is an HttpRes object's Go state; its body is in the environment table.
type httpRes struct {
	valid  bool
	status int
	err    string
	header http.Header
}

// installHTTP adds HttpCli, encodeURIComponent and decodeURIComponent to the base
// environment.
func (v *vm) installHTTP(base *lua.LTable) {
	L := v.L
	v.cliMeta = v.boundMeta("HttpCli", map[string]lua.LGFunction{
		"Url":     v.cliSet("url"),
		"ReqBody": v.cliSet("body"),
		"Header":  v.cliHeader,
		"Timeout": v.cliTimeout,
		"Get":     v.cliVerb(http.MethodGet),
		"Post":    v.cliVerb(http.MethodPost),
		"Put":     v.cliVerb(http.MethodPut),
		"Patch":   v.cliVerb(http.MethodPatch),
		"Delete":  v.cliVerb(http.MethodDelete),
		"Head":    v.cliVerb(http.MethodHead),
		"Do":      v.cliVerb(""),
	})
	v.resMeta = v.boundMeta("HttpRes", map[string]lua.LGFunction{
		"IsValid":      func(L *lua.LState) int { L.Push(lua.LBool(resOf(L).valid)); return 1 },
		"StatusCode":   func(L *lua.LState) int { L.Push(lua.LNumber(resOf(L).status)); return 1 },
		"ErrorMsg":     func(L *lua.LState) int { L.Push(lua.LString(resOf(L).err)); return 1 },
		"BodyAsString": func(L *lua.LState) int { L.Push(selfOf(L).Env.RawGetString("body")); return 1 },
		"Header": func(L *lua.LState) int {
			r := resOf(L)
			L.Push(lua.LString(r.header.Get(argString(L, argBase(L)))))
			return 1
		},
	})
	ctor := L.CreateTable(0, 1)
	newCli := func(L *lua.LState) int {
		ud := L.NewUserData()
		ud.Value = &httpCli{}
		ud.Env = L.CreateTable(0, 3)
		ud.Env.RawSetString("h", L.CreateTable(0, 2))
		ud.Metatable = v.cliMeta
		L.Push(ud)
		return 1
	}
	ctor.RawSetString("new", L.NewFunction(newCli))
	cli := v.readOnly(ctor, "HttpCli")
	mt := cli.Metatable.(*lua.LTable)
	mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
		L.Remove(1) // HttpCli itself
		return newCli(L)
	}))
	// new HttpCli() in JavaScript (see class.go's convention).
	mt.RawSetString(jscompat.ConstructorField, L.NewFunction(newCli))
	base.RawSetString("HttpCli", cli)
	base.RawSetString("encodeURIComponent", L.NewFunction(func(L *lua.LState) int {
		s, ok := encodeURIComponent(argString(L, 1))
		if !ok {
			L.RaiseError("URIError: URI malformed")
		}
		L.Push(lua.LString(s))
		return 1
	}))
	base.RawSetString("decodeURIComponent", L.NewFunction(func(L *lua.LState) int {
		s, ok := decodeURIComponent(argString(L, 1))
		if !ok {
			L.RaiseError("URIError: URI malformed")
		}
		L.Push(lua.LString(s))
		return 1
	}))
}

// boundMeta is the metatable of an object type whose members are bound to the object: an
// access returns a closure with the object as its upvalue, so o.M(x) and o:M(x) both work.
func (v *vm) boundMeta(name string, methods map[string]lua.LGFunction) *lua.LTable {
	L := v.L
	fns := make(map[string]*lua.LFunction, len(methods))
	for k, f := range methods {
		fns[k] = L.NewFunction(f)
	}
	mt := L.CreateTable(0, 4)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		k, _ := L.Get(2).(lua.LString)
		f, ok := fns[string(k)]
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(L.NewClosure(callBound, f, L.Get(1)))
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s is read-only: cannot set %s", name, L.ToStringMeta(L.Get(2)).String())
		return 0
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(name))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString("locked"))
	return mt
}

// callBound calls the method (upvalue 1) with the object (upvalue 2) first; a call written
// o:M(x) passes the object already, which is dropped.
func callBound(L *lua.LState) int {
	fn, self := L.Get(lua.UpvalueIndex(1)).(*lua.LFunction), L.Get(lua.UpvalueIndex(2))
	if L.GetTop() >= 1 && L.Get(1) == self {
		L.Remove(1)
	}
	L.Insert(self, 1)
	L.Insert(fn, 1)
	L.Call(L.GetTop()-1, lua.MultRet)
	return L.GetTop()
}

// selfOf is the object a bound method was called on (argument 1, see callBound).
func selfOf(L *lua.LState) *lua.LUserData { return L.CheckUserData(1) }

// argBase is the index of a bound method's first argument.
func argBase(*lua.LState) int { return 2 }

func cliOf(L *lua.LState) (*lua.LUserData, *httpCli) {
	ud := selfOf(L)
	c, ok := ud.Value.(*httpCli)
	if !ok {
		L.ArgError(1, "HttpCli expected")
	}
	return ud, c
}

func resOf(L *lua.LState) *httpRes {
	r, ok := selfOf(L).Value.(*httpRes)
	if !ok {
		L.ArgError(1, "HttpRes expected")
	}
	return r
}

// cliSet is a chainable setter of a string field (Url, ReqBody).
func (v *vm) cliSet(field string) lua.LGFunction {
	return func(L *lua.LState) int {
		ud, _ := cliOf(L)
		ud.Env.RawSetString(field, lua.LString(argString(L, 2)))
		L.Push(ud)
		return 1
	}
}

// cliHeader is Header(name, value): a later call with the same name replaces the value.
func (v *vm) cliHeader(L *lua.LState) int {
	ud, _ := cliOf(L)
	name, value := argString(L, 2), argString(L, 3)
	if !httpguts.ValidHeaderFieldName(name) {
		L.RaiseError("HttpCli.Header: invalid header name %q", name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		L.RaiseError("HttpCli.Header: invalid value for %s (line breaks and control characters are not allowed)", name)
	}
	ud.Env.RawGetString("h").(*lua.LTable).RawSetString(http.CanonicalHeaderKey(name), lua.LString(value))
	L.Push(ud)
	return 1
}

// cliTimeout is Timeout(seconds).
func (v *vm) cliTimeout(L *lua.LState) int {
	ud, c := cliOf(L)
	n, ok := L.Get(2).(lua.LNumber)
	if !ok || n <= 0 || n != n {
		L.RaiseError("HttpCli.Timeout: expected a positive number of seconds")
	}
	c.timeout = time.Duration(float64(n) * float64(time.Second))
	L.Push(ud)
	return 1
}

// cliVerb sends the request (verb "" is Do(verb)) and returns an HttpRes.
func (v *vm) cliVerb(verb string) lua.LGFunction {
	return func(L *lua.LState) int {
		ud, c := cliOf(L)
		method := verb
		if method == "" {
			method = strings.ToUpper(argString(L, 2))
			if method == "" || !httpguts.ValidHeaderFieldName(method) {
				L.RaiseError("HttpCli.Do: invalid method %q", method)
			}
		}
		L.Push(v.httpDo(L, method, ud, c))
		return 1
	}
}

// httpDo sends a request and reads the response into an HttpRes. Failures (a bad URL, no
// connection, a timeout, a body past the cap) give an HttpRes whose IsValid() is false and
// whose ErrorMsg() says why; running out of the run's memory budget fails the run.
func (v *vm) httpDo(L *lua.LState, method string, ud *lua.LUserData, c *httpCli) *lua.LUserData {
	res := &httpRes{}
	out := L.NewUserData()
	out.Value, out.Metatable = res, v.resMeta
	out.Env = L.CreateTable(0, 1)
	out.Env.RawSetString("body", lua.LString(""))
	fail := func(err error) *lua.LUserData {
		res.err = err.Error()
		return out
	}
	raw := ud.Env.RawGetString("url").String()
	if ud.Env.RawGetString("url") == lua.LNil || raw == "" {
		return fail(errors.New("no URL: call Url(…) first"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail(fmt.Errorf("invalid URL: %w", err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail(fmt.Errorf("invalid URL %q: only http:// and https:// URLs", raw))
	}
	ctx := v.ctx // cancelled when the run times out
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if b, ok := ud.Env.RawGetString("body").(lua.LString); ok && b != "" {
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("User-Agent", httpUserAgent)
	ud.Env.RawGetString("h").(*lua.LTable).ForEach(func(k, val lua.LValue) {
		req.Header.Set(k.String(), val.String())
	})
	resp, err := v.e.http.Do(req)
	if err != nil {
		if v.ctx.Err() != nil {
			return fail(errors.New("the script's timeout ran out during the request"))
		}
		return fail(err)
	}
	defer resp.Body.Close()
	res.status, res.header = resp.StatusCode, resp.Header
	var hdr int64
	for k, vs := range resp.Header {
		for _, s := range vs {
			hdr += int64(len(k) + len(s) + 2*stringOverhead)
		}
	}
	L.ChargeMemory(hdr)
	text, err := readBody(L, resp.Body)
	if err != nil {
		return fail(err)
	}
	out.Env.RawSetString("body", lua.LString(text))
	res.valid = true
	return out
}

// readBody reads a response body of at most maxResponseBody bytes, charging the run's
// memory meter before each piece is kept (the meter fails the run past its budget).
func readBody(L *lua.LState, r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if b.Len()+n > maxResponseBody {
				return "", fmt.Errorf("response body larger than %d bytes", maxResponseBody)
			}
			L.ChargeMemory(int64(n))
			b.Write(buf[:n])
		}
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", fmt.Errorf("reading the response: %w", err)
		}
	}
}

// encodeURIComponent is JavaScript's: every byte of the UTF-8 form is escaped except
// A-Z a-z 0-9 - _ . ! ~ * ' ( ). ok is false for a string that is not UTF-8 (JavaScript
// raises URIError for the lone surrogates that stand for such bytes).
func encodeURIComponent(s string) (string, bool) {
	if !utf8.ValidString(s) {
		return "", false
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String(), true
}

// decodeURIComponent is JavaScript's: each %XX is a byte, and each run of escaped bytes
// must be whole UTF-8 characters; ok is false otherwise (URIError).
func decodeURIComponent(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '%' {
			b.WriteByte(s[i])
			i++
			continue
		}
		var run []byte
		for i < len(s) && s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", false
			}
			run = append(run, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 3
		}
		if !utf8.Valid(run) {
			return "", false
		}
		b.Write(run)
	}
	return b.String(), true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
