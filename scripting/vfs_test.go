package scripting_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// vfsLua exercises every VirtualFS method and result from Lua, in AfterFileUpload of
// /in/data.bin, logging key=value lines.
const vfsLua = `
local vfs = GetCurrentVFS()
local p = CtxRelPath()
local function ok(name, r) Log(name .. '=' .. tostring(r.Ok()) .. (r.Ok() and '' or (':' .. r.ErrorMsg()))) end
Log('current=' .. vfs.Name .. '/' .. vfs.Type .. '/' .. tostring(Session.GetCurrentVFS() == vfs))
local st = vfs.Stat(p)
local i = st.Info()
Log('stat=' .. i.Name .. ',' .. i.Size .. ',' .. i.Type .. ',' .. tostring(i.IsDir) .. ',' .. tostring(i.TimeStamp.getFullYear() > 2000))
Log('magic=' .. vfs:ReadFileAsHex(p, 2, 0, FromStart).Data() .. ',' .. vfs.ReadFileAsHex(p, 4, 4).Data())
local b = vfs.ReadFileAsBytes(p, 3)
Log('bytes=' .. table.concat(b.Data(), ',') .. ',' .. b.Size())
Log('tail=' .. vfs.ReadFileAsText(p, 5, 0, FromEnd).Data() .. ',' .. vfs.ReadFileAsText(p, 3, 6, FromEnd).Data() .. ',' .. vfs.ReadFileAsText(p, 0, 3, FromEnd).Size())
Log('text=' .. vfs.ReadFileAsText(p, 0, 9).Data())
ok('mkdirall', vfs.MkdirAll('/out/2024/05'))
ok('mkdir', vfs.Mkdir('/out/new'))
ok('mkdir-again', vfs.Mkdir('/out/new'))
ok('write', vfs.WriteFileAsText('/out/report.txt', 'hello world'))
ok('write-at', vfs.WriteFileAsText('/out/report.txt', 'HELLO', 0, FromStart))
ok('append', vfs.WriteFileAsHex('/out/report.txt', '2121', 0, FromEnd))
ok('bytes-w', vfs.WriteFileAsBytes('/out/b.bin', {77, 90}))
ok('bad-hex', vfs.WriteFileAsHex('/out/x', 'zz'))
ok('bad-bytes', vfs.WriteFileAsBytes('/out/x', {300}))
Log('report=' .. vfs.ReadFileAsText('/out/report.txt').Data())
ok('truncate', vfs.Truncate('/out/report.txt', 5))
ok('chtimes', vfs.Chtimes('/out/report.txt', Date('2020-01-02T03:04:05Z'), 1577934245000))
Log('mtime=' .. vfs.Stat('/out/report.txt').Info().TimeStamp.toISOString())
ok('chmod', vfs.Chmod('/out/report.txt', 384))
Log('mode=' .. vfs.Stat('/out/report.txt').Info().Mode)
ok('chown', vfs.Chown('/out/report.txt', 0, 0))
ok('symlink', vfs.Symlink('/out/report.txt', '/out/link'))
Log('lstat=' .. vfs.Lstat('/out/link').Info().Type .. ',' .. vfs.Stat('/out/link').Info().Type)
ok('rename', vfs.Rename('/out/report.txt', '/out/2024/05/report.txt'))
Log('treesize=' .. vfs.TreeSize('/out').Size())
local d = vfs.ReadDir('/out', SortByNameDirsFirst, SortAsc)
local names = {}
for _, it in ipairs(d.Infos()) do names[#names + 1] = it.Name end
Log('dir=' .. table.concat(names, ','))
names = {}
for _, it in ipairs(vfs.ReadDir('/out', SortBySize, SortDesc).Infos()) do names[#names + 1] = it.Name end
Log('bysize=' .. table.concat(names, ','))
ok('badsort', vfs.ReadDir('/out', 'colour', SortAsc))
ok('copy', vfs.CopyToVFS(p, vfs, '/out/copy.bin'))
local other = VirtualFS('mem')
ok('copy-mem', vfs.CopyToVFS('/out/b.bin', other, '/b.bin'))
Log('mem=' .. other.ReadFileAsHex('/b.bin').Data() .. ',' .. other.Name .. ',' .. other.Type)
other.MkdirAll('/out')
ok('move-mem', vfs.MoveToVFS('/out/copy.bin', other))
Log('moved=' .. tostring(vfs.Stat('/out/copy.bin').Ok()) .. ',' .. other.Stat('/out/copy.bin').Info().Size)
ok('rmdir-full', vfs.Rmdir('/out/2024'))
ok('rmdir', vfs.Rmdir('/out/new'))
ok('remove', vfs.Remove('/out/b.bin'))
ok('remove-missing', vfs.Remove('/out/b.bin'))
ok('removeall', vfs.RemoveAll('/out'))
ok('escape', vfs.ReadFileAsText('/../../../../etc/passwd'))
local local_ = VirtualFS(VfsTypeDisk, ALLOWED)
ok('export', vfs.ExportFile(p, ALLOWED .. '/exported.bin'))
ok('export-dir', vfs.ExportFile(p, ALLOWED))
ok('import', vfs.ImportFile(ALLOWED .. '/seed.txt', '/in/seed.txt'))
ok('import-outside', vfs.ImportFile('/etc/hostname', '/in/h.txt'))
Log('local=' .. local_.ReadFileAsText('/seed.txt').Data() .. ',' .. local_.Type)
Log('legacy=' .. FileReadAsHex(Session.GetAbsPath(), 0, 2) .. ',' .. FileReadAsHex(ALLOWED .. '/seed.txt', 0, 4) .. ',' .. FileReadAsHex('/etc/hostname', 0, 2) .. '.')
Log('delfile=' .. tostring(DelFile(ALLOWED .. '/exported.bin')) .. ',' .. tostring(DelFile('/etc/hostname')))
local okNew, err = pcall(VirtualFS, VfsTypeDisk, '/etc')
Log('outside-root=' .. tostring(okNew) .. ':' .. tostring(err):gsub('^.-VirtualFS', 'VirtualFS'))
Log('memtype=' .. VirtualFS(VfsTypeMemory, 'mem').Type .. ',' .. tostring(pcall(VirtualFS, VfsTypeMemory, 'disk')))
local okS3 = pcall(VirtualFS, 'S3', 'bucket')
Log('s3=' .. tostring(okS3))
local okSet = pcall(function() vfs.Name = 'x' end)
local okItem = pcall(function() i.Name = 'x' end)
Log('readonly=' .. tostring(okSet) .. ',' .. tostring(okItem))
`

