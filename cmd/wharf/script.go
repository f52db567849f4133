package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

const scriptUsage = `usage: wharf script run FILE --event NAME [options]
       wharf script translate FILE.js

translate prints the Lua that a JavaScript (.js) script is translated to when it is loaded,
or its load error (file:line:column: message) with exit status 1.


Runs an event script against a simulated session of a throw-away site (an in-memory config
with one user whose home is a temporary folder, and a catch-all user "*"), performs the
operation that fires the event, and prints the script's log lines and what it decided.
Exit status 0 when the script ran, 1 when it failed or timed out (or could not be loaded).

Options:
`

// simPassword is the simulated user's password; --password changes what the client sends.
const simPassword = "wharf-script-run"

func cmdScript(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "translate" {
		return cmdTranslate(args[1:], stdout, stderr)
	}
	if len(args) > 0 && isHelpArg(args[0]) {
		fmt.Fprint(stdout, scriptUsage)
		return 0
	}
	if len(args) == 0 || args[0] != "run" {
		fmt.Fprint(stderr, scriptUsage)
		return 2
	}
	o, err := parseScriptRun(args[1:], stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// The usage went to stderr with the flag package's own -h handling.
			return 0
		}
		fmt.Fprintf(stderr, "wharf script run: %v\n", err)
		return 2
	}
	if err := runScript(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "wharf script run: %v\n", err)
		return 1
	}
	return 0
}

// cmdTranslate prints the Lua a .js script runs as.
func cmdTranslate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelpArg(args[0]) {
		fmt.Fprint(stdout, scriptUsage)
		return 0
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, scriptUsage)
		return 2
	}
	if !strings.EqualFold(filepath.Ext(args[0]), ".js") {
		fmt.Fprintf(stderr, "wharf script translate: %s is not a .js script\n", args[0])
		return 2
	}
	code, err := scripting.TranslateJS(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, code)
	return 0
}

