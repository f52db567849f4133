// Package scripting runs the Lua event scripts of a site (contract: shared spec scripting.md).
//
// An Engine is the site's core.Dispatcher. It compiles every script that the site's and its
// users' event_handlers reference once per load (New, Reload) into immutable function
// prototypes shared by a bounded pool of Lua states. Each handler run gets a fresh global
// environment whose reads fall through to a read-only base (the safe parts of string, table,
// math and os, plus wharf's globals), so nothing leaks from one run to the next except through
// the session's custom data. Each run is bounded by its handler's timeout; a failing or timed
// out handler of a gate event refuses the operation unless its on_error is "continue". The
// session always survives a script failure.
//
// Objects (Session, User, Conn, Date) are userdata whose methods work in both the JS style of
// the Syncplify documentation (Session.GetID()) and the Lua style (Session:GetID()).
//
// A .js script is translated to Lua when it is loaded (package jscompat) and then runs like a
// Lua script, with the JS runtime in its read-only base.
package scripting