func vfsEnv(t *testing.T, script string, mut ...func(*config.Site)) (*env, string) {
	t.Helper()
	allowed := t.TempDir()
	must(t, os.WriteFile(filepath.Join(allowed, "seed.txt"), []byte("seed data"), 0o600))
	script = strings.ReplaceAll(script, "ALLOWED", "'"+allowed+"'")
	name := "vfs.lua"
	if strings.HasPrefix(script, "//js") {
		name = "vfs.js"
		script = strings.ReplaceAll(script, "'"+allowed+"'", `"`+allowed+`"`)
	}
	cfg, root := newConfig(t, map[string]string{name: script}, []config.EventHandler{h("AfterFileUpload", name)})
	cfg.Scripting.AllowedRoots = []string{allowed}
	for _, m := range mut {
		m(cfg)
	}
	return buildEnv(t, cfg, root), allowed
}

func TestVFSFromLua(t *testing.T) {
	e, allowed := vfsEnv(t, vfsLua)
	s := e.login("alice")
	must(t, s.Mkdir(t.Context(), "/in"))
	if err := upload(s, "/in/data.bin", "MZ\x90\x00PE\x00\x00 hello world"); err != nil {
		e.logs.dump(t)
		t.Fatal(err)
	}
	want := map[string]string{
		"current":        "disk/Disk/true",
		"stat":           "data.bin,20,file,false,true",
		"magic":          "4D5A,50450000",
		"bytes":          "77,90,144,3",
		"tail":           "world,llo,17",
		"text":           "hello world",
		"mkdirall":       "true",
		"mkdir":          "true",
		"mkdir-again":    "false:mkdir /out/new: file exists",
		"write":          "true",
		"write-at":       "true",
		"append":         "true",
		"bytes-w":        "true",
		"bad-hex":        "false:write /out/x: not hex data: invalid argument",
		"bad-bytes":      "false:write /out/x: item 0 is not a byte (0-255): invalid argument",
		"report":         "HELLO world!!",
		"truncate":       "true",
		"chtimes":        "true",
		"mtime":          "2020-01-02T03:04:05.000Z",
		"chmod":          "true",
		"mode":           "384",
		"chown":          "false:chown /out/report.txt: not supported: wharf does not change the owner of files",
		"symlink":        "true",
		"lstat":          "symlink,file",
		"rename":         "true",
		"treesize":       "7",
		"dir":            "2024,new,b.bin,link",
		"bysize":         "new,2024,link,b.bin",
		"badsort":        `false:unknown sort key "colour" (SortByName, SortByNameDirsFirst, SortBySize or SortByTime): invalid argument`,
		"copy":           "true",
		"copy-mem":       "true",
		"mem":            "4D5A,mem,Memory",
		"move-mem":       "true",
		"moved":          "false,20",
		"rmdir-full":     "false:rmdir /out/2024: directory not empty",
		"rmdir":          "true",
		"remove":         "true",
		"remove-missing": "false:remove /out/b.bin: no such file or directory",
		"removeall":      "true",
		"escape":         "false:open /etc/passwd: no such file or directory",
		"export":         "true",
		"export-dir":     "true",
		"import":         "true",
		"import-outside": "false:import /etc/hostname: /etc/hostname: outside scripting.allowed_roots: permission denied",
		"local":          "seed data,Disk",
		"legacy":         "4D5A,73656564,.",
		"delfile":        "true,false",
		"outside-root":   "false:VirtualFS: /etc: outside scripting.allowed_roots: permission denied",
		"s3":             "false",
		"memtype":        "Memory,false",
		"readonly":       "false,false",
	}
	e.wantKV(t, want)
	// On disk: the upload published (the script did not change it), the copy exported, the
	// import made, /out gone.
	home := filepath.Join(e.root, "alice")
	for p, want := range map[string]string{
		filepath.Join(home, "in", "data.bin"): "MZ\x90\x00PE\x00\x00 hello world",
		filepath.Join(home, "in", "seed.txt"): "seed data",
		filepath.Join(allowed, "data.bin"):    "MZ\x90\x00PE\x00\x00 hello world",
	} {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	for _, p := range []string{filepath.Join(home, "out"), filepath.Join(allowed, "exported.bin")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", p, err)
		}
	}
	// Legacy helpers that fail log why.
	if len(e.logs.find("FileReadAsHex failed")) != 1 || len(e.logs.find("DelFile failed")) != 1 {
		t.Errorf("missing warnings for failed legacy calls")
	}
}