// scriptRun is what `wharf script run` was asked to do.
type scriptRun struct {
	file, event, user, password, path, target, protocol, ip, clientVersion string
	answers, events                                                        []string
	unknownUser, verbose                                                   bool
	async                                                                  bool // mode: async for the last event
	timeout                                                                time.Duration
	passwordSet                                                            bool
	data                                                                   []byte                   // --data: what uploads write; nil: a line of text
	secrets                                                                map[string]config.Secret // --secret
	vfs                                                                    []string                 // --vfs: extra disk vfs names
	uploads                                                                []string                 // --upload: uploaded before the operation
	smtpSink                                                               bool
	smtpFrom                                                               string
	tries                                                                  int // --tries: authentication attempts
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseScriptRun(args []string, stderr io.Writer) (*scriptRun, error) {
	o := &scriptRun{}
	fs := flag.NewFlagSet("script run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, scriptUsage)
		fs.PrintDefaults()
	}
	fs.Var((*stringList)(&o.events), "event", "event to fire (required), e.g. BeforeFileUpload; repeat it to attach the\nscript to several events (OnAuthRequest then OnAuthPassword): the last one's operation is simulated")
	fs.StringVar(&o.user, "user", "alice", "the simulated user's id")
	fs.StringVar(&o.password, "password", "", "password the client sends (default: the user's own; a wrong one for OnAuthFail)")
	fs.BoolVar(&o.unknownUser, "unknown-user", false, "the user is not configured (only the catch-all \"*\" is): for external-auth scripts")
	fs.StringVar(&o.path, "path", "", "virtual path of the operation (default by event: /upload.txt, /dir or /)")
	fs.StringVar(&o.target, "target", "", "rename target (default /renamed.txt)")
	fs.StringVar(&o.protocol, "protocol", core.ProtoSFTP, "SFTP, SCP, FTP, FTPES or FTPS")
	fs.StringVar(&o.ip, "ip", "203.0.113.7", "client IP address")
	fs.StringVar(&o.clientVersion, "client-version", "", "client software version (SSH identification string or FTP CLNT)")
	fs.Var((*stringList)(&o.answers), "answer", "keyboard-interactive answer, repeated in question order (default: the password)")
	fs.DurationVar(&o.timeout, "timeout", scripting.DefaultTimeout, "the handler's timeout")
	fs.BoolVar(&o.verbose, "v", false, "also print the server's own log lines")
	fs.BoolVar(&o.async, "async", false, "attach the script to the last --event with mode: async (After… events, OnConnectionClose,\nOnAuthSuccess, …); the report waits for it to run")
	var dataFile string
	fs.StringVar(&dataFile, "data", "", "host FILE whose contents the simulated uploads write (default: a line of text)")
	var secrets, vfs stringList
	fs.Var(&secrets, "secret", "a secret for GetSecret, NAME=env:VARIABLE or NAME=file:PATH (as the config's secrets:);\nrepeatable")
	fs.Var(&vfs, "vfs", "add a disk vfs of this name on a temporary folder, for VirtualFS(name); repeatable")
	fs.Var((*stringList)(&o.uploads), "upload", "upload this path first, with the events armed (for a script that collects uploads and\nacts at OnConnectionClose); repeatable")
	fs.IntVar(&o.tries, "tries", 1, "authentication attempts in the session (password or keyboard-interactive), until one succeeds:\nfor scripts that count failures")
	fs.BoolVar(&o.smtpSink, "smtp-sink", false, "queue SendMail's messages as the server would (addresses checked, message rendered) and\nprint them instead of sending them; without it SendMail fails")
	fs.StringVar(&o.smtpFrom, "smtp-from", "wharf@localhost", "the relay's from (smtp.from) for --smtp-sink: the sender of SendMail('', …)")
	// FILE may come before or after the flags.
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			if o.file != "" {
				return nil, fmt.Errorf("more than one script given (%s, %s)", o.file, args[0])
			}
			o.file, args = args[0], args[1:]
		}
	}
	fs.Visit(func(f *flag.Flag) { o.passwordSet = o.passwordSet || f.Name == "password" })
	if o.file == "" {
		return nil, errors.New("a script FILE is required")
	}
	if len(o.events) == 0 {
		return nil, errors.New("--event is required")
	}
	for _, ev := range o.events {
		if !isEvent(ev) {
			return nil, fmt.Errorf("unknown event %q (events: %s)", ev, strings.Join(config.Events, ", "))
		}
	}
	o.event = o.events[len(o.events)-1]
	if o.async && !isOneOf(o.event, config.AsyncEvents) {
		return nil, fmt.Errorf("--async: %s cannot be asynchronous (events that can: %s)", o.event, strings.Join(config.AsyncEvents, ", "))
	}
	if dataFile != "" {
		b, err := os.ReadFile(dataFile)
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		o.data = b
	}
	secretMap, err := parseSecrets(secrets)
	if err != nil {
		return nil, err
	}
	o.secrets = secretMap
	for _, name := range vfs {
		if name == "" || name == "home" || slices.Contains(o.vfs, name) {
			return nil, fmt.Errorf("--vfs %q: a vfs needs a new name (home is the user's)", name)
		}
		o.vfs = append(o.vfs, name)
	}
	for _, up := range o.uploads {
		if !strings.HasPrefix(up, "/") || path.Clean(up) != up || up == "/" {
			return nil, fmt.Errorf("--upload %q: give a clean absolute file path, e.g. /in/a.txt", up)
		}
	}
	if _, err := mail.ParseAddress(o.smtpFrom); err != nil {
		return nil, fmt.Errorf("--smtp-from %q: %w", o.smtpFrom, err)
	}
	if o.tries < 1 || o.tries > 20 {
		return nil, fmt.Errorf("--tries %d: give 1 to 20", o.tries)
	}
	if len(o.uploads) > 0 && !needsLogin(core.EventName(o.event)) {
		return nil, fmt.Errorf("--upload needs an event of a logged-in session, not %s", o.event)
	}
	switch {
	case net.ParseIP(o.ip) == nil:
		return nil, fmt.Errorf("--ip %q is not an IP address", o.ip)
	}
	o.protocol = strings.ToUpper(o.protocol)
	if !isOneOf(o.protocol, config.Subsystems) {
		return nil, fmt.Errorf("unknown protocol %q (one of %s)", o.protocol, strings.Join(config.Subsystems, ", "))
	}
	if o.unknownUser && !core.EventName(o.event).IsAuth() && o.event != string(core.OnAuthRequest) &&
		o.event != string(core.OnNewConnection) && o.event != string(core.BeforeSendSoftwareID) {
		return nil, errors.New("--unknown-user only makes sense for authentication events: an unconfigured user can only log in through a script")
	}
	if o.path == "" {
		o.path = defaultPath(core.EventName(o.event))
	}
	if o.target == "" {
		o.target = "/renamed.txt"
	}
	if !o.passwordSet {
		o.password = simPassword
		if o.event == string(core.OnAuthFail) {
			o.password = "wrong-password"
		}
	}
	return o, nil
}

