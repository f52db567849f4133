package scripting

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting/jscompat"
)

// ScriptError is a script that cannot be loaded: a syntax error (with its line and column),
// a missing file, or a handler that names an unknown event.
type ScriptError struct {
	File   string // the script's path
	Line   int    // 0 when the problem is not at a line of the script
	Column int
	Msg    string
	// Where names the handler that references the script ("site web", "user alice").
	Where string
	// column says that the column is shown for a Lua script too (a Syncplify name wharf
	// lacks is found by name, so its column is known).
	column bool
}

// Error formats the problem like a compiler message: `scripts/x.lua:3: unexpected symbol`,
// `scripts/x.js:3:5: unsupported: class declaration` (a JS script's problems name the column,
// as JS tools do; Lua's messages name the line only, as luac does).
func (e *ScriptError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 && (isJS(e.File) || e.column) {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Where != "" {
		b.WriteString(" (handler of ")
		b.WriteString(e.Where)
		b.WriteByte(')')
	}
	return b.String()
}

// LoadError lists every script of a site that could not be loaded.
type LoadError struct {
	Site    string
	Scripts []*ScriptError
}

// Error lists the problems, one per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Scripts))
	for i, s := range e.Scripts {
		lines[i] = s.Error()
	}
	return strings.Join(lines, "\n")
}

// isJS reports whether a script is a Syncplify-style JavaScript script, which is translated
// to Lua when it is loaded.
func isJS(file string) bool { return strings.EqualFold(filepath.Ext(file), ".js") }

// handler is one compiled event_handlers entry.
type handler struct {
	event    core.EventName
	script   string // as configured; also the chunk name, so Lua errors read "deny.lua:3: …"
	file     string // the script's path
	proto    *lua.FunctionProto
	priority int
	timeout  time.Duration
	block    bool  // on_error: block
	memory   int64 // max_memory, bytes
	async    bool  // mode: async
	waitFull bool  // on_full: wait
}

type eventHandlers map[core.EventName][]*handler

// handlerSet is one load of a site's scripts. It is immutable once built, except for protos
// and late (guarded by mu), which grow when a user the set was not compiled with shows up.
type handlerSet struct {
	site     eventHandlers
	users    map[*config.EventHandler]eventHandlers // by the user's handler list (&list[0])
	count    int
	dir      string   // scripts_dir
	warnings []string // handlers that load but cannot run, and secrets that cannot be read
	secrets  *secrets // GetSecret's values

	mu     sync.Mutex
	protos map[string]*lua.FunctionProto // by file
	late   map[*config.EventHandler]eventHandlers
}

// compileSite compiles every script the site references, each file once.
func compileSite(site *config.Site) (*handlerSet, error) {
	set := &handlerSet{users: map[*config.EventHandler]eventHandlers{}, dir: site.ScriptsDir,
		protos: map[string]*lua.FunctionProto{}, late: map[*config.EventHandler]eventHandlers{}}
	var errs []*ScriptError
	set.site, errs, set.warnings = set.build(site.EventHandlers, "site "+site.Name)
	set.count = len(site.EventHandlers)
	for i := range site.Users {
		u := &site.Users[i]
		if len(u.EventHandlers) == 0 {
			continue
		}
		hs, uerrs, warns := set.build(u.EventHandlers, "user "+u.ID)
		errs = append(errs, uerrs...)
		set.warnings = append(set.warnings, warns...)
		set.users[&u.EventHandlers[0]] = hs
		set.count += len(u.EventHandlers)
	}
	if len(errs) > 0 {
		return nil, &LoadError{Site: site.Name, Scripts: errs}
	}
	var warns []string
	set.secrets, warns = loadSecrets(site)
	set.warnings = append(set.warnings, warns...)
	return set, nil
}

// build compiles a handler list (scripts already compiled by this set are reused) and
// groups it by event in ascending priority, stable. warnings name handlers that load but
// cannot run.
func (s *handlerSet) build(list []config.EventHandler, where string) (out eventHandlers, errs []*ScriptError, warnings []string) {
	out = eventHandlers{}
	for i := range list {
		c := &list[i]
		file := c.Path
		if file == "" {
			file = filepath.Join(s.dir, filepath.FromSlash(c.Script))
		}
		h := &handler{event: core.EventName(c.Event), script: c.Script, file: file, priority: c.Priority,
			timeout: c.Timeout.Duration, block: c.OnError != "continue", memory: int64(c.MaxMemory),
			async: c.Mode == "async", waitFull: c.OnFull == "wait"}
		if h.timeout <= 0 {
			h.timeout = DefaultTimeout
		}
		if h.memory <= 0 {
			h.memory = int64(config.DefaultMaxMemory)
		}
		if !slices.Contains(config.Events, c.Event) {
			errs = append(errs, &ScriptError{File: file, Msg: fmt.Sprintf("unknown event %q", c.Event), Where: where})
			continue
		}
		if h.async && !slices.Contains(config.AsyncEvents, c.Event) {
			// The config refuses it; a config built in code must not make a gate asynchronous.
			errs = append(errs, &ScriptError{File: file, Msg: fmt.Sprintf("%s cannot be async", c.Event), Where: where})
			continue
		}
		s.mu.Lock()
		proto, ok := s.protos[file]
		if !ok {
			var ferrs []*ScriptError
			if proto, ferrs = compileFile(file, c.Script); len(ferrs) > 0 {
				s.mu.Unlock()
				for _, err := range ferrs {
					err.Where = where
				}
				errs = append(errs, ferrs...)
				continue
			}
			s.protos[file] = proto
		}
		s.mu.Unlock()
		h.proto = proto
		out[h.event] = append(out[h.event], h)
	}
	for _, hs := range out {
		slices.SortStableFunc(hs, func(a, b *handler) int { return a.priority - b.priority })
	}
	return out, errs, warnings
}

