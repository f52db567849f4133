package scripting

import (
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
)

// The Session and Conn objects act on the run in progress: a state has one of each, and one
// of each for asynchronous runs (async.go).
var (
	sessionClass      = &hostClass{name: "Session", methods: sessionMethods}
	connClass         = &hostClass{name: "Conn", methods: connMethods}
	asyncSessionClass = &hostClass{name: "Session", methods: withOverrides(sessionMethods, asyncSessionMethods)}
	asyncConnClass    = &hostClass{name: "Conn", methods: withOverrides(connMethods, asyncConnMethods)}
)

// sessionMethods are the 26 members of the contract's Session object, Syncplify v6's
// GetCurrentVFS and v7's GetAnsweredQuestions.
var sessionMethods = map[string]classMethod{
	"GetID":            sessString((*core.Session).ID),
	"GetUserID":        sessString((*core.Session).UserID),
	"GetVirtualSite":   sessString((*core.Session).VirtualSite),
	"GetRemoteAddress": sessString((*core.Session).RemoteAddress),
	"GetClientVersion": sessString((*core.Session).ClientVersion),
	"GetProtocol":      sessString((*core.Session).Protocol),
	"GetAbsPath":       sessString((*core.Session).AbsPath),
	"GetAbsTargetPath": sessString((*core.Session).AbsTargetPath),
	"GetRelPath":       sessString((*core.Session).RelPath),
	"GetRelTargetPath": sessString((*core.Session).RelTargetPath),
	"GetLastCommand":   sessString((*core.Session).LastCommand),
	"GetLastError":     sessString((*core.Session).LastError),

	"GetUser": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		u := v.ev.Session.User()
		if u == nil {
			L.Push(lua.LNil)
			return 1
		}
		v.user().Value = u
		L.Push(v.userUD)
		return 1
	},
	"GetStartTime": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(v.newDate(v.ev.Session.StartTime()))
		return 1
	},
	"GetLastActivity": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(v.newDate(v.ev.Session.LastActivity()))
		return 1
	},
	"GetLastCommandTime": sessTime((*core.Session).LastCommandTime),
	"GetCurrentVFS": func(v *vm, L *lua.LState, _ *instance, _ int) int { // Syncplify v6; v7 has the global
		L.Push(v.currentVFS())
		return 1
	},
	"GetAnsweredQuestions": answeredQuestions,
	"GetLastErrorTime":     sessTime((*core.Session).LastErrorTime),

	"BlockOperation": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		v.ev.Session.BlockOperationBy(v.h.script)
		v.notify("BlockOperation", v.ev.RelPath)
		return 0
	},
	"AddCustomData": func(v *vm, L *lua.LState, _ *instance, a int) int {
		s := L.CheckString(a)
		L.ChargeMemory(stringOverhead + int64(len(s))) // the session keeps it: see sessionBytes
		v.ev.Session.AddCustomData(s)
		v.notify("AddCustomData", s)
		return 0
	},
	"GetCustomData": func(v *vm, L *lua.LState, _ *instance, a int) int {
		n := L.CheckNumber(a)
		idx := int(n)
		if float64(idx) != float64(n) {
			idx = -1 // not an index: out of range
		}
		L.Push(lua.LString(v.ev.Session.CustomData(idx)))
		return 1
	},
	"GetAllCustomData": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		items := v.ev.Session.AllCustomData()
		t := L.CreateTable(len(items), 0)
		for _, s := range items {
			t.Append(lua.LString(s))
		}
		L.Push(t)
		return 1
	},
	"AddQuestion": func(v *vm, L *lua.LState, _ *instance, a int) int {
		pos, q := L.CheckInt(a), L.CheckString(a+1)
		// The expected answer is compared as text; a number is compared as its string form.
		ans := L.CheckString(a + 2)
		echo := lua.LVAsBool(L.Get(a + 3))
		if v.questionsAllowed(L, "AddQuestion") {
			v.ev.Session.AddQuestion(pos, q, ans, echo)
			v.notify("AddQuestion", questionDetail(pos, q, echo))
		}
		return 0
	},
	"AddQuestionPassword": func(v *vm, L *lua.LState, _ *instance, a int) int {
		pos, q := L.CheckInt(a), L.CheckString(a+1)
		if v.questionsAllowed(L, "AddQuestionPassword") {
			v.ev.Session.AddQuestionPassword(pos, q)
			v.notify("AddQuestionPassword", questionDetail(pos, q, false))
		}
		return 0
	},
	"AddQuestionTOTP": func(v *vm, L *lua.LState, _ *instance, a int) int {
		pos, q := L.CheckInt(a), L.CheckString(a+1)
		if v.questionsAllowed(L, "AddQuestionTOTP") {
			v.ev.Session.AddQuestionTOTP(pos, q)
			v.notify("AddQuestionTOTP", questionDetail(pos, q, false))
		}
		return 0
	},
	"AuthenticateUserFromScript": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		if !v.ev.Name.IsAuth() {
			v.warn(L, "AuthenticateUserFromScript", "only OnAuthRequest, OnAuthPassword, OnAuthPKI and OnAuthInteractive can authenticate")
			return 0
		}
		v.ev.Session.AuthenticateFromScript()
		v.notify("AuthenticateUserFromScript", "")
		return 0
	},
	"RemoveFromListDir": func(v *vm, L *lua.LState, _ *instance, a int) int {
		pattern := L.CheckString(a)
		v.ev.Session.RemoveFromListDir(pattern)
		v.notify("RemoveFromListDir", pattern)
		return 0
	},
}

func sessString(get func(*core.Session) string) classMethod {
	return func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(lua.LString(get(v.ev.Session)))
		return 1
	}
}

func sessTime(get func(*core.Session) (time.Time, bool)) classMethod {
	return func(v *vm, L *lua.LState, _ *instance, _ int) int {
		if t, ok := get(v.ev.Session); ok {
			L.Push(v.newDate(t))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	}
}

// questionsAllowed reports whether AddQuestion* may be used in the event being handled.
func (v *vm) questionsAllowed(L *lua.LState, call string) bool {
	if v.ev.Name == core.OnAuthInteractiveSetQuestions {
		return true
	}
	v.warn(L, call, "questions can only be added in OnAuthInteractiveSetQuestions")
	return false
}

func questionDetail(pos int, q string, echo bool) string {
	return "pos=" + strconv.Itoa(pos) + " echo=" + strconv.FormatBool(echo) + " prompt=" + strconv.Quote(q)
}

// connMethods are the members of the Conn object of pre-session events.
var connMethods = map[string]classMethod{
	"GetRemoteAddress": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(lua.LString(v.ev.Conn.RemoteIP))
		return 1
	},
	"GetProtocol": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(lua.LString(v.ev.Conn.Protocol))
		return 1
	},
	"GetVirtualSite": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(lua.LString(v.ev.Conn.Site))
		return 1
	},
	"Reject": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		v.ev.Conn.Reject()
		v.notify("Reject", v.ev.Conn.RemoteIP)
		return 0
	},
	"SetSoftwareID": func(v *vm, L *lua.LState, _ *instance, a int) int {
		s := L.CheckString(a)
		v.ev.Conn.SetSoftwareID(s)
		v.notify("SetSoftwareID", s)
		return 0
	},
}