// parseSecrets reads --secret NAME=env:VARIABLE and NAME=file:PATH. A value is never given
// on the command line, where other users of the host could read it.
func parseSecrets(args []string) (map[string]config.Secret, error) {
	out := map[string]config.Secret{}
	for _, a := range args {
		name, ref, _ := strings.Cut(a, "=")
		kind, where, _ := strings.Cut(ref, ":")
		if name == "" || where == "" || kind != "env" && kind != "file" {
			return nil, fmt.Errorf("--secret %q: give NAME=env:VARIABLE or NAME=file:PATH", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--secret %s given twice", name)
		}
		switch kind {
		case "env":
			if _, ok := os.LookupEnv(where); !ok {
				return nil, fmt.Errorf("--secret %s: environment variable %s is not set", name, where)
			}
			out[name] = config.Secret{Env: where}
		case "file":
			abs, err := filepath.Abs(where)
			if err == nil {
				_, err = os.Stat(abs)
			}
			if err != nil {
				return nil, fmt.Errorf("--secret %s: %w", name, err)
			}
			out[name] = config.Secret{File: abs}
		}
	}
	return out, nil
}

// needsLogin reports whether simulating ev starts with a logged-in session.
func needsLogin(ev core.EventName) bool {
	switch ev {
	case core.OnNewConnection, core.OnBlocklistHit, core.BeforeSendSoftwareID, core.OnAuthRequest, core.OnAuthPassword,
		core.OnAuthFail, core.OnAuthSuccess, core.OnAuthPKI, core.OnAuthInteractiveSetQuestions, core.OnAuthInteractive:
		return false
	}
	return true
}

func isEvent(name string) bool { return isOneOf(name, config.Events) }

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func defaultPath(ev core.EventName) string {
	switch ev {
	case core.OnDirList:
		return "/"
	case core.BeforeDirCreate, core.AfterDirCreate, core.BeforeDirDelete, core.AfterDirDelete:
		return "/dir"
	}
	return "/upload.txt"
}

// armed passes the one event under test to the engine, and only once the simulation has
// set the stage (an upload that prepares a download must not fire AfterFileUpload).
type armed struct {
	eng *scripting.Engine
	on  atomic.Bool
}

func (a *armed) Handles(name core.EventName, u *core.User) bool {
	return a.on.Load() && a.eng.Handles(name, u)
}

func (a *armed) Fire(ctx context.Context, ev *core.Event) {
	if a.on.Load() {
		a.eng.Fire(ctx, ev)
	}
}

// scriptOnly keeps the log records a script wrote or caused (they carry a "script"
// attribute) unless everything was asked for.
type scriptOnly struct {
	slog.Handler
	all bool
}

func (h scriptOnly) Handle(ctx context.Context, r slog.Record) error {
	keep := h.all
	r.Attrs(func(a slog.Attr) bool {
		keep = keep || a.Key == "script"
		return !keep
	})
	if !keep {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h scriptOnly) WithAttrs(as []slog.Attr) slog.Handler {
	return scriptOnly{Handler: h.Handler.WithAttrs(as), all: h.all}
}

func (h scriptOnly) WithGroup(g string) slog.Handler {
	return scriptOnly{Handler: h.Handler.WithGroup(g), all: h.all}
}

// runScript builds the throw-away site, fires the event and prints the outcome. It returns an
// error when the script could not be loaded or its run failed.
func runScript(ctx context.Context, o *scriptRun, out io.Writer) error {
	file, err := filepath.Abs(o.file)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(file); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", file)
	}
	tmp, err := os.MkdirTemp("", "wharf-script-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	cfg := simSite(o, file, tmp, string(ssh.MarshalAuthorizedKey(sshPub)))

	var mu sync.Mutex
	var acts []scripting.Action
	log := slog.New(scriptOnly{Handler: slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}), all: o.verbose})
	// A trial run mails no one: with --smtp-sink the messages are queued on a spool that is
	// never delivered, and printed.
	var mailer scripting.Mailer = noMail{}
	var sink *smtpSink
	if o.smtpSink {
		if sink, err = openSMTPSink(filepath.Join(tmp, "mail"), o.smtpFrom); err != nil {
			return err
		}
		mailer = sink
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	hrec := &httpRecorder{rt: base, secrets: scripting.RedactedValues(o.secrets)}
	defer base.CloseIdleConnections()
	eng, err := scripting.New(cfg, scripting.Options{Logger: log, PoolSize: 2, Mail: mailer, HTTPTransport: hrec,
		Observe: func(a scripting.Action) {
			mu.Lock()
			acts = append(acts, a)
			mu.Unlock()
		}})
	if err != nil {
		if lines, ok := scriptProblems(err, "."); ok {
			return errors.New(strings.Join(lines, "\n"))
		}
		return err
	}
	defer eng.Close()
	disp := &armed{eng: eng}
	site, err := core.NewSite(cfg, core.Options{Logger: log, Events: disp})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = site.Shutdown(sctx)
	}()

	fmt.Fprintf(out, "script: %s\nevent:  %s\nclient: user %s, %s from %s\n--- log\n", o.file, strings.Join(o.events, ", "), o.user, o.protocol, o.ip)
	res := simulate(ctx, site, eng, disp, o, sshPub)
	disp.on.Store(false)
	if o.async {
		// The asynchronous runs were queued by the operation; the report waits for them.
		dctx, cancel := context.WithTimeout(ctx, o.timeout+time.Second)
		_ = eng.Drain(dctx)
		cancel()
	}
	if res.sess != nil {
		defer res.sess.Close() // sessions end only when closed; Shutdown waits for them
	}

	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintln(out, "--- result")
	report(out, o, site, res, acts)
	for i, r := range hrec.requests() {
		fmt.Fprintf(out, "%-24s %s\n", fmt.Sprintf("http[%d]:", i), r)
	}
	if sink != nil {
		msgs, err := sink.messages()
		if err != nil {
			return err
		}
		for i, m := range msgs {
			fmt.Fprintf(out, "%-24s %s\n", fmt.Sprintf("mail[%d] (not sent):", i), m)
		}
	}
	printFiles(out, "files", filepath.Join(tmp, o.user))
	for i, name := range o.vfs {
		printFiles(out, "files in vfs "+name, filepath.Join(tmp, "vfs", strconv.Itoa(i)))
	}
	for _, a := range acts {
		if a.Name == "error" {
			return errors.New("the script failed: " + a.Detail)
		}
	}
	return nil
}

