package scripting_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

// seen is a request an httptest server received.
type seen struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// newHookServer starts an HTTP server (TLS when tls) that records every request and
// answers with handle, or with 200 and a JSON body.
func newHookServer(t *testing.T, tls bool, handle http.HandlerFunc) *hookServer {
	t.Helper()
	hs := &hookServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hs.mu.Lock()
		hs.reqs = append(hs.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(b), Header: r.Header.Clone()})
		hs.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b)) // handle reads it too
		if handle != nil {
			handle(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "r-42")
		fmt.Fprintf(w, `{"method":%q,"len":%d}`, r.Method, len(b))
	})
	if tls {
		hs.Server = httptest.NewTLSServer(h)
	} else {
		hs.Server = httptest.NewServer(h)
	}
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) requests() []seen {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return append([]seen(nil), hs.reqs...)
}

// httpEnv runs script as alice's OnAuthSuccess handler (timeout 5s unless mut says) with an
// engine whose HTTP client trusts srv, logs in, and returns the env.
func httpEnv(t *testing.T, srv *hookServer, name, script string, mut ...func(*config.EventHandler)) *env {
	t.Helper()
	cfg, root := newConfig(t, map[string]string{name: script}, []config.EventHandler{h("OnAuthSuccess", name, mut...)})
	e := buildEnvOpts(t, cfg, root, func(o *scripting.Options) {
		if srv != nil {
			o.HTTPTransport = transportTrusting(srv.Server)
		}
	})
	e.login("alice")
	return e
}

func TestHttpCliVerbsHeadersAndBody(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			srv := newHookServer(t, tls, nil)
			script := lines(
				"local base = '"+srv.URL+"'",
				// JS style (no self), Lua style (self) and the constructor's two spellings.
				"local r = HttpCli().Url(base .. '/get?q=' .. encodeURIComponent('a b&c')).Header('Authorization', 'Bearer tok').Timeout(5).Get()",
				"Log('get=' .. tostring(r.IsValid()) .. ' ' .. r.StatusCode() .. ' ' .. r.BodyAsString() .. ' ' .. r.Header('x-request-id'))",
				"local c = HttpCli.new()",
				"c:Url(base .. '/post'):Header('Content-Type', 'application/json'):ReqBody('{\"file\":\"/in/a.txt\"}')",
				"r = c:Post()",
				"Log('post=' .. r:StatusCode() .. ' ' .. r:BodyAsString())",
				"Log('put=' .. c.Put().BodyAsString())",
				"Log('patch=' .. c.Patch().BodyAsString())",
				"Log('delete=' .. HttpCli().Url(base .. '/x').Delete().StatusCode())",
				"r = HttpCli().Url(base .. '/h').Head()",
				"Log('head=' .. r.StatusCode() .. ' [' .. r.BodyAsString() .. '] ' .. r.Header('Content-Type'))",
				"Log('do=' .. HttpCli().Url(base .. '/dav').Do('propfind').BodyAsString())",
				"Log('missing=[' .. r.Header('X-Nope') .. ']')",
			)
			e := httpEnv(t, srv, "hook.lua", script)
			kv := e.kv()
			want := map[string]string{
				"get":     `true 200 {"method":"GET","len":0} r-42`,
				"post":    `200 {"method":"POST","len":20}`,
				"put":     `{"method":"PUT","len":20}`,
				"patch":   `{"method":"PATCH","len":20}`,
				"delete":  "200",
				"head":    "200 [] application/json",
				"do":      `{"method":"PROPFIND","len":0}`,
				"missing": "[]",
			}
			for k, v := range want {
				if kv[k] != v {
					e.logs.dump(t)
					t.Errorf("%s = %q, want %q", k, kv[k], v)
				}
			}
			reqs := srv.requests()
			if len(reqs) != 7 {
				t.Fatalf("server saw %d requests", len(reqs))
			}
			if r := reqs[0]; r.Query != "q=a%20b%26c" || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("User-Agent") != "wharf-script" {
				t.Errorf("GET = %+v", r)
			}
			if r := reqs[1]; r.Body != `{"file":"/in/a.txt"}` || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("POST = %+v", r)
			}
		})
	}
}

