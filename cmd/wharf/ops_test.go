package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/ops/admin"
)

// opsServer is a `wharf serve` running in-process with the metrics listener on.
type opsServer struct {
	*served
	metrics string // host:port of /metrics
}

var metricsLine = regexp.MustCompile(`(?m)^\s+metrics: http://(\S+)/metrics`)

// startOps runs `wharf serve -c cfgPath` like startServe and also returns the metrics address.
func startOps(t *testing.T, cfgPath string) *opsServer {
	t.Helper()
	s := &opsServer{served: serveInProcess(t, "-c", cfgPath)}
	if m := metricsLine.FindStringSubmatch(s.stdout.String()); m != nil {
		s.metrics = m[1]
	}
	return s
}

// opsConfig writes a config with one site (SFTP and FTP on free ports), the metrics listener
// on a free port and the given extra site keys, scripts and top-level keys.
type opsConfig struct {
	top     string // top-level YAML appended
	users   string // extra user entries (indented like the alice entry)
	site    string // extra site keys
	scripts map[string]string
}

const alicePassword = "alice-SECRET-pw"

func (c opsConfig) yaml() string {
	return `state_dir: ./state
metrics:
  address: "127.0.0.1:0"
sites:
  - name: test
    listeners:
      - { protocol: sftp, address: "127.0.0.1:0" }
      - { protocol: ftp, address: "127.0.0.1:0" }
    vfs:
      - { name: home, type: disk, root: "./data/{user}" }
    scripts_dir: ./scripts
    users:
      - id: alice
        password: "plain:` + alicePassword + `"
        home: { vfs: home, permissions: [all] }
` + c.users + c.site + c.top
}

