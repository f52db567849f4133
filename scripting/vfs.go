package scripting

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
)

// Syncplify's VFS types, as VfsType* constants and the first argument of new VirtualFS.
// wharf has disk and memory backends; VfsTypeS3, VfsTypeAzure, VfsTypeGCS, VfsTypeSFTP and
// VfsTypeR2FS are refused when a script that names them loads (see names.go).
const (
	vfsTypeDisk   = "Disk"
	vfsTypeMemory = "Memory"
)

// vfsConstants are the VFS constants, with Syncplify's values.
var vfsConstants = map[string]lua.LValue{
	"VfsTypeDisk":         lua.LString(vfsTypeDisk),
	"VfsTypeMemory":       lua.LString(vfsTypeMemory),
	"SortByName":          lua.LString("name"),
	"SortByNameDirsFirst": lua.LString("namedf"),
	"SortBySize":          lua.LString("size"),
	"SortByTime":          lua.LString("time"),
	"SortAsc":             lua.LString("asc"),
	"SortDesc":            lua.LString("desc"),
	"FromStart":           lua.LNumber(core.FromStart),
	"FromCurrent":         lua.LNumber(core.FromCurrent),
	"FromEnd":             lua.LNumber(core.FromEnd),
}

// vfsObject is the Go value of a VirtualFS object.
type vfsObject struct {
	fs   *core.ScriptFS
	at   string // the path whose mount Name and Type describe
	kind string // VfsTypeDisk or VfsTypeMemory
}

// vfsClass is VirtualFS: new VirtualFS(…), GetCurrentVFS() and Session.GetCurrentVFS().
var vfsClass = &hostClass{name: "VirtualFS", construct: newVirtualFS, methods: vfsMethods,
	fields: map[string]classField{
		"Name": {get: func(_ *vm, _ *lua.LState, self *instance) lua.LValue {
			o := self.Value.(*vfsObject)
			return lua.LString(o.fs.Name(o.at))
		}},
		"Type": {get: func(_ *vm, _ *lua.LState, self *instance) lua.LValue {
			return lua.LString(self.Value.(*vfsObject).kind)
		}},
	}}

// resultKind says which accessors a VFS result has besides Ok and ErrorMsg.
type resultKind int

const (
	resBase resultKind = iota
	resSize            // Size
	resStat            // Info
	resDir             // Infos
	resRead            // Data, Size
)

// vfsResult is the Go value of a VFS method's result (Syncplify's respBase and its kinds).
// Info's item, Infos' list and Data's value are kept in the instance (resultValueSlot).
type vfsResult struct {
	kind resultKind
	err  string
	size int64
}

// resultValueSlot is where a result keeps its value (instance.keep).
const resultValueSlot = 1

// resultClass is VfsResult, what VirtualFS's methods return.
var resultClass = &hostClass{name: "VfsResult", methods: resultMethods, keeps: resultValueSlot}

// vfsUD wraps a ScriptFS as a VirtualFS object.
func (v *vm) vfsUD(f *core.ScriptFS, at string) *lua.LUserData {
	return v.lib.vfs.newInstance(v.L, newVFSObject(f, at))
}

// newVFSObject is the value of a VirtualFS object of f whose Name and Type describe at.
func newVFSObject(f *core.ScriptFS, at string) *vfsObject {
	kind := vfsTypeDisk
	if f.Kind(at) == "memory" {
		kind = vfsTypeMemory
	}
	return &vfsObject{fs: f, at: at, kind: kind}
}

// toVFS returns the VirtualFS object lv is, if it is one.
func toVFS(lv lua.LValue) (*vfsObject, bool) { return instanceValue[*vfsObject](lv) }

// currentVFS is GetCurrentVFS(): the session's mounts, as the client sees them, with the
// mount that holds the event's file (or the home) for Name and Type; nil without a
// logged-in session.
func (v *vm) currentVFS() lua.LValue {
	if v.lib.current != nil {
		return v.lib.current
	}
	f, err := v.ev.ScriptFS()
	if err != nil {
		return lua.LNil
	}
	at := v.ev.RelPath
	if at == "" {
		at = "/"
	}
	v.lib.current = v.vfsUD(f, at)
	return v.lib.current
}

