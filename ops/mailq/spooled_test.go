package mailq

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core/config"
)

// A queue that is never started keeps what it is given: Spooled returns the messages,
// oldest first, rendered as they would be sent.
func TestSpooledWithoutDelivery(t *testing.T) {
	relay := &config.SMTP{Host: "192.0.2.1", Port: 25, From: "wharf@example.com"}
	q, err := Open(Options{Dir: t.TempDir(), Relay: func(string) *config.SMTP { return relay }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"first", "second", "third"} {
		m := &Message{To: []string{"ops@example.com", "Jane <jane@example.org>"}, Subject: s, Body: "body " + s}
		if i == 1 {
			m.Attachment, m.AttachmentName = bytes.NewReader([]byte("MZ")), "a.exe"
		}
		if _, err := q.Enqueue("main", m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := q.Spooled()
	if err != nil || len(got) != 3 {
		t.Fatalf("Spooled: %d, %v", len(got), err)
	}
	for i, s := range []string{"first", "second", "third"} {
		m := got[i]
		if m.Site != "main" || m.From != "wharf@example.com" || strings.Join(m.To, ",") != "ops@example.com,jane@example.org" ||
			!bytes.Contains(m.Message, []byte("Subject: "+s+"\r\n")) || !bytes.Contains(m.Message, []byte("body "+s)) {
			t.Errorf("message %d: %+v\n%s", i, m, m.Message)
		}
	}
	if !bytes.Contains(got[1].Message, []byte(`filename="a.exe"`)) {
		t.Errorf("no attachment:\n%s", got[1].Message)
	}
	if q.Len() != 3 {
		t.Errorf("Spooled changed the spool: %d left", q.Len())
	}
}
