package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
)

// hookSeen is a request the test's web service received.
type hookSeen struct {
	Method, Path, Query, Auth, APIKey, ContentType, Body string
}

// TestScriptRunSyncplifyExamples runs `wharf script run` on every script of
// testdata/scripts/syncplify with the recipe below (a script without a recipe fails the
// test) and checks that the report shows what the script did: its log lines, the operation's
// outcome, the mail it would send (--smtp-sink), the files it left and the HTTP requests its
// HttpCli made, here to a web service on loopback (whose URL and token are secrets).
func TestScriptRunSyncplifyExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "scripts", "syncplify")
	var mu sync.Mutex
	var seen []hookSeen
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, hookSeen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"),
			r.Header.Get("X-Api-Key"), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		if r.URL.Path != "/v1/documents" {
			fmt.Fprint(w, "ok")
			return
		}
		var doc struct{ Path string }
		_ = json.Unmarshal(b, &doc)
		w.WriteHeader(http.StatusCreated)
		if strings.Contains(doc.Path, "junk") {
			fmt.Fprint(w, `{"accept": false, "reason": "not a document"}`)
			return
		}
		fmt.Fprint(w, `{"accept": true, "id": "DOC-17", "folder": "/filed/acme"}`)
	}))
	defer hook.Close()

	tmp := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := make([]byte, 512)
	copy(exe, "MZ")
	exe[61] = 1 // e_lfanew = 256
	copy(exe[256:], "PE\x00\x00")
	exeFile := file("tool.bin", string(exe))
	secret := func(name, value string) []string {
		return []string{"--secret", name + "=file:" + file(name, value+"\n")}
	}
	hookSecrets := slices.Concat(secret("webhook_url", hook.URL+"/hook"), secret("webhook_token", "tok-5e6f7a8b"),
		secret("chat_webhook", hook.URL+"/chat/T0/B0/x9y8z7"), secret("dms_url", hook.URL), secret("dms_api_key", "key-1a2b3c4d"))

	type run struct {
		args []string
		want []string // regular expressions, each matching a line of the report
		http func(t *testing.T, reqs []hookSeen)
	}
	recipes := map[string][]run{
		"archive-by-date.js": {{args: []string{"--event", "AfterFileUpload", "--path", "/in/a.txt"},
			want: []string{`^operation: +upload /in/a.txt: ok$`, `^files: +/archive/\d{4}-\d\d-\d\d/a.txt \(17 bytes\)$`}}},
		"auth-fail-chat.js": {{args: append([]string{"--event", "OnAuthFail", "--async", "--user", "mallory"}, hookSecrets...),
			want: []string{`^operation: +password authentication as mallory: refused`, `^http\[0\]: +POST \[secret\]: 200 OK`},
			http: func(t *testing.T, reqs []hookSeen) {
				if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/chat/T0/B0/x9y8z7" || reqs[0].ContentType != "application/json" ||
					!strings.Contains(reqs[0].Body, `"text":"Failed login as mallory from 203.0.113.7 over SFTP on script-run at `) {
					t.Errorf("requests %+v", reqs)
				}
			}}},
		"ban-after-wrong-answers.js": {{args: []string{"--event", "OnAuthInteractive", "--answer", "wrong", "--tries", "3"},
			want: []string{`msg="Too many wrong answers from 203.0.113.7, banning"`, `\(try 3 of 3\): refused`,
				`^terminated: +yes \(addToBlockList=true\)$`, `^banned: +yes`}}},
		"ban-alert-mail.lua": {{args: []string{"--event", "OnBlocklistAdd", "--async", "--smtp-sink", "--smtp-from", "wharf@example.net"},
			want: []string{`^mail\[0\] \(not sent\): +from "<wharf@example.net>" to "<security@example.com>" subject "wharf banned 203.0.113.7"$`,
				`^    \| Protocol: SFTP$`, `^    \| Last command: AUTH alice$`}}},
		"copy-to-backup.js": {{args: []string{"--event", "AfterFileUpload", "--path", "/in/r.csv", "--vfs", "backup"},
			want: []string{`msg="backed up /in/r.csv \(17 bytes\)"`, `^files: +/in/r.csv \(17 bytes\)$`, `^files in vfs backup: +/in/r.csv \(17 bytes\)$`}}},
		"delete-exe-v6.js": {{args: []string{"--event", "AfterFileUpload", "--path", "/tool.bin", "--data", exeFile},
			want: []string{`msg="Deleted EXE file: /tool.bin"`, `^operation: +upload /tool.bin: ok$`, `^files: +\(none\)$`}}},
		"download-receipt.lua": {{args: []string{"--event", "AfterFileDownload", "--async", "--path", "/outbox/inv.pdf", "--smtp-sink"},
			want: []string{`^operation: +download /outbox/inv.pdf: ok$`, `^files: +/outbox/done/\d{8}T\d{6}Z-inv.pdf \(17 bytes\)$`,
				`^mail\[0\] \(not sent\): +from "<wharf@localhost>" to "<alice@example.com>, <ops@example.com>" subject "Delivered: inv.pdf"$`,
				`^    \| alice downloaded /outbox/inv.pdf \(17 bytes\) over SFTP from 203.0.113.7 at `}}},
		"exit-codes.js": {{args: []string{"--event", "OnAuthRequest", "--event", "OnAuthSuccess"},
			want: []string{`msg="event script exited with code 2".* exit_code=2$`, `msg="user alice"`}}},
		"list-root-by-time.js": {{args: []string{"--event", "OnDirList", "--upload", "/old.txt", "--upload", "/dir/new.txt"},
			want: []string{`msg="root of alice: (dir/ \d+, old.txt 17|old.txt 17, dir/ \d+)"`, `^listing: +dir, old.txt$`}}},
		"mail-upload-attached.js": {{args: []string{"--event", "AfterFileUpload", "--async", "--path", "/in/report.csv", "--smtp-sink"},
			want: []string{`^mail\[0\] \(not sent\): +from "<wharf@localhost>" to "<team@example.com>" subject "New file: report.csv"$`,
				`^    attachment "report.csv" \(text/csv, 17 bytes\)$`, `^    \| User alice uploaded /in/report.csv \(17 bytes\) over SFTP from 203.0.113.7.$`}}},
		"mail-uploads-on-close.js": {
			{args: []string{"--event", "AfterFileUpload", "--event", "OnConnectionClose", "--async", "--upload", "/a.txt", "--upload", "/in/b.txt", "--smtp-sink"},
				want: []string{`^operation: +upload /in/b.txt: ok$`, `^operation: +close the session: ok$`,
					`^mail\[0\] \(not sent\): +from "<wharf@example.com>" to "<ops@example.com>, \\"Audit Team\\" <audit@example.com>" subject "Files uploaded by alice"$`,
					`^    \| /.*/alice/a.txt,/.*/alice/in/b.txt$`}},
			// Without the sink a trial run sends nothing, and SendMail says so.
			{args: []string{"--event", "AfterFileUpload", "--event", "OnConnectionClose", "--upload", "/a.txt"},
				want: []string{`SendMail: message not queued: wharf script run sends no mail: pass --smtp-sink`}},
		},
		"normalize-names.js": {{args: []string{"--event", "AfterFileUpload", "--path", "/in/Größe Q3 (FINAL).PDF"},
			want: []string{`msg="renamed /in/Größe Q3 \(FINAL\).PDF to /in/groesse-q3-final.pdf"`, `^files: +/in/groesse-q3-final.pdf \(17 bytes\)$`}}},
		"refuse-by-regex.js": {
			{args: []string{"--event", "BeforeFileUpload", "--path", "/in/Setup.EXE"},
				want: []string{`msg="refused an executable: /in/Setup.EXE from 203.0.113.7"`, `^operation: +upload /in/Setup.EXE: refused`, `^blocked: +yes$`, `^files: +\(none\)$`}},
			{args: []string{"--event", "BeforeFileRename", "--path", "/in/setup.txt", "--target", "/in/setup.Exe. "},
				want: []string{`^operation: +rename /in/setup.txt to /in/setup.Exe. : refused`, `^files: +/in/setup.txt \(17 bytes\)$`}},
			{args: []string{"--event", "BeforeFileUpload", "--path", "/in/report.pdf"},
				want: []string{`^operation: +upload /in/report.pdf: ok$`, `^blocked: +no$`}},
		},
		"refuse-executable.js": {{args: []string{"--event", "AfterFileUpload", "--path", "/holiday.jpg", "--data", exeFile},
			want: []string{`msg="Windows executable refused: /holiday.jpg"`, `^operation: +upload /holiday.jpg: refused`, `^blocked: +yes$`, `^files: +\(none\)$`}}},
		"rest-register-upload.js": {
			{args: append([]string{"--event", "AfterFileUpload", "--path", "/in/contract.pdf"}, hookSecrets...),
				want: []string{`msg="registered /filed/acme/contract.pdf as DOC-17"`, `^files: +/filed/acme/contract.pdf \(17 bytes\)$`,
					`^http\[0\]: +POST \[secret\]/v1/documents: 201 Created`, `^custom data\[0\]: +"dms DOC-17 /in/contract.pdf"$`},
				http: func(t *testing.T, reqs []hookSeen) {
					if len(reqs) != 1 || reqs[0].APIKey != "key-1a2b3c4d" || reqs[0].ContentType != "application/json" ||
						!strings.Contains(reqs[0].Body, `"path":"/in/contract.pdf"`) || !strings.Contains(reqs[0].Body, `"size":17`) {
						t.Errorf("requests %+v", reqs)
					}
				}},
			{args: append([]string{"--event", "AfterFileUpload", "--path", "/in/junk.bin"}, hookSecrets...),
				want: []string{`msg="document API refused /in/junk.bin: not a document"`, `^operation: +upload /in/junk.bin: refused`, `^files: +\(none\)$`}},
		},
		"route-by-name.js": {{args: []string{"--event", "AfterFileUpload", "--path", "/in/INV_2024-05_ACME.pdf"},
			want: []string{`msg="routed /in/INV_2024-05_ACME.pdf to /invoices/acme/2024/05"`, `^files: +/invoices/acme/2024/05/INV_2024-05_ACME.pdf \(17 bytes\)$`}}},
		"upload-report.lua": {{args: []string{"--event", "AfterFileUpload", "--event", "OnConnectionClose", "--async", "--upload", "/a.csv", "--upload", "/b/c.csv", "--smtp-sink"},
			want: []string{`^mail\[0\] \(not sent\): +from "<wharf@localhost>" to "<alice@example.com>, <ops@example.com>" subject "2 file\(s\), 34 bytes uploaded by alice"$`,
				`^    \|     17 bytes  /b/c.csv$`, `^    \| Home folder: 34 bytes of 1.0 MiB \(0%\)$`}}},
		"webhook-bearer.js": {{args: append([]string{"--event", "AfterFileUpload", "--async", "--path", "/in/a b.txt"}, hookSecrets...),
			want: []string{`msg="web hook told of /in/a b.txt: 200"`, `^http\[0\]: +GET \[secret\]\?file=%2Fin%2Fa%20b.txt&user=alice: 200 OK`},
			http: func(t *testing.T, reqs []hookSeen) {
				if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/hook" || reqs[0].Query != "file=%2Fin%2Fa%20b.txt&user=alice" ||
					reqs[0].Auth != "Bearer tok-5e6f7a8b" {
					t.Errorf("requests %+v", reqs)
				}
			}}},
	}

	coretest.RunPerFile(t, dir, 15, recipes, func(t *testing.T, name string, runs []run) {
		for _, r := range runs {
			mu.Lock()
			seen = nil
			mu.Unlock()
			args := append([]string{"script", "run", filepath.Join(dir, name)}, r.args...)
			code, stdout, stderr := runCmd(t, "", args...)
			if code != 0 {
				t.Errorf("%v: exit %d\n%s%s", r.args, code, stdout, stderr)
				continue
			}
			lines := strings.Split(stdout, "\n")
			for _, w := range r.want {
				re := regexp.MustCompile(w)
				if !slices.ContainsFunc(lines, re.MatchString) {
					t.Errorf("%v: no line matches %s:\n%s", r.args, w, stdout)
				}
			}
			mu.Lock()
			reqs := slices.Clone(seen)
			mu.Unlock()
			if r.http != nil {
				r.http(t, reqs)
			} else if len(reqs) != 0 && !slices.Contains(r.args, "--secret") {
				t.Errorf("%v: unexpected requests %+v", r.args, reqs)
			}
			for _, s := range []string{"tok-5e6f7a8b", "key-1a2b3c4d", "x9y8z7"} {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("%v: the report shows the secret %s:\n%s", r.args, s, stdout)
				}
			}
		}
	})
}

