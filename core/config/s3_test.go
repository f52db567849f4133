package config

import (
	"strings"
	"testing"
	"time"
)

// s3head is a valid site whose vfs entry (line 6) takes the keys a case appends at line 7.
const s3head = `sites:
  - name: main
    listeners:
      - {protocol: sftp, address: "127.0.0.1:0"}
    vfs:
      - name: home
        type: s3
`

func TestS3Problems(t *testing.T) {
	t.Setenv("WHARF_TEST_S3_SECRET", "hunter2-very-secret")
	tests := []struct {
		name, yaml, key string
		line            int
		msg             string
	}{
		{"no bucket", s3head, "sites[0].vfs[0].bucket", 0, "an s3 vfs needs a bucket"},
		{"bad bucket", s3head + "        bucket: My_Bucket\n", "sites[0].vfs[0].bucket", 8, `invalid bucket name "My_Bucket"`},
		{"root on s3", s3head + "        bucket: b-1\n        root: ./data\n", "sites[0].vfs[0].root", 9, "an s3 vfs has no root"},
		{"bad placeholder", s3head + "        bucket: b-1\n        prefix: \"{site}/x\"\n", "sites[0].vfs[0].prefix", 9, "only {user} is supported"},
		{"dot-dot prefix", s3head + "        bucket: b-1\n        prefix: \"a/../{user}\"\n", "sites[0].vfs[0].prefix", 9, `no empty, "." or ".." element`},
		{"bad endpoint", s3head + "        bucket: b-1\n        endpoint: minio:9000\n", "sites[0].vfs[0].endpoint", 9, "an http:// or https:// URL"},
		{"endpoint with credentials", s3head + "        bucket: b-1\n        endpoint: http://k:s@minio:9000\n", "sites[0].vfs[0].endpoint", 9, "without credentials"},
		{"access key alone", s3head + "        bucket: b-1\n        access_key: AKIA\n", "sites[0].vfs[0].secret_key", 0, "give both, or neither"},
		{"secret key env missing", s3head + "        bucket: b-1\n        access_key: AKIA\n        secret_key: {env: WHARF_TEST_S3_MISSING}\n", "sites[0].vfs[0].secret_key", 10, "WHARF_TEST_S3_MISSING is not set"},
		{"bad sse", s3head + "        bucket: b-1\n        sse: aes\n", "sites[0].vfs[0].sse", 9, `invalid value "aes" (allowed: AES256, aws:kms;`},
		{"kms key without kms", s3head + "        bucket: b-1\n        sse: AES256\n        sse_kms_key_id: k\n", "sites[0].vfs[0].sse_kms_key_id", 10, "needs sse: aws:kms"},
		{"small part", s3head + "        bucket: b-1\n        part_size: 1MiB\n", "sites[0].vfs[0].part_size", 9, "must be from 5MiB to 5GiB"},
		{"zero concurrency", s3head + "        bucket: b-1\n        upload_concurrency: 0\n", "sites[0].vfs[0].upload_concurrency", 9, "must be from 1 to 64, got 0"},
		{"zero rename limit", s3head + "        bucket: b-1\n        max_dir_rename_objects: 0\n", "sites[0].vfs[0].max_dir_rename_objects", 9, "must be at least 1"},
		{"negative cleanup", s3head + "        bucket: b-1\n        cleanup_incomplete_uploads_after: -1h\n", "sites[0].vfs[0].cleanup_incomplete_uploads_after", 9, "must be 0 (never) or a positive duration"},
		{"symlinks on s3", s3head + "        bucket: b-1\n        allow_symlinks: true\n", "sites[0].vfs[0].allow_symlinks", 9, "an s3 vfs has no symbolic links"},
		{"s3 key on disk", "sites:\n  - name: main\n    listeners:\n      - {protocol: sftp, address: \"127.0.0.1:0\"}\n    vfs:\n      - {name: home, type: disk, root: ./data, bucket: b-1}\n",
			"sites[0].vfs[0].bucket", 6, `only a vfs of type s3 takes bucket; this one is "disk"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "wharf.yaml", testDir)
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, p := range problemsOf(t, err) {
				if p.Key == tt.key && strings.Contains(p.Msg, tt.msg) && (tt.line == 0 || p.Line == tt.line) {
					if p.File != "wharf.yaml" {
						t.Errorf("problem names file %q", p.File)
					}
					return
				}
			}
			t.Fatalf("no problem %s (line %d) %q in: %v", tt.key, tt.line, tt.msg, err)
		})
	}
}

func TestS3Defaults(t *testing.T) {
	t.Setenv("WHARF_TEST_S3_SECRET", "hunter2-very-secret")
	cfg := mustParse(t, s3head+"        bucket: wharf-data\n        prefix: users/{user}\n        endpoint: http://127.0.0.1:7070\n"+
		"        access_key: wharf\n        secret_key: {env: WHARF_TEST_S3_SECRET}\n", testDir)
	v := cfg.Sites[0].VFS[0]
	if v.PartSize != 8<<20 || v.UploadConcurrency != 4 || v.MaxDirRenameObjects != 1000 ||
		v.CleanupIncompleteUploadsAfter.Duration != 24*time.Hour || !v.Atomic() {
		t.Errorf("defaults: %+v", v)
	}
	if v.AccessKey.Value() != "wharf" || v.SecretKey.Value() != "hunter2-very-secret" {
		t.Errorf("keys not read: %q", v.AccessKey.Value())
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	// A secret key written in the file works, with a warning that does not repeat it.
	cfg = mustParse(t, s3head+"        bucket: wharf-data\n        access_key: wharf\n        secret_key: hunter2-inline\n"+
		"        part_size: 16MiB\n        cleanup_incomplete_uploads_after: 0s\n", testDir)
	v = cfg.Sites[0].VFS[0]
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Key != "sites[0].vfs[0].secret_key" || strings.Contains(cfg.Warnings[0].String(), "hunter2") {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if v.PartSize != 16<<20 || v.CleanupIncompleteUploadsAfter.Duration != 0 || v.SecretKey.Value() != "hunter2-inline" {
		t.Errorf("explicit values: %+v", v)
	}
}