func (c opsConfig) write(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range c.scripts {
		if err := os.WriteFile(filepath.Join(dir, "scripts", name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(p, []byte(c.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sample is one series of a scrape.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape fetches /metrics over HTTP and parses the text exposition format.
func scrape(t *testing.T, addr string) []sample {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := seriesLine.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, lp := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[lp[1]] = lp[2]
		}
		out = append(out, s)
	}
	return out
}

// sum adds the values of the series of name whose labels include want.
func sum(samples []sample, name string, want map[string]string) float64 {
	var v float64
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, w := range want {
			if s.labels[k] != w {
				continue next
			}
		}
		v += s.value
	}
	return v
}

func dialSSH(t *testing.T, addr, user, pass string) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pass)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
}

func ftpLogin(t *testing.T, addr, user, pass string, opts ...ftp.DialOption) (*ftp.ServerConn, error) {
	t.Helper()
	c, err := ftp.Dial(addr, append([]ftp.DialOption{ftp.DialWithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, pass); err != nil {
		_ = c.Quit()
		return nil, err
	}
	return c, nil
}

func readAuditLines(t *testing.T, p string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestMetricsAndAuditAfterSFTPAndFTPSessions(t *testing.T) {
	dir := t.TempDir()
	cfgPath := opsConfig{
		top: "log: {format: json}\naudit: {file: ./logs/audit.log}\n",
		// Loopback is on the default safe list; this test wants the failed login's strike.
		site: "    protector: { safe: [] }\n    event_handlers:\n      - { event: OnAuthSuccess, script: hello.lua }\n" +
			"      - { event: AfterFileUpload, script: broken.lua, on_error: continue }\n",
		scripts: map[string]string{"hello.lua": "Log('hello ' .. Session.GetUserID())\n", "broken.lua": "error('boom')\n"},
	}.write(t, dir)
	srv := startOps(t, cfgPath)
	if srv.metrics == "" {
		t.Fatalf("no metrics address printed:\n%s", srv.stdout.String())
	}
	up, down := bytes.Repeat([]byte("s"), 1000), bytes.Repeat([]byte("f"), 2000)

	// SFTP: upload, download, list.
	conn, err := dialSSH(t, srv.addrs["SFTP"], "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("/up.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Open("/up.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("sftp download: %d bytes, %v", len(got), err)
	}
	r.Close()
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	conn.Close()

	// FTP: a failed login, then upload and download.
	if _, err := ftpLogin(t, srv.addrs["FTP"], "alice", "wrong-SECRET-guess"); err == nil {
		t.Fatal("wrong password accepted")
	}
	fc, err := ftpLogin(t, srv.addrs["FTP"], "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Stor("/ftp.bin", bytes.NewReader(down)); err != nil {
		t.Fatal(err)
	}
	rr, err := fc.Retr("/ftp.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(rr); !bytes.Equal(got, down) {
		t.Fatalf("ftp download %d bytes", len(got))
	}
	rr.Close()
	if err := fc.Quit(); err != nil {
		t.Fatal(err)
	}

	// Session ends are recorded when the adapters notice the clients left.
	var m []sample
	coretest.Eventually(t, 10*time.Second, "three ended sessions in /metrics", func() bool {
		m = scrape(t, srv.metrics)
		if sum(m, "wharf_sessions_total", nil) == 3 && sum(m, "wharf_sessions_active", nil) == 0 &&
			sum(m, "wharf_session_duration_seconds_count", nil) == 3 {
			return true
		}
		t.Logf("sessions_total %v active %v", sum(m, "wharf_sessions_total", nil), sum(m, "wharf_sessions_active", nil))
		return false
	})
	site := map[string]string{"site": "test"}
	with := func(kv ...string) map[string]string {
		out := map[string]string{"site": "test"}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wharf_connections_total", with("result", "ok"), 3},
		{"wharf_sessions_total", with("protocol", "SFTP"), 1},
		{"wharf_sessions_total", with("protocol", "FTP"), 2},
		{"wharf_logins_total", with("protocol", "SFTP", "method", "password", "result", "ok"), 1},
		{"wharf_logins_total", with("protocol", "FTP", "method", "password", "result", "ok"), 1},
		{"wharf_logins_total", with("protocol", "FTP", "result", "authentication_failed"), 1},
		{"wharf_transfer_bytes_total", with("protocol", "SFTP", "direction", "up"), 1000},
		{"wharf_transfer_bytes_total", with("protocol", "SFTP", "direction", "down"), 1000},
		{"wharf_transfer_bytes_total", with("protocol", "FTP", "direction", "up"), 2000},
		{"wharf_transfer_bytes_total", with("protocol", "FTP", "direction", "down"), 2000},
		{"wharf_operations_total", with("protocol", "SFTP", "operation", "upload", "result", "ok"), 1},
		{"wharf_operations_total", with("protocol", "FTP", "operation", "download", "result", "ok"), 1},
		{"wharf_transfer_duration_seconds_count", with("protocol", "FTP", "direction", "up", "result", "ok"), 1},
		{"wharf_session_duration_seconds_count", site, 3},
		{"wharf_script_runs_total", with("event", "OnAuthSuccess"), 2},
		{"wharf_script_duration_seconds_count", with("event", "OnAuthSuccess"), 2},
		{"wharf_script_errors_total", with("event", "AfterFileUpload"), 2},
		{"wharf_protector_strikes_total", site, 1},
		{"wharf_sessions_active", site, 0},
	}
	for _, c := range checks {
		if got := sum(m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sum(m, "wharf_operations_total", with("operation", "list", "result", "ok")) < 1 {
		t.Error("no list operation counted")
	}
	if _, ok := m[0].labels["user"]; ok {
		t.Error("user label without metrics.per_user")
	}
	resp, err := http.Get("http://" + srv.metrics + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// The audit log: one JSON line per login, operation and session end. Lines are written
	// in batches (log.flush_interval), so the last ones may still be on their way.
	auditPath := filepath.Join(dir, "logs", "audit.log")
	coretest.Eventually(t, 10*time.Second, "three session ends in the audit file", func() bool {
		data, err := os.ReadFile(auditPath)
		return err == nil && strings.HasSuffix(string(data), "\n") && strings.Count(string(data), `"event":"session_end"`) == 3
	})
	lines := readAuditLines(t, auditPath)
	find := func(want map[string]any) map[string]any {
		t.Helper()
	next:
		for _, l := range lines {
			for k, v := range want {
				if l[k] != v {
					continue next
				}
			}
			return l
		}
		t.Errorf("no audit line with %v", want)
		return nil
	}
	sftpUp := find(map[string]any{"event": "operation", "operation": "upload", "protocol": "SFTP", "path": "/up.bin",
		"bytes": 1000.0, "user": "alice", "site": "test", "ip": "127.0.0.1", "result": "ok", "msg": "audit"})
	ftpDown := find(map[string]any{"event": "operation", "operation": "download", "protocol": "FTP", "path": "/ftp.bin",
		"bytes": 2000.0, "user": "alice", "result": "ok"})
	find(map[string]any{"event": "login", "protocol": "FTP", "user": "alice", "method": "password", "result": "authentication_failed"})
	for _, op := range []map[string]any{sftpUp, ftpDown} {
		if op == nil {
			continue
		}
		if _, ok := op["duration_ms"].(float64); !ok {
			t.Errorf("no duration_ms in %v", op)
		}
		id, _ := op["session"].(string)
		if len(id) != 26 {
			t.Errorf("session id %q in %v", id, op)
		}
		find(map[string]any{"event": "session_end", "session": id, "user": "alice", "protocol": op["protocol"], "result": "ok"})
	}
	if n := len(lines); n < 10 {
		t.Errorf("only %d audit lines", n)
	}
	// Passwords never reach a log.
	auditText, _ := os.ReadFile(filepath.Join(dir, "logs", "audit.log"))
	for _, secret := range []string{alicePassword, "wrong-SECRET-guess"} {
		if strings.Contains(srv.stderr.String(), secret) || strings.Contains(string(auditText), secret) {
			t.Errorf("password %q found in a log", secret)
		}
	}
}

// TestReloadLive: a long SFTP download is in flight while a user is added and a script
// changed; SIGHUP (really sent to this process) applies both, the download completes intact,
// and a broken config changes nothing.
func TestReloadLive(t *testing.T) {
	dir := t.TempDir()
	gate := map[string]string{"gate.lua": "-- v1: every upload is allowed\n"}
	handlers := "    event_handlers:\n      - { event: BeforeFileUpload, script: gate.lua }\n"
	v1 := opsConfig{site: handlers, scripts: gate}
	cfgPath := v1.write(t, dir)
	big := make([]byte, 8<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data", "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "alice", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startOps(t, cfgPath)

	// The download starts and stays in flight across the reloads.
	alice := sftpClient(t, srv.addrs["SFTP"], "alice", alicePassword)
	dl, err := alice.Open("/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(dl, head); err != nil {
		t.Fatal(err)
	}
	if n := sum(scrape(t, srv.metrics), "wharf_transfers_active", nil); n != 1 {
		t.Fatalf("%v transfers active, want the download", n)
	}
	// v2: a new user and a script that refuses executables.
	v2 := v1
	v2.users = "      - id: bob\n        password: \"plain:bob-SECRET-pw\"\n        home: { vfs: home, permissions: [all] }\n"
	v2.scripts = map[string]string{"gate.lua": "-- v2\nif string.lower(ExtractExt(CtxRelPath())) == '.exe' then Session.BlockOperation() end\n"}
	v2.write(t, dir)
	if _, err := dialSSH(t, srv.addrs["SFTP"], "bob", "bob-SECRET-pw"); err == nil {
		t.Fatal("bob can log in before the reload")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "the SIGHUP reload", func() bool {
		return sum(scrape(t, srv.metrics), "wharf_config_reloads_total", map[string]string{"result": "ok"}) == 1
	})
	if !strings.Contains(srv.stderr.String(), `trigger=SIGHUP`) {
		t.Errorf("reload not logged:\n%s", srv.stderr.String())
	}
	bob := sftpClient(t, srv.addrs["SFTP"], "bob", "bob-SECRET-pw")
	put := func(p string) error {
		f, err := bob.Create(p)
		if err != nil {
			return err
		}
		if _, err := f.Write([]byte("data")); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := put("/tool.exe"); err == nil {
		t.Error("the new script did not refuse /tool.exe")
	}
	if err := put("/notes.txt"); err != nil {
		t.Errorf("upload refused after reload: %v", err)
	}

	// A broken config: refused, reported, and nothing changes.
	broken := v2
	broken.site = handlers + "    bogus_key: 1\n"
	broken.users += "      - id: carol\n        password: \"plain:carol-pw\"\n        home: { vfs: home, permissions: [all] }\n"
	broken.write(t, dir)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "the refused reload", func() bool {
		return sum(scrape(t, srv.metrics), "wharf_config_reloads_total", map[string]string{"result": "error"}) == 1
	})
	logText := srv.stderr.String()
	for _, want := range []string{"config reload refused", "sites[0].bogus_key", "previous configuration stays in force"} {
		if !strings.Contains(logText, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if _, err := dialSSH(t, srv.addrs["SFTP"], "carol", "carol-pw"); err == nil {
		t.Error("a user of the refused config can log in")
	}
	if c, err := dialSSH(t, srv.addrs["SFTP"], "bob", "bob-SECRET-pw"); err != nil {
		t.Errorf("bob lost by a refused reload: %v", err)
	} else {
		c.Close()
	}

	// A script that does not compile, through `wharf reload`: refused with the script's error.
	v2.scripts = map[string]string{"gate.lua": "if then end\n"}
	v2.write(t, dir)
	code, _, stderr := runCmd(t, "", "reload", "-c", cfgPath)
	if code != 1 || !strings.Contains(stderr, "gate.lua") || !strings.Contains(stderr, "keeps the old one") {
		t.Errorf("wharf reload of a broken script: exit %d, %s", code, stderr)
	}
	if err := put("/tool2.exe"); err == nil {
		t.Error("the v2 script is no longer in force after a refused reload")
	}

	// The first download completes intact.
	rest, err := io.ReadAll(dl)
	if err != nil {
		t.Fatalf("download after reloads: %v", err)
	}
	dl.Close()
	if got, want := sha256.Sum256(append(head, rest...)), sha256.Sum256(big); got != want {
		t.Fatalf("download corrupted: %d bytes", len(head)+len(rest))
	}
	for _, secret := range []string{alicePassword, "bob-SECRET-pw"} {
		if strings.Contains(srv.stderr.String(), secret) {
			t.Errorf("password %q in the log", secret)
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the given common name.
func writeCert(t *testing.T, certPath, keyPath, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReloadReplacesTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certPath, keyPath, "first")
	cfgPath := opsConfig{site: "    tls: { cert: cert.pem, key: key.pem }\n"}.write(t, dir)
	srv := startOps(t, cfgPath)

	// dial logs in over explicit TLS and returns the server certificate's common name.
	dial := func() (*ftp.ServerConn, string) {
		var mu sync.Mutex
		cn := ""
		cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(8),
			VerifyConnection: func(cs tls.ConnectionState) error {
				mu.Lock()
				defer mu.Unlock()
				if cn == "" && len(cs.PeerCertificates) > 0 {
					cn = cs.PeerCertificates[0].Subject.CommonName
				}
				return nil
			}}
		c, err := ftpLogin(t, srv.addrs["FTP"], "alice", alicePassword, ftp.DialWithExplicitTLS(cfg))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return c, cn
	}
	old, cn := dial()
	if cn != "first" {
		t.Fatalf("certificate %q, want first", cn)
	}
	writeCert(t, certPath, keyPath, "second")
	code, out, errOut := runCmd(t, "", "reload", "-c", cfgPath)
	if code != 0 || !strings.Contains(out, "configuration reloaded") {
		t.Fatalf("wharf reload: exit %d, %s %s", code, out, errOut)
	}
	fresh, cn := dial()
	if cn != "second" {
		t.Errorf("certificate after reload %q, want second", cn)
	}
	// The connection made before the reload goes on, data connections included.
	if _, err := old.List("/"); err != nil {
		t.Errorf("old connection after reload: %v", err)
	}
	if _, err := fresh.List("/"); err != nil {
		t.Errorf("new connection: %v", err)
	}
	_ = old.Quit()
	_ = fresh.Quit()

	// The admin token was generated 0600 into state_dir, and never logged.
	tokPath := filepath.Join(dir, "state", "admin.token")
	fi, err := os.Stat(tokPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	tok, _ := admin.ReadToken(tokPath)
	if strings.Contains(srv.stderr.String(), tok) || strings.Contains(srv.stdout.String(), tok) {
		t.Error("the admin token was logged")
	}
}

func TestSessionsCommandListsAndKicks(t *testing.T) {
	dir := t.TempDir()
	cfgPath := opsConfig{
		site:    "    event_handlers:\n      - { event: OnConnectionClose, script: closed.lua }\n",
		scripts: map[string]string{"closed.lua": "Log('connection closed ' .. Session.GetID())\n"},
	}.write(t, dir)
	srv := startOps(t, cfgPath)
	if code, out, errOut := runCmd(t, "", "health", "-c", cfgPath); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("wharf health: exit %d %q %s", code, out, errOut)
	}
	sc := sftpClient(t, srv.addrs["SFTP"], "alice", alicePassword)
	if _, err := sc.Getwd(); err != nil {
		t.Fatal(err)
	}
	fc, err := ftpLogin(t, srv.addrs["FTP"], "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Quit()
	if _, err := fc.CurrentDir(); err != nil {
		t.Fatal(err)
	}

	list := func() []admin.SessionInfo {
		t.Helper()
		code, out, errOut := runCmd(t, "", "sessions", "-c", cfgPath, "-json")
		if code != 0 {
			t.Fatalf("wharf sessions: exit %d: %s", code, errOut)
		}
		var l []admin.SessionInfo
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return l
	}
	ids := map[string]string{}
	for _, s := range list() {
		if s.User != "alice" || !s.Authenticated || s.Site != "test" || s.RemoteIP != "127.0.0.1" || s.Start.IsZero() {
			t.Errorf("session %+v", s)
		}
		ids[s.Protocol] = s.ID
	}
	if ids["SFTP"] == "" || ids["FTP"] == "" || len(ids) != 2 {
		t.Fatalf("sessions by protocol: %v", ids)
	}
	code, out, _ := runCmd(t, "", "sessions", "-c", cfgPath)
	for _, want := range []string{"ID", "PROTOCOL", ids["SFTP"], ids["FTP"], "alice", "SFTP"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("table lacks %q (exit %d):\n%s", want, code, out)
		}
	}

	for _, proto := range []string{"SFTP", "FTP"} {
		id := ids[proto]
		code, out, errOut := runCmd(t, "", "sessions", "kick", "-c", cfgPath, id)
		if code != 0 || !strings.Contains(out, id) {
			t.Fatalf("kick %s: exit %d %s %s", proto, code, out, errOut)
		}
		coretest.Eventually(t, 10*time.Second, proto+" session gone", func() bool {
			for _, s := range list() {
				if s.ID == id {
					return false
				}
			}
			return true
		})
		coretest.Eventually(t, 10*time.Second, "OnConnectionClose of "+proto, func() bool {
			return strings.Contains(srv.stderr.String(), "connection closed "+id)
		})
	}
	if _, err := sc.Getwd(); err == nil {
		if _, err := sc.ReadDir("/"); err == nil {
			t.Error("the kicked SFTP session still works")
		}
	}
	if _, err := fc.CurrentDir(); err == nil {
		t.Error("the kicked FTP session still works")
	}
	code, _, errOut := runCmd(t, "", "sessions", "kick", "-c", cfgPath, "01NOSUCHSESSION0000000000")
	if code != 1 || !strings.Contains(errOut, "no live session") {
		t.Errorf("kick unknown: exit %d %s", code, errOut)
	}
}

func TestWatchScriptsReloads(t *testing.T) {
	dir := t.TempDir()
	cfg := opsConfig{
		top:     "reload: { watch_scripts: true, watch_interval: 50ms }\n",
		site:    "    event_handlers:\n      - { event: OnAuthSuccess, script: hello.lua }\n",
		scripts: map[string]string{"hello.lua": "Log('v1')\n"},
	}
	srv := startOps(t, cfg.write(t, dir))
	if err := os.WriteFile(filepath.Join(dir, "scripts", "hello.lua"), []byte("Log('second version of the script')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "a reload after the script changed", func() bool {
		return strings.Contains(srv.stderr.String(), `trigger="script change"`) &&
			sum(scrape(t, srv.metrics), "wharf_config_reloads_total", map[string]string{"result": "ok"}) == 1
	})
	c, err := dialSSH(t, srv.addrs["SFTP"], "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	coretest.Eventually(t, 10*time.Second, "the new script's log line", func() bool {
		return strings.Contains(srv.stderr.String(), "second version of the script")
	})
}

func TestAdminCLIErrors(t *testing.T) {
	p := writeConfig(t) // no metrics.address
	for _, args := range [][]string{{"sessions", "-c", p}, {"reload", "-c", p}, {"sessions", "kick", "-c", p, "X"}} {
		code, _, errOut := runCmd(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "metrics.address is not set") {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "", "sessions", "kick", "-c", p); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("kick without id: exit %d %s", code, errOut)
	}
}

// TestReloadKeepsRestartOnlySettings: what a reload cannot apply is logged and kept, what it
// can is applied.
func TestReloadKeepsRestartOnlySettings(t *testing.T) {
	dir := t.TempDir()
	cfgPath := opsConfig{}.write(t, dir)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, logs := startTestServer(t, cfg)

	next, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	next.Sites[0].Limits.MaxConnections = 7
	next.Sites[0].Listeners[0].Address = "127.0.0.1:1"
	next.Sites[0].FTP.Banner = "new banner"
	extra := next.Sites[0]
	extra.Name = "other"
	next.Sites = append(next.Sites, extra)
	next.Log.Level = "debug"
	srv.source = func() (*config.Config, error) { return next, nil }
	notApplied, err := srv.reload(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	site := srv.sites[0].Config()
	if site.Limits.MaxConnections != 7 {
		t.Errorf("limits not applied: %+v", site.Limits)
	}
	if site.Listeners[0].Address != "127.0.0.1:0" || site.FTP.Banner != "" {
		t.Errorf("restart-only settings applied: %+v %+v", site.Listeners, site.FTP)
	}
	if len(srv.sites) != 1 {
		t.Errorf("%d sites after reload", len(srv.sites))
	}
	for _, want := range []string{`adding site \"other\"`, `changing the listeners of site \"test\"`, `ftp settings`, `log takes effect only after a restart`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	// The caller learns the same list (issue #23 item 6).
	want := []string{"log", `changing the listeners of site "test"`, `the ftp settings of site "test"`, `adding site "other"`}
	if !slices.Equal(notApplied, want) {
		t.Errorf("not applied %q, want %q", notApplied, want)
	}
}