// --smtp-sink queues through the server's mail code: what the relay would refuse (a bad
// sender, a bad recipient) is refused in a trial run too, and SendMail says why.
func TestScriptRunSMTPSinkChecksAddresses(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mail.lua")
	src := "for _, m in ipairs({{'', 'ops@example.com'}, {'', 'not an address'}, {'wharf at example', 'ops@example.com'}}) do\n" +
		"  local ok, err = SendMail(m[1], m[2], 'hello', 'body', '')\n" +
		"  Log(m[1] .. ' to ' .. m[2] .. ': ' .. tostring(ok) .. ' ' .. tostring(err))\n" +
		"end\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "", "script", "run", file, "--event", "OnAuthSuccess", "--smtp-sink")
	if code != 0 || !strings.Contains(stdout, `msg=" to ops@example.com: true nil"`) ||
		!strings.Contains(stdout, `msg=" to not an address: false invalid recipient list`) ||
		!strings.Contains(stdout, `msg="wharf at example to ops@example.com: false invalid sender`) ||
		!strings.Contains(stdout, `mail[0] (not sent):      from "<wharf@localhost>" to "<ops@example.com>" subject "hello"`) ||
		strings.Contains(stdout, "mail[1]") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestScriptRunFlagErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.lua")
	if err := os.WriteFile(file, []byte("Log('x')\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_TEST_SECRET", "s3cr3t-value")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--event", "OnAuthSuccess", "--upload", "/a.txt"}, "--upload needs an event of a logged-in session"},
		{[]string{"--event", "AfterFileUpload", "--upload", "a.txt"}, `--upload "a.txt": give a clean absolute file path`},
		{[]string{"--event", "OnAuthFail", "--tries", "0"}, "--tries 0: give 1 to 20"},
		{[]string{"--event", "OnAuthSuccess", "--secret", "k=s3cr3t-value"}, `--secret "k": give NAME=env:VARIABLE or NAME=file:PATH`},
		{[]string{"--event", "OnAuthSuccess", "--secret", "k=env:WHARF_NO_SUCH_VARIABLE"}, "environment variable WHARF_NO_SUCH_VARIABLE is not set"},
		{[]string{"--event", "OnAuthSuccess", "--secret", "k=env:WHARF_TEST_SECRET", "--secret", "k=env:WHARF_TEST_SECRET"}, "--secret k given twice"},
		{[]string{"--event", "OnAuthSuccess", "--vfs", "home"}, `--vfs "home": a vfs needs a new name`},
		{[]string{"--event", "BeforeFileUpload", "--async"}, "--async: BeforeFileUpload cannot be asynchronous"},
		{[]string{"--event", "OnAuthSuccess", "--data", "/no/such/file"}, "--data: open /no/such/file"},
		{[]string{"--event", "OnAuthSuccess", "--smtp-sink", "--smtp-from", "wharf at example"}, `--smtp-from "wharf at example":`},
	} {
		code, stdout, stderr := runCmd(t, "", append([]string{"script", "run", file}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stdout+stderr, "s3cr3t-value") {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", c.args, code, c.want, stdout, stderr)
		}
	}
}
