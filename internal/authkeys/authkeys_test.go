package authkeys

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	keyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEevx05m0aTof7Jz30/UoPDjKvLfQqdrcPFAa934r6eU a@x"
	keyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFukPeQ9jhX//KbEJH+2VJF2yI/45j9WoqWddeVBxiEp b@x"
	// A certificate made by ssh-keygen -s (principal alice).
	cert = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIKwRyvWdSl3UxOOjtwTckRVqjLl8r5yxrT4bih7NU9IkAAAAIKvbtWgLQBRhHOuWGFEtlcXQj7DxoYHTlWuDZt/z7qTAAAAAAAAAAAAAAAABAAAABXRlc3QxAAAACQAAAAVhbGljZQAAAAAAAAAA//////////8AAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACB6Ed0DWUg5r+ED+4XmHpyw6PssVL1XxSiuTpTvxjZiuwAAAFMAAAALc3NoLWVkMjU1MTkAAABAEKaBxNLA/5wYqbbfS1wEn2mhklBcHiDgUB0mTZI4OEnvGZNU3vWu23xcIQjaOpH9AG+XC5mYHb5sPCWWNroYBA== cert"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line, err string
		from      string
	}{
		{line: keyA},
		{line: `from="10.0.0.0/8" ` + keyA, from: "10.0.0.0/8"},
		{line: `FROM="192.168.1.*,!192.168.1.13" ` + keyA, from: "192.168.1.*,!192.168.1.13"},
		{line: `command="ls" ` + keyA, err: `option "command" is not supported (only from= is)`},
		{line: `restrict ` + keyA, err: `option "restrict" is not supported`},
		{line: `from="10.0.0.1",no-pty ` + keyA, err: `option "no-pty" is not supported`},
		{line: `cert-authority ` + keyA, err: `option "cert-authority" is not supported`},
		{line: `from=10.0.0.1 ` + keyA, err: "from= needs a quoted pattern list"},
		{line: `from="10.0.0.1",from="10.0.0.2" ` + keyA, err: "from= is given twice"},
		{line: `from="*.example.com" ` + keyA, err: "is a host name pattern"},
		{line: `from="gateway" ` + keyA, err: "is not an IP address"},
		{line: `from="10.0.0.0/40" ` + keyA, err: "invalid CIDR"},
		{line: `from="10.0.0.1,,10.0.0.2" ` + keyA, err: "empty pattern"},
		{line: "ssh-ed25519 AAAAnotbase64", err: "invalid public key"},
		{line: cert, err: "a certificate is not an authorized key"},
	} {
		k, err := ParseLine(tc.line)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%.40s: err = %v, want …%s…", tc.line, err, tc.err)
			}
		case err != nil:
			t.Errorf("%.40s: %v", tc.line, err)
		case tc.from == "" && k.From != nil, tc.from != "" && (k.From == nil || k.From.String() != tc.from):
			t.Errorf("%.40s: from = %v, want %q", tc.line, k.From, tc.from)
		}
	}
}

