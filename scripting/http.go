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
)

// HttpCli and HttpRes, the HTTP client of Syncplify's scripts:
//
//	local res = HttpCli().Url('https://api.example.com/hook').Header('Authorization', 'Bearer ' .. key)
//	                     .Timeout(15).ReqBody('{"file":"x"}').Post()
//	if res.IsValid() and res.StatusCode() == 200 then Log(res.BodyAsString()) end
//
// A request is bounded by the run's timeout (the run's context) and by Timeout(seconds) when
// set; a response body by maxResponseBody, and it counts against the run's max_memory.
// Certificates are verified. Both are host classes (class.go): every method works with "."
// and ":", so translated JavaScript, which calls o.m(…) without self, works too.

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

// httpCli is an HttpCli object's Go state; its strings (URL, headers, body) are kept in the
// instance (class.go), where the memory measure sees them.
type httpCli struct {
	timeout time.Duration
}

// httpRes is an HttpRes object's Go state; its body and headers are kept in the instance.
type httpRes struct {
	valid  bool
	status int
	err    string
}

// What HttpCli and HttpRes objects keep (instance.keep).
const (
	cliURL = iota + 1
	cliBody
	cliHeaders // a table: canonical name → value
	cliKeeps   = cliHeaders

	resBody    = 1 // the body, "" when the request failed
	resHeaders = 2 // a table: canonical name → first value, as http.Header.Get
	resKeeps   = resHeaders
)

// httpCliClass is HttpCli: HttpCli(), HttpCli.new() in Lua, new HttpCli() in JavaScript. Its
// setters return the object, for chains; its verbs send the request and return an HttpRes.
var httpCliClass = &hostClass{name: "HttpCli",
	construct: func(*vm, *lua.LState, int) any { return &httpCli{} },
	init:      func(L *lua.LState, self *instance) { self.keep(L, cliHeaders, L.CreateTable(0, 2)) },
	keeps:     cliKeeps,
	methods: map[string]classMethod{
		"Url":     cliSet(cliURL),
		"ReqBody": cliSet(cliBody),
		"Header":  cliHeader,
		"Timeout": cliTimeout,
		"Get":     cliVerb(http.MethodGet),
		"Post":    cliVerb(http.MethodPost),
		"Put":     cliVerb(http.MethodPut),
		"Patch":   cliVerb(http.MethodPatch),
		"Delete":  cliVerb(http.MethodDelete),
		"Head":    cliVerb(http.MethodHead),
		"Do":      cliVerb(""),
	}}

// httpResClass is HttpRes, what HttpCli's verbs return.
var httpResClass = &hostClass{name: "HttpRes",
	init:  func(L *lua.LState, self *instance) { self.keep(L, resBody, lua.LString("")) },
	keeps: resKeeps,
	methods: map[string]classMethod{
		"IsValid": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(lua.LBool(self.Value.(*httpRes).valid))
			return 1
		},
		"StatusCode": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(lua.LNumber(self.Value.(*httpRes).status))
			return 1
		},
		"ErrorMsg": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(lua.LString(self.Value.(*httpRes).err))
			return 1
		},
		"BodyAsString": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(self.kept(resBody))
			return 1
		},
		"Header": func(_ *vm, L *lua.LState, self *instance, a int) int {
			val := lua.LValue(lua.LString(""))
			if h, ok := self.kept(resHeaders).(*lua.LTable); ok {
				if s, ok := h.RawGetString(http.CanonicalHeaderKey(argString(L, a))).(lua.LString); ok {
					val = s
				}
			}
			L.Push(val)
			return 1
		},
	}}

// installHTTP adds HttpCli, encodeURIComponent and decodeURIComponent to the base
// environment.
func (v *vm) installHTTP(base *lua.LTable) {
	L := v.L
	v.defineClass(base, httpCliClass)
	v.httpRes = v.defineClass(base, httpResClass)
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

// cliSet is a chainable setter of a string (Url, ReqBody).
func cliSet(slot int) classMethod {
	return func(_ *vm, L *lua.LState, self *instance, a int) int {
		self.keep(L, slot, lua.LString(argString(L, a)))
		L.Push(self.ud)
		return 1
	}
}

// cliHeader is Header(name, value): a later call with the same name replaces the value.
func cliHeader(_ *vm, L *lua.LState, self *instance, a int) int {
	name, value := argString(L, a), argString(L, a+1)
	if !httpguts.ValidHeaderFieldName(name) {
		self.raise(L, "Header", "invalid header name %q", name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		self.raise(L, "Header", "invalid value for %s (line breaks and control characters are not allowed)", name)
	}
	self.kept(cliHeaders).(*lua.LTable).RawSetString(http.CanonicalHeaderKey(name), lua.LString(value))
	L.Push(self.ud)
	return 1
}

// cliTimeout is Timeout(seconds).
func cliTimeout(_ *vm, L *lua.LState, self *instance, a int) int {
	n, ok := L.Get(a).(lua.LNumber)
	if !ok || n <= 0 || n != n {
		self.raise(L, "Timeout", "expected a positive number of seconds")
	}
	self.Value.(*httpCli).timeout = time.Duration(float64(n) * float64(time.Second))
	L.Push(self.ud)
	return 1
}

// cliVerb sends the request (verb "" is Do(verb)) and returns an HttpRes.
func cliVerb(verb string) classMethod {
	return func(v *vm, L *lua.LState, self *instance, a int) int {
		method := verb
		if method == "" {
			method = strings.ToUpper(argString(L, a))
			if method == "" || !httpguts.ValidHeaderFieldName(method) {
				self.raise(L, "Do", "invalid method %q", method)
			}
		}
		L.Push(v.httpDo(L, method, self))
		return 1
	}
}

// httpDo sends a request and reads the response into an HttpRes. Failures (a bad URL, no
// connection, a timeout, a body past the cap) give an HttpRes whose IsValid() is false and
// whose ErrorMsg() says why; running out of the run's memory budget fails the run.
func (v *vm) httpDo(L *lua.LState, method string, cli *instance) *lua.LUserData {
	res := &httpRes{}
	out := v.httpRes.newInstance(L, res)
	fail := func(err error) *lua.LUserData {
		res.err = err.Error()
		return out
	}
	rawURL := cli.kept(cliURL)
	raw := rawURL.String()
	if rawURL == lua.LNil || raw == "" {
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
	if t := cli.Value.(*httpCli).timeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	var body io.Reader
	if b, ok := cli.kept(cliBody).(lua.LString); ok && b != "" {
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("User-Agent", httpUserAgent)
	cli.kept(cliHeaders).(*lua.LTable).ForEach(func(k, val lua.LValue) {
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
	res.status = resp.StatusCode
	var hdr int64
	for k, vs := range resp.Header {
		for _, s := range vs {
			hdr += int64(len(k) + len(s) + 2*stringOverhead)
		}
	}
	L.ChargeMemory(hdr)
	headers := L.CreateTable(0, len(resp.Header))
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			headers.RawSetString(k, lua.LString(vs[0]))
		}
	}
	out.Value.(*instance).keep(L, resHeaders, headers)
	text, err := readBody(L, resp.Body)
	if err != nil {
		return fail(err)
	}
	out.Value.(*instance).keep(L, resBody, lua.LString(text))
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
