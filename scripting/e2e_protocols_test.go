package scripting_test

import (
	"bufio"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// The Lua scripting contract proven end to end: real servers for every protocol, real
// clients (in-process Go clients, and OpenSSH, curl, lftp and paramiko when installed).

const denyExe = "if ExtractExt(CtxRelPath()) == '.exe' then Session.BlockOperation() end\n"

// onlyFiles fails unless dir holds exactly want (so no refused upload, and no temporary
// upload file, was left behind).
func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	must(t, err)
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestE2EProtocolsDenyExecutables(t *testing.T) {
	s := newStack(t, map[string]string{"deny.lua": denyExe}, []config.EventHandler{h("BeforeFileUpload", "deny.lua")})
	home := s.home("alice")
	for _, gc := range s.goClients() {
		t.Run(gc.name, func(t *testing.T) {
			dir := "/" + strings.ToLower(gc.name)
			must(t, os.MkdirAll(filepath.Join(home, dir), 0o755))
			c := gc.dial(t)
			defer c.close()
			if err := c.upload(dir+"/x.exe", []byte("MZ")); !isDenied(err) {
				t.Errorf("upload x.exe: %v, want permission denied", err)
			}
			must(t, c.upload(dir+"/x.txt", []byte("text")))
			onlyFiles(t, filepath.Join(home, dir), "x.txt")
		})
	}
	t.Run("OpenSSH sftp", func(t *testing.T) {
		must(t, os.MkdirAll(filepath.Join(home, "sftpbin"), 0o755))
		exe := s.local(t, "x.exe", []byte("MZ"))
		out, err := s.sftpBatch(t, "put "+exe+" /sftpbin/x.exe")
		if err == nil || !strings.Contains(strings.ToLower(out), "permission denied") {
			t.Errorf("sftp put x.exe: %v, want permission denied\n%s", err, out)
		}
		if out, err := s.sftpBatch(t, "put "+s.local(t, "x.txt", []byte("text"))+" /sftpbin/x.txt"); err != nil {
			t.Errorf("sftp put x.txt: %v\n%s", err, out)
		}
		onlyFiles(t, filepath.Join(home, "sftpbin"), "x.txt")
	})
	for _, mode := range []struct {
		name   string
		legacy bool
	}{{"scp-O", true}, {"scp", false}} {
		t.Run(mode.name, func(t *testing.T) {
			scp := coretest.NeedBinary(t, "scp")
			dir := "/" + strings.ReplaceAll(mode.name, "-", "")
			must(t, os.MkdirAll(filepath.Join(home, dir), 0o755))
			exe := s.local(t, "x.exe", []byte("MZ"))
			out, err := s.try(scp, s.scpArgs(mode.legacy, exe, "alice@127.0.0.1:"+dir+"/x.exe")...)
			if err == nil {
				t.Errorf("scp x.exe succeeded:\n%s", out)
			} else if !strings.Contains(strings.ToLower(out), "permission denied") {
				t.Errorf("scp x.exe: %v, output %q does not say permission denied", err, out)
			}
			s.run(t, scp, s.scpArgs(mode.legacy, s.local(t, "x.txt", []byte("text")), "alice@127.0.0.1:"+dir+"/x.txt")...)
			onlyFiles(t, filepath.Join(home, dir), "x.txt")
			if b, err := os.ReadFile(filepath.Join(home, dir, "x.txt")); err != nil || string(b) != "text" {
				t.Errorf("x.txt on disk: %q, %v", b, err)
			}
		})
	}
}

func TestE2EProtocolsHideTempFiles(t *testing.T) {
	s := newStack(t, map[string]string{"hide.lua": "Session.RemoveFromListDir('*.tmp')\n"},
		[]config.EventHandler{h("OnDirList", "hide.lua")})
	hid := filepath.Join(s.home("alice"), "hid")
	must(t, os.MkdirAll(hid, 0o755))
	must(t, os.WriteFile(filepath.Join(hid, "keep.txt"), []byte("k"), 0o644))
	must(t, os.WriteFile(filepath.Join(hid, "scratch.tmp"), []byte("s"), 0o644))

	for _, gc := range s.goClients() {
		t.Run(gc.name, func(t *testing.T) {
			c := gc.dial(t)
			defer c.close()
			names, err := c.list("/hid")
			must(t, err)
			if !slices.Equal(names, []string{"keep.txt"}) {
				t.Errorf("listing: %q, want only keep.txt", names)
			}
			if b, err := c.download("/hid/scratch.tmp"); !isNotFound(err) {
				t.Errorf("download of the hidden file: %q, %v; want not found", b, err)
			}
			if b, err := c.download("/hid/keep.txt"); err != nil || string(b) != "k" {
				t.Errorf("keep.txt: %q, %v", b, err)
			}
		})
	}

	// SCP has no listing: a file is hidden once an SFTP listing on the same SSH connection
	// (the same session) ran OnDirList.
	t.Run("SCP after SFTP listing", func(t *testing.T) {
		c := s.sftpc(t, "alice", "pw")
		defer c.close()
		names, err := c.list("/hid")
		must(t, err)
		if slices.Contains(names, "scratch.tmp") {
			t.Fatalf("listing shows the hidden file: %q", names)
		}
		if b, err := scpFetch(c.ssh, "/hid/scratch.tmp"); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("scp -f of the hidden file: %q, %v; want not found", b, err)
		}
		if b, err := scpFetch(c.ssh, "/hid/keep.txt"); err != nil || string(b) != "k" {
			t.Errorf("scp -f keep.txt: %q, %v", b, err)
		}
	})

	// The same with the OpenSSH binaries, multiplexed over one master connection.
	t.Run("OpenSSH", func(t *testing.T) {
		sshBin, sftpBin, scpBin := coretest.NeedBinary(t, "ssh"), coretest.NeedBinary(t, "sftp"), coretest.NeedBinary(t, "scp")
		mux := s.master(t, sshBin)
		batch := s.local(t, "hide.sftp", []byte("ls -1 /hid\nget /hid/scratch.tmp got.tmp\n"))
		out, err := s.try(sftpBin, append(append(s.sshOptions(), mux...), "-P", s.sshPort(), "-b", batch, "alice@127.0.0.1")...)
		listing, get, _ := strings.Cut(out, "sftp> get")
		if !strings.Contains(listing, "keep.txt") || strings.Contains(listing, "scratch.tmp") {
			t.Errorf("sftp listing shows the hidden file or lacks keep.txt:\n%s", out)
		}
		if err == nil || !strings.Contains(strings.ToLower(get), "not found") {
			t.Errorf("sftp get of the hidden file: %v\n%s", err, out)
		}
		for _, legacy := range []bool{true, false} {
			out, err := s.try(scpBin, append(s.scpArgs(legacy, mux...), "alice@127.0.0.1:/hid/scratch.tmp", s.local(t, "got.tmp", nil))...)
			if low := strings.ToLower(out); err == nil || !(strings.Contains(low, "no such file") || strings.Contains(low, "not found")) {
				t.Errorf("scp (legacy %v) of the hidden file: %v\n%s", legacy, err, out)
			}
			s.run(t, scpBin, append(s.scpArgs(legacy, mux...), "alice@127.0.0.1:/hid/keep.txt", s.local(t, "got.txt", nil))...)
		}
		if _, err := os.Stat(s.local(t, "got.tmp", nil)); err == nil {
			t.Error("a client downloaded the hidden file")
		}
		// Hiding lasts for the session that listed: a client on a connection of its own, which
		// never listed, is not affected. (So the refusals above show that the multiplexed
		// clients shared the master's session.)
		out, err = s.try(scpBin, s.scpArgs(true, "alice@127.0.0.1:/hid/scratch.tmp", s.local(t, "fresh.tmp", nil))...)
		t.Logf("scp -O of the hidden file on a fresh connection (no listing in that session): %v %s", err, out)
	})
}

