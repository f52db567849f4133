package scripting

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/scripting/jscompat"
)

// Mail is a message a script sends (SendMail).
type Mail struct {
	From    string   // "" = the relay's from
	To      []string // each "a@b" or "Name <a@b>"
	Subject string
	Body    string
	// Attachment, when set, is read by Enqueue; AttachmentName is its file name.
	Attachment     io.ReadSeeker
	AttachmentName string
}

// Mailer queues scripts' mail for the site's SMTP relay (the server's mail spool,
// ops/mailq). Enqueue returns once the message is stored: delivery happens later.
type Mailer interface {
	Enqueue(site string, m *Mail) (id string, err error)
}

// maxMailsPerRun bounds the messages one run may queue: a loop over a listing must not fill
// the spool (which is bounded too) from one event.
const maxMailsPerRun = 100

// extState is what the run's extensions (mail, HTTP) count; reset after every run.
type extState struct {
	mails int
}

func (x *extState) reset() { *x = extState{} }

// installMail adds SendMail to the base environment.
func (v *vm) installMail(base *lua.LTable) {
	base.RawSetString("SendMail", v.L.NewFunction(v.sendMail))
}

// sendMail is SendMail(from, to, subject, body, attachmentPath): it queues a message and
// returns true, or logs why it could not and returns false and the reason.
func (v *vm) sendMail(L *lua.LState) int {
	from, to, subject, body, attach := argString(L, 1), argString(L, 2), argString(L, 3), argString(L, 4), argString(L, 5)
	id, err := v.queueMail(from, to, subject, body, attach)
	if err != nil {
		v.e.logger(v.ev).Error("SendMail: message not queued: "+err.Error(), "event", string(v.ev.Name),
			"script", v.h.script, "at", L.Where(1))
		L.Push(lua.LFalse)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	v.notify("SendMail", "id="+id+" to="+to+" subject="+subject)
	L.Push(lua.LTrue)
	return 1
}

func (v *vm) queueMail(from, to, subject, body, attach string) (string, error) {
	if v.e.mail == nil {
		return "", errors.New("mail is not configured: set smtp (at the top level or on the site)")
	}
	if v.ext.mails >= maxMailsPerRun {
		return "", fmt.Errorf("a run may queue at most %d messages", maxMailsPerRun)
	}
	rcpts, err := splitRecipients(to)
	if err != nil {
		return "", err
	}
	m := &Mail{From: strings.TrimSpace(from), To: rcpts, Subject: subject, Body: body}
	if attach != "" {
		f, err := v.openAttachment(attach)
		if err != nil {
			return "", err
		}
		defer f.Close()
		m.Attachment, m.AttachmentName = f, filepath.Base(f.Name())
	}
	id, err := v.e.mail.Enqueue(v.e.site, m)
	if err != nil {
		return "", err
	}
	v.ext.mails++
	return id, nil
}

// splitRecipients reads SendMail's to: addresses separated by commas (or semicolons, as
// mail clients write them), each "a@b" or "Name <a@b>".
func splitRecipients(to string) ([]string, error) {
	to = strings.Trim(strings.TrimSpace(to), ",;")
	if to == "" {
		return nil, errors.New("no recipient")
	}
	list, err := mail.ParseAddressList(to)
	if err != nil && strings.Contains(to, ";") {
		list, err = mail.ParseAddressList(strings.ReplaceAll(to, ";", ","))
	}
	if err != nil {
		return nil, fmt.Errorf("invalid recipient list %q: %v", to, err)
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.String()
	}
	return out, nil
}

// openAttachment opens a file that a script may attach, read-only:
//   - the event's own file, named by its virtual path (CtxRelPath()) or its backend path
//     (Session.GetAbsPath() when the event fired);
//   - a file of one of the session user's disk folders, by its host path;
//   - a file under one of scripting.allowed_roots.
//
// Anything else is refused. The file is opened through an os.Root of the folder that holds
// it, so a symbolic link (or a "..") cannot lead out of that folder, and it must be a regular
// file. A file of a memory VFS cannot be attached.
func (v *vm) openAttachment(p string) (*os.File, error) {
	host := p
	if v.ev.RelPath != "" && (p == v.ev.RelPath || p == v.eventAbsPath()) {
		if v.ev.Then != nil {
			// A synchronous AfterFileUpload of an atomic upload: the data is still under a
			// temporary name, and the final name holds the file it replaces, if any.
			return nil, fmt.Errorf("attachment %q: the upload is not published yet; attach it from an asynchronous handler (mode: async)", p)
		}
		host = v.eventAbsPath()
		if !filepath.IsAbs(host) {
			return nil, fmt.Errorf("attachment %q: the event's file is not on a disk VFS", p)
		}
	}
	if !filepath.IsAbs(host) {
		return nil, fmt.Errorf("attachment %q: not an absolute host path, nor the event's file", p)
	}
	host = filepath.Clean(host)
	for _, root := range v.attachmentRoots() {
		rel, err := filepath.Rel(root, host)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			return nil, fmt.Errorf("attachment %q: %w", p, unwrapPath(err))
		}
		defer r.Close()
		// O_NONBLOCK: opening a FIFO must not wait for a writer.
		f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("attachment %q: no such file", p)
			}
			return nil, fmt.Errorf("attachment %q: %w", p, unwrapPath(err))
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("attachment %q: not a regular file", p)
		}
		return f, nil
	}
	return nil, fmt.Errorf("attachment %q refused: only the event's file, files of the user's disk folders and files under scripting.allowed_roots can be attached", p)
}

// eventAbsPath is the backend path of the event's file.
func (v *vm) eventAbsPath() string {
	if v.snap != nil {
		return v.snap.absPath
	}
	if v.ev.Session != nil {
		return v.ev.Session.AbsPath()
	}
	return ""
}

// attachmentRoots are the host folders files may be attached from: the roots of the
// session user's disk folders, then scripting.allowed_roots.
func (v *vm) attachmentRoots() []string {
	var roots []string
	if s := v.ev.Session; s != nil {
		if u := s.User(); u != nil {
			roots = userDiskRoots(s, u)
		}
		roots = append(roots, s.Site().Config().Scripting.AllowedRoots...)
	}
	return append(roots, v.e.roots...)
}

func userDiskRoots(s *core.Session, u *core.User) []string {
	site := s.Site().Config()
	var roots []string
	for _, m := range u.Mounts {
		def, ok := site.VFSByName(m.VFS)
		if !ok || def.Type != "disk" || def.Root == "" {
			continue
		}
		roots = append(roots, filepath.Clean(strings.ReplaceAll(def.Root, "{user}", u.ID)))
	}
	return roots
}

// argString is argument i as JavaScript's String() would give it for the values scripts
// pass: a string as it is, a number in JavaScript's form, nil (undefined) and the JS null
// as "".
func argString(L *lua.LState, i int) string {
	switch x := L.Get(i).(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return jscompat.NumberToString(float64(x))
	case lua.LBool:
		if x {
			return "true"
		}
		return "false"
	case *lua.LNilType:
		return ""
	case *lua.LTable:
		if s := L.ToStringMeta(x).String(); s != "null" {
			return s
		}
		return "" // the JavaScript null
	default:
		return L.ToStringMeta(x).String()
	}
}