// A .js script calls members as o.m(…), without self; the objects' members are bound.
func TestHttpCliFromJS(t *testing.T) {
	srv := newHookServer(t, false, nil)
	script := strings.Join([]string{
		"var key = 'k1';",
		"var res = new HttpCli().Url('" + srv.URL + "/api/' + encodeURIComponent('é x')).Header('Authorization', 'Bearer ' + key).Timeout(15).Get();",
		"if (res.IsValid() && res.StatusCode() === 200) { Log('body=' + res.BodyAsString()); }",
		"try { decodeURIComponent('%E0%A4%A'); } catch (e) { Log('err=' + e.name + ': ' + e.message); }",
	}, "\n")
	e := httpEnv(t, srv, "hook.js", script)
	kv := e.kv()
	if kv["body"] != `{"method":"GET","len":0}` || kv["err"] != "URIError: URI malformed" {
		e.logs.dump(t)
		t.Errorf("kv = %v", kv)
	}
	if r := srv.requests(); len(r) != 1 || r[0].Path != "/api/é x" || r[0].Header.Get("Authorization") != "Bearer k1" {
		t.Errorf("requests = %+v", r)
	}
}

// Certificates are verified: without the test CA, a TLS server is refused.
func TestHttpCliVerifiesTLS(t *testing.T) {
	srv := newHookServer(t, true, nil)
	e := httpEnv(t, nil, "hook.lua", lines(
		"local r = HttpCli().Url('"+srv.URL+"/').Get()",
		"Log('valid=' .. tostring(r.IsValid()))",
		"Log('status=' .. r.StatusCode())",
		"Log('err=' .. r.ErrorMsg())",
	))
	kv := e.kv()
	if kv["valid"] != "false" || kv["status"] != "0" || !strings.Contains(kv["err"], "certificate") {
		t.Errorf("kv = %v", kv)
	}
	if len(srv.requests()) != 0 {
		t.Error("the request reached a server whose certificate is not trusted")
	}
}

func TestHttpCliRefusals(t *testing.T) {
	srv := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 5<<20))) // past the 4 MiB cap
	})
	e := httpEnv(t, srv, "hook.lua", lines(
		"local r = HttpCli().Url('"+srv.URL+"/big').Get()",
		"Log('big=' .. tostring(r.IsValid()) .. ' ' .. r.StatusCode() .. ' ' .. r.ErrorMsg())",
		"r = HttpCli().Url('file:///etc/passwd').Get()",
		"Log('file=' .. tostring(r.IsValid()) .. ' ' .. r.ErrorMsg())",
		"r = HttpCli().Get()",
		"Log('nourl=' .. r.ErrorMsg())",
		"local ok, err = pcall(function() HttpCli().Header('X-A', 'a\\r\\nX-Evil: 1') end)",
		"Log('inject=' .. tostring(ok) .. ' ' .. err)",
		"ok, err = pcall(function() HttpCli().Header('Bad Name', 'v') end)",
		"Log('name=' .. tostring(ok))",
		"ok, err = pcall(function() HttpCli().Timeout(-1) end)",
		"Log('timeout=' .. tostring(ok))",
		"ok, err = pcall(function() local c = HttpCli(); c.Foo = 1 end)",
		"Log('set=' .. tostring(ok) .. ' ' .. err)",
	))
	kv := e.kv()
	checks := map[string]string{
		"big":     "false 200 response body larger than 4194304 bytes",
		"file":    `false invalid URL "file:///etc/passwd": only http:// and https:// URLs`,
		"nourl":   "no URL: call Url(…) first",
		"name":    "false",
		"timeout": "false",
	}
	for k, v := range checks {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	if !strings.HasPrefix(kv["inject"], "false ") || !strings.Contains(kv["inject"], "line breaks") {
		t.Errorf("inject = %q", kv["inject"])
	}
	if !strings.Contains(kv["set"], "HttpCli is read-only") {
		t.Errorf("set = %q", kv["set"])
	}
}