// newVirtualFS is new VirtualFS(name), a vfs of the site's config by name, or new
// VirtualFS(VfsTypeDisk, root), a host folder under scripting.allowed_roots (VfsTypeMemory
// with a name: a memory vfs of the config). It raises an error when the vfs cannot be had.
func newVirtualFS(v *vm, L *lua.LState, a int) any {
	first := L.CheckString(a)
	site := v.ev.Site()
	if site == nil {
		L.RaiseError("VirtualFS: the event has no site")
	}
	var f *core.ScriptFS
	var err error
	switch {
	case L.Get(a+1) == lua.LNil:
		f, err = site.ScriptVFS(first, v.ev.Session)
	case strings.EqualFold(first, vfsTypeDisk):
		f, err = site.ScriptDisk(L.CheckString(a+1), v.ev.Session)
	case strings.EqualFold(first, vfsTypeMemory):
		name := L.CheckString(a + 1)
		f, err = site.ScriptVFS(name, v.ev.Session)
		if err == nil && f.Kind("/") != "memory" {
			err = fmt.Errorf("vfs %q is not a memory vfs", name)
		}
	default:
		err = fmt.Errorf("vfs type %q is not supported by wharf (it has %s and %s)", first, vfsTypeDisk, vfsTypeMemory)
	}
	if err != nil {
		L.RaiseError("VirtualFS: %s", v.e.redact(err.Error()))
	}
	v.lib.opened = append(v.lib.opened, f)
	return newVFSObject(f, "/")
}

// result pushes a result object.
func (v *vm) result(L *lua.LState, kind resultKind, err error, size int64, value lua.LValue) int {
	r := &vfsResult{kind: kind, size: size}
	if err != nil {
		r.err = v.e.redact(err.Error())
		r.size, value = 0, nil
	}
	ud := v.lib.result.newInstance(L, r)
	if value != nil {
		ud.Value.(*instance).keep(L, resultValueSlot, value)
	}
	L.Push(ud)
	return 1
}

var resultMethods = map[string]classMethod{
	"Ok": func(v *vm, L *lua.LState, self *instance, _ int) int {
		L.Push(lua.LBool(self.Value.(*vfsResult).err == ""))
		return 1
	},
	"ErrorMsg": func(v *vm, L *lua.LState, self *instance, _ int) int {
		L.Push(lua.LString(self.Value.(*vfsResult).err))
		return 1
	},
	"Size": func(v *vm, L *lua.LState, self *instance, _ int) int {
		r := self.Value.(*vfsResult)
		if r.kind != resSize && r.kind != resRead {
			self.raise(L, "Size", "this result has no size")
		}
		L.Push(lua.LNumber(r.size))
		return 1
	},
	"Info":  resultValue(resStat, "Info"),
	"Infos": resultValue(resDir, "Infos"),
	"Data":  resultValue(resRead, "Data"),
}

func resultValue(kind resultKind, name string) classMethod {
	return func(v *vm, L *lua.LState, self *instance, _ int) int {
		r := self.Value.(*vfsResult)
		if r.kind != kind {
			self.raise(L, name, "this result has no %s", strings.ToLower(name))
		}
		L.Push(self.kept(resultValueSlot))
		return 1
	}
}

// itemSize is what a directory item costs the run, besides its name.
const itemSize = 512

// dirItem is a DirListItem: a read-only table {Name, Type, Size, TimeStamp, Mode, IsDir}.
func (v *vm) dirItem(fi fs.FileInfo) *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 6)
	typ := "other"
	switch m := fi.Mode(); {
	case m.IsDir():
		typ = "dir"
	case m.IsRegular():
		typ = "file"
	case m&fs.ModeSymlink != 0:
		typ = "symlink"
	}
	t.RawSetString("Name", lua.LString(fi.Name()))
	t.RawSetString("Type", lua.LString(typ))
	t.RawSetString("Size", lua.LNumber(fi.Size()))
	t.RawSetString("TimeStamp", v.newDate(fi.ModTime()))
	t.RawSetString("Mode", lua.LNumber(fi.Mode().Perm()))
	t.RawSetString("IsDir", lua.LBool(fi.IsDir()))
	t.Metatable = v.lib.itemMeta
	t.SetReadOnly(true)
	return t
}

