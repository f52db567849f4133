package s3fs

import (
	"context"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Held returns the bytes of part buffers the backend's uploads hold now, and the peak.
func (f *FS) Held() (now, peak int64) { return f.held.Load(), f.peak.Load() }

// Buffers returns the number of part buffers the backend's pool mapped and of those in use.
func (f *FS) Buffers() (mapped, inUse int) { return f.bufs.counts() }

// SetCopyLimits lowers the size above which objects are copied in parts, and the parts'
// size, so that tests reach the multipart copy with small objects.
func (f *FS) SetCopyLimits(maxCopy, part int64) { f.maxCopy, f.copyPart = maxCopy, part }

// NewWithHTTPClient is New with the S3 client's HTTP client (tests count requests).
func NewWithHTTPClient(ctx context.Context, opt Options, hc s3.HTTPClient) (*FS, error) {
	return newFS(ctx, opt, hc)
}

// MaxAhead is how many separate pieces written ahead an upload holds.
const MaxAhead = maxAhead

// ListHeads is how many HEADs a listing sends at once.
const ListHeads = listHeads

// IdleConnsPerHost is how many idle connections to the store the backend's HTTP client keeps.
func (f *FS) IdleConnsPerHost() int {
	return f.c.Options().HTTPClient.(*awshttp.BuildableClient).GetTransport().MaxIdleConnsPerHost
}

// ExpireCache ages the metadata cache's entries and listings by metaTTL, as waiting metaTTL
// would: they no longer answer lookups, while what is kept longer (the times listings
// remember for mtimeTTL, the objects written for writtenTTL) still does.
func (f *FS) ExpireCache() {
	f.meta.mu.Lock()
	defer f.meta.mu.Unlock()
	for k, e := range f.meta.entries {
		e.at = e.at.Add(-metaTTL)
		f.meta.entries[k] = e
	}
	for k, l := range f.meta.listed {
		l.at = l.at.Add(-metaTTL)
		f.meta.listed[k] = l
	}
}