// A response counts against the run's memory budget.
func TestHttpCliMemoryBudget(t *testing.T) {
	srv := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("y", 3<<20)))
	})
	e := httpEnv(t, srv, "hook.lua", lines(
		"local r = HttpCli().Url('"+srv.URL+"/').Get()",
		"Log('survived ' .. #r.BodyAsString())",
	), func(h *config.EventHandler) { h.MaxMemory = config.MinMaxMemory })
	if lines := e.logs.scriptLines(); len(lines) != 0 {
		t.Errorf("a 3 MiB body fit in a 1 MiB budget: %v", lines)
	}
	e.wantBudgetFailure(t, "a 3 MiB body fit in a 1 MiB budget")
}

// A request ends with the run: the handler's timeout cancels it.
func TestHttpCliBoundedByTheTimeout(t *testing.T) {
	release := make(chan struct{})
	cancelled := make(chan struct{}, 1)
	srv := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-release:
		}
	})
	defer close(release)
	e := httpEnv(t, srv, "hook.lua", lines(
		"local r = HttpCli().Url('"+srv.URL+"/slow').Get()",
		"Log('after=' .. r.ErrorMsg())",
	), timeout(300*time.Millisecond))
	fails := e.logs.find("event script timed out")
	if len(fails) != 1 || len(e.logs.scriptLines()) != 0 {
		e.logs.dump(t)
		t.Fatalf("the run was not stopped by its timeout: %v", fails)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the request cancelled")
	}

	// Timeout(seconds) bounds a request inside a longer run.
	e2 := httpEnv(t, srv, "hook.lua", lines(
		"local r = HttpCli().Url('"+srv.URL+"/slow').Timeout(0.2).Get()",
		"Log('after=' .. tostring(r.IsValid()) .. ' ' .. r.ErrorMsg())",
	))
	if got := e2.kv()["after"]; !strings.HasPrefix(got, "false ") || !strings.Contains(got, "deadline exceeded") {
		t.Errorf("after = %q", got)
	}
}