func vfsOf(self *instance) *core.ScriptFS { return self.Value.(*vfsObject).fs }

// vfsMethods are the methods of VirtualFS objects. Each returns a result; a failure is a
// result whose Ok() is false, never a script error (except a memory budget that a read
// would pass).
var vfsMethods = map[string]classMethod{
	"Stat":  statMethod(false),
	"Lstat": statMethod(true),
	"ReadDir": func(v *vm, L *lua.LState, self *instance, a int) int {
		p := L.CheckString(a)
		sortBy, sortDir := L.OptString(a+1, "name"), L.OptString(a+2, "asc")
		less, err := dirOrder(sortBy, sortDir)
		if err != nil {
			return v.result(L, resDir, err, 0, nil)
		}
		var infos []fs.FileInfo
		var budget error
		err = vfsOf(self).ReadDir(v.runCtx(), p, func(fi fs.FileInfo) error {
			if budget = v.reserveMemory(itemSize + int64(len(fi.Name()))); budget != nil {
				return budget
			}
			infos = append(infos, fi)
			return nil
		})
		if budget != nil {
			self.raise(L, "ReadDir", "%s", budget.Error())
		}
		if err != nil {
			return v.result(L, resDir, err, 0, nil)
		}
		slices.SortStableFunc(infos, less)
		t := L.CreateTable(len(infos), 0)
		for _, fi := range infos {
			t.Append(v.dirItem(fi))
		}
		return v.result(L, resDir, nil, 0, t)
	},
	"Mkdir": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Mkdir(v.runCtx(), L.CheckString(a), false), 0, nil)
	},
	"MkdirAll": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Mkdir(v.runCtx(), L.CheckString(a), true), 0, nil)
	},
	"Rmdir": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Rmdir(v.runCtx(), L.CheckString(a)), 0, nil)
	},
	"Remove": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Remove(v.runCtx(), L.CheckString(a)), 0, nil)
	},
	"RemoveAll": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).RemoveAll(v.runCtx(), L.CheckString(a)), 0, nil)
	},
	"Rename": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Rename(v.runCtx(), L.CheckString(a), L.CheckString(a+1)), 0, nil)
	},
	"TreeSize": func(v *vm, L *lua.LState, self *instance, a int) int {
		n, err := vfsOf(self).TreeSize(v.runCtx(), L.CheckString(a))
		return v.result(L, resSize, err, n, nil)
	},
	"Chtimes": func(v *vm, L *lua.LState, self *instance, a int) int {
		p := L.CheckString(a)
		atime, mtime := timeArg(L, a+1), timeArg(L, a+2)
		return v.result(L, resBase, vfsOf(self).Chtimes(v.runCtx(), p, atime, mtime), 0, nil)
	},
	"Chmod": func(v *vm, L *lua.LState, self *instance, a int) int {
		p, mode := L.CheckString(a), optInt64(L, a+1, 0)
		if mode < 0 || mode > 0o777 {
			return v.result(L, resBase, fmt.Errorf("chmod %s: mode %o is not permission bits (0 to 0777)", p, mode), 0, nil)
		}
		return v.result(L, resBase, vfsOf(self).Chmod(v.runCtx(), p, fs.FileMode(mode)), 0, nil)
	},
	"Chown": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, fmt.Errorf("chown %s: not supported: wharf does not change the owner of files", L.CheckString(a)), 0, nil)
	},
	"Symlink": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Symlink(v.runCtx(), L.CheckString(a), L.CheckString(a+1)), 0, nil)
	},
	"Truncate": func(v *vm, L *lua.LState, self *instance, a int) int {
		return v.result(L, resBase, vfsOf(self).Truncate(v.runCtx(), L.CheckString(a), optInt64(L, a+1, 0)), 0, nil)
	},
	"ReadFileAsText":   readMethod("ReadFileAsText", dataText),
	"ReadFileAsHex":    readMethod("ReadFileAsHex", dataHex),
	"ReadFileAsBytes":  readMethod("ReadFileAsBytes", dataBytes),
	"WriteFileAsText":  writeMethod(dataText),
	"WriteFileAsHex":   writeMethod(dataHex),
	"WriteFileAsBytes": writeMethod(dataBytes),
	"ImportFile": func(v *vm, L *lua.LState, self *instance, a int) int {
		local, vp := L.CheckString(a), L.CheckString(a+1)
		lf, name, err := localFS(v, local)
		if err != nil {
			return v.result(L, resBase, fmt.Errorf("import %s: %w", local, err), 0, nil)
		}
		dst := vfsOf(self)
		vp = intoFolder(v, dst, vp, name) // v6 took a folder as the target
		_, err = lf.CopyTo(v.runCtx(), name, dst, vp)
		return v.result(L, resBase, err, 0, nil)
	},
	"ExportFile": func(v *vm, L *lua.LState, self *instance, a int) int {
		vp, local := L.CheckString(a), L.CheckString(a+1)
		lf, name, err := localFS(v, local)
		if err != nil {
			return v.result(L, resBase, fmt.Errorf("export to %s: %w", local, err), 0, nil)
		}
		name = intoFolder(v, lf, name, vp) // v6 took a folder as the target
		_, err = vfsOf(self).CopyTo(v.runCtx(), vp, lf, name)
		return v.result(L, resBase, err, 0, nil)
	},
	"CopyToVFS": copyMethod(false),
	"MoveToVFS": copyMethod(true),
}