// vfsJS is the Syncplify-shaped JavaScript of the VFS examples: list the root (v7
// GetCurrentVFS page), the constants page's snippets, a copy to a disk VFS of an allowed
// root and the v6 Session.GetCurrentVFS().
const vfsJS = `//js
{
  var vfs = GetCurrentVFS();
  if (vfs != null) {
    var dir = vfs.ReadDir("/", "name", "asc");
    if (dir.Ok()) {
      var items = dir.Infos();
      var names = [];
      for (var i = 0; i < items.length; i++) {
        names.push(items[i].Name + ":" + items[i].Type);
      }
      Log("root=" + names.join(","));
    } else {
      Log("root-error=" + dir.ErrorMsg());
    }
  }
  var disk = new VirtualFS(VfsTypeDisk, ALLOWED);
  var entries = disk.ReadDir("/", SortByTime, SortDesc);
  Log("disk=" + entries.Infos().length + "," + (entries.Infos()[0].TimeStamp.getTime() > 0));
  var tail = vfs.ReadFileAsBytes(CtxRelPath(), 2, 0, FromEnd);
  Log("tail=" + tail.Data().join(" ") + "," + tail.Data().length);
  var r = vfs.CopyToVFS(CtxRelPath(), disk, "/copy.txt");
  Log("copy=" + r.Ok() + "," + disk.Stat("/copy.txt").Info().Size);
  var old = Session.GetCurrentVFS();
  Log("v6=" + (old != null) + "," + old.Name);
  var w = disk.WriteFileAsBytes("/b.bin", [104, 105]);
  Log("bytes=" + w.Ok() + "," + disk.ReadFileAsText("/b.bin").Data());
  var s = vfs.Stat("/nope");
  Log("missing=" + s.Ok() + "," + s.ErrorMsg());
}
`

