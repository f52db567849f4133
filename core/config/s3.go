package config

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// s3Keys are the keys of a vfs entry that only type s3 takes.
var s3Keys = []string{"bucket", "prefix", "endpoint", "region", "path_style", "access_key", "secret_key",
	"storage_class", "sse", "sse_kms_key_id", "part_size", "upload_concurrency", "max_dir_rename_objects",
	"cleanup_incomplete_uploads_after"}

// S3's limits on parts (docs/storage.md).
const (
	s3MinPart = 5 << 20
	s3MaxPart = 5 << 30
)

// bucketName is S3's rule for bucket names (virtual-host and path style alike).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// noS3Keys refuses the s3 keys on a vfs of another type: they would be ignored.
func (c *checker) noS3Keys(vk, typ string) {
	for _, k := range s3Keys {
		if c.has(vk + "." + k) {
			c.errorf(vk+"."+k, "only a vfs of type s3 takes %s; this one is %q", k, truncate(typ))
		}
	}
}

// checkS3 validates a vfs of type s3 and fills its defaults.
func (c *checker) checkS3(vk string, v *VFS) {
	if v.Root != "" {
		c.errorf(vk+".root", "an s3 vfs has no root; use bucket and prefix")
	}
	switch {
	case v.Bucket == "":
		c.errorf(vk+".bucket", "an s3 vfs needs a bucket")
	case !bucketName.MatchString(v.Bucket) || strings.Contains(v.Bucket, ".."):
		c.errorf(vk+".bucket", "invalid bucket name %q: 3 to 63 lower-case letters, digits, '.' and '-'", truncate(v.Bucket))
	}
	if rest := strings.ReplaceAll(v.Prefix, "{user}", "x"); strings.ContainsAny(rest, "{}") {
		c.errorf(vk+".prefix", "unknown placeholder in %q: only {user} is supported", truncate(v.Prefix))
	} else if p := strings.Trim(rest, "/"); p != "" {
		for _, e := range strings.Split(p, "/") {
			if e == "" || e == "." || e == ".." {
				c.errorf(vk+".prefix", "invalid prefix %q: no empty, \".\" or \"..\" element", truncate(v.Prefix))
				break
			}
		}
	}
	if v.Endpoint != "" {
		u, err := url.Parse(v.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			c.errorf(vk+".endpoint", "invalid endpoint %q: an http:// or https:// URL without credentials", truncate(v.Endpoint))
		}
	}
	switch {
	case v.AccessKey.IsSet() != v.SecretKey.IsSet():
		k := ".secret_key"
		if v.SecretKey.IsSet() {
			k = ".access_key"
		}
		c.errorf(vk+k, "access_key and secret_key go together; give both, or neither for the default AWS credential chain")
	case v.AccessKey.IsSet():
		if err := resolveSecret(&v.AccessKey, c.dir); err != nil {
			c.errorf(vk+".access_key", "%v", err)
		}
		if err := resolveSecret(&v.SecretKey, c.dir); err != nil {
			c.errorf(vk+".secret_key", "%v", err)
		} else if v.SecretKey.Inline() {
			c.warnf(vk+".secret_key", "secret key written in the config file; use {env: NAME} or {file: path}")
		}
	}
	if v.SSE != "" && v.SSE != "AES256" && v.SSE != "aws:kms" {
		c.errorf(vk+".sse", "invalid value %q (allowed: AES256, aws:kms; absent for the bucket's default)", truncate(v.SSE))
	}
	if v.SSEKMSKeyID != "" && v.SSE != "aws:kms" {
		c.errorf(vk+".sse_kms_key_id", "a KMS key id needs sse: aws:kms")
	}
	if !c.has(vk + ".part_size") {
		v.PartSize = 8 << 20
	}
	if v.PartSize < s3MinPart || v.PartSize > s3MaxPart {
		c.errorf(vk+".part_size", "must be from 5MiB to 5GiB (S3's part limits), got %s", v.PartSize)
	}
	c.defaultFromTo(vk+".upload_concurrency", &v.UploadConcurrency, 4, 1, 64)
	c.defaultAtLeast(vk+".max_dir_rename_objects", &v.MaxDirRenameObjects, 1000, 1)
	c.defaultDuration(vk+".cleanup_incomplete_uploads_after", &v.CleanupIncompleteUploadsAfter, 24*time.Hour)
	if v.CleanupIncompleteUploadsAfter.Duration < 0 {
		c.errorf(vk+".cleanup_incomplete_uploads_after", "must be 0 (never) or a positive duration, got %s", v.CleanupIncompleteUploadsAfter.Duration)
	}
}