// intoFolder returns dst/base(src) when dst is a folder of f, else dst.
func intoFolder(v *vm, f *core.ScriptFS, dst, src string) string {
	if fi, err := f.Stat(v.runCtx(), dst); err == nil && fi.IsDir() {
		return path.Join(dst, path.Base(src))
	}
	return dst
}

func statMethod(lstat bool) classMethod {
	return func(v *vm, L *lua.LState, self *instance, a int) int {
		p := L.CheckString(a)
		var fi fs.FileInfo
		var err error
		if lstat {
			fi, err = vfsOf(self).Lstat(v.runCtx(), p)
		} else {
			fi, err = vfsOf(self).Stat(v.runCtx(), p)
		}
		if err != nil {
			return v.result(L, resStat, err, 0, nil)
		}
		return v.result(L, resStat, nil, 0, v.dirItem(fi))
	}
}

// copyMethod is CopyToVFS(path, otherVfs, otherPath) and MoveToVFS(…): otherPath defaults to
// path; the other vfs may be this one.
func copyMethod(move bool) classMethod {
	return func(v *vm, L *lua.LState, self *instance, a int) int {
		p := L.CheckString(a)
		dst, ok := toVFS(L.Get(a + 1))
		if !ok {
			L.ArgError(a+1, "a VirtualFS expected")
		}
		dp := L.OptString(a+2, p)
		src := vfsOf(self)
		_, err := src.CopyTo(v.runCtx(), p, dst.fs, dp)
		if err == nil && move {
			err = src.Remove(v.runCtx(), p)
		}
		return v.result(L, resBase, err, 0, nil)
	}
}

// dataKind is how ReadFileAs*/WriteFileAs* give and take data.
type dataKind int

const (
	dataText  dataKind = iota // a string of the bytes
	dataHex                   // upper-case hex
	dataBytes                 // a sequence of numbers 0-255 (a JS array in .js scripts)
)

// cost is what n bytes of data cost the run in each form.
func (k dataKind) cost(n int64) int64 {
	switch k {
	case dataHex:
		return stringOverhead + 2*n
	case dataBytes:
		return 64 + 40*n // a table's array slot and a number
	}
	return stringOverhead + n
}