func TestVFSFromJS(t *testing.T) {
	e, allowed := vfsEnv(t, vfsJS)
	s := e.login("alice")
	must(t, s.Mkdir(t.Context(), "/in"))
	if err := upload(s, "/in/a.txt", "hello"); err != nil {
		e.logs.dump(t)
		t.Fatal(err)
	}
	want := map[string]string{
		"root":    "in:dir",
		"disk":    "1,true",
		"tail":    "108 111,2",
		"copy":    "true,5",
		"v6":      "true,disk",
		"bytes":   "true,hi",
		"missing": "false,stat /nope: no such file or directory",
	}
	e.wantKV(t, want)
	if b, err := os.ReadFile(filepath.Join(allowed, "copy.txt")); err != nil || string(b) != "hello" {
		t.Errorf("copy: %q %v", b, err)
	}
}

// TestVFSMemoryBudget reads more than the run's max_memory: the run fails with the budget
// error before the data is read, and a small read works.
func TestVFSMemoryBudget(t *testing.T) {
	script := lines(
		"local vfs = GetCurrentVFS()",
		"Log('small=' .. vfs.ReadFileAsText(CtxRelPath(), 4).Data())",
		"local ok, err = pcall(vfs.ReadFileAsText, CtxRelPath())",
		"Log('big=' .. tostring(ok) .. ':' .. tostring(err):gsub('^.-read', 'read'))",
		"local ok2 = pcall(vfs.ReadFileAsBytes, CtxRelPath(), 100000)",
		"Log('bytes=' .. tostring(ok2))",
		"local ok3 = pcall(vfs.ReadDir, '/')",
		"Log('dir=' .. tostring(ok3))",
	)
	cfg, root := newConfig(t, map[string]string{"big.lua": script}, []config.EventHandler{h("AfterFileUpload", "big.lua", func(h *config.EventHandler) {
		h.MaxMemory = config.MinMaxMemory
	})})
	e := buildEnv(t, cfg, root)
	s := e.login("alice")
	big := strings.Repeat("x", 3<<20)
	if err := upload(s, "/big.txt", big); err != nil {
		t.Fatal(err)
	}
	e.wantKV(t, map[string]string{"small": "xxxx", "big": "false:read /big.txt: memory budget exceeded (max_memory 1MiB)",
		"bytes": "false", "dir": "true"})
}

// TestVFSNoSession: before a session exists there is no current VFS, a per-user vfs cannot
// be opened, and a shared one can.
func TestVFSNoSession(t *testing.T) {
	script := lines(
		"Log('current=' .. tostring(GetCurrentVFS()))",
		"local ok, err = pcall(VirtualFS, 'disk')",
		"Log('peruser=' .. tostring(ok))",
		"local m = VirtualFS('mem')",
		"Log('mem=' .. tostring(m.WriteFileAsText('/x', 'y').Ok()))",
	)
	cfg, root := newConfig(t, map[string]string{"pre.lua": script}, []config.EventHandler{h("OnNewConnection", "pre.lua")})
	e := buildEnv(t, cfg, root)
	e.connect("192.0.2.1", core.ProtoSFTP)
	e.wantKV(t, map[string]string{"current": "nil", "peruser": "false", "mem": "true"})
}

