package s3fs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/wharf-project/wharf/vfs"
)

// errTooManyToRename refuses a directory rename above max_dir_rename_objects.
type tooManyError struct{ max int }

func (e tooManyError) Error() string {
	return fmt.Sprintf("directory holds more than %d objects: object storage renames each object, refused (max_dir_rename_objects)", e.max)
}
func (tooManyError) Is(target error) bool { return target == errors.ErrUnsupported }

// Rename implements afero.Fs. A file is copied on the server, then the old key deleted; a
// directory is renamed object by object, up to MaxDirRenameObjects of them. An existing
// file at the new name is replaced, a directory is not.
func (f *FS) Rename(oldname, newname string) error {
	o, err := f.clean("rename", oldname)
	if err != nil {
		return err
	}
	n, err := f.clean("rename", newname)
	if err != nil {
		return err
	}
	if o == "/" || n == "/" {
		return pathErr("rename", o, fs.ErrPermission)
	}
	src, err := f.stat(o)
	if err != nil {
		return pathErr("rename", o, errors.Unwrap(err))
	}
	if o == n {
		return nil
	}
	defer f.meta.invalidate(n)
	defer f.meta.invalidate(o)
	dst, err := f.stat(n)
	switch {
	case err == nil && dst.IsDir():
		return pathErr("rename", o, fs.ErrExist)
	case err == nil && src.IsDir():
		return pathErr("rename", o, syscall.ENOTDIR)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := f.needParent("rename", n); err != nil {
		return err
	}
	if !src.IsDir() {
		if err := f.copyObject(f.key(o), f.key(n), src.size, nil); err != nil {
			return f.err("rename", o, err)
		}
		ctx, cancel := f.opCtx()
		defer cancel()
		_, err := f.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(f.key(o))})
		return f.err("rename", o, err)
	}
	if strings.HasPrefix(n, o+"/") {
		return pathErr("rename", o, fs.ErrInvalid)
	}
	f.forgetDirs(o)
	return f.err("rename", o, f.renameDir(o, n))
}

// renameDir copies every object below o to n, then deletes the old ones.
func (f *FS) renameDir(o, n string) error {
	from, to := f.dirKey(o), f.dirKey(n)
	var objs []types.Object
	errStop := errors.New("stop")
	err := f.walkKeys(from, func(obj types.Object) error {
		if len(objs) == f.opt.MaxDirRenameObjects {
			return errStop
		}
		objs = append(objs, obj)
		return nil
	})
	if errors.Is(err, errStop) {
		return tooManyError{f.opt.MaxDirRenameObjects}
	}
	if err != nil {
		return err
	}
	sem := make(chan struct{}, f.opt.UploadConcurrency)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, obj := range objs {
		k := aws.ToString(obj.Key)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			if nk := to + strings.TrimPrefix(k, from); strings.HasSuffix(k, "/") {
				err = f.putKeyMarker(nk) // a directory marker: nothing to copy
			} else {
				err = f.copyObject(k, nk, aws.ToInt64(obj.Size), nil)
			}
			if err != nil {
				mu.Lock()
				first = cmpOr(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first // the old names are all still there
	}
	keys := make([]string, 0, maxDelete)
	for _, obj := range objs {
		keys = append(keys, aws.ToString(obj.Key))
		if len(keys) == maxDelete {
			if err := f.deleteKeys(keys); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	return f.deleteKeys(keys)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// copySource is the x-amz-copy-source of a key of the bucket. Servers URL-decode it, some
// (versitygw among them) as a form, where '+' is a space: every byte but the unreserved ones
// and '/' is escaped, as the AWS SDKs that build it themselves do (boto3's quote(key,
// safe='/~')). url.PathEscape leaves '+', '$', '&', ',', ':', '=' and '@' as they are.
func (f *FS) copySource(key string) *string {
	return aws.String(f.opt.Bucket + "/" + escapeKey(key))
}

// escapeKey percent-encodes every byte of key except A–Z, a–z, 0–9, '-', '.', '_', '~' and '/'.
func escapeKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// copyObject copies src to dst on the server; meta, when not nil, replaces the metadata.
// Objects above 5 GiB are copied as a multipart upload of server-side part copies.
func (f *FS) copyObject(src, dst string, size int64, meta map[string]string) error {
	return f.copyObjectIf(src, dst, size, meta, "")
}

// copyObjectIf is copyObject that fails unless src's ETag is etag (when not empty).
func (f *FS) copyObjectIf(src, dst string, size int64, meta map[string]string, etag string) error {
	var ifMatch *string
	if etag != "" {
		ifMatch = aws.String(`"` + etag + `"`)
	}
	if size <= f.maxCopy {
		ctx, cancel := context.WithTimeout(f.ctx, dataTimeout)
		defer cancel()
		in := &s3.CopyObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(dst), CopySource: f.copySource(src),
			CopySourceIfMatch: ifMatch}
		if meta != nil {
			in.Metadata, in.MetadataDirective = meta, types.MetadataDirectiveReplace
		}
		f.storage(&in.StorageClass, &in.ServerSideEncryption, &in.SSEKMSKeyId)
		_, err := f.c.CopyObject(ctx, in)
		return err
	}
	if meta == nil {
		ctx, cancel := f.opCtx()
		h, err := f.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(src)})
		cancel()
		if err != nil {
			return err
		}
		meta = h.Metadata
	}
	mp, err := f.startMultipart(dst, meta)
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for off, num := int64(0), int32(1); off < size; off, num = off+f.copyPart, num+1 {
		end := min(off+f.copyPart, size) - 1
		ctx, cancel := context.WithTimeout(f.ctx, dataTimeout)
		out, err := f.c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &f.opt.Bucket, Key: aws.String(dst),
			UploadId: mp, PartNumber: aws.Int32(num), CopySource: f.copySource(src), CopySourceIfMatch: ifMatch,
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end))})
		cancel()
		if err != nil {
			f.abortMultipart(dst, mp)
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(num)})
	}
	if _, err := f.completeMultipart(dst, mp, parts); err != nil {
		f.abortMultipart(dst, mp)
		return err
	}
	return nil
}