func TestURIComponent(t *testing.T) {
	// Expected values are what Node prints for encodeURIComponent/decodeURIComponent.
	enc := [][2]string{
		{"", ""},
		{"abcXYZ019-_.!~*'()", "abcXYZ019-_.!~*'()"},
		{"a b&c=d/e?f#g", "a%20b%26c%3Dd%2Fe%3Ff%23g"},
		{"é", "%C3%A9"},
		{"€", "%E2%82%AC"},
		{"😀", "%F0%9F%98%80"},
		{"[]{}@:;,+$", "%5B%5D%7B%7D%40%3A%3B%2C%2B%24"},
		{"%", "%25"},
		{"\t\n", "%09%0A"},
	}
	var src []string
	for i, c := range enc {
		src = append(src, fmt.Sprintf("Log('e%d=' .. encodeURIComponent(%q))", i, c[0]))
		src = append(src, fmt.Sprintf("Log('d%d=' .. decodeURIComponent(%q))", i, c[1]))
	}
	src = append(src,
		"Log('num=' .. encodeURIComponent(1.5))",
		"Log('plus=' .. decodeURIComponent('a+b%20c'))",
		"Log('lower=' .. decodeURIComponent('%c3%a9'))",
		"Log('literal=' .. decodeURIComponent('é%20x'))",
	)
	for i, bad := range []string{"%", "%4", "%zz", "%C3", "%C3x", "%FF", "%ED%A0%80", "%C0%AF", "%80"} {
		src = append(src, fmt.Sprintf("local ok%d, err%d = pcall(decodeURIComponent, %q)", i, i, bad),
			fmt.Sprintf("Log('bad%d=' .. tostring(ok%d) .. ' ' .. err%d)", i, i, i))
	}
	src = append(src, "local ok, err = pcall(encodeURIComponent, '\\255')", "Log('badenc=' .. tostring(ok) .. ' ' .. err)")
	e := httpEnv(t, nil, "uri.lua", lines(src...))
	kv := e.kv()
	for i, c := range enc {
		if got := kv[fmt.Sprintf("e%d", i)]; got != c[1] {
			t.Errorf("encodeURIComponent(%q) = %q, want %q", c[0], got, c[1])
		}
		if got := kv[fmt.Sprintf("d%d", i)]; got != c[0] {
			t.Errorf("decodeURIComponent(%q) = %q, want %q", c[1], got, c[0])
		}
	}
	for k, v := range map[string]string{"num": "1.5", "plus": "a+b c", "lower": "é", "literal": "é x"} {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	for i := range 9 {
		if got := kv[fmt.Sprintf("bad%d", i)]; !strings.HasPrefix(got, "false ") || !strings.HasSuffix(got, "URIError: URI malformed") {
			t.Errorf("bad%d = %q", i, got)
		}
	}
	if got := kv["badenc"]; !strings.HasSuffix(got, "URIError: URI malformed") {
		t.Errorf("badenc = %q", got)
	}
}

// Kept responses count against the budget with their headers: twenty responses with a
// 128 KiB header are 2.5 MiB, past a 1 MiB budget.
func TestHttpCliKeptResponsesCount(t *testing.T) {
	srv := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("h", 128<<10))
	})
	e := httpEnv(t, srv, "hook.lua", lines(
		"local kept = {}",
		"for i = 1, 20 do kept[i] = HttpCli().Url('"+srv.URL+"/').Get() end",
		"Log('kept=' .. #kept .. ' ' .. #kept[20].Header('X-Big'))",
	), func(h *config.EventHandler) { h.MaxMemory = config.MinMaxMemory })
	e.wantBudgetFailure(t, "twenty kept 128 KiB headers fit in a 1 MiB budget")
}

// HttpCli and HttpRes follow the host-class rules (class.go): errors name the class and the
// method, a method read from one object is refused on another, unknown names read as nil
// and cannot be set.
func TestHttpCliClassRules(t *testing.T) {
	srv := newHookServer(t, false, nil)
	e := httpEnv(t, srv, "hook.lua", lines(
		"local function try(f) local ok, err = pcall(f) return tostring(ok) .. ' ' .. tostring(err):gsub('^hook.lua:%d+: ', '') end",
		"Log('timeout=' .. try(function() HttpCli().Timeout(0) end))",
		"Log('header=' .. try(function() HttpCli():Header('Bad Name', 'v') end))",
		"Log('do=' .. try(function() HttpCli().Url('"+srv.URL+"/').Do('') end))",
		"local a, b = HttpCli(), HttpCli()",
		"Log('receiver=' .. try(function() a.Url(b, 'x') end))",
		"local r = a.Url('"+srv.URL+"/').Get()",
		"Log('resreceiver=' .. try(function() return r.StatusCode(b.Url('"+srv.URL+"/').Get()) end))",
		"Log('unknown=' .. tostring(a.Nope == nil and r.Nope == nil))",
		"Log('set=' .. try(function() r.Foo = 1 end))",
		"Log('chain=' .. tostring(a:Header('X-A', '1'):Timeout(2) == a) .. ' ' .. r:StatusCode())",
	))
	want := map[string]string{
		"timeout":     "false HttpCli.Timeout: expected a positive number of seconds",
		"header":      `false HttpCli.Header: invalid header name "Bad Name"`,
		"do":          `false HttpCli.Do: invalid method ""`,
		"receiver":    "false HttpCli.Url: called on another HttpCli than the one it was read from",
		"resreceiver": "false HttpRes.StatusCode: called on another HttpRes than the one it was read from",
		"unknown":     "true",
		"set":         "false HttpRes is read-only: cannot set Foo",
		"chain":       "true 200",
	}
	e.wantKV(t, want)
}