func TestFromMatch(t *testing.T) {
	for _, tc := range []struct {
		list string
		ip   string
		want bool
	}{
		{"10.0.0.0/8", "10.1.2.3", true},
		{"10.0.0.0/8", "11.1.2.3", false},
		{"10.0.0.0/8", "::ffff:10.1.2.3", true}, // an IPv4 client on a dual-stack socket
		{"10.0.0.0/8,!10.0.0.13", "10.0.0.13", false},
		{"!10.0.0.13,10.0.0.0/8", "10.0.0.13", false},
		{"!10.0.0.13", "10.0.0.14", false}, // a negation alone allows nothing
		{"192.168.1.*", "192.168.1.200", true},
		{"192.168.1.*", "192.168.10.2", false},
		{"192.168.*", "192.168.10.2", true}, // "*" spans dots, as in OpenSSH
		{"192.168.1.?", "192.168.1.20", false},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.70", false},
		{"2001:db8::/32", "2001:db8::1", true},
		{"2001:DB8::*", "2001:db8::1", true},
		{"*", "203.0.113.1", true},
	} {
		f, err := ParseFrom(tc.list)
		if err != nil {
			t.Fatalf("%s: %v", tc.list, err)
		}
		if got := f.Match(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("from=%q, %s: %v, want %v", tc.list, tc.ip, got, tc.want)
		}
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	data := "# comment\n\n" + keyA + "\r\ncommand=\"x\" " + keyB + "\n  \nnonsense\n" + `from="10.0.0.0/8" ` + keyB + "\n"
	keys, errs := Parse([]byte(data))
	if len(keys) != 2 || keys[0].Line != 3 || keys[1].Line != 7 || keys[1].From == nil {
		t.Errorf("keys = %+v", keys)
	}
	var lines []int
	for _, e := range errs {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("%T %v", e, e)
		}
		lines = append(lines, le.Line)
	}
	if len(lines) != 2 || lines[0] != 4 || lines[1] != 6 {
		t.Errorf("errors %v at lines %v, want 4 and 6", errs, lines)
	}
	if got := Join("/k", errs).Error(); !strings.HasPrefix(got, "/k: line 4: option \"command\"") || !strings.Contains(got, "; line 6: invalid public key") {
		t.Errorf("Join = %q", got)
	}
}

func TestParseCAKeys(t *testing.T) {
	keys, errs := ParseCAKeys([]byte("# CAs\n" + keyA + "\n" + `from="10.0.0.1" ` + keyB + "\n" + cert + "\n"))
	if len(keys) != 1 || len(errs) != 2 ||
		!strings.Contains(errs[0].Error(), "line 3: options are not allowed") || !strings.Contains(errs[1].Error(), "line 4: a certificate cannot be an authority") {
		t.Errorf("keys %d, errs %v", len(keys), errs)
	}
}

// TestFileRereadOnChange: a File picks up a changed file at the next call, holds no keys
// while the file is bad or missing, and reads the file only when it changed.
func TestFileRereadOnChange(t *testing.T) {
	name := filepath.Join(t.TempDir(), "authorized_keys")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(name+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".tmp", name); err != nil { // as editors and config tools do
			t.Fatal(err)
		}
	}
	write(keyA + "\n")
	f, err := NewFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if keys, fresh, err := f.Keys(); err != nil || fresh || len(keys) != 1 {
		t.Fatalf("unchanged: %d keys, fresh %v, %v", len(keys), fresh, err)
	}
	write(keyA + "\n" + keyB + "\n")
	if keys, fresh, err := f.Keys(); err != nil || !fresh || len(keys) != 2 {
		t.Fatalf("after adding a key: %d keys, fresh %v, %v", len(keys), fresh, err)
	}
	write(keyB + "\ncommand=\"x\" " + keyA + "\n")
	if keys, fresh, err := f.Keys(); err == nil || !fresh || len(keys) != 0 || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %d keys, fresh %v, %v", len(keys), fresh, err)
	}
	if _, fresh, err := f.Keys(); err == nil || fresh {
		t.Fatalf("bad line again: fresh %v, %v", fresh, err)
	}
	// The same size, a new modification time: an edit in place.
	if err := os.WriteFile(name, []byte(strings.Replace(keyB+"\ncommand=\"x\" "+keyA+"\n", "command=\"x\"", "# xxxxxxxx", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(name, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if keys, _, err := f.Keys(); err != nil || len(keys) != 1 {
		t.Fatalf("fixed in place: %d keys, %v", len(keys), err)
	}
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if keys, fresh, err := f.Keys(); err == nil || !fresh || len(keys) != 0 {
		t.Fatalf("removed: %d keys, fresh %v, %v", len(keys), fresh, err)
	}
	if _, err := NewFile(name); err == nil {
		t.Fatal("NewFile of a missing file succeeded")
	}
}