// master starts an OpenSSH master connection as alice until the test ends and returns the
// options that make ssh, sftp and scp use it.
func (s *stack) master(t *testing.T, sshBin string) []string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wx") // a unix socket path must be short
	must(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "m")
	cmd := exec.Command(sshBin, append(s.sshOptions(), "-p", s.sshPort(), "-M", "-S", sock, "-N", "alice@127.0.0.1")...)
	cmd.Env = s.cliEnv
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	coretest.Eventually(t, 5*time.Second, "the master connection's socket", func() bool {
		select {
		case <-exited:
			t.Fatal("ssh master exited")
		default:
		}
		_, err := os.Stat(sock)
		return err == nil
	})
	return []string{"-o", "ControlPath=" + sock, "-o", "ControlMaster=no"}
}

// scpFetch downloads p with the legacy SCP protocol ("scp -f") on an existing connection.
func scpFetch(c *ssh.Client, p string) ([]byte, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	in, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := sess.Start("scp -f -- '" + p + "'"); err != nil {
		return nil, err
	}
	out := bufio.NewReader(stdout)
	ack := func() error { _, err := in.Write([]byte{0}); return err }
	if err := ack(); err != nil {
		return nil, err
	}
	line, err := out.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if line[0] == 1 || line[0] == 2 {
		return nil, fmt.Errorf("scp error: %s", strings.TrimSpace(line[1:]))
	}
	var mode string
	var size int
	var name string
	if _, err := fmt.Sscanf(line, "C%s %d %s", &mode, &size, &name); err != nil {
		return nil, fmt.Errorf("scp: bad file line %q: %v", line, err)
	}
	if err := ack(); err != nil {
		return nil, err
	}
	data := make([]byte, size+1) // the file and its status byte
	for n := 0; n < len(data); {
		m, err := out.Read(data[n:])
		if err != nil {
			return nil, err
		}
		n += m
	}
	if data[size] != 0 {
		return nil, fmt.Errorf("scp: status %#x after the data", data[size])
	}
	if err := ack(); err != nil {
		return nil, err
	}
	_ = in.Close()
	return data[:size], sess.Wait()
}