// forUser returns a user's own handlers. Users built from the config this set was compiled
// from are found by their handler list; others (a user of an older config still logged in
// after a reload) are compiled once on first sight.
func (s *handlerSet) forUser(u *core.User, log *slog.Logger) eventHandlers {
	key := &u.Handlers[0]
	if hs, ok := s.users[key]; ok {
		return hs
	}
	s.mu.Lock()
	hs, ok := s.late[key]
	s.mu.Unlock()
	if ok {
		return hs
	}
	hs, errs, warns := s.build(u.Handlers, "user "+u.ID)
	for _, err := range errs {
		log.Error("cannot load a user's event script", "user", u.ID, "err", err.Error())
	}
	for _, w := range warns {
		log.Warn("event handler cannot run: " + w)
	}
	s.mu.Lock()
	s.late[key] = hs
	s.mu.Unlock()
	return hs
}

// compileFile parses and compiles a script once; the prototype is shared by every state. A
// .js script is translated to Lua first. A script that uses Syncplify names the engine does
// not define is refused, with every such use (see names.go).
func compileFile(file, name string) (*lua.FunctionProto, []*ScriptError) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, []*ScriptError{{File: file, Msg: fmt.Sprintf("cannot read script: %v", unwrapPath(err))}}
	}
	var proto *lua.FunctionProto
	var se *ScriptError
	if isJS(file) {
		code, se := translateJS(src, file, name)
		if se != nil {
			translateNewError(se, src)
			return nil, []*ScriptError{se}
		}
		proto, se = compileSource([]byte(code), file, name)
		if se != nil {
			// The translator's output must always compile: this is a bug to report, and the
			// column would be one of the generated code.
			se.Column, se.Msg = 0, "internal error: the translated script does not compile: "+se.Msg
			return nil, []*ScriptError{se}
		}
	} else if proto, se = compileSource(src, file, name); se != nil {
		return nil, []*ScriptError{se}
	}
	if errs := checkNames(proto, src, file); len(errs) > 0 {
		return nil, errs
	}
	return proto, nil
}

// translateJS translates a JavaScript script to the Lua the engine runs.
func translateJS(src []byte, file, name string) (string, *ScriptError) {
	code, err := jscompat.Translate(src, name)
	if err != nil {
		se := &ScriptError{File: file, Msg: err.Error()}
		var je *jscompat.Error
		if errors.As(err, &je) {
			se.Line, se.Column, se.Msg = je.Line, je.Column, je.Msg
		}
		return "", se
	}
	return code, nil
}

// TranslateJS returns the Lua a JavaScript script runs as, for inspection (`wharf script
// translate`). Errors are *ScriptError.
func TranslateJS(file string) (string, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return "", &ScriptError{File: file, Msg: fmt.Sprintf("cannot read script: %v", unwrapPath(err))}
	}
	code, se := translateJS(src, file, filepath.Base(file))
	if se != nil {
		return "", se
	}
	return code, nil
}

// compileSource compiles src; file names it in errors and name is the chunk name that Lua
// run-time errors start with.
func compileSource(src []byte, file, name string) (*lua.FunctionProto, *ScriptError) {
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		se := &ScriptError{File: file, Msg: err.Error()}
		var pe *parse.Error
		if errors.As(err, &pe) {
			se.Line, se.Column, se.Msg = pe.Pos.Line, pe.Pos.Column, pe.Message
			if pe.Pos.Line == parse.EOF {
				se.Line, se.Column, se.Msg = strings.Count(string(src), "\n")+1, 0, pe.Message+" at end of file"
			} else if pe.Token != "" {
				se.Msg += fmt.Sprintf(" near '%s'", pe.Token)
			}
		}
		return nil, se
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		se := &ScriptError{File: file, Msg: err.Error()}
		var ce *lua.CompileError
		if errors.As(err, &ce) {
			se.Line, se.Msg = ce.Line, ce.Message
		}
		return nil, se
	}
	// A handler chunk is called without arguments, so it needs no Lua 5.0 "arg" table; left
	// set, the flag makes every run allocate one.
	proto.IsVarArg &^= lua.VarArgNeedsArg
	return proto, nil
}

// unwrapPath drops the path from an *os.PathError: the message already names the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