// readMethod is ReadFileAsText/Hex/Bytes(path, length, offset, whence): length <= 0 (or
// omitted) reads to the end. What it returns counts against the run's memory budget.
func readMethod(name string, kind dataKind) classMethod {
	return func(v *vm, L *lua.LState, self *instance, a int) int {
		p := L.CheckString(a)
		n, off, whence := optInt64(L, a+1, 0), optInt64(L, a+2, 0), int(optInt64(L, a+3, core.FromStart))
		var budget error
		data, err := vfsOf(self).ReadAt(v.runCtx(), p, n, off, whence, func(count int64) error {
			budget = v.reserveMemory(kind.cost(count))
			return budget
		})
		if budget != nil {
			self.raise(L, name, "read %s: %s", p, budget.Error())
		}
		if err != nil {
			return v.result(L, resRead, err, 0, nil)
		}
		var val lua.LValue
		switch kind {
		case dataHex:
			val = lua.LString(strings.ToUpper(hex.EncodeToString(data)))
		case dataBytes:
			t := L.CreateTable(len(data), 0)
			for _, b := range data {
				t.Append(lua.LNumber(b))
			}
			val = t
		default:
			val = lua.LString(data)
		}
		return v.result(L, resRead, nil, int64(len(data)), val)
	}
}

// writeMethod is WriteFileAsText/Hex/Bytes(path, data, offset, whence): without offset and
// whence the file is replaced by data (atomically, as an upload); with them data is written
// at that place and the rest of the file is kept.
func writeMethod(kind dataKind) classMethod {
	return func(v *vm, L *lua.LState, self *instance, a int) int {
		p := L.CheckString(a)
		data, err := v.dataArg(L, a+1, kind)
		if err != nil {
			return v.result(L, resBase, fmt.Errorf("write %s: %w", p, err), 0, nil)
		}
		f := vfsOf(self)
		if L.Get(a+2) == lua.LNil && L.Get(a+3) == lua.LNil {
			_, err = f.Put(v.runCtx(), p, bytes.NewReader(data))
		} else {
			err = f.WriteAt(v.runCtx(), p, data, optInt64(L, a+2, 0), int(optInt64(L, a+3, core.FromStart)))
		}
		return v.result(L, resBase, err, 0, nil)
	}
}

// dataArg reads the data argument of a WriteFileAs* call.
func (v *vm) dataArg(L *lua.LState, n int, kind dataKind) ([]byte, error) {
	switch kind {
	case dataHex:
		b, err := hex.DecodeString(L.CheckString(n))
		if err != nil {
			return nil, fmt.Errorf("not hex data: %w", core.ErrInvalid)
		}
		return b, nil
	case dataBytes:
		t := L.CheckTable(n)
		vals, err := v.sequence(t)
		if err != nil {
			return nil, err
		}
		out := make([]byte, len(vals))
		for i, lv := range vals {
			num, ok := lv.(lua.LNumber)
			if !ok || num < 0 || num > 255 || num != lua.LNumber(int(num)) {
				return nil, fmt.Errorf("item %d is not a byte (0-255): %w", i, core.ErrInvalid)
			}
			out[i] = byte(num)
		}
		return out, nil
	}
	return []byte(L.CheckString(n)), nil
}

// sequence returns the items of a Lua sequence or of a JavaScript array.
func (v *vm) sequence(t *lua.LTable) ([]lua.LValue, error) {
	if t.Metatable != nil && t.Metatable == v.lib.jsArrayMeta {
		// The runtime's array: its length first, then the items.
		n, ok := t.RawGetInt(1).(lua.LNumber)
		if !ok || n < 0 {
			return nil, errors.New("malformed array")
		}
		out := make([]lua.LValue, int(n))
		for i := range out {
			out[i] = t.RawGetInt(i + 2)
		}
		return out, nil
	}
	n := t.Len()
	out := make([]lua.LValue, n)
	for i := range out {
		out[i] = t.RawGetInt(i + 1)
	}
	return out, nil
}

// timeArg reads a time: a Date, or milliseconds since 1970 (Date.getTime()).
func timeArg(L *lua.LState, n int) time.Time {
	if d, ok := toDate(L.Get(n)); ok {
		return d.t
	}
	return time.UnixMilli(optInt64(L, n, time.Now().UnixMilli()))
}

