package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// repoRoot is where the Dockerfile, docker-compose.yml and packaging/ live.
const repoRoot = "../.."

// dockerfileLines returns the Dockerfile's instructions with continuation lines joined.
func dockerfileLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur += more + " "
			continue
		}
		out = append(out, cur+line)
		cur = ""
	}
	return out
}

// TestDockerfileBuildCommand builds the binary with the exact `go build` command of the
// Dockerfile (no Docker engine here) and checks the result is static and runs.
func TestDockerfileBuildCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	lines := dockerfileLines(t)
	var build string
	for _, l := range lines {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			build = strings.TrimPrefix(l, "RUN ")
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags", "-X main.version=${VERSION}", "./cmd/wharf"} {
		if !strings.Contains(build, want) {
			t.Fatalf("Dockerfile build command lacks %q: %s", want, build)
		}
	}
	out := filepath.Join(t.TempDir(), "wharf")
	cmdline := strings.ReplaceAll(build, "${VERSION}", "docker-test")
	cmdline = strings.ReplaceAll(cmdline, "/out/wharf", out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	v, err := exec.CommandContext(ctx, out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "wharf docker-test") {
		t.Fatalf("built binary: %q %v", v, err)
	}
	if runtime.GOOS == "linux" {
		// A static binary has no program interpreter (PT_INTERP): it runs on an empty image.
		if b, err := exec.CommandContext(ctx, "file", out).CombinedOutput(); err == nil && strings.Contains(string(b), "dynamically linked") {
			t.Errorf("binary is dynamically linked: %s", b)
		}
	}
}

func TestDockerfileShape(t *testing.T) {
	lines := dockerfileLines(t)
	var froms, volumes, copies []string
	user := ""
	for _, l := range lines {
		switch f := strings.Fields(l); f[0] {
		case "FROM":
			froms = append(froms, l)
		case "USER":
			user = f[1]
		case "VOLUME":
			volumes = append(volumes, l)
		case "COPY":
			copies = append(copies, l)
		}
	}
	if len(froms) < 2 || !strings.Contains(froms[len(froms)-1], "scratch") {
		t.Errorf("want a multi-stage build ending on scratch: %v", froms)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("final user %q is not an unprivileged one", user)
	}
	for _, v := range []string{"/etc/wharf", "/var/lib/wharf/data", "/var/lib/wharf/state"} {
		if len(volumes) == 0 || !strings.Contains(volumes[0], `"`+v+`"`) {
			t.Errorf("no volume %s: %v", v, volumes)
		}
	}
	// Files the build stage copies from the context must exist.
	for _, p := range []string{"go.mod", "go.sum", "packaging/docker/wharf.yaml", "packaging/docker/scripts"} {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("Dockerfile needs %s: %v", p, err)
		}
	}
	if len(copies) == 0 {
		t.Error("no COPY")
	}
}

type compose struct {
	Services map[string]struct {
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string `yaml:"command"`
		Ports       []string `yaml:"ports"`
		Volumes     []string `yaml:"volumes"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	svc, ok := c.Services["wharf"]
	if !ok {
		t.Fatalf("no wharf service: %v", c.Services)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, svc.Build.Context, svc.Build.Dockerfile)); err != nil {
		t.Errorf("build: %v", err)
	}
	// Bind mounts must exist; named volumes must be declared.
	mounts := map[string]string{} // container path -> host path
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("volume %q", v)
			continue
		}
		src, dst := parts[0], parts[1]
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("bind mount %s: %v", src, err)
			}
			mounts[dst] = filepath.Join(repoRoot, src)
		} else if _, ok := c.Volumes[src]; !ok {
			t.Errorf("named volume %s is not declared", src)
		}
	}
	// The command's config is the mounted file, and it loads as the server would load it.
	i := slices.Index(svc.Command, "-c")
	if i < 0 || i+1 >= len(svc.Command) || svc.Command[0] != "serve" {
		t.Fatalf("command %v", svc.Command)
	}
	hostCfg, ok := mounts[svc.Command[i+1]]
	if !ok {
		t.Fatalf("config %s is not mounted", svc.Command[i+1])
	}
	cfg, err := config.Load(hostCfg)
	if err != nil {
		t.Fatalf("mounted config: %v", err)
	}
	if _, ok := mounts[filepath.Join(filepath.Dir(svc.Command[i+1]), "scripts")]; !ok {
		t.Error("scripts folder not mounted next to the config")
	}
	// Published ports: every listener, the passive range and the metrics port.
	published := map[int]bool{}
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		lo, hi, _ := strings.Cut(parts[len(parts)-1], "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if hi != "" {
			b, _ = strconv.Atoi(hi)
		}
		for n := a; n <= b && n > 0; n++ {
			published[n] = true
		}
	}
	want := []int{}
	for _, sc := range cfg.Sites {
		for _, l := range sc.Listeners {
			_, port, _ := strings.Cut(l.Address, ":")
			n, _ := strconv.Atoi(port)
			want = append(want, n)
		}
		for n := sc.FTP.PassivePorts.Start; n <= sc.FTP.PassivePorts.End; n++ {
			want = append(want, n)
		}
	}
	_, mport, _ := strings.Cut(cfg.Metrics.Address, ":")
	n, _ := strconv.Atoi(mport)
	want = append(want, n)
	for _, n := range want {
		if !published[n] {
			t.Errorf("port %d is not published", n)
		}
	}
	if len(svc.Healthcheck.Test) < 3 || !slices.Contains(svc.Healthcheck.Test, "health") {
		t.Errorf("healthcheck %v", svc.Healthcheck.Test)
	}
	// The data and state volumes are where the config keeps data and state.
	if !strings.HasPrefix(cfg.StateDir, "/var/lib/wharf/state") || !strings.HasPrefix(cfg.Sites[0].VFS[0].Root, "/var/lib/wharf/data/") {
		t.Errorf("state %s, data %s outside the volumes", cfg.StateDir, cfg.Sites[0].VFS[0].Root)
	}
}

func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "wharf.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	re := regexp.MustCompile(`(?m)^([A-Za-z]+)=(.*)$`)
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		keys[m[1]] = m[2]
	}
	for k, v := range map[string]string{
		"ExecReload": "/bin/kill -HUP $MAINPID", "User": "wharf", "Group": "wharf", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "StateDirectory": "wharf",
		"LogsDirectory": "wharf", "WorkingDirectory": "/var/lib/wharf",
	} {
		if keys[k] != v {
			t.Errorf("%s=%q, want %q", k, keys[k], v)
		}
	}
	if !strings.Contains(keys["ExecStart"], "serve -c /etc/wharf/wharf.yaml") {
		t.Errorf("ExecStart=%s", keys["ExecStart"])
	}
	// systemd's own checker (the binary path is replaced: it is not installed on a test
	// machine). CI installs it; elsewhere the check is skipped when it is missing.
	sa := coretest.NeedBinary(t, "systemd-analyze")
	unit := filepath.Join(t.TempDir(), "wharf.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/wharf", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(sa, "verify", unit).CombinedOutput(); err != nil || len(strings.TrimSpace(string(b))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	}
}