func TestE2EParamikoInteractiveTOTP(t *testing.T) {
	py := needPython(t)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "wharf", AccountName: "bob"})
	must(t, err)
	bob := testUser("bob", func(u *config.User) { u.TOTPSecret = key.Secret() })
	questions := lines(
		"Session.AddQuestionTOTP(3, 'Code: ')",
		"Session.AddQuestionPassword(1, 'Password: ')",
		"Session.AddQuestion(2, 'Colour? ', 'blue', true)")
	s := newStack(t, map[string]string{"ki.lua": questions}, []config.EventHandler{h("OnAuthInteractiveSetQuestions", "ki.lua")}, bob)
	script := s.local(t, "ki.py", []byte(`
import sys, paramiko
host, port, user, password, colour, code = sys.argv[1:]
seen = []
def answer(title, instructions, prompts):
    seen.append(prompts)
    return [{"Password: ": password, "Colour? ": colour, "Code: ": code}.get(p, "") for p, echo in prompts]
t = paramiko.Transport((host, int(port)))
t.start_client(timeout=10)
try:
    t.auth_interactive(user, answer)
except paramiko.AuthenticationException as e:
    print("AUTH FAILED", seen)
    sys.exit(3)
print("prompts", seen)
s = paramiko.SFTPClient.from_transport(t)
print("listing", sorted(s.listdir("/")))
s.close()
t.close()
`))
	now := time.Now()
	code, err := totp.GenerateCode(key.Secret(), now)
	must(t, err)
	// A wrong code that is no neighbouring step's code either (one step of skew is allowed).
	wrongCode := code
	for n := 0; ; n++ {
		wrongCode = fmt.Sprintf("%06d", (n*7919+123457)%1_000_000)
		ok := wrongCode != code
		for _, d := range []time.Duration{-30 * time.Second, 30 * time.Second} {
			if c, _ := totp.GenerateCode(key.Secret(), now.Add(d)); c == wrongCode {
				ok = false
			}
		}
		if ok {
			break
		}
	}
	for _, tc := range []struct {
		name                   string
		password, colour, code string
		ok                     bool
	}{
		{"right answers", "pw", "blue", code, true},
		{"wrong password", "nope", "blue", code, false},
		{"wrong answer", "pw", "red", code, false},
		{"wrong TOTP code", "pw", "blue", wrongCode, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.try(py, script, "127.0.0.1", s.sshPort(), "bob", tc.password, tc.colour, tc.code)
			if tc.ok {
				if err != nil {
					t.Fatalf("login failed: %v\n%s", err, out)
				}
				want := `prompts [[('Password: ', False), ('Colour? ', True), ('Code: ', False)]]`
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
				return
			}
			if err == nil || !strings.Contains(out, "AUTH FAILED") {
				t.Errorf("login with a wrong answer: %v\n%s", err, out)
			}
		})
	}
}