// dirOrder is ReadDir's order.
func dirOrder(sortBy, sortDir string) (func(a, b fs.FileInfo) int, error) {
	var cmp func(a, b fs.FileInfo) int
	byName := func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) }
	switch sortBy {
	case "name", "":
		cmp = byName
	case "namedf":
		cmp = byName
	case "size":
		cmp = func(a, b fs.FileInfo) int {
			if c := a.Size() - b.Size(); c != 0 {
				return sign(c)
			}
			return byName(a, b)
		}
	case "time":
		cmp = func(a, b fs.FileInfo) int {
			if c := a.ModTime().Compare(b.ModTime()); c != 0 {
				return c
			}
			return byName(a, b)
		}
	default:
		return nil, fmt.Errorf("unknown sort key %q (SortByName, SortByNameDirsFirst, SortBySize or SortByTime): %w", sortBy, core.ErrInvalid)
	}
	switch sortDir {
	case "asc", "":
	case "desc":
		asc := cmp
		cmp = func(a, b fs.FileInfo) int { return asc(b, a) }
	default:
		return nil, fmt.Errorf("unknown sort direction %q (SortAsc or SortDesc): %w", sortDir, core.ErrInvalid)
	}
	if sortBy == "namedf" {
		inner := cmp
		cmp = func(a, b fs.FileInfo) int {
			if a.IsDir() != b.IsDir() {
				if a.IsDir() {
					return -1
				}
				return 1
			}
			return inner(a, b)
		}
	}
	return cmp, nil
}

func sign(n int64) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// fileReadAsHex is FileReadAsHex(absPath, offset, length), Syncplify v6's helper: the hex of
// length bytes at offset of the event's file (given as Session.GetAbsPath()) or of a file
// under scripting.allowed_roots; "" when it cannot be read (the reason is logged).
func (v *vm) fileReadAsHex(L *lua.LState) int {
	abs := L.CheckString(1)
	off, n := optInt64(L, 2, 0), optInt64(L, 3, 0)
	if n <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	f, p, err := v.locate(abs)
	if err != nil {
		v.warnLib(L, "FileReadAsHex", err)
		L.Push(lua.LString(""))
		return 1
	}
	var budget error
	data, err := f.ReadAt(v.runCtx(), p, n, off, core.FromStart, func(count int64) error {
		budget = v.reserveMemory(dataHex.cost(count))
		return budget
	})
	if budget != nil {
		L.RaiseError("FileReadAsHex: %s", budget.Error())
	}
	if err != nil {
		v.warnLib(L, "FileReadAsHex", err)
		L.Push(lua.LString(""))
		return 1
	}
	L.Push(lua.LString(strings.ToUpper(hex.EncodeToString(data))))
	return 1
}

// delFile is DelFile(absPath), Syncplify v6's helper: it removes the event's file (given as
// Session.GetAbsPath()) or a file under scripting.allowed_roots, and says whether it did.
func (v *vm) delFile(L *lua.LState) int {
	f, p, err := v.locate(L.CheckString(1))
	if err == nil {
		err = f.Remove(v.runCtx(), p)
	}
	if err != nil {
		v.warnLib(L, "DelFile", err)
	}
	L.Push(lua.LBool(err == nil))
	return 1
}

// locate finds the file a legacy helper names by its backend location: the event's file (or
// rename target, or the session's current file), reached through the session's mounts, or a
// file under an allowed root.
func (v *vm) locate(abs string) (*core.ScriptFS, string, error) {
	if o, ok := toVFS(v.currentVFS()); ok && v.ev.Session != nil {
		f := o.fs
		if p, ok := f.Locate(abs, v.ev.RelPath, v.ev.RelTargetPath, v.ev.Session.RelPath()); ok {
			return f, p, nil
		}
	}
	f, p, err := localFS(v, abs)
	if err != nil {
		return nil, "", fmt.Errorf("%s is neither the event's file nor under scripting.allowed_roots: %w", abs, core.ErrDenied)
	}
	return f, p, nil
}

// localFS finds a host path under scripting.allowed_roots.
func localFS(v *vm, hostPath string) (*core.ScriptFS, string, error) {
	site := v.ev.Site()
	if site == nil {
		return nil, "", fmt.Errorf("the event has no site: %w", core.ErrUnsupported)
	}
	return site.LocalFS(hostPath)
}
