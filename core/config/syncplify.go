package config

// SyncplifyOnlyEvents are the events of Syncplify's v7 table that wharf does not fire, with
// what to use instead (Events are those it does). A handler naming one is refused by name.
var SyncplifyOnlyEvents = map[string]string{
	"OnAuthRequestAllowed": "use OnAuthRequest",
	"OnAuthRequestDenied":  "use OnAuthFail",
	"BeforeOpenShell":      "wharf has no shell",
	"BeforeOpenClientFwd":  "wharf has no port forwarding",
	"BeforeOpenServerFwd":  "wharf has no port forwarding",
}