// simSite is the throw-away site: the user (unless --unknown-user) and a catch-all profile,
// homes on a temporary disk with atomic uploads, the script as the event's only handler.
func simSite(o *scriptRun, file, tmp, authorizedKey string) *config.Site {
	yes := true
	home := config.Mount{VFS: "home", Permissions: []string{"all"}}
	users := []config.User{{ID: "*", Type: "normal", Home: home}}
	if !o.unknownUser {
		users = append(users, config.User{ID: o.user, Password: "plain:" + simPassword, Email: o.user + "@example.com",
			Type: "normal", Description: "simulated user", PublicKeys: []string{strings.TrimSpace(authorizedKey)}, Home: home})
	}
	var handlers []config.EventHandler
	for i, ev := range o.events {
		mode := "sync"
		if o.async && i == len(o.events)-1 {
			mode = "async"
		}
		handlers = append(handlers, config.EventHandler{Event: ev, Script: filepath.Base(file), Path: file,
			Timeout: config.Duration{Duration: o.timeout}, OnError: "block", Mode: mode})
	}
	vfs := []config.VFS{{Name: "home", Type: "disk", Root: filepath.Join(tmp, "{user}"), AtomicUploads: &yes}}
	for i, name := range o.vfs {
		vfs = append(vfs, config.VFS{Name: name, Type: "disk", Root: filepath.Join(tmp, "vfs", strconv.Itoa(i))})
	}
	return &config.Site{
		Name: "script-run",
		Limits: config.Limits{MaxConnections: 10, MaxConnectionsPerIP: 10, MaxSessionsPerUser: 10,
			IdleTimeout: config.Duration{Duration: time.Minute}, LoginTimeout: config.Duration{Duration: time.Minute}},
		Protector: config.Protector{Enabled: &yes, Threshold: 10, Window: config.Duration{Duration: 10 * time.Minute},
			BanFor: config.Duration{Duration: 30 * time.Minute}},
		VFS:           vfs,
		Users:         users,
		ScriptsDir:    filepath.Dir(file),
		EventHandlers: handlers,
		Secrets:       o.secrets,
	}
}