func (f *FS) startMultipart(key string, meta map[string]string) (*string, error) {
	ctx, cancel := f.opCtx()
	defer cancel()
	in := &s3.CreateMultipartUploadInput{Bucket: &f.opt.Bucket, Key: aws.String(key), Metadata: meta}
	f.storage(&in.StorageClass, &in.ServerSideEncryption, &in.SSEKMSKeyId)
	out, err := f.c.CreateMultipartUpload(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.UploadId, nil
}

// completeMultipart assembles an upload and returns its object's ETag.
func (f *FS) completeMultipart(key string, id *string, parts []types.CompletedPart) (string, error) {
	ctx, cancel := context.WithTimeout(f.ctx, dataTimeout) // the store assembles the parts
	defer cancel()
	out, err := f.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &f.opt.Bucket,
		Key: aws.String(key), UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return "", err
	}
	return strings.Trim(aws.ToString(out.ETag), `"`), nil
}

// abortMultipart drops an upload; it runs even after the backend was closed, so that nothing
// is left behind by a shutdown.
func (f *FS) abortMultipart(key string, id *string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := f.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &f.opt.Bucket,
		Key: aws.String(key), UploadId: id}); err != nil && !isNotFound(err) {
		f.log.Warn("s3: could not abort an incomplete upload; a lifecycle rule or the next start will",
			"bucket", f.opt.Bucket, "key", key, "err", err)
	}
}

// CleanupUploads aborts the incomplete multipart uploads under the prefix started more than
// age ago (left by a crash) and returns how many.
func (f *FS) CleanupUploads(ctx context.Context, age time.Duration) (int, error) {
	var keyMarker, idMarker *string
	n := 0
	before := time.Now().Add(-age)
	for {
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		out, err := f.c.ListMultipartUploads(lctx, &s3.ListMultipartUploadsInput{Bucket: &f.opt.Bucket,
			Prefix: aws.String(f.prefix), KeyMarker: keyMarker, UploadIdMarker: idMarker})
		cancel()
		if err != nil {
			return n, err
		}
		for _, u := range out.Uploads {
			if u.Initiated != nil && u.Initiated.Before(before) {
				f.abortMultipart(aws.ToString(u.Key), u.UploadId)
				n++
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		keyMarker, idMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Usage implements vfs.UsageCounter: one flat listing of the prefix.
func (f *FS) Usage(ctx context.Context) (bytes, files int64, err error) {
	err = f.walkKeys(f.prefix, func(o types.Object) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := aws.ToString(o.Key)
		if strings.HasSuffix(k, "/") || vfs.IsTempName(path.Base(k)) {
			return nil
		}
		bytes += aws.ToInt64(o.Size)
		files++
		return nil
	})
	if err != nil {
		return 0, 0, f.err("usage", "/", err)
	}
	return bytes, files, nil
}

// KnownHash implements vfs.KnownHasher: the MD5 of an object uploaded in one piece without
// SSE-KMS is its ETag. Multipart ETags ("…-N") are not digests of the content.
func (f *FS) KnownHash(_ context.Context, name, algo string) (string, bool, error) {
	if !strings.EqualFold(algo, "md5") || f.opt.SSE == "aws:kms" {
		return "", false, nil
	}
	c, err := f.clean("hash", name)
	if err != nil {
		return "", false, err
	}
	fi, err := f.statFile(c) // not the cache: a hash says what the object holds now
	if err != nil {
		return "", false, err
	}
	if fi.dir {
		return "", false, pathErr("hash", c, syscall.EISDIR)
	}
	if len(fi.etag) != 2*md5.Size {
		return "", false, nil
	}
	if _, err := hex.DecodeString(fi.etag); err != nil {
		return "", false, nil
	}
	return strings.ToLower(fi.etag), true, nil
}