// whoScript logs what a session reports; "who|event|protocol|client version".
const whoScript = "Log('who|' .. EventHandler() .. '|' .. Session.GetProtocol() .. '|' .. Session.GetClientVersion())\n"

func TestE2EProtocolAndClientVersion(t *testing.T) {
	s := newStack(t, map[string]string{"who.lua": whoScript, "log.lua": docExample}, []config.EventHandler{
		h("OnAuthSuccess", "who.lua"), h("OnAuthSuccess", "log.lua"), h("AfterFileUpload", "who.lua"), h("OnConnectionClose", "who.lua")})
	must(t, os.MkdirAll(filepath.Join(s.home("alice"), "v"), 0o755))
	file := s.local(t, "v.txt", []byte("version"))
	sessionIDs := map[string]string{} // session id → case

	type want struct {
		auth, after string                      // protocol at OnAuthSuccess ("" = any) and in later events
		version     func(string) (bool, string) // check of GetClientVersion in later events
	}
	exact := func(v string) func(string) (bool, string) {
		return func(got string) (bool, string) { return got == v, fmt.Sprintf("%q", v) }
	}
	prefix := func(v string) func(string) (bool, string) {
		return func(got string) (bool, string) { return strings.HasPrefix(got, v), fmt.Sprintf("%q…", v) }
	}
	cases := []struct {
		name   string
		upload bool // the client uploads v.txt, so AfterFileUpload fires
		run    func(t *testing.T) want
	}{
		{"pkg/sftp", true, func(t *testing.T) want {
			c := s.sftpc(t, "alice", "pw")
			must(t, c.upload("/v/go.txt", []byte("v")))
			c.close()
			return want{"SFTP", "SFTP", exact("SSH-2.0-Go")}
		}},
		{"OpenSSH sftp", true, func(t *testing.T) want {
			out, err := s.sftpBatch(t, "put "+file+" /v/sftp.txt")
			if err != nil {
				t.Fatalf("sftp: %v\n%s", err, out)
			}
			return want{"SFTP", "SFTP", exact(openSSHVersion(t))}
		}},
		{"OpenSSH scp", true, func(t *testing.T) want {
			s.run(t, coretest.NeedBinary(t, "scp"), s.scpArgs(false, file, "alice@127.0.0.1:/v/scp.txt")...)
			return want{"SFTP", "SFTP", exact(openSSHVersion(t))}
		}},
		{"OpenSSH scp -O", true, func(t *testing.T) want {
			s.run(t, coretest.NeedBinary(t, "scp"), s.scpArgs(true, file, "alice@127.0.0.1:/v/scpO.txt")...)
			return want{"", "SCP", exact(openSSHVersion(t))}
		}},
		{"paramiko", true, func(t *testing.T) want {
			py := needPython(t)
			out := s.run(t, py, "-c", `
import sys, paramiko
t = paramiko.Transport(("127.0.0.1", int(sys.argv[1])))
t.connect(username="alice", password="pw")
s = paramiko.SFTPClient.from_transport(t)
s.put(sys.argv[2], "/v/paramiko.txt")
s.close()
t.close()
print("version=" + paramiko.__version__)
`, s.sshPort(), file)
			_, v, _ := strings.Cut(strings.TrimSpace(out), "version=")
			return want{"SFTP", "SFTP", exact("SSH-2.0-paramiko_" + v)}
		}},
		{"curl", true, func(t *testing.T) want {
			curl := coretest.NeedBinary(t, "curl")
			v, _ := s.try(curl, "-V")
			m := regexp.MustCompile(`libssh2/(\S+)`).FindStringSubmatch(v)
			if m == nil {
				if os.Getenv("WHARF_E2E") == "1" {
					t.Fatalf("curl has no libssh2:\n%s", v)
				}
				t.Skip("curl built without libssh2")
			}
			s.run(t, curl, "-sS", "--fail", "-k", "--connect-timeout", "10", "-u", "alice:pw", "-T", file,
				"sftp://127.0.0.1:"+s.sshPort()+"/v/curl.txt")
			return want{"SFTP", "SFTP", exact("SSH-2.0-libssh2_" + m[1])}
		}},
		{"jlaffaye FTP", true, func(t *testing.T) want {
			c := s.ftpc(t, modeFTP, "alice", "pw")
			must(t, c.upload("/v/ftp.txt", []byte("v")))
			c.close()
			return want{"FTP", "FTP", exact("")}
		}},
		{"jlaffaye FTPES", true, func(t *testing.T) want {
			c := s.ftpc(t, modeFTPES, "alice", "pw")
			must(t, c.upload("/v/ftpes.txt", []byte("v")))
			c.close()
			return want{"FTPES", "FTPES", exact("")}
		}},
		{"jlaffaye FTPS", true, func(t *testing.T) want {
			c := s.ftpc(t, modeFTPS, "alice", "pw")
			must(t, c.upload("/v/ftps.txt", []byte("v")))
			c.close()
			return want{"FTPS", "FTPS", exact("")}
		}},
		{"lftp", true, func(t *testing.T) want {
			lftp := coretest.NeedBinary(t, "lftp")
			script := s.local(t, "v.lftp", []byte(fmt.Sprintf(`set ssl:verify-certificate no
set net:max-retries 1
set net:timeout 10
set cmd:fail-exit true
open -u alice,pw -p %s 127.0.0.1
put %s -o /v/lftp.txt
bye
`, s.ftpPort(), file)))
			s.run(t, lftp, "-f", script)
			// lftp upgrades with AUTH TLS by default and sends CLNT (ftp:client) after FEAT.
			return want{"FTPES", "FTPES", prefix("lftp/")}
		}},
		{"raw CLNT before login", false, func(t *testing.T) want {
			s.rawFTP(t, "CLNT wharf-raw/1.0 (test)", "USER alice", "PASS pw", "QUIT")
			return want{"FTP", "FTP", exact("wharf-raw/1.0 (test)")}
		}},
		{"raw CLNT after login", false, func(t *testing.T) want {
			// The adapter copies CLNT into the session at the next file-system command.
			s.rawFTP(t, "USER alice", "PASS pw", "CLNT late-client 2.0", "MKD /v/late", "QUIT")
			return want{"FTP", "FTP", exact("late-client 2.0")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.logs.reset()
			w := tc.run(t)
			n := 2
			if tc.upload {
				n = 3
			}
			recs := s.waitRecords(t, "who|", n)
			closes := 0
			for _, r := range recs {
				f := strings.SplitN(r.Msg, "|", 4)
				if len(f) != 4 {
					t.Fatalf("bad line %q", r.Msg)
				}
				event, proto, version := f[1], f[2], f[3]
				t.Logf("%s: protocol %q, client version %q", event, proto, version)
				switch event {
				case "OnAuthSuccess":
					if w.auth != "" && proto != w.auth {
						t.Errorf("%s: GetProtocol() = %q, want %q", event, proto, w.auth)
					}
					continue
				case "OnConnectionClose":
					closes++
				}
				if proto != w.after {
					t.Errorf("%s: GetProtocol() = %q, want %q", event, proto, w.after)
				}
				if ok, want := w.version(version); !ok {
					t.Errorf("%s: GetClientVersion() = %q, want %s", event, version, want)
				}
			}
			if closes != 1 {
				s.logs.dump(t)
				t.Fatalf("%d sessions closed, want 1", closes)
			}
			// The documentation's example logged this session's login.
			logins := s.records("User alice connected with session ID ")
			if len(logins) != 1 || logins[0].Msg != "User alice connected with session ID "+logins[0].Attrs["session"] {
				t.Fatalf("doc example lines: %v", logins)
			}
			id := logins[0].Attrs["session"]
			if prev, ok := sessionIDs[id]; ok {
				t.Errorf("session id %s of %s reused by %s", id, prev, tc.name)
			}
			sessionIDs[id] = tc.name
		})
	}
}

// openSSHVersion is the identification string OpenSSH's clients send ("SSH-2.0-OpenSSH_9.2p1
// Debian-2+deb12u10"), from "ssh -V".
func openSSHVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(coretest.NeedBinary(t, "ssh"), "-V").CombinedOutput()
	must(t, err)
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), ",")
	return "SSH-2.0-" + v
}