// simResult is what the simulated client saw.
type simResult struct {
	sess       *core.Session
	op         string // the operation that fired the event
	opErr      error  // its outcome
	softwareID string
	questions  []core.Question
	listing    []string
	before     []simOp // --upload, earlier --tries
	setupErr   error   // preparing the event failed: the script did not run
}

// simOp is an operation of the simulated client and its outcome.
type simOp struct {
	op  string
	err error
}

// simulate performs what fires the event, preparing what it needs (a logged-in session, a
// file to download, …) with the dispatcher disarmed.
func simulate(ctx context.Context, site *core.Site, eng *scripting.Engine, disp *armed, o *scriptRun, key ssh.PublicKey) *simResult {
	r := &simResult{}
	ev := core.EventName(o.event)
	connect := func() (*core.Session, error) {
		s, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(o.ip), Port: 50022},
			Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, Protocol: o.protocol})
		if err == nil && o.clientVersion != "" {
			s.SetClientVersion(o.clientVersion)
		}
		return s, err
	}
	// keep moves the previous try (--tries) to the earlier operations.
	keep := func(i int) {
		if i > 0 {
			r.before = append(r.before, simOp{r.op, r.opErr})
		}
	}
	try := func(i int) string {
		if o.tries == 1 {
			return ""
		}
		return fmt.Sprintf(" (try %d of %d)", i+1, o.tries)
	}
	fire := func(op string, f func() error) {
		disp.on.Store(true)
		r.op, r.opErr = op, f()
		disp.on.Store(false)
	}
	if ev == core.OnNewConnection || ev == core.OnBlocklistHit {
		if ev == core.OnBlocklistHit {
			site.Ban(ctx, netipOf(o.ip), time.Minute, nil)
		}
		fire("connect", func() error {
			s, err := connect()
			r.sess = s
			return err
		})
		return r
	}
	s, err := connect()
	if err != nil {
		r.setupErr = fmt.Errorf("connect: %w", err)
		return r
	}
	r.sess = s
	switch ev {
	case core.BeforeSendSoftwareID:
		fire("send software id", func() error {
			def := "SSH-2.0-wharf"
			if !strings.HasPrefix(o.protocol, "S") {
				def = "220 wharf ready"
			}
			r.softwareID = site.SoftwareID(ctx, s, def)
			return nil
		})
		return r
	case core.OnAuthRequest, core.OnAuthPassword, core.OnAuthFail, core.OnAuthSuccess:
		for i := range o.tries {
			keep(i)
			fire("password authentication as "+o.user+try(i), func() error { return s.AuthPassword(ctx, o.user, o.password) })
			if r.opErr == nil {
				break
			}
		}
		return r
	case core.OnAuthPKI:
		fire("public-key authentication as "+o.user, func() error { return s.AuthPublicKey(ctx, o.user, key) })
		return r
	case core.OnAuthInteractiveSetQuestions, core.OnAuthInteractive:
		for i := range o.tries {
			keep(i)
			if ev == core.OnAuthInteractiveSetQuestions {
				disp.on.Store(true)
			}
			qs, err := s.InteractiveQuestions(ctx, o.user)
			disp.on.Store(false)
			r.questions = qs
			if ev == core.OnAuthInteractiveSetQuestions || err != nil {
				r.op, r.opErr = "keyboard-interactive questions for "+o.user+try(i), err
				return r
			}
			answers := o.answers
			for len(answers) < len(qs) {
				answers = append(answers, o.password)
			}
			fire("keyboard-interactive authentication as "+o.user+try(i), func() error { return s.AuthInteractive(ctx, o.user, answers) })
			if r.opErr == nil {
				break
			}
		}
		return r
	}

	// The other events need a logged-in session.
	if err := s.AuthPassword(ctx, o.user, simPassword); err != nil {
		r.setupErr = fmt.Errorf("log in as %s: %w", o.user, err)
		return r
	}
	p := o.path
	prepare := func(f func() error) bool {
		if err := f(); err != nil {
			r.setupErr = err
			return false
		}
		return true
	}
	mkParents := func(p string) error {
		dir := path.Dir(p)
		if dir == "/" || dir == "." {
			return nil
		}
		if err := mkParentsFn(ctx, s, dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		return nil
	}
	putFile := func() error {
		if err := mkParents(p); err != nil {
			return err
		}
		return simUpload(ctx, s, p, o.data)
	}
	// --upload: the session's earlier uploads, with the events armed.
	for _, up := range o.uploads {
		if err := mkParents(up); err != nil {
			r.setupErr = err
			return r
		}
		disp.on.Store(true)
		err := simUpload(ctx, s, up, o.data)
		disp.on.Store(false)
		r.before = append(r.before, simOp{"upload " + up, err})
	}
	switch ev {
	case core.BeforeOpenSFTP:
		fire("open the sftp subsystem", func() error { return s.OpenSubsystem(ctx, core.ProtoSFTP, "subsystem sftp") })
	case core.BeforeOpenCmd:
		fire("exec scp -t "+p, func() error { return s.OpenSubsystem(ctx, core.ProtoSCP, "exec scp -t "+p) })
	case core.OnDirList:
		if p != "/" && !prepare(func() error { return mkParentsFn(ctx, s, p) }) {
			return r
		}
		fire("list "+p, func() error {
			fis, err := s.List(ctx, p)
			for _, fi := range fis {
				r.listing = append(r.listing, fi.Name())
			}
			return err
		})
	case core.BeforeFileUpload, core.AfterFileUpload:
		if prepare(func() error { return mkParents(p) }) {
			fire("upload "+p, func() error { return simUpload(ctx, s, p, o.data) })
		}
	case core.BeforeFileDownload, core.AfterFileDownload:
		if prepare(putFile) {
			fire("download "+p, func() error {
				h, err := s.OpenRead(ctx, p, 0)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, h)
				return errors.Join(err, h.Close())
			})
		}
	case core.BeforeFileDelete, core.AfterFileDelete:
		if prepare(putFile) {
			fire("delete "+p, func() error { return s.Remove(ctx, p) })
		}
	case core.BeforeFileRename, core.AfterFileRename:
		if prepare(putFile) && prepare(func() error { return mkParents(o.target) }) {
			fire("rename "+p+" to "+o.target, func() error { return s.Rename(ctx, p, o.target, true) })
		}
	case core.BeforeDirCreate, core.AfterDirCreate:
		if prepare(func() error { return mkParents(p) }) {
			fire("mkdir "+p, func() error { return s.Mkdir(ctx, p) })
		}
	case core.BeforeDirDelete, core.AfterDirDelete:
		if prepare(func() error { return mkParentsFn(ctx, s, p) }) {
			fire("rmdir "+p, func() error { return s.Rmdir(ctx, p) })
		}
	case core.OnTransferError:
		if prepare(func() error { return mkParents(p) }) {
			fire("failed upload "+p, func() error {
				h, err := s.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0)
				if err != nil {
					return err
				}
				h.Abort(errors.New("simulated transfer error"))
				return h.Close()
			})
		}
	case core.OnProtectorStrike:
		// The core does not fire strikes itself yet: fire the event the way it will.
		fire("protector strike", func() error {
			eng.Fire(ctx, &core.Event{Name: core.OnProtectorStrike, Session: s, Conn: s.Conn()})
			return nil
		})
	case core.OnBlocklistAdd:
		fire("ban "+o.ip, func() error {
			site.Ban(ctx, s.RemoteIP(), time.Minute, s)
			return nil
		})
	case core.OnConnectionClose:
		fire("close the session", func() error {
			s.Close()
			return nil
		})
	}
	return r
}

