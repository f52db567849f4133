package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/vfs/s3fs"
)

// s3CheckTimeout bounds the check of one s3 vfs.
const s3CheckTimeout = 30 * time.Second

// unreachableBuckets lists the s3 vfs whose bucket this host cannot reach with the
// configured endpoint and credentials: every login to them would fail. It sends one HEAD of
// each bucket and changes nothing.
func unreachableBuckets(cfg *config.Config) []string {
	var out []string
	for i, sc := range cfg.Sites {
		for j, v := range sc.VFS {
			if v.Type != "s3" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s3CheckTimeout)
			f, err := s3fs.New(ctx, s3fs.Options{Bucket: v.Bucket, Endpoint: v.Endpoint, Region: v.Region,
				PathStyle: v.PathStyle, AccessKey: v.AccessKey.Value(), SecretKey: v.SecretKey.Value(),
				PartSize: int64(v.PartSize)})
			cancel()
			if err != nil {
				key := "sites[" + strconv.Itoa(i) + "].vfs[" + strconv.Itoa(j) + "].bucket"
				out = append(out, fmt.Sprintf("%s: %s: bucket %s cannot be reached with this vfs's endpoint and credentials: %v", cfg.File, key, v.Bucket, err))
				continue
			}
			_ = f.Close()
		}
	}
	return out
}