// rawFTP sends commands on a plain FTP control connection, checking each reply is positive.
func (s *stack) rawFTP(t *testing.T, commands ...string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.ftpAddr, 10*time.Second)
	must(t, err)
	defer nc.Close()
	must(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	c := textproto.NewConn(nc)
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	for _, cmd := range commands {
		if err := c.PrintfLine("%s", cmd); err != nil {
			t.Fatal(err)
		}
		code, msg, err := c.ReadResponse(0)
		if err != nil || code >= 400 {
			t.Fatalf("%s: %d %s (%v)", cmd, code, msg, err)
		}
	}
}

func TestE2ECustomDataUntilClose(t *testing.T) {
	s := newStack(t, map[string]string{
		"add.lua":   "Session.AddCustomData(CtxRelPath())\n",
		"close.lua": "local all = Session.GetAllCustomData()\nLog('custom|' .. #all .. '|' .. table.concat(all, ',') .. '|' .. Session.GetCustomData(1))\n",
	}, []config.EventHandler{h("AfterFileUpload", "add.lua"), h("OnConnectionClose", "close.lua")})
	ids := map[string]bool{}
	for _, gc := range s.goClients() {
		t.Run(gc.name, func(t *testing.T) {
			s.logs.reset()
			c := gc.dial(t)
			a, b := "/a-"+gc.name+".txt", "/b-"+gc.name+".txt"
			must(t, c.upload(a, []byte("a")))
			must(t, c.upload(b, []byte("b")))
			c.close()
			recs := s.waitRecords(t, "custom|", 1)
			if want := "custom|2|" + a + "," + b + "|" + b; len(recs) != 1 || recs[0].Msg != want {
				s.logs.dump(t)
				t.Fatalf("OnConnectionClose logged %v, want one %q", recs, want)
			}
			if id := recs[0].Attrs["session"]; ids[id] || id == "" {
				t.Errorf("session id %q is empty or was seen before", id)
			} else {
				ids[id] = true
			}
		})
	}
}