func mkParentsFn(ctx context.Context, s *core.Session, dir string) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		cur += "/" + part
		if err := s.Mkdir(ctx, cur); err != nil && !errors.Is(err, core.ErrExists) {
			return err
		}
	}
	return nil
}

// simUpload uploads data (nil: a line of text) to p.
func simUpload(ctx context.Context, s *core.Session, p string, data []byte) error {
	if data == nil {
		data = []byte("simulated upload\n")
	}
	h, err := s.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0)
	if err != nil {
		return err
	}
	if _, err := h.Write(data); err != nil {
		h.Abort(err)
	}
	return h.Close()
}

// report prints what the client saw and what the script decided.
func report(out io.Writer, o *scriptRun, site *core.Site, r *simResult, acts []scripting.Action) {
	p := func(k, f string, args ...any) { fmt.Fprintf(out, "%-24s "+f+"\n", append([]any{k + ":"}, args...)...) }
	if r.setupErr != nil {
		p("setup failed", "%v (the event did not fire)", r.setupErr)
	}
	if r.sess != nil {
		p("session", "%s", r.sess.ID())
	}
	for _, u := range r.before {
		if u.err != nil {
			p("operation", "%s: refused: %v", u.op, u.err)
		} else {
			p("operation", "%s: ok", u.op)
		}
	}
	if r.op != "" {
		if r.opErr != nil {
			p("operation", "%s: refused: %v", r.op, r.opErr)
		} else {
			p("operation", "%s: ok", r.op)
		}
	}
	var blocked, scriptAuth, rejected bool
	var terminate string
	for _, a := range acts {
		switch a.Name {
		case "BlockOperation":
			blocked = true
		case "Reject":
			rejected = true
		case "AuthenticateUserFromScript":
			scriptAuth = true
		case "Terminate":
			terminate = a.Detail
		case "error":
			blocked = blocked || a.Blocked
			p("script error", "%s", a.Detail)
		}
	}
	ev := core.EventName(o.event)
	switch {
	case blocked && ev.IsGate() || rejected:
		p("blocked", "yes")
	case blocked && r.opErr != nil:
		// A content veto (AfterFileUpload with atomic uploads) refused the operation itself.
		p("blocked", "yes")
	case blocked:
		p("blocked", "yes: %s is not a gate event, so the session's next operation is refused", o.event)
	default:
		p("blocked", "no")
	}
	if ev.IsAuth() {
		p("authenticated by script", "%v", scriptAuth)
	}
	if r.sess != nil && r.sess.UserID() != "" {
		p("authenticated user", "%s", r.sess.UserID())
	}
	if ev == core.BeforeSendSoftwareID {
		p("software id", "%q", r.softwareID)
	}
	if ev == core.OnAuthInteractiveSetQuestions || ev == core.OnAuthInteractive {
		for _, q := range r.questions {
			p("question", "pos=%d echo=%v %q", q.Pos, q.Echo, q.Prompt)
		}
	}
	if ev == core.OnDirList && r.opErr == nil {
		p("listing", "%s", strings.Join(r.listing, ", "))
	}
	if terminate != "" {
		p("terminated", "yes (%s)", terminate)
		probe, err := site.Connect(context.Background(), core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(o.ip), Port: 1}, Protocol: o.protocol})
		if errors.Is(err, core.ErrRefused) {
			p("banned", "yes: %s is on the temporary block list", o.ip)
		} else if err == nil {
			probe.Close()
		}
	} else {
		p("terminated", "no")
	}
	if r.sess != nil {
		data := r.sess.AllCustomData()
		if len(data) == 0 {
			p("custom data", "(none)")
		}
		for i, d := range data {
			p(fmt.Sprintf("custom data[%d]", i), "%q", d)
		}
	}
}

// printFiles prints the files under a vfs's folder after the run, with their virtual paths
// and sizes: what the script moved, copied, wrote or deleted.
func printFiles(out io.Writer, key, root string) {
	n := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		size := int64(-1)
		if fi, err := d.Info(); err == nil {
			size = fi.Size()
		}
		fmt.Fprintf(out, "%-24s /%s (%d bytes)\n", key+":", filepath.ToSlash(rel), size)
		n++
		return nil
	})
	if n == 0 {
		fmt.Fprintf(out, "%-24s (none)\n", key+":")
	}
}

func netipOf(ip string) netip.Addr {
	a, _ := netip.ParseAddr(ip) // validated by parseScriptRun
	return a.Unmap()
}

func isHelpArg(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }
