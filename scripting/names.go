package scripting

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core/config"
)

// Syncplify's names (shared/notes/syncjs-surface.md): every global, class, constant and
// Session member that Syncplify documents for Server! event scripts, with the legacy v4/v5
// names and the AFT! ones a script may carry over. A script that uses one that the engine
// does not define is refused when it loads, by name, with its line and column, instead of
// failing at run time with "attempt to call a non-function object". What is defined is read
// from the engine itself (its globals and Session methods), so a name is accepted as soon as
// something registers it.

// NameKind is what a Syncplify name is.
type NameKind string

const (
	KindFunction NameKind = "function"
	KindClass    NameKind = "class"
	KindConstant NameKind = "constant"
	KindObject   NameKind = "object"
	KindMember   NameKind = "Session member"
	KindEvent    NameKind = "event"
)

// SyncplifyName is one name of Syncplify's scripting surface.
type SyncplifyName struct {
	Name  string // as a script writes it; Session members without "Session."
	Kind  NameKind
	Since string // Syncplify version (v6+, v7, AFT!, v4/v5)
	Hint  string // what wharf offers instead, when it lacks the name
}

// SyncplifyNames lists Syncplify's names, in the order of syncjs-surface.md.
var SyncplifyNames = []SyncplifyName{
	// Server-only helpers (§1c) and the Session object.
	{"Session", KindObject, "v6+", ""},
	{"CtxRelPath", KindFunction, "v7", ""},
	{"CtxRelTargetPath", KindFunction, "v7", ""},
	{"Exit", KindFunction, "v7", ""},
	{"Terminate", KindFunction, "v7", ""},
	{"EventHandler", KindFunction, "v7", ""},
	{"ExtractExt", KindFunction, "v6+", ""},
	{"Log", KindFunction, "v6+", ""},
	{"GetCurrentVFS", KindFunction, "v7", ""},
	// VFS (§1d).
	{"VirtualFS", KindClass, "v7", ""},
	{"VfsTypeDisk", KindConstant, "v7", ""},
	{"VfsTypeS3", KindConstant, "v7", "wharf has disk and memory backends"},
	{"VfsTypeAzure", KindConstant, "v7", "wharf has disk and memory backends"},
	{"VfsTypeGCS", KindConstant, "v7", "wharf has disk and memory backends"},
	{"VfsTypeSFTP", KindConstant, "v7", "wharf has disk and memory backends"},
	{"VfsTypeR2FS", KindConstant, "v7", "wharf has disk and memory backends"},
	{"SortByName", KindConstant, "v7", ""},
	{"SortByNameDirsFirst", KindConstant, "v7", ""},
	{"SortBySize", KindConstant, "v7", ""},
	{"SortByTime", KindConstant, "v7", ""},
	{"SortAsc", KindConstant, "v7", ""},
	{"SortDesc", KindConstant, "v7", ""},
	{"FromStart", KindConstant, "v7", ""},
	{"FromCurrent", KindConstant, "v7", ""},
	{"FromEnd", KindConstant, "v7", ""},
	// General SyncJS objects (§1e).
	{"GetSecret", KindFunction, "v7.0.16+", ""},
	{"HttpCli", KindClass, "v6+", ""},
	{"SendMail", KindFunction, "v6+", ""},
	{"encodeURIComponent", KindFunction, "JavaScript, used with HttpCli", ""},
	{"decodeURIComponent", KindFunction, "JavaScript, used with HttpCli", ""},
	{"SftpClient", KindClass, "v7.0.16+", "no outbound clients; copy to a VirtualFS instead"},
	{"FtpsClient", KindClass, "v7.0.16+", "no outbound clients"},
	{"S3Client", KindClass, "v7.0.16+", "no outbound clients"},
	{"AzureClient", KindClass, "v7.0.16+", "no outbound clients"},
	{"GCSClient", KindClass, "v7.0.16+", "no outbound clients"},
	{"NeverOverwrite", KindConstant, "v7.0.16+", "outbound clients only"},
	{"AlwaysOverwrite", KindConstant, "v7.0.16+", "outbound clients only"},
	{"OverwriteIfDiffSize", KindConstant, "v7.0.16+", "outbound clients only"},
	{"OverwriteIfNewer", KindConstant, "v7.0.16+", "outbound clients only"},
	{"LIST_ALL", KindConstant, "v7.0.16+", "outbound clients only"},
	{"LIST_FILES", KindConstant, "v7.0.16+", "outbound clients only"},
	{"LIST_DIRS", KindConstant, "v7.0.16+", "outbound clients only"},
	{"TLS_MODE_NONE", KindConstant, "v7.0.16+", "outbound clients only"},
	{"TLS_MODE_EXPLICIT", KindConstant, "v7.0.16+", "outbound clients only"},
	{"TLS_MODE_IMPLICIT", KindConstant, "v7.0.16+", "outbound clients only"},
	{"Sleep", KindFunction, "AFT!", ""},
	{"LastError", KindObject, "AFT!", "results have ErrorMsg(); Session.GetLastError() for the client's"},
	{"ConsoleFeedback", KindObject, "AFT!", "event scripts have no console"},
	{"HaltSignalReceived", KindFunction, "AFT!", "for long-running AFT! jobs"},
	{"WaitForHaltSignal", KindFunction, "AFT!", "for long-running AFT! jobs"},
	{"FsWatcher", KindClass, "AFT!", "for long-running AFT! jobs"},
	{"RemoteWatcher", KindClass, "AFT!", "for long-running AFT! jobs"},
	{"EVT_WRITE", KindConstant, "AFT!", "for long-running AFT! jobs"},
	{"EVT_CREATE", KindConstant, "AFT!", "for long-running AFT! jobs"},
	{"EVT_REMOVE", KindConstant, "AFT!", "for long-running AFT! jobs"},
	{"EVT_RENAME", KindConstant, "AFT!", "for long-running AFT! jobs"},
	{"EVT_CHMOD", KindConstant, "AFT!", "for long-running AFT! jobs"},
	// v6 knowledge base helpers (§1f).
	{"FileReadAsHex", KindFunction, "v6", ""},
	{"DelFile", KindFunction, "v6", ""},
	// The Session object (§1a).
	{"GetID", KindMember, "v6+", ""},
	{"GetUser", KindMember, "v6+", ""},
	{"GetUserID", KindMember, "v7", ""},
	{"GetCurrentVFS", KindMember, "v6", ""},
	{"GetVirtualSite", KindMember, "v6+", ""},
	{"GetRemoteAddress", KindMember, "v6+", ""},
	{"GetClientVersion", KindMember, "v6+", ""},
	{"GetProtocol", KindMember, "v6+", ""},
	{"GetStartTime", KindMember, "v6+", ""},
	{"GetLastActivity", KindMember, "v6+", ""},
	{"BlockOperation", KindMember, "v6+", ""},
	{"AddCustomData", KindMember, "v6+", ""},
	{"GetCustomData", KindMember, "v6+", ""},
	{"GetAllCustomData", KindMember, "v6+", ""},
	{"AddQuestion", KindMember, "v6+", ""},
	{"AddQuestionPassword", KindMember, "v6+", ""},
	{"AddQuestionTOTP", KindMember, "v6+", ""},
	{"AuthenticateUserFromScript", KindMember, "v6+", ""},
	{"GetAbsPath", KindMember, "v6+", ""},
	{"GetAbsTargetPath", KindMember, "v6+", ""},
	{"GetRelPath", KindMember, "v6+", ""},
	{"GetRelTargetPath", KindMember, "v6+", ""},
	{"RemoveFromListDir", KindMember, "v6+", ""},
	{"GetLastCommand", KindMember, "v6+", ""},
	{"GetLastCommandTime", KindMember, "v6+", ""},
	{"GetLastError", KindMember, "v6+", ""},
	{"GetLastErrorTime", KindMember, "v6+", ""},
	{"GetAnsweredQuestions", KindMember, "v7", ""},
	// Legacy v4/v5 names (§1h): that engine is gone from Syncplify too.
	{"ObjectName", KindObject, "v4/v5", "Session.GetAbsPath()"},
	{"VirtualObjectName", KindObject, "v4/v5", "CtxRelPath()"},
	{"ScriptID", KindObject, "v4/v5", ""},
	{"ScriptName", KindObject, "v4/v5", ""},
	{"HandlerPriority", KindObject, "v4/v5", ""},
	{"SendToClient", KindFunction, "v4/v5", ""},
	{"Blacklist", KindFunction, "v4/v5", "Terminate(true)"},
	{"ttTemporary", KindConstant, "v4/v5", "Terminate(true)"},
	{"ttPermanent", KindConstant, "v4/v5", "the protector's block list"},
	{"AddToLog", KindFunction, "v4/v5", "Log()"},
	{"FileDelete", KindFunction, "v4/v5", "DelFile()"},
	{"ExtractFileExt", KindFunction, "v4/v5", "ExtractExt()"},
	{"Lowercase", KindFunction, "v4/v5", "string.lower(s) / s.toLowerCase()"},
	{"Terminate", KindMember, "v4/v5", "Terminate(addToBlockList)"},
	{"ClientIP", KindMember, "v4/v5", "Session.GetRemoteAddress()"},
	{"ClientSoftware", KindMember, "v4/v5", "Session.GetClientVersion()"},
	{"ReqUsername", KindMember, "v4/v5", "Session.GetLastCommand() in OnAuthRequest"},
	{"ReqPassword", KindMember, "v4/v5", "scripts are not given passwords"},
	{"UserAuthenticated", KindMember, "v4/v5", "Session.AuthenticateUserFromScript()"},
	{"AllowNextOperation", KindMember, "v4/v5", "Session.BlockOperation()"},
	{"CustomData", KindMember, "v4/v5", "Session.AddCustomData() / GetAllCustomData()"},
	{"CustomDataEx", KindMember, "v4/v5", "Session.AddCustomData() / GetAllCustomData()"},
	{"SID_ProductName", KindMember, "v4/v5", "Conn.SetSoftwareID()"},
	{"SID_VendorID", KindMember, "v4/v5", "Conn.SetSoftwareID()"},
	{"SID_Version", KindMember, "v4/v5", "Conn.SetSoftwareID()"},
	{"SID_BuildNo", KindMember, "v4/v5", "Conn.SetSoftwareID()"},
}

