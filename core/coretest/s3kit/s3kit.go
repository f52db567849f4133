// Package s3kit runs the cross-protocol scenario table (core/coretest) with the site's files
// in object storage: a real S3 server (internal/s3test) whose posix backend keeps every object
// as a host file, so the scenarios' checks of the host folder hold as they do on disk.
package s3kit

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/s3test"
)

// Bucket is the scenario site's bucket.
const Bucket = "wharf-scenarios"

// Storage keeps the scenario site's "home" and "shared" vfs in one bucket of a fresh S3
// server, under the prefixes home/{user} and shared.
func Storage() coretest.Storage {
	var srv *s3test.Server
	return coretest.Storage{Name: "s3", NoHostLinks: true,
		VFS: func(t *testing.T) ([]config.VFS, string) {
			srv = s3test.Start(t)
			root := srv.Bucket(t, Bucket)
			return []config.VFS{VFS(srv, "home", "home/{user}"), VFS(srv, "shared", "shared")}, root
		},
		// A folder is a marker object: an empty folder made on the host is no object.
		Mkdir: func(t *testing.T, rel string) {
			_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(Bucket),
				Key: aws.String(strings.Trim(rel, "/") + "/"), Body: strings.NewReader("")})
			if err != nil {
				t.Fatalf("mkdir %s in the bucket: %v", rel, err)
			}
		},
	}
}

// VFS is an s3 vfs definition on srv's bucket Bucket, with the smallest part size S3 allows
// so that a few MiB already make a multipart upload.
func VFS(srv *s3test.Server, name, prefix string) config.VFS {
	yes := true
	return config.VFS{Name: name, Type: "s3", Bucket: Bucket, Prefix: prefix, Endpoint: srv.Endpoint,
		Region: s3test.Region, PathStyle: true, AccessKey: config.InlineSecret(srv.AccessKey),
		SecretKey: config.InlineSecret(srv.SecretKey), PartSize: 5 << 20, UploadConcurrency: 2,
		MaxDirRenameObjects: 1000, AtomicUploads: &yes}
}

// Run runs the whole scenario table against p with the files in object storage.
func Run(t *testing.T, p coretest.Protocol) { coretest.RunOn(t, p, Storage()) }