// TestVFSKeptResultsCount: what a result holds counts against the budget for as long as the
// script keeps the result, not only once it takes the data out: forty reads of 256 KiB kept
// in a table are 10 MiB, past a 1 MiB budget.
func TestVFSKeptResultsCount(t *testing.T) {
	script := lines(
		"local vfs = GetCurrentVFS()",
		"local kept = {}",
		"for i = 1, 40 do kept[i] = vfs.ReadFileAsText(CtxRelPath()) end",
		"Log('kept=' .. #kept)",
	)
	cfg, root := newConfig(t, map[string]string{"keep.lua": script}, []config.EventHandler{h("AfterFileUpload", "keep.lua", func(h *config.EventHandler) {
		h.MaxMemory = config.MinMaxMemory
	})})
	e := buildEnv(t, cfg, root)
	s := e.login("alice")
	if err := upload(s, "/f.txt", strings.Repeat("x", 256<<10)); err != nil {
		t.Fatal(err)
	}
	e.wantBudgetFailure(t, "forty kept reads of 256 KiB fit in a 1 MiB budget")
}

// wantBudgetFailure checks that the run failed on its memory budget before it logged.
func (e *env) wantBudgetFailure(t *testing.T, what string) {
	t.Helper()
	if got := e.kv(); len(got) != 0 {
		t.Errorf("%s: %v", what, got)
	}
	if fails := e.logs.find("event script failed"); len(fails) != 1 || !strings.Contains(fails[0].Attrs["err"], "memory budget exceeded") {
		e.logs.dump(t)
		t.Errorf("failures = %v", fails)
	}
}

// VirtualFS and VfsResult follow the host-class rules (class.go): errors name the class and
// the method, a method read from one object is refused on another, unknown names read as nil
// and nothing can be set; new VirtualFS in JS is the class's constructor.
func TestVFSClassRules(t *testing.T) {
	script := lines(
		"local function try(f) local ok, err = pcall(f) return tostring(ok) .. ' ' .. tostring(err):gsub('^pre.lua:%d+: ', '') end",
		"local a, b = VirtualFS('mem'), VirtualFS('mem')",
		"Log('receiver=' .. try(function() a.Stat(b, '/') end))",
		"local r = a:Stat('/')",
		"Log('size=' .. try(function() r.Size() end))",
		"Log('data=' .. try(function() r:Data() end))",
		"Log('set=' .. try(function() a.Name = 'x' end))",
		"Log('setres=' .. try(function() r.Ok = 1 end))",
		"Log('unknown=' .. tostring(a.Nope == nil and r.Nope == nil) .. ' ' .. tostring(a) .. ' ' .. tostring(r) .. ' ' .. tostring(VirtualFS))",
		"Log('copy=' .. try(function() a.CopyToVFS('/x', r) end))",
	)
	js := "var m = new VirtualFS('mem');\nLog('js=' + m.Type + ' ' + m.WriteFileAsText('/j', 'y').Ok() + ' ' + typeof VirtualFS);\n"
	cfg, root := newConfig(t, map[string]string{"pre.lua": script, "pre.js": js},
		[]config.EventHandler{h("OnNewConnection", "pre.lua"), h("OnNewConnection", "pre.js")})
	e := buildEnv(t, cfg, root)
	e.connect("192.0.2.1", core.ProtoSFTP)
	want := map[string]string{
		"receiver": "false VirtualFS.Stat: called on another VirtualFS than the one it was read from",
		"size":     "false VfsResult.Size: this result has no size",
		"data":     "false VfsResult.Data: this result has no data",
		"set":      "false VirtualFS is read-only: cannot set Name",
		"setres":   "false VfsResult is read-only: cannot set Ok",
		"unknown":  "true VirtualFS VfsResult VirtualFS",
		"copy":     "false bad argument #2 to CopyToVFS (a VirtualFS expected)",
		"js":       "Memory true function",
	}
	e.wantKV(t, want)
}

// wantKV checks the key=value lines the scripts logged.
func (e *env) wantKV(t *testing.T, want map[string]string) {
	t.Helper()
	got := e.kv()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if t.Failed() {
		e.logs.dump(t)
	}
}