// engineNames are the names a script can reach: the engine's globals (with Session and Conn)
// and Session's methods, read from a Lua state built as the engine builds its states.
type engineNames struct {
	globals, session map[string]bool
}

var definedNames = sync.OnceValue(func() engineNames {
	e := &Engine{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	v := e.newVM()
	defer v.close()
	n := engineNames{globals: map[string]bool{}, session: map[string]bool{}}
	if b, ok := v.metaSessionConn.RawGetString("__index").(*lua.LTable); ok {
		b.ForEach(func(k, _ lua.LValue) {
			if s, ok := k.(lua.LString); ok {
				n.globals[string(s)] = true
			}
		})
	}
	for name := range sessionMethods {
		n.session[name] = true
	}
	return n
})

// Implemented reports whether wharf implements a Syncplify name.
func (n SyncplifyName) Implemented() bool {
	d := definedNames()
	switch n.Kind {
	case KindMember:
		return d.session[n.Name]
	case KindEvent:
		return slices.Contains(config.Events, n.Name)
	}
	return d.globals[n.Name]
}

// missingGlobals and missingMembers are Syncplify's names that the engine does not define.
func missingNames() (globals, members map[string]SyncplifyName) {
	globals, members = map[string]SyncplifyName{}, map[string]SyncplifyName{}
	for _, n := range SyncplifyNames {
		if n.Implemented() {
			continue
		}
		if n.Kind == KindMember {
			members[n.Name] = n
		} else if _, dup := globals[n.Name]; !dup {
			globals[n.Name] = n
		}
	}
	return globals, members
}

// notImplemented is the load error for a name.
func notImplemented(n SyncplifyName, display string) string {
	msg := fmt.Sprintf("%s is a Syncplify %s (%s) that wharf does not implement", display, n.Kind, n.Since)
	if n.Hint != "" {
		msg += "; " + n.Hint
	}
	return msg
}

// checkNames refuses a compiled script that uses Syncplify names the engine does not define:
// global reads of such a name (a global the script assigns itself is its own), and members
// of Session. src is the script's source, for the columns.
func checkNames(proto *lua.FunctionProto, src []byte, file string) []*ScriptError {
	globals, members := missingNames()
	assigned := map[string]bool{}
	walkProtos(proto, func(p *lua.FunctionProto) {
		for _, inst := range p.Code {
			if opcode(inst) == lua.OP_SETGLOBAL {
				if s, ok := p.Constants[argBx(inst)].(lua.LString); ok {
					assigned[string(s)] = true
				}
			}
		}
	})
	lines := strings.Split(string(src), "\n")
	var errs []*ScriptError
	seen := map[string]bool{}
	report := func(n SyncplifyName, display, search string, line int) {
		key := fmt.Sprintf("%s:%d", display, line)
		if seen[key] {
			return
		}
		seen[key] = true
		l, c := findName(lines, line, search)
		errs = append(errs, &ScriptError{File: file, Line: l, Column: c, Msg: notImplemented(n, display), column: true})
	}
	walkProtos(proto, func(p *lua.FunctionProto) {
		for pc, inst := range p.Code {
			if opcode(inst) != lua.OP_GETGLOBAL {
				continue
			}
			name, ok := p.Constants[argBx(inst)].(lua.LString)
			if !ok || assigned[string(name)] {
				continue
			}
			line := 0
			if pc < len(p.DbgSourcePositions) {
				line = p.DbgSourcePositions[pc]
			}
			if n, ok := globals[string(name)]; ok {
				report(n, string(name), string(name), line)
				continue
			}
			if name != "Session" || pc+1 >= len(p.Code) {
				continue
			}
			// Session.X / Session:X: the next instruction indexes the register with a constant.
			next, reg := p.Code[pc+1], argA(inst)
			switch opcode(next) {
			case lua.OP_GETTABLE, lua.OP_GETTABLEKS, lua.OP_SELF:
				if argB(next) != reg || !isK(argC(next)) {
					continue
				}
				if k, ok := p.Constants[indexK(argC(next))].(lua.LString); ok {
					if n, ok := members[string(k)]; ok {
						report(n, "Session."+string(k), string(k), line)
					}
				}
			}
		}
	})
	return errs
}

// translateNewError names a Syncplify class in the translator's refusal of `new X`, at the
// class's name.
func translateNewError(se *ScriptError, src []byte) {
	rest, ok := strings.CutPrefix(se.Msg, "unsupported: new ")
	if !ok {
		return
	}
	globals, _ := missingNames()
	if n, ok := globals[rest]; ok {
		se.Msg = notImplemented(n, rest)
		if lines := strings.Split(string(src), "\n"); se.Line >= 1 && se.Line <= len(lines) {
			if i := strings.Index(lines[se.Line-1][min(max(se.Column-1, 0), len(lines[se.Line-1])):], rest); i >= 0 {
				se.Column += i
			}
		}
	}
}

// findName finds the column of name as an identifier at line or, for a statement that spans
// lines, on the lines after it. It returns line, 0 when it cannot tell.
func findName(lines []string, line int, name string) (int, int) {
	for l := max(line, 1); l <= len(lines) && l < line+50; l++ {
		text := lines[l-1]
		for from := 0; ; {
			i := strings.Index(text[from:], name)
			if i < 0 {
				break
			}
			i += from
			end := i + len(name)
			if (i == 0 || !identByte(text[i-1])) && (end == len(text) || !identByte(text[end])) {
				return l, i + 1
			}
			from = end
		}
	}
	return line, 0
}

func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func walkProtos(p *lua.FunctionProto, f func(*lua.FunctionProto)) {
	f(p)
	for _, c := range p.FunctionPrototypes {
		walkProtos(c, f)
	}
}

// Lua 5.1 instruction fields as gopher-lua lays them out (opcode.go): opcode in the top 6
// bits, then A (8), C (9) and B (9); Bx is the low 18 bits.
func opcode(i uint32) int { return int(i >> 26) }
func argA(i uint32) int   { return int(i>>18) & 0xff }
func argB(i uint32) int   { return int(i & 0x1ff) }
func argC(i uint32) int   { return int(i>>9) & 0x1ff }
func argBx(i uint32) int  { return int(i & 0x3ffff) }
func isK(rk int) bool     { return rk&(1<<8) != 0 }
func indexK(rk int) int   { return rk &^ (1 << 8) }

// NamesTable is the Markdown table of Syncplify's names and their status in wharf, for
// docs/scripting.md (TestNamesTableInDocs keeps it there).
func NamesTable() string {
	var b strings.Builder
	b.WriteString("| name | kind | Syncplify | in wharf |\n|---|---|---|---|\n")
	row := func(n SyncplifyName, display string) {
		status := "yes"
		if !n.Implemented() {
			status = "**no**: refused when the script loads"
			if n.Kind == KindEvent {
				status = "**no**: refused when the config loads"
			}
			if n.Hint != "" {
				status += "; " + n.Hint
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", display, n.Kind, n.Since, status)
	}
	for _, n := range SyncplifyNames {
		display := n.Name
		if n.Kind == KindMember {
			display = "Session." + n.Name
		}
		row(n, display)
	}
	for _, ev := range config.Events {
		row(SyncplifyName{Name: ev, Kind: KindEvent, Since: "v6+"}, ev)
	}
	for _, ev := range slices.Sorted(maps.Keys(config.SyncplifyOnlyEvents)) {
		row(SyncplifyName{Name: ev, Kind: KindEvent, Since: "v7", Hint: config.SyncplifyOnlyEvents[ev]}, ev)
	}
	return b.String()
}
