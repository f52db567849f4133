package core_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// TestAppendOutOfOrder is OpenSSH's reput: an append (SSH_FXF_APPEND) whose writes carry
// offsets from the file's size and arrive out of order, as the SFTP server's workers may
// handle them. The offsets put them back in order; a stream append (FTP APPE, Write) still
// goes to the end whatever its position.
func TestAppendOutOfOrder(t *testing.T) {
	for _, quota := range []bool{false, true} {
		site, root := diskSite(t, nil, user("u", onDisk, func(u *config.User) {
			if quota {
				u.Quota.Bytes = 1 << 20
			}
		}))
		s := login(t, site, "u")
		ctx := context.Background()
		if err := os.WriteFile(filepath.Join(root, "u", "f"), []byte("base"), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := s.OpenWrite(ctx, "/f", core.WriteMode{Append: true}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt([]byte("-second"), 4+6); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt([]byte("-first"), 4); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt([]byte("!"), 0); err != nil { // before the old end: at the end
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "u", "f")); string(got) != "base-first-second!" {
			t.Errorf("quota %v: appended out of order: %q", quota, got)
		}
		h, _ = s.OpenWrite(ctx, "/f", core.WriteMode{Append: true}, 0)
		for _, w := range []string{"A", "B"} {
			if _, err := h.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		_ = h.Close()
		if got, _ := os.ReadFile(filepath.Join(root, "u", "f")); string(got) != "base-first-second!AB" {
			t.Errorf("quota %v: stream append: %q", quota, got)
		}
	}
}
