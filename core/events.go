package core

import (
	"context"
	"sync/atomic"
)

// EventName names an event of the scripting contract (shared/spec/scripting.md).
type EventName string

// The events, in the order of the contract's table.
const (
	OnNewConnection               EventName = "OnNewConnection"
	BeforeSendSoftwareID          EventName = "BeforeSendSoftwareID"
	OnAuthRequest                 EventName = "OnAuthRequest"
	OnAuthPassword                EventName = "OnAuthPassword"
	OnAuthPKI                     EventName = "OnAuthPKI"
	OnAuthInteractiveSetQuestions EventName = "OnAuthInteractiveSetQuestions"
	OnAuthInteractive             EventName = "OnAuthInteractive"
	OnAuthFail                    EventName = "OnAuthFail"
	OnAuthSuccess                 EventName = "OnAuthSuccess"
	BeforeOpenSFTP                EventName = "BeforeOpenSFTP"
	BeforeOpenCmd                 EventName = "BeforeOpenCmd"
	OnDirList                     EventName = "OnDirList"
	BeforeFileUpload              EventName = "BeforeFileUpload"
	AfterFileUpload               EventName = "AfterFileUpload"
	BeforeFileDownload            EventName = "BeforeFileDownload"
	AfterFileDownload             EventName = "AfterFileDownload"
	BeforeFileDelete              EventName = "BeforeFileDelete"
	AfterFileDelete               EventName = "AfterFileDelete"
	BeforeFileRename              EventName = "BeforeFileRename"
	AfterFileRename               EventName = "AfterFileRename"
	BeforeDirCreate               EventName = "BeforeDirCreate"
	AfterDirCreate                EventName = "AfterDirCreate"
	BeforeDirDelete               EventName = "BeforeDirDelete"
	AfterDirDelete                EventName = "AfterDirDelete"
	OnTransferError               EventName = "OnTransferError"
	OnProtectorStrike             EventName = "OnProtectorStrike"
	OnBlocklistAdd                EventName = "OnBlocklistAdd"
	OnBlocklistHit                EventName = "OnBlocklistHit"
	OnConnectionClose             EventName = "OnConnectionClose"
)

// AllEvents lists every event name of the contract.
func AllEvents() []EventName {
	return []EventName{OnNewConnection, BeforeSendSoftwareID, OnAuthRequest, OnAuthPassword, OnAuthPKI,
		OnAuthInteractiveSetQuestions, OnAuthInteractive, OnAuthFail, OnAuthSuccess, BeforeOpenSFTP,
		BeforeOpenCmd, OnDirList, BeforeFileUpload, AfterFileUpload, BeforeFileDownload, AfterFileDownload,
		BeforeFileDelete, AfterFileDelete, BeforeFileRename, AfterFileRename, BeforeDirCreate, AfterDirCreate,
		BeforeDirDelete, AfterDirDelete, OnTransferError, OnProtectorStrike, OnBlocklistAdd, OnBlocklistHit,
		OnConnectionClose}
}

// IsGate reports whether a script may refuse the action the event is about.
func (e EventName) IsGate() bool {
	switch e {
	case OnNewConnection, OnAuthRequest, OnAuthPassword, OnAuthPKI, OnAuthInteractive, BeforeOpenSFTP,
		BeforeOpenCmd, OnDirList, BeforeFileUpload, BeforeFileDownload, BeforeFileDelete, BeforeFileRename,
		BeforeDirCreate, BeforeDirDelete:
		return true
	}
	return false
}

// IsAuth reports whether AuthenticateUserFromScript is meaningful in the event.
func (e EventName) IsAuth() bool {
	switch e {
	case OnAuthRequest, OnAuthPassword, OnAuthPKI, OnAuthInteractive:
		return true
	}
	return false
}

// An Event is what the core hands to the Dispatcher. Scripts act on the session (or, before a
// session exists, on Conn) through their methods: BlockOperation, AddQuestion, Reject, …; the
// core reads those decisions back after Fire returns.
type Event struct {
	Name          EventName
	Session       *Session // nil in OnNewConnection, BeforeSendSoftwareID, OnBlocklistHit
	Conn          *Conn    // always set
	RelPath       string   // CtxRelPath(): the operation's virtual path, fixed when the event fired
	RelTargetPath string   // CtxRelTargetPath(): the rename target

	// upload is the atomic upload an AfterFileUpload is about, still under its temporary
	// name: scripts read it there (see ScriptFS).
	upload *WriteHandle

	// Then is set when the event's operation is not complete when Fire returns: an atomic
	// upload's AfterFileUpload fires before the data is published (a script can still
	// discard it). A dispatcher with work that must see the completed operation
	// (asynchronous handlers) hands it to Then, and the core calls it with true once the
	// operation succeeded, or with false if it was refused or failed. When Then is nil, the
	// operation is complete (or, for a gate event, about to be decided) when Fire returns.
	Then func(after func(ok bool))
}

// Dispatcher runs the handlers of events. The scripting engine implements it; core only knows
// this interface (dependency inversion, see architecture.md).
type Dispatcher interface {
	// Handles reports whether any handler is attached to the event for this site or for user,
	// the user the event names (Session.NamedUser: during authentication the user the client
	// named), when non-nil. The core skips building events nobody listens to.
	Handles(name EventName, user *User) bool
	// Fire runs the handlers synchronously, each bounded by its timeout; those of the user the
	// event names (ev.Session.NamedUser()) before the site's. A failing handler whose
	// on_error is "block" refuses a gate event by calling Session.BlockOperation (or Conn.Reject).
	Fire(ctx context.Context, ev *Event)
}

// NopDispatcher has no handlers.
type NopDispatcher struct{}

func (NopDispatcher) Handles(EventName, *User) bool { return false }
func (NopDispatcher) Fire(context.Context, *Event)  {}

// Conn describes a connection before (and while) a session exists. Pre-session events use it
// for Conn.Reject() and Conn.SetSoftwareID().
type Conn struct {
	RemoteIP   string // without port
	LocalAddr  string
	Protocol   string // SFTP, FTP, FTPS at accept time
	Site       string
	site       *Site // nil for a Conn built outside a site (tests)
	softwareID atomic.Pointer[string]
	rejected   atomic.Bool
}

// Reject refuses the connection (OnNewConnection) or, in other pre-session events, the
// action the event is about.
func (c *Conn) Reject() { c.rejected.Store(true) }

// Rejected reports whether a script rejected the connection.
func (c *Conn) Rejected() bool { return c.rejected.Load() }

// SetSoftwareID changes the SSH identification / FTP greeting to send (BeforeSendSoftwareID).
func (c *Conn) SetSoftwareID(s string) { c.softwareID.Store(&s) }

// SoftwareID returns what a script set with SetSoftwareID, or def.
func (c *Conn) SoftwareID(def string) string {
	if p := c.softwareID.Load(); p != nil {
		return *p
	}
	return def
}

// Site returns the site of the event (scripts open the site's vfs definitions through it), or
// nil for an event built outside a site.
func (e *Event) Site() *Site {
	if e.Session != nil {
		return e.Session.site
	}
	if e.Conn != nil {
		return e.Conn.site
	}
	return nil
}
