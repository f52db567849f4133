package main

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestClusterComposeFile checks docker-compose.cluster.yml without Docker (CI has none):
// it parses, its three wharf nodes are built from the Dockerfile and run the one shared
// config, which loads and has a cluster: section and PROXY-protocol listeners; HAProxy's
// config sends PROXY v2 to exactly those nodes with source affinity, and HAProxy itself
// accepts it when the binary is installed.
func TestClusterComposeFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.cluster.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Hostname    string            `yaml:"hostname"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
			Networks    map[string]struct {
				IPv4 string `yaml:"ipv4_address"`
			} `yaml:"networks"`
		} `yaml:"services"`
		Volumes  map[string]any `yaml:"volumes"`
		Networks map[string]struct {
			IPAM struct {
				Config []struct {
					Subnet string `yaml:"subnet"`
				} `yaml:"config"`
			} `yaml:"ipam"`
		} `yaml:"networks"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.cluster.yml does not parse: %v", err)
	}
	for _, name := range []string{"haproxy", "postgres", "s3", "wharf1", "wharf2", "wharf3"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("no %s service: %v", name, c.Services)
		}
	}
	mountOf := func(svc, dst string) string {
		for _, v := range c.Services[svc].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == dst {
				return parts[0]
			}
		}
		return ""
	}
	var cfgFile string
	for _, name := range []string{"wharf1", "wharf2", "wharf3"} {
		svc := c.Services[name]
		if _, err := os.Stat(filepath.Join(repoRoot, svc.Build.Context, svc.Build.Dockerfile)); err != nil {
			t.Errorf("%s build: %v", name, err)
		}
		i := slices.Index(svc.Command, "-c")
		if i < 0 || svc.Command[0] != "serve" {
			t.Fatalf("%s command %v", name, svc.Command)
		}
		src := mountOf(name, svc.Command[i+1])
		if src == "" || (cfgFile != "" && src != cfgFile) {
			t.Fatalf("%s: config %s mounted from %q, want the one shared file", name, svc.Command[i+1], src)
		}
		cfgFile = src
		if svc.Hostname != name {
			t.Errorf("%s: hostname %q (the default node_id is made of it)", name, svc.Hostname)
		}
		for _, v := range svc.Volumes {
			src := strings.Split(v, ":")[0]
			if !strings.HasPrefix(src, ".") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s: named volume %s is not declared", name, src)
				}
			}
		}
	}
	for k, v := range c.Services["wharf1"].Environment {
		t.Setenv(k, v)
	}
	// The shared host key is made by the keys service when the cluster first starts: the
	// loader's "file not found" for it is the only problem allowed, and then the file is
	// checked with a stand-in key.
	p := filepath.Join(repoRoot, cfgFile)
	if _, err := config.Load(p); err != nil {
		ce, ok := err.(*config.Error)
		if !ok {
			t.Fatal(err)
		}
		for _, pr := range ce.Problems {
			if !strings.Contains(pr.Msg, "file not found: /var/lib/wharf/keys/") {
				t.Errorf("the nodes' config: %s", pr)
			}
		}
	}
	keyDir := t.TempDir()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	keygen := coretest.NeedBinary(t, "ssh-keygen")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(keyDir, "ssh_host_ed25519_key")).CombinedOutput(); err != nil {
		t.Fatalf("stand-in host key: %v %s", err, out)
	}
	p = filepath.Join(t.TempDir(), "wharf.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(raw), "/var/lib/wharf/keys/", keyDir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("the nodes' config: %v", err)
	}
	if cfg.Cluster == nil || cfg.Cluster.NodeID != "" || !strings.Contains(cfg.Cluster.DSN.Value(), "@postgres:5432/") {
		t.Fatalf("cluster section: %+v", cfg.Cluster)
	}
	port := ""
	for _, sc := range cfg.Sites {
		for _, l := range sc.Listeners {
			if !l.ProxyProtocol {
				t.Errorf("listener %s without proxy_protocol: HAProxy sends the header", l.Address)
			}
			// Only HAProxy may send the header: its fixed address, in the declared subnet.
			haIP := c.Services["haproxy"].Networks["default"].IPv4
			subnet := c.Networks["default"].IPAM.Config
			if len(l.ProxyProtocolFrom) != 1 || haIP == "" || l.ProxyProtocolFrom[0].String() != haIP+"/32" ||
				len(subnet) != 1 || !netip.MustParsePrefix(subnet[0].Subnet).Contains(netip.MustParseAddr(haIP)) {
				t.Errorf("listener %s: proxy_protocol_from %v, want exactly HAProxy's fixed address %q in the network's subnet %v",
					l.Address, l.ProxyProtocolFrom, haIP, subnet)
			}
			port = strings.TrimPrefix(l.Address, "0.0.0.0:")
		}
		for _, v := range sc.VFS {
			if v.Type != "s3" || !strings.Contains(v.Endpoint, "//s3:") {
				t.Errorf("vfs %s is not the shared bucket: %+v", v.Name, v)
			}
		}
	}

	// HAProxy: TCP, source affinity, PROXY v2 to every node and only to them.
	hcfgPath := filepath.Join(repoRoot, mountOf("haproxy", "/usr/local/etc/haproxy/haproxy.cfg"))
	hcfg, err := os.ReadFile(hcfgPath)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hcfg)
	for _, want := range []string{"mode tcp", "balance source", "option httpchk GET /healthz"} {
		if !strings.Contains(h, want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	servers := regexp.MustCompile(`(?m)^\s*server\s+(\S+)\s+(\S+)\s+(.*)$`).FindAllStringSubmatch(h, -1)
	var names []string
	for _, s := range servers {
		names = append(names, s[1])
		if s[2] != s[1]+":"+port || !strings.Contains(s[3], "send-proxy-v2") || !strings.Contains(s[3], "check port 9090") {
			t.Errorf("haproxy server line %q: want %s:%s send-proxy-v2, checked on the metrics port", s[0], s[1], port)
		}
	}
	if !slices.Equal(names, []string{"wharf1", "wharf2", "wharf3"}) {
		t.Errorf("haproxy servers %v", names)
	}
	if _, err := exec.LookPath("haproxy"); err == nil {
		if out, err := exec.Command("haproxy", "-c", "-f", hcfgPath).CombinedOutput(); err != nil {
			t.Errorf("haproxy -c: %v\n%s", err, out)
		}
	}
}
