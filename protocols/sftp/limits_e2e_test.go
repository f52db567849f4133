package sftp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// TestParamikoSessionWindow checks with paramiko, which shows the window the server grants:
// a session channel gets 4 KiB until it asks for SFTP or SCP, then the default 2 MiB; an
// 11th channel is refused with resource shortage, and closing one frees its place.
func TestParamikoSessionWindow(t *testing.T) {
	e := newE2E(t)
	py := e.needParamiko(t)
	script := fmt.Sprintf(`
import sys, time, paramiko
host, port, user, password = sys.argv[1:]
t = paramiko.Transport((host, int(port)))
t.start_client(timeout=10)
t.auth_password(user, password)
def wait_window(ch, want):
    deadline = time.time() + 10
    while ch.out_window_size != want:
        if time.time() > deadline:
            sys.exit("window %%d, want %%d" %% (ch.out_window_size, want))
        time.sleep(0.01)
chans = [t.open_session(timeout=10) for _ in range(%[1]d)]
for ch in chans:
    assert ch.out_window_size == %[2]d, ch.out_window_size
try:
    t.open_session(timeout=10)
    sys.exit("session %%d was accepted" %% (len(chans) + 1))
except paramiko.ChannelException as e:
    assert e.code == 4, (e.code, e.text)
    print("refused:", e.text)
chans[0].invoke_subsystem("sftp")
wait_window(chans[0], 2097152)
s = paramiko.SFTPClient(chans[0])
s.mkdir("/made-over-sftp")
chans[1].exec_command("scp -t /")
wait_window(chans[1], 2097152)
assert chans[2].out_window_size == %[2]d, chans[2].out_window_size
chans[3].close()
extra = t.open_session(timeout=10)
assert extra.out_window_size == %[2]d, extra.out_window_size
t.close()
print("ok")
`, defaultMaxSessions, channelStartWindow)
	putFile(t, e.local("window.py"), []byte(script))
	out := e.run(t, py, e.local("window.py"), "127.0.0.1", e.port, "alice", testPassword)
	if !strings.Contains(out, "refused: ") || !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := os.Stat(e.remote("/made-over-sftp")); err != nil {
		t.Fatalf("the SFTP session on the grown window did not work: %v", err)
	}
}

// TestOpenSSHMultiplexedSessions runs more sessions than ssh.max_sessions one after the
// other through an OpenSSH master connection (ControlMaster), alternating sftp, scp (SFTP
// mode) and scp -O: each closes before the next opens, so none is refused.
func TestOpenSSHMultiplexedSessions(t *testing.T) {
	sshBin := coretest.NeedBinary(t, "ssh")
	sftpBin := coretest.NeedBinary(t, "sftp")
	scpBin := coretest.NeedBinary(t, "scp")
	e := newE2E(t)
	dir, err := os.MkdirTemp("", "wx") // a unix socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "m")
	master := exec.Command(sshBin, append(e.sshOptions(), "-p", e.port, "-M", "-S", sock, "-N", "alice@127.0.0.1")...)
	master.Env = e.env
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = master.Wait(); close(exited) }()
	t.Cleanup(func() { _ = master.Process.Kill(); <-exited })
	coretest.Eventually(t, 10*time.Second, "the master connection's socket", func() bool {
		select {
		case <-exited:
			t.Fatal("ssh master exited")
		default:
		}
		_, err := os.Stat(sock)
		return err == nil
	})
	mux := append(e.sshOptions(), "-o", "ControlPath="+sock, "-o", "ControlMaster=no")
	data := randomBytes(t, 300_001)
	putFile(t, e.local("m.bin"), data)
	putFile(t, e.local("batch"), []byte("put m.bin sftp.bin\n"))
	for i := range defaultMaxSessions + 5 {
		switch i % 3 {
		case 0:
			e.run(t, sftpBin, append(mux, "-P", e.port, "-b", e.local("batch"), "alice@127.0.0.1")...)
			sameFile(t, e.local("m.bin"), e.remote("/sftp.bin"))
		case 1:
			e.run(t, scpBin, append(mux, "-P", e.port, e.local("m.bin"), fmt.Sprintf("alice@127.0.0.1:/scp%d.bin", i))...)
			sameFile(t, e.local("m.bin"), e.remote(fmt.Sprintf("/scp%d.bin", i)))
		case 2:
			e.run(t, scpBin, append(mux, "-O", "-P", e.port, fmt.Sprintf("alice@127.0.0.1:/scp%d.bin", i-1), e.local("back.bin"))...)
			sameFile(t, e.local("m.bin"), e.local("back.bin"))
		}
	}
	if n := len(e.srv.site.Sessions()); n != 1 {
		t.Errorf("%d sessions on the server, want the master's one", n)
	}
}
